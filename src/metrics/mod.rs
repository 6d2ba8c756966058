//! Prometheus text for `/metrics`: per-shard counters summed on scrape (shards never
//! share an atomic), gauges of what the node holds, and Twirp request outcomes.
//! LiveKit's metric names are kept where one exists, so dashboards keep working.

pub mod histogram;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::shard::latency::LatencyHistogram;
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

/// A family with one sample per shard, labelled with the shard's number.
fn per_shard_family(
    out: &mut String,
    node: &str,
    shards: &[ShardStats],
    f: &Family,
    value: impl Fn(&ShardStats) -> f64,
) {
    let samples: Vec<(String, f64)> = shards
        .iter()
        .map(|s| (format!("{node},shard=\"{}\"", s.shard), value(s)))
        .collect();
    family(out, f, &samples);
}

/// The embedded TURN server's families (only when it runs).
pub fn render_turn(out: &mut String, node_id: &str, turn: &crate::turn::TurnStats) {
    use std::sync::atomic::Ordering::Relaxed;
    let node = format!("node_id=\"{node_id}\",node_type=\"SERVER\"");
    family(
        out,
        &Family {
            name: "corelay_turn_allocations",
            help: "TURN relay allocations held",
            kind: "gauge",
        },
        &[(node.clone(), turn.allocations.load(Relaxed) as f64)],
    );
    family(
        out,
        &Family {
            name: "corelay_turn_relayed_packet_total",
            help: "Datagrams relayed by the embedded TURN server",
            kind: "counter",
        },
        &[
            (
                format!("{node},direction=\"to_peer\""),
                turn.to_peer.load(Relaxed) as f64,
            ),
            (
                format!("{node},direction=\"to_client\""),
                turn.to_client.load(Relaxed) as f64,
            ),
        ],
    );
    let refused: Vec<(String, f64)> = crate::turn::Refusal::ALL
        .iter()
        .map(|r| {
            let labels = format!("{node},reason=\"{}\"", r.label());
            (labels, turn.refused(*r) as f64)
        })
        .collect();
    family(
        out,
        &Family {
            name: "corelay_turn_refused_total",
            help: "TURN requests and relayed datagrams refused, by reason",
            kind: "counter",
        },
        &refused,
    );
}

/// Messages the control thread dropped because a bounded channel was full, by channel.
pub type ChannelDrops<'a> = [(&'a str, u64)];

