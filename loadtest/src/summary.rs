//! The end-of-run summary: one JSON value (also written with --json) and its
//! human-readable print-out.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::cli::Args;
use crate::client::{Client, Role};
use crate::stats::{latency_histogram, Latencies, Shared, SLOT_NAMES};

/// What a run produced, for [`build`].
pub struct Run<'a> {
    pub args: &'a Args,
    pub clients: &'a [Client],
    pub latency: &'a Latencies,
    pub shared: &'a Shared,
    pub threads: usize,
    pub planned: usize,
    pub wall_s: f64,
    pub ramp_s: f64,
    pub media_s: f64,
    pub cpu_start: &'a Option<Result<u64, String>>,
    pub cpu_end: &'a Option<Result<u64, String>>,
    pub steady: Steady,
    /// ns of CPU per 1200-byte loopback `sendto`, measured after the load.
    pub floor_ns: Option<f64>,
    pub interrupted: bool,
}

fn pct(h: &Histogram<u64>, q: f64) -> Value {
    if h.is_empty() {
        Value::Null
    } else {
        json!(round3(h.value_at_quantile(q) as f64 / 1000.0))
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn ms(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.3} ms"),
        None => "-".into(),
    }
}

fn loss_pct(expected: u64, lost: u64) -> f64 {
    if expected > 0 {
        (100.0 * lost as f64 / expected as f64 * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

/// Which layers the video subscriber-tracks of `clients` received: the layer each ended
/// on, packets per layer, and the layer switches seen.
pub fn layers<'a>(clients: impl Iterator<Item = &'a Client>) -> Value {
    let (mut ended, mut packets) = ([0u64; 4], [0u64; 4]);
    let (mut tracks, mut switches) = (0u64, 0u64);
    let mut history = Vec::new();
    for t in clients
        .flat_map(|c| c.rx.values())
        .filter(|t| !t.audio && t.unique > 0)
    {
        tracks += 1;
        switches += t.switches;
        history.push(t.history_text());
        if let Some(l) = t.layer {
            ended[l] += 1;
        }
        for (p, n) in packets.iter_mut().zip(t.layer_packets) {
            *p += n;
        }
    }
    let named = |a: [u64; 4]| {
        SLOT_NAMES
            .iter()
            .zip(a)
            .map(|(name, n)| (name.to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        "tracks": tracks,
        "ended_on": named(ended),
        "packets": named(packets),
        "switches": switches,
        // per track: the layer from its first packet on, and every switch (seconds)
        "history": history,
    })
}

/// Subscribers (role sub) taken together: how much they received and on which layers.
fn group(subs: &[&Client]) -> Value {
    let (mut expected, mut lost, mut received) = (0u64, 0u64, 0u64);
    let mut rates = Vec::new();
    for c in subs {
        let mut bytes = 0u64;
        for t in c.rx.values() {
            expected += t.expected();
            lost += t.lost();
            received += t.unique;
            bytes += t.bytes;
        }
        if let (Some(a), Some(b)) = (c.first_media_us, c.last_media_us) {
            if b > a {
                rates.push(bytes as f64 * 8.0 / ((b - a) as f64 / 1e6) / 1000.0);
            }
        }
    }
    let kbps = if rates.is_empty() {
        Value::Null
    } else {
        json!(round3(rates.iter().sum::<f64>() / rates.len() as f64))
    };
    json!({
        "subs": subs.len(),
        "kbps_received": kbps,
        "packets_received": received,
        "loss_pct": loss_pct(expected, lost),
        "layers": layers(subs.iter().copied()),
    })
}

/// The constrained subscribers' shapers: what their narrow links dropped and delayed.
fn shaper(subs: &[&Client]) -> Value {
    let stats: Vec<_> = subs.iter().filter_map(|c| c.shaper_stats).collect();
    let passed: u64 = stats.iter().map(|s| s.passed).sum();
    let dropped: u64 = stats.iter().map(|s| s.dropped).sum();
    let delay_us: u128 = stats.iter().map(|s| s.delay_sum.as_micros()).sum();
    let max_us = stats.iter().map(|s| s.delay_max.as_micros()).max();
    json!({
        "datagrams_passed": passed,
        "datagrams_dropped": dropped,
        "drop_pct": loss_pct(passed + dropped, dropped),
        "queue_delay_ms": {
            "mean": if passed > 0 { json!(round3(delay_us as f64 / passed as f64 / 1000.0)) } else { Value::Null },
            "max": max_us.map(|us| round3(us as f64 / 1000.0)),
        },
    })
}

/// A latency histogram (µs) as the summary's milliseconds.
fn latency_json(h: &Histogram<u64>) -> Value {
    json!({
        "p50": pct(h, 0.5),
        "p99": pct(h, 0.99),
        "p999": pct(h, 0.999),
        "max": if h.is_empty() { Value::Null } else { json!(round3(h.max() as f64 / 1000.0)) },
        "mean": if h.is_empty() { Value::Null } else { json!(round3(h.mean() / 1000.0)) },
        "count": h.len(),
    })
}

/// The summary of a run.
pub fn build(run: &Run) -> Value {
    let (args, clients, latency, shared) = (run.args, run.clients, run.latency, run.shared);
    let (cpu_start, cpu_end) = (run.cpu_start, run.cpu_end);
    let (planned, wall_s, ramp_s, media_s) = (run.planned, run.wall_s, run.ramp_s, run.media_s);
    let per_room_tracks = (args.pubs + args.audio_pubs) as u64;
    let tracks_expected: u64 = (args.pubs + args.audio_pubs) as u64
        * per_room_tracks.saturating_sub(1)
        * args.rooms as u64
        + args.subs as u64 * per_room_tracks * args.rooms as u64;
    let mut tracks_received = 0u64;
    let mut tracks_offered = 0u64;
    let (mut expected, mut received, mut lost, mut ooo, mut dups, mut keyframes) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut jitters = Vec::new();
    let mut ever_ready = 0u64;
    for c in clients {
        if c.was_ready() {
            ever_ready += 1;
        }
        tracks_offered += c.offered.len() as u64;
        let names: HashSet<&str> =
            c.rx.values()
                .filter(|t| t.unique > 0)
                .map(|t| t.track.as_str())
                .collect();
        tracks_received += names.len() as u64;
        for t in c.rx.values() {
            expected += t.expected();
            received += t.unique;
            lost += t.lost();
            ooo += t.out_of_order;
            dups += t.duplicates;
            keyframes += t.keyframes;
            jitters.push(t.jitter_us / 1000.0);
        }
    }
    let jitter_mean = if jitters.is_empty() {
        Value::Null
    } else {
        json!(round3(jitters.iter().sum::<f64>() / jitters.len() as f64))
    };
    let jitter_max = jitters
        .iter()
        .cloned()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let (cpu_s, cpu_per_packet) = match (cpu_start, cpu_end) {
        (Some(Ok(a)), Some(Ok(b))) => {
            let us = b.saturating_sub(*a);
            let per = if received > 0 {
                json!(round3(us as f64 / received as f64))
            } else {
                Value::Null
            };
            (json!(round3(us as f64 / 1e6)), per)
        }
        (Some(Ok(_)), Some(Err(e))) => {
            shared.error("server_pid", e.clone());
            (Value::Null, Value::Null)
        }
        _ => (Value::Null, Value::Null),
    };
    let join = shared
        .join_us
        .lock()
        .unwrap()
        .take()
        .unwrap_or_else(latency_histogram);
    let ready = shared
        .ready_us
        .lock()
        .unwrap()
        .take()
        .unwrap_or_else(latency_histogram);
    let first_media = shared
        .first_media_us
        .lock()
        .unwrap()
        .take()
        .unwrap_or_else(latency_histogram);
    let errors = shared.errors.lock().unwrap().clone();
    let packets_sent = shared.packets_sent.load(Relaxed);
    let subs: Vec<&Client> = clients
        .iter()
        .filter(|c| c.spec.role == Role::Sub)
        .collect();
    let constrained: Vec<&Client> = subs
        .iter()
        .copied()
        .filter(|c| c.spec.constrained)
        .collect();
    let unconstrained: Vec<&Client> = subs
        .iter()
        .copied()
        .filter(|c| !c.spec.constrained)
        .collect();
    let by_layer = |a: &[std::sync::atomic::AtomicU64; 4]| json!({ "q": a[0].load(Relaxed), "h": a[1].load(Relaxed), "f": a[2].load(Relaxed), "single": a[3].load(Relaxed) });
    let mut constrained_v = group(&constrained);
    constrained_v["kbps_limit"] = json!(args.constrain_kbps);
    constrained_v["shaper"] = shaper(&constrained);
    json!({
        "url": args.url,
        "config": {
            "rooms": args.rooms,
            "pubs": args.pubs,
            "audio_pubs": args.audio_pubs,
            "subs": args.subs,
            "duration_s": args.duration,
            "video_resolution": format!("{}x{}", args.video_resolution.0, args.video_resolution.1),
            "video_bitrate_kbps": args.video_bitrate,
            "fps": args.fps,
            "gop": args.gop,
            "audio_bitrate_kbps": args.audio_bitrate,
            "simulcast": if args.simulcast { "on" } else { "off" },
            "sub_quality": args.sub_quality.map(|q| q.name()),
            "viewers": args.viewers,
            "pace": args.pace,
            "constrained_subs": args.constrained_subs,
            "constrain_kbps": args.constrain_kbps,
            "constrain_queue_ms": args.constrain_queue_ms,
            "ramp_per_s": args.ramp,
            "signal": match args.signal { crate::cli::SignalPath::V0 => "v0", crate::cli::SignalPath::V1 => "v1" },
            "threads": run.threads,
        },
        "wall_s": round3(wall_s),
        "ramp_s": round3(ramp_s),
        "media_s": round3(media_s),
        "participants": {
            "planned": planned,
            "started": shared.started.load(Relaxed),
            "joined": shared.joined.load(Relaxed),
            "connected": ever_ready,
            "failed": shared.failed.load(Relaxed),
        },
        "tracks_expected": tracks_expected,
        "tracks_offered": tracks_offered,
        "tracks_received": tracks_received,
        "packets_sent": packets_sent,
        "bytes_sent": shared.payload_bytes_sent.load(Relaxed),
        "packets_received": received,
        "bytes_received": shared.payload_bytes_received.load(Relaxed),
        "packets_expected": expected,
        "packets_lost": lost,
        "loss_pct": loss_pct(expected, lost),
        "out_of_order": ooo,
        "duplicates": dups,
        "keyframes_received": keyframes,
        "keyframe_requests": shared.keyframe_requests.load(Relaxed),
        "keyframe_requests_by_layer": by_layer(&shared.keyframe_requests_by_layer),
        "quality_updates": shared.quality_updates.load(Relaxed),
        "layers": layers(clients.iter()),
        "constrained": constrained_v,
        "unconstrained": group(&unconstrained),
        "udp_bytes_out": shared.udp_bytes_out.load(Relaxed),
        "udp_bytes_in": shared.udp_bytes_in.load(Relaxed),
        "latency_ms": latency_json(&latency.arrival),
        "read_latency_ms": latency_json(&latency.read),
        "jitter_ms": { "mean": jitter_mean, "max": jitter_max.map(round3) },
        "join_ms": { "p50": pct(&join, 0.5), "p99": pct(&join, 0.99), "max": if join.is_empty() { Value::Null } else { json!(round3(join.max() as f64 / 1000.0)) } },
        "ready_ms": { "p50": pct(&ready, 0.5), "p99": pct(&ready, 0.99), "max": if ready.is_empty() { Value::Null } else { json!(round3(ready.max() as f64 / 1000.0)) } },
        "first_media_ms": { "p50": pct(&first_media, 0.5), "p99": pct(&first_media, 0.99), "max": if first_media.is_empty() { Value::Null } else { json!(round3(first_media.max() as f64 / 1000.0)) } },
        "errors": errors.iter().map(|(k, e)| (k.clone(), json!(e.count))).collect::<serde_json::Map<_, _>>(),
        "error_examples": errors.iter().map(|(k, e)| (k.clone(), json!(e.example))).collect::<serde_json::Map<_, _>>(),
        "server_pid": args.server_pid,
        "server_cpu_s": cpu_s,
        "server_cpu_us_per_packet": cpu_per_packet,
        "steady": run.steady.json(run.floor_ns),
        "interrupted": run.interrupted,
    })
}

/// The human-readable summary.
pub fn print(s: &Value) {
    let c = &s["config"];
    let p = &s["participants"];
    println!("== loadtest summary ==");
    println!("url               {}", s["url"].as_str().unwrap_or(""));
    println!(
        "load              {} rooms x ({} video pubs + {} audio pubs + {} subs) = {} participants; video {} {} kbit/s @{} fps gop {}; audio {} kbit/s; simulcast {}",
        c["rooms"], c["pubs"], c["audio_pubs"], c["subs"], p["planned"],
        c["video_resolution"].as_str().unwrap_or(""), c["video_bitrate_kbps"], c["fps"], c["gop"],
        c["audio_bitrate_kbps"], c["simulcast"].as_str().unwrap_or(""),
    );
    if c["viewers"].as_bool() == Some(true) {
        println!("                  subscribers join as viewers (tokens that cannot publish)");
    }
    if c["pubs"].as_u64().unwrap_or(0) > 0 {
        if c["pace"].as_bool() == Some(true) {
            println!("                  video paced as libwebrtc's (2.5x bitrate, 5 ms bursts); latency from each packet's departure");
        } else {
            println!("                  video unpaced: each frame leaves at once; latency from the frame's time");
        }
    }
    println!(
        "time              {:.1} s wall: ramp {:.1} s, media {:.1} s after the ramp",
        s["wall_s"].as_f64().unwrap_or(0.0),
        s["ramp_s"].as_f64().unwrap_or(0.0),
        s["media_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "participants      {} connected / {} planned ({} joined, {} failed)",
        p["connected"], p["planned"], p["joined"], p["failed"]
    );
    println!(
        "join time         p50 {}  p99 {}  max {}  (connect -> JoinResponse)",
        ms(&s["join_ms"]["p50"]),
        ms(&s["join_ms"]["p99"]),
        ms(&s["join_ms"]["max"])
    );
    println!(
        "ready time        p50 {}  p99 {}  max {}  (connect -> every peer connection up)",
        ms(&s["ready_ms"]["p50"]),
        ms(&s["ready_ms"]["p99"]),
        ms(&s["ready_ms"]["max"])
    );
    println!(
        "first media       p50 {}  p99 {}  max {}  (connect -> first media packet received)",
        ms(&s["first_media_ms"]["p50"]),
        ms(&s["first_media_ms"]["p99"]),
        ms(&s["first_media_ms"]["max"])
    );
    println!(
        "tracks            {} received / {} expected ({} offered)",
        s["tracks_received"], s["tracks_expected"], s["tracks_offered"]
    );
    println!(
        "packets           sent {}  received {}  lost {} of {} ({:.4} %)  out-of-order {}  duplicates {}",
        s["packets_sent"], s["packets_received"], s["packets_lost"], s["packets_expected"],
        s["loss_pct"].as_f64().unwrap_or(0.0), s["out_of_order"], s["duplicates"]
    );
    println!(
        "bytes             RTP payload sent {:.2} MB received {:.2} MB; UDP out {:.2} MB in {:.2} MB",
        s["bytes_sent"].as_f64().unwrap_or(0.0) / 1e6,
        s["bytes_received"].as_f64().unwrap_or(0.0) / 1e6,
        s["udp_bytes_out"].as_f64().unwrap_or(0.0) / 1e6,
        s["udp_bytes_in"].as_f64().unwrap_or(0.0) / 1e6
    );
    let l = &s["latency_ms"];
    println!(
        "latency (1-way)   p50 {}  p99 {}  p99.9 {}  max {}  mean {}  (to the subscriber socket, kernel-stamped)",
        ms(&l["p50"]),
        ms(&l["p99"]),
        ms(&l["p999"]),
        ms(&l["max"]),
        ms(&l["mean"])
    );
    let r = &s["read_latency_ms"];
    println!(
        "  as read         p50 {}  p99 {}  p99.9 {}  (to when loadtest read it: its own backlog too)",
        ms(&r["p50"]),
        ms(&r["p99"]),
        ms(&r["p999"])
    );
    println!(
        "jitter            mean {}  max {}",
        ms(&s["jitter_ms"]["mean"]),
        ms(&s["jitter_ms"]["max"])
    );
    let kl = &s["keyframe_requests_by_layer"];
    println!(
        "keyframes         {} received, {} requests (PLI/FIR) reached publishers (q {} h {} f {} single {}); {} dynacast quality updates",
        s["keyframes_received"], s["keyframe_requests"], kl["q"], kl["h"], kl["f"], kl["single"],
        s["quality_updates"]
    );
    println!("layers            {}", layers_line(&s["layers"]));
    if c["constrained_subs"].as_u64().unwrap_or(0) > 0 {
        let k = &s["constrained"];
        let sh = &k["shaper"];
        println!(
            "constrained       {} subs at {} kbit/s: received {} kbit/s each, loss {:.4} %; {}",
            k["subs"],
            k["kbps_limit"],
            kbps(&k["kbps_received"]),
            k["loss_pct"].as_f64().unwrap_or(0.0),
            layers_line(&k["layers"])
        );
        println!(
            "  shaper          dropped {} of {} datagrams ({:.2} %), queue delay mean {} max {}",
            sh["datagrams_dropped"],
            sh["datagrams_passed"].as_u64().unwrap_or(0)
                + sh["datagrams_dropped"].as_u64().unwrap_or(0),
            sh["drop_pct"].as_f64().unwrap_or(0.0),
            ms(&sh["queue_delay_ms"]["mean"]),
            ms(&sh["queue_delay_ms"]["max"])
        );
        let history: Vec<&str> = k["layers"]["history"]
            .as_array()
            .map(|h| h.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!("  layer history   {}", history.join(" | "));
        let u = &s["unconstrained"];
        println!(
            "unconstrained     {} subs: received {} kbit/s each, loss {:.4} %; {}",
            u["subs"],
            kbps(&u["kbps_received"]),
            u["loss_pct"].as_f64().unwrap_or(0.0),
            layers_line(&u["layers"])
        );
    }
    match (s["server_cpu_s"].as_f64(), s["server_cpu_us_per_packet"].as_f64()) {
        (Some(cpu), Some(per)) => println!(
            "server CPU        {cpu:.2} s = {per:.2} us per received packet (= CPU s per million packets)"
        ),
        (Some(cpu), None) => println!("server CPU        {cpu:.2} s (no packets received)"),
        _ => println!("server CPU        - (no --server-pid)"),
    }
    print_steady(s);
    let errors = s["errors"].as_object().cloned().unwrap_or_default();
    if errors.is_empty() {
        println!("errors            none");
    } else {
        println!("errors");
        for (k, n) in errors {
            println!(
                "  {k:<22} {n:>6}  e.g. {}",
                s["error_examples"][&k].as_str().unwrap_or("")
            );
        }
    }
}

fn kbps(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.1}"),
        None => "-".into(),
    }
}

/// "4 video tracks ended on q 0 h 0 f 4 single 0; packets q .. h .. f ..; 2 switches"
fn layers_line(l: &Value) -> String {
    let e = &l["ended_on"];
    let p = &l["packets"];
    format!(
        "{} video tracks ended on q {} h {} f {} single {}; packets q {} h {} f {} single {}; {} layer switches",
        l["tracks"], e["q"], e["h"], e["f"], e["single"], p["q"], p["h"], p["f"], p["single"], l["switches"]
    )
}

/// The steady window: the media phase after the joins settled.
pub struct Steady {
    pub seconds: f64,
    pub server_cpu_us: Option<u64>,
    /// The server's user and kernel clock ticks in the window.
    pub server_ticks: Option<(u64, u64)>,
    pub own_cpu_us: Option<u64>,
    pub packets_received: u64,
    /// Participants connected at the end of the window.
    pub connected: u64,
    /// Packets each shard forwarded in the window (`--metrics`).
    pub forwarded_per_shard: Option<Vec<(u32, u64)>>,
    /// p50, p99 and p99.9 of the server's own forwarding latency in the window, ms: the
    /// upper edges of its histogram's buckets (`--metrics`).
    pub server_latency_ms: Option<Vec<f64>>,
}

impl Steady {
    pub fn between(a: &crate::Sample, b: &crate::Sample) -> Steady {
        let diff = |x: Option<u64>, y: Option<u64>| Some(y?.saturating_sub(x?));
        Steady {
            seconds: b.at.duration_since(a.at).as_secs_f64(),
            server_cpu_us: diff(a.server_cpu_us, b.server_cpu_us),
            server_ticks: match (a.server_ticks, b.server_ticks) {
                (Some((u0, k0)), Some((u1, k1))) => {
                    Some((u1.saturating_sub(u0), k1.saturating_sub(k0)))
                }
                _ => None,
            },
            own_cpu_us: diff(a.own_cpu_us, b.own_cpu_us),
            packets_received: b.packets_received.saturating_sub(a.packets_received),
            connected: b.connected,
            forwarded_per_shard: match (&a.scraped, &b.scraped) {
                (Some(x), Some(y)) => Some(crate::scrape::delta(&x.forwarded, &y.forwarded)),
                _ => None,
            },
            server_latency_ms: match (&a.scraped, &b.scraped) {
                (Some(x), Some(y)) => {
                    crate::scrape::latency_quantiles(&x.latency, &y.latency, &[0.5, 0.99, 0.999])
                        .map(|q| q.into_iter().map(|s| s * 1000.0).collect())
                }
                _ => None,
            },
        }
    }

    /// The figures the summary prints: CPU per second, per participant and per packet,
    /// and the per-packet cost as a multiple of the sendto floor.
    fn json(&self, floor_ns: Option<f64>) -> Value {
        let secs = self.seconds.max(1e-3);
        let per_s = |us: Option<u64>| us.map(|us| round3(us as f64 / 1000.0 / secs));
        let server_ms_per_s = per_s(self.server_cpu_us);
        let per_participant = server_ms_per_s
            .filter(|_| self.connected > 0)
            .map(|ms| round3(ms / self.connected as f64));
        let us_per_packet = self
            .server_cpu_us
            .filter(|_| self.packets_received > 0)
            .map(|us| us as f64 / self.packets_received as f64);
        let vs_floor = |us: Option<f64>| match (us, floor_ns) {
            (Some(us), Some(ns)) if ns > 0.0 => Some(round3(us * 1000.0 / ns)),
            _ => None,
        };
        let ratio = vs_floor(us_per_packet);
        // The kernel's share of the server's CPU, from the tick counts: what of the
        // per-packet cost is system calls and the network stack rather than user code.
        let kernel_share = self
            .server_ticks
            .filter(|(user, kernel)| user + kernel > 0)
            .map(|(user, kernel)| kernel as f64 / (user + kernel) as f64);
        let kernel_us_per_packet = us_per_packet.zip(kernel_share).map(|(us, k)| us * k);
        json!({
            "seconds": round3(self.seconds),
            "packets_received": self.packets_received,
            "packets_per_s": round3(self.packets_received as f64 / secs),
            "connected": self.connected,
            "server_cpu_ms_per_s": server_ms_per_s,
            "server_cpu_ms_per_participant_s": per_participant,
            "server_cpu_us_per_packet": us_per_packet.map(round3),
            "loadtest_cpu_ms_per_s": per_s(self.own_cpu_us),
            "floor_sendto_ns": floor_ns.map(round3),
            "server_cost_vs_floor": ratio,
            "server_kernel_share_pct": kernel_share.map(|k| round3(100.0 * k)),
            "server_kernel_us_per_packet": kernel_us_per_packet.map(round3),
            "server_kernel_cost_vs_floor": vs_floor(kernel_us_per_packet),
            // Upper bucket edges; infinite (above the last edge) reads as null.
            "server_forward_latency_ms": self.server_latency_ms.as_ref().map(|q| {
                let edge = |v: f64| v.is_finite().then(|| round3(v));
                json!({ "p50": edge(q[0]), "p99": edge(q[1]), "p99_9": edge(q[2]) })
            }),
            "forwarded_per_shard": self.forwarded_per_shard.as_ref().map(|shards| {
                let total: u64 = shards.iter().map(|(_, n)| n).sum();
                shards
                    .iter()
                    .map(|&(shard, packets)| {
                        json!({
                            "shard": shard,
                            "packets": packets,
                            "share_pct": round3(100.0 * packets as f64 / total.max(1) as f64),
                        })
                    })
                    .collect::<Vec<_>>()
            }),
        })
    }
}

/// The steady-window lines of the human-readable summary.
fn print_steady(s: &Value) {
    let st = &s["steady"];
    let f = |k: &str| st[k].as_f64();
    println!(
        "steady window     {:.1} s, {} participants connected, {:.0} packets/s received",
        f("seconds").unwrap_or(0.0),
        st["connected"],
        f("packets_per_s").unwrap_or(0.0)
    );
    match f("server_cpu_ms_per_s") {
        Some(ms) => println!(
            "  server CPU      {ms:.2} ms/s = {:.4} ms per participant per second; {} us per packet",
            f("server_cpu_ms_per_participant_s").unwrap_or(0.0),
            f("server_cpu_us_per_packet").map_or("-".to_string(), |v| format!("{v:.2}")),
        ),
        None => println!("  server CPU      - (no --server-pid)"),
    }
    println!(
        "  sendto floor    {} ns per 1200 B datagram; server per packet = {} x floor",
        f("floor_sendto_ns").map_or("-".to_string(), |v| format!("{v:.0}")),
        f("server_cost_vs_floor").map_or("-".to_string(), |v| format!("{v:.2}")),
    );
    if let (Some(pct), Some(x)) = (
        f("server_kernel_share_pct"),
        f("server_kernel_cost_vs_floor"),
    ) {
        println!(
            "  of which kernel {pct:.0} % = {:.2} us per packet = {x:.2} x floor (user code: {:.2} x)",
            f("server_kernel_us_per_packet").unwrap_or(0.0),
            f("server_cost_vs_floor").unwrap_or(0.0) - x,
        );
    }
    println!(
        "  loadtest CPU    {} ms/s (it shares the machine with the server)",
        f("loadtest_cpu_ms_per_s").map_or("-".to_string(), |v| format!("{v:.1}")),
    );
    let lat = &st["server_forward_latency_ms"];
    if lat.is_object() {
        let edge = |k: &str| {
            lat[k]
                .as_f64()
                .map_or("above the last bucket".to_string(), |v| {
                    format!("<= {v} ms")
                })
        };
        println!(
            "  server latency  p50 {}  p99 {}  p99.9 {}  (receipt to flush, the server's histogram)",
            edge("p50"),
            edge("p99"),
            edge("p99_9")
        );
    }
    if let Some(shards) = st["forwarded_per_shard"].as_array() {
        let parts: Vec<String> = shards
            .iter()
            .map(|s| {
                format!(
                    "shard {} {} ({:.1} %)",
                    s["shard"],
                    s["packets"],
                    s["share_pct"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        println!("  forwarded       {}", parts.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(server_ticks: Option<(u64, u64)>) -> Steady {
        Steady {
            seconds: 2.0,
            server_cpu_us: Some(4_000),
            server_ticks,
            own_cpu_us: Some(1_000),
            packets_received: 1_000,
            connected: 4,
            forwarded_per_shard: None,
            server_latency_ms: None,
        }
    }

    #[test]
    fn the_per_packet_cost_splits_into_kernel_and_user_by_ticks() {
        // 4 µs a packet against a 1 µs floor; a quarter of the ticks in the kernel.
        let j = steady(Some((300, 100))).json(Some(1_000.0));
        assert_eq!(j["server_cpu_us_per_packet"].as_f64(), Some(4.0));
        assert_eq!(j["server_cost_vs_floor"].as_f64(), Some(4.0));
        assert_eq!(j["server_kernel_share_pct"].as_f64(), Some(25.0));
        assert_eq!(j["server_kernel_us_per_packet"].as_f64(), Some(1.0));
        assert_eq!(j["server_kernel_cost_vs_floor"].as_f64(), Some(1.0));
    }

    #[test]
    fn without_ticks_or_a_floor_there_is_no_split() {
        let j = steady(None).json(Some(1_000.0));
        assert!(j["server_kernel_share_pct"].is_null());
        assert!(j["server_kernel_cost_vs_floor"].is_null());
        let j = steady(Some((0, 0))).json(Some(1_000.0));
        assert!(j["server_kernel_share_pct"].is_null());
        let j = steady(Some((300, 100))).json(None);
        assert_eq!(j["server_kernel_us_per_packet"].as_f64(), Some(1.0));
        assert!(j["server_kernel_cost_vs_floor"].is_null());
    }
}
