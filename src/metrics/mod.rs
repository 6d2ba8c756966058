//! Prometheus text for `/metrics`: per-shard counters summed on scrape (shards never
//! share an atomic), gauges of what the node holds, and Twirp request outcomes.
//! LiveKit's metric names are kept where one exists, so dashboards keep working.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::shard::ShardStats;

/// Twirp calls by method and HTTP status.
pub type TwirpCounts = BTreeMap<(String, u16), u64>;

struct Family<'a> {
    name: &'a str,
    help: &'a str,
    kind: &'a str,
}

fn family(out: &mut String, f: &Family, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
    for (labels, value) in samples {
        let _ = writeln!(out, "{}{{{}}} {}", f.name, labels, value);
    }
}

/// Renders the whole exposition. `node_id` labels every sample, as LiveKit's do.
pub fn render(node_id: &str, shards: &[ShardStats], twirp: &TwirpCounts) -> String {
    let node = format!("node_id=\"{node_id}\",node_type=\"SERVER\"");
    let sum = |f: &dyn Fn(&ShardStats) -> u64| shards.iter().map(f).sum::<u64>() as f64;
    let mut out = String::with_capacity(4096);
    let gauges: [(&str, &str, f64); 4] = [
        (
            "livekit_room_total",
            "Rooms on this node",
            sum(&|s| s.rooms as u64),
        ),
        (
            "livekit_participant_total",
            "Participants on this node",
            sum(&|s| s.participants as u64),
        ),
        (
            "livekit_track_published_total",
            "Published tracks",
            sum(&|s| s.tracks as u64),
        ),
        (
            "livekit_track_subscribed_total",
            "Subscribed tracks (downtracks)",
            sum(&|s| s.subscribed as u64),
        ),
    ];
    for (name, help, value) in gauges {
        let f = Family {
            name,
            help,
            kind: "gauge",
        };
        family(&mut out, &f, &[(node.clone(), value)]);
    }
    let directed = |inc: &dyn Fn(&ShardStats) -> u64, outg: &dyn Fn(&ShardStats) -> u64| {
        vec![
            (format!("{node},direction=\"incoming\""), sum(inc)),
            (format!("{node},direction=\"outgoing\""), sum(outg)),
        ]
    };
    family(
        &mut out,
        &Family {
            name: "livekit_packet_total",
            help: "UDP datagrams",
            kind: "counter",
        },
        &directed(&|s| s.counters.packets_in, &|s| s.counters.packets_out),
    );
    family(
        &mut out,
        &Family {
            name: "livekit_packet_bytes",
            help: "UDP bytes",
            kind: "counter",
        },
        &directed(&|s| s.counters.bytes_in, &|s| s.counters.bytes_out),
    );
    let counters: [(&str, &str, f64); 5] = [
        (
            "livekit_participant_join_total",
            "Participants that joined",
            sum(&|s| s.counters.participant_joins),
        ),
        (
            "livekit_pli_total",
            "Keyframe requests sent to publishers",
            sum(&|s| s.counters.keyframe_requests),
        ),
        (
            "corelay_forwarded_packet_total",
            "RTP packets written to subscriber downtracks",
            sum(&|s| s.counters.forwarded),
        ),
        (
            "corelay_data_packet_total",
            "Data packets relayed",
            sum(&|s| s.counters.data_packets),
        ),
        (
            "corelay_bandwidth_pause_total",
            "Downtracks the stream allocator paused for bandwidth",
            sum(&|s| s.counters.bandwidth_pauses),
        ),
    ];
    for (name, help, value) in counters {
        let f = Family {
            name,
            help,
            kind: "counter",
        };
        family(&mut out, &f, &[(node.clone(), value)]);
    }
    family(
        &mut out,
        &Family {
            name: "corelay_dropped_packet_total",
            help: "Datagrams dropped, by reason",
            kind: "counter",
        },
        &[(
            format!("{node},reason=\"unknown_flow\""),
            sum(&|s| s.counters.dropped_unknown_flow),
        )],
    );
    let per_shard: Vec<(String, f64)> = shards
        .iter()
        .flat_map(|s| {
            [
                (
                    format!("{node},shard=\"{}\",direction=\"incoming\"", s.shard),
                    s.counters.packets_in as f64,
                ),
                (
                    format!("{node},shard=\"{}\",direction=\"outgoing\"", s.shard),
                    s.counters.packets_out as f64,
                ),
            ]
        })
        .collect();
    family(
        &mut out,
        &Family {
            name: "corelay_shard_packet_total",
            help: "UDP datagrams per shard",
            kind: "counter",
        },
        &per_shard,
    );
    let calls: Vec<(String, f64)> = twirp
        .iter()
        .map(|((method, status), n)| {
            (
                format!("{node},service=\"RoomService\",method=\"{method}\",status=\"{status}\""),
                *n as f64,
            )
        })
        .collect();
    family(
        &mut out,
        &Family {
            name: "livekit_node_twirp_request_status",
            help: "Twirp requests by method and HTTP status",
            kind: "counter",
        },
        &calls,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::Counters;

    #[test]
    fn sums_shards_and_types_every_family() {
        let shard = |id, packets_in| ShardStats {
            shard: id,
            rooms: 2,
            participants: 3,
            counters: Counters {
                packets_in,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut twirp = TwirpCounts::new();
        twirp.insert(("CreateRoom".into(), 200), 4);
        let text = render("ND_x", &[shard(0, 10), shard(1, 5)], &twirp);
        assert!(text.contains("livekit_room_total{node_id=\"ND_x\",node_type=\"SERVER\"} 4\n"));
        assert!(text.contains(
            "livekit_packet_total{node_id=\"ND_x\",node_type=\"SERVER\",direction=\"incoming\"} 15\n"
        ));
        assert!(text.contains("method=\"CreateRoom\",status=\"200\"} 4\n"));
        // Every sample line belongs to a family declared with HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE"
            );
        }
        assert!(text.contains("# TYPE livekit_packet_total counter"));
        assert!(text.contains("# TYPE livekit_participant_total gauge"));
    }
}