/// Renders the whole exposition. `node_id` labels every sample, as LiveKit's do.
pub fn render(
    node_id: &str,
    shards: &[ShardStats],
    twirp: &TwirpCounts,
    drops: &ChannelDrops,
) -> String {
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
    let counters: [(&str, &str, f64); 11] = [
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
            "corelay_keyframe_request_repeat_total",
            "Keyframe requests repeated because the publisher sent no keyframe since",
            sum(&|s| s.counters.keyframe_request_repeats),
        ),
        (
            "corelay_keyframe_request_failed_total",
            "Keyframe requests for a layer the publisher does not send",
            sum(&|s| s.counters.keyframe_request_failures),
        ),
        (
            "corelay_session_panic_total",
            "Peer connections ended because handling them panicked",
            sum(&|s| s.counters.session_panics),
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
            "corelay_data_queued_total",
            "Reliable data messages that waited for room in a subscriber's SCTP buffer",
            sum(&|s| s.counters.data_queued),
        ),
        (
            "corelay_data_lossy_dropped_total",
            "Lossy data messages dropped because a subscriber's SCTP buffer was full",
            sum(&|s| s.counters.data_lossy_dropped),
        ),
        (
            "corelay_data_overflow_close_total",
            "Participants closed because too much reliable data waited for them",
            sum(&|s| s.counters.data_overflow_closes),
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
        &[
            (
                format!("{node},reason=\"unknown_flow\""),
                sum(&|s| s.counters.dropped_unknown_flow),
            ),
            (
                format!("{node},reason=\"receive_buffer_full\""),
                sum(&|s| s.udp_receive_drops),
            ),
            (
                format!("{node},reason=\"tcp_send_queue\""),
                sum(&|s| s.tcp_dropped),
            ),
        ],
    );
    family(
        &mut out,
        &Family {
            name: "corelay_ice_tcp_refused_total",
            help: "ICE/TCP connections closed for garbage, an oversized frame or silence \
                   before their first valid frame, or refused at the connection cap",
            kind: "counter",
        },
        &[(node.clone(), sum(&|s| s.tcp_refused))],
    );
    family(
        &mut out,
        &Family {
            name: "livekit_nack_total",
            help: "NACK feedback messages (each can name several packets): incoming = sent \
                   to publishers about media we receive, outgoing = received from \
                   subscribers about media we send",
            kind: "counter",
        },
        &directed(&|s| s.counters.nacks_sent, &|s| s.counters.nacks_received),
    );
    let mut lost = Vec::new();
    for (direction, egress) in [("incoming", false), ("outgoing", true)] {
        for (i, kind) in ["AUDIO", "VIDEO"].into_iter().enumerate() {
            let n = sum(&|s| {
                let c = &s.counters;
                if egress {
                    c.lost_out[i]
                } else {
                    c.lost_in[i]
                }
            });
            lost.push((
                format!("{node},direction=\"{direction}\",type=\"{kind}\""),
                n,
            ));
        }
    }
    family(
        &mut out,
        &Family {
            name: "livekit_packet_loss_total",
            help: "RTP packets lost, from RTCP receiver reports once a second per stream: \
                   outgoing = us to subscribers, as their reports' cumulative lost grows; \
                   incoming = publishers to us, estimated as our reports' fraction lost x \
                   packets received / (1 - fraction)",
            kind: "counter",
        },
        &lost,
    );
    let dropped: Vec<(String, f64)> = drops
        .iter()
        .map(|(channel, n)| (format!("{node},channel=\"{channel}\""), *n as f64))
        .collect();
    family(
        &mut out,
        &Family {
            name: "corelay_channel_drop_total",
            help: "Messages dropped because a bounded channel was full or its receiver gone: \
                   webhook = events not queued for a webhook URL (counted per URL). Channels \
                   between shards and the control thread wait instead and never drop",
            kind: "counter",
        },
        &dropped,
    );
    per_shard_family(
        &mut out,
        &node,
        shards,
        &Family {
            name: "corelay_shard_busy_seconds_total",
            help: "Time each shard spent handling datagrams, timers and inbox messages \
                   (flush included) rather than waiting for them",
            kind: "counter",
        },
        |s| s.busy_us as f64 / 1e6,
    );
    let mut latency = LatencyHistogram::default();
    for s in shards {
        latency.merge(&s.forward_latency);
    }
    histogram::render(
        &latency,
        &mut out,
        "corelay_forward_latency_seconds",
        "From a datagram's receipt to the flush of the RTP packets it had forwarded, all \
         shards (bucket edges within ~1%: hdrhistogram, 2 significant digits)",
        &node,
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
    per_shard_family(
        &mut out,
        &node,
        shards,
        &Family {
            name: "corelay_shard_forwarded_packet_total",
            help: "RTP packets written to subscriber downtracks, per shard (how evenly the \
                   forwarding spreads over the cores)",
            kind: "counter",
        },
        |s| s.counters.forwarded as f64,
    );
    per_shard_family(
        &mut out,
        &node,
        shards,
        &Family {
            name: "corelay_shard_participants",
            help: "Participants connected to each shard (a room that spans shards counts \
                   each participant on its own shard only)",
            kind: "gauge",
        },
        |s| s.participants as f64,
    );
    per_shard_family(
        &mut out,
        &node,
        shards,
        &Family {
            name: "corelay_shard_relayed_packet_total",
            help: "RTP packets a shard handed to other shards hosting the same room",
            kind: "counter",
        },
        |s| s.relayed as f64,
    );
    per_shard_family(
        &mut out,
        &node,
        shards,
        &Family {
            name: "corelay_shard_relay_dropped_packet_total",
            help: "RTP packets for other shards dropped because the receiving shard's relay \
                   queue was full (it fell behind)",
            kind: "counter",
        },
        |s| s.relay_dropped as f64,
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
    use crate::room::Counters;

    /// The family a sample line belongs to: its name, or a histogram's name without
    /// `_bucket`/`_sum`/`_count`.
    fn family_of<'a>(text: &str, sample: &'a str) -> &'a str {
        let name = sample.split(['{', ' ']).next().unwrap_or_default();
        if text.contains(&format!("# TYPE {name} ")) {
            return name;
        }
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| text.contains(&format!("# TYPE {base} histogram\n")))
            .unwrap_or(name)
    }

    fn assert_well_formed(text: &str) {
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(
                    text.contains(&format!("# HELP {name} ")),
                    "{name} has no HELP"
                );
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name);
            }
            if let Some(help) = line.strip_prefix("# HELP ") {
                assert!(!help.contains("  "), "HELP text spacing: {help:?}");
            }
        }
        // Every sample line belongs to a family declared with HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let family = family_of(text, line);
            assert!(declared.contains(&family), "{line:?} has no TYPE");
        }
    }

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
        let text = render("ND_x", &[shard(0, 10), shard(1, 5)], &twirp, &[]);
        assert!(text.contains("livekit_room_total{node_id=\"ND_x\",node_type=\"SERVER\"} 4\n"));
        assert!(text.contains(
            "livekit_packet_total{node_id=\"ND_x\",node_type=\"SERVER\",direction=\"incoming\"} 15\n"
        ));
        assert!(text.contains("method=\"CreateRoom\",status=\"200\"} 4\n"));
        assert_well_formed(&text);
        assert!(text.contains("# TYPE livekit_packet_total counter"));
        assert!(text.contains("# TYPE livekit_participant_total gauge"));
    }

    #[test]
    fn media_quality_load_and_latency_families() {
        let shard = |id, busy_us, latency_us: &[u64]| {
            let mut forward_latency = LatencyHistogram::default();
            for us in latency_us {
                forward_latency.record_us(*us);
            }
            ShardStats {
                shard: id,
                counters: Counters {
                    nacks_sent: 2,
                    nacks_received: 3,
                    lost_in: [1, 10],
                    lost_out: [0, 7],
                    forwarded: busy_us / 10,
                    ..Default::default()
                },
                busy_us,
                forward_latency,
                ..Default::default()
            }
        };
        let shards = [shard(0, 1_500_000, &[40, 900]), shard(1, 250, &[40, 3_000])];
        let text = render("N", &shards, &TwirpCounts::new(), &[("webhook", 6)]);
        assert_well_formed(&text);
        let node = "node_id=\"N\",node_type=\"SERVER\"";
        for expected in [
            format!("livekit_nack_total{{{node},direction=\"incoming\"}} 4\n"),
            format!("livekit_nack_total{{{node},direction=\"outgoing\"}} 6\n"),
            format!(
                "livekit_packet_loss_total{{{node},direction=\"incoming\",type=\"AUDIO\"}} 2\n"
            ),
            format!(
                "livekit_packet_loss_total{{{node},direction=\"incoming\",type=\"VIDEO\"}} 20\n"
            ),
            format!(
                "livekit_packet_loss_total{{{node},direction=\"outgoing\",type=\"AUDIO\"}} 0\n"
            ),
            format!(
                "livekit_packet_loss_total{{{node},direction=\"outgoing\",type=\"VIDEO\"}} 14\n"
            ),
            format!("corelay_channel_drop_total{{{node},channel=\"webhook\"}} 6\n"),
            format!("corelay_shard_busy_seconds_total{{{node},shard=\"0\"}} 1.5\n"),
            format!("corelay_shard_busy_seconds_total{{{node},shard=\"1\"}} 0.00025\n"),
            format!("corelay_shard_forwarded_packet_total{{{node},shard=\"0\"}} 150000\n"),
            format!("corelay_shard_forwarded_packet_total{{{node},shard=\"1\"}} 25\n"),
            format!("corelay_forward_latency_seconds_bucket{{{node},le=\"0.00005\"}} 2\n"),
            format!("corelay_forward_latency_seconds_bucket{{{node},le=\"0.001\"}} 3\n"),
            format!("corelay_forward_latency_seconds_bucket{{{node},le=\"+Inf\"}} 4\n"),
            format!("corelay_forward_latency_seconds_count{{{node}}} 4\n"),
            format!("corelay_forward_latency_seconds_sum{{{node}}} 0.00398\n"),
        ] {
            assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
        }
        for kind in ["counter", "histogram"] {
            let name = match kind {
                "counter" => "livekit_nack_total",
                _ => "corelay_forward_latency_seconds",
            };
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")));
        }
        // Buckets are cumulative, in order, and the last (+Inf) is the count.
        let buckets: Vec<(String, f64)> = text
            .lines()
            .filter(|l| l.starts_with("corelay_forward_latency_seconds_bucket"))
            .map(|l| {
                let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
                let n = l.rsplit(' ').next().unwrap().parse().unwrap();
                (le.to_string(), n)
            })
            .collect();
        assert_eq!(buckets.last().map(|b| b.0.as_str()), Some("+Inf"));
        assert_eq!(buckets.last().map(|b| b.1), Some(4.0));
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        let edges: Vec<f64> = buckets[..buckets.len() - 1]
            .iter()
            .map(|b| b.0.parse().unwrap())
            .collect();
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
    }
}
