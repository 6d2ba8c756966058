//! `loadtest --rooms N --pubs M --subs K`: simulates LiveKit participants against an SFU
//! (signal over WebSocket, media over str0m peer connections, many per worker thread)
//! and reports what the subscribers got. See `loadtest --help`.

mod cli;
mod client;
mod clock;
mod media;
mod signal;
mod stats;
mod token;
mod worker;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use cli::Args;
use client::{Config, Role, Spec};
use signal::Endpoint;
use stats::{latency_histogram, Shared};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Relaxed);
}

fn install_sigint() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// The local address that routes to the server (connecting a UDP socket sends nothing).
fn local_ip_for(server: SocketAddr) -> Option<IpAddr> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect(server).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// utime + stime of a process, µs.
fn process_cpu_us(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // fields after "pid (comm)": state is field 3; utime 14 and stime 15
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, String> {
        f.get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| "malformed stat".to_string())
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(total * 1_000_000 / hz)
}

fn plan(args: &Args, prefix: &str) -> Vec<Spec> {
    let mut roles = Vec::new();
    roles.extend((0..args.pubs).map(|i| (Role::Video, format!("pub{i}"))));
    roles.extend((0..args.audio_pubs).map(|i| (Role::Audio, format!("apub{i}"))));
    roles.extend((0..args.subs).map(|i| (Role::Sub, format!("sub{i}"))));
    let mut out = Vec::new();
    // interleave the rooms, publishers first in each
    for (role, name) in &roles {
        for r in 0..args.rooms {
            let room = format!("{prefix}{r}");
            out.push(Spec {
                identity: format!("{room}-{name}"),
                room,
                role: *role,
            });
        }
    }
    out
}

struct Progress {
    t0: Instant,
    next: Instant,
    last_at: Instant,
    last: [u64; 4],
    quiet: bool,
    planned: usize,
}

impl Progress {
    fn tick(&mut self, shared: &Shared) {
        let now = clock::now();
        if now < self.next {
            return;
        }
        self.next += Duration::from_secs(1);
        let cur = [
            shared.udp_bytes_out.load(Relaxed),
            shared.udp_bytes_in.load(Relaxed),
            shared.packets_sent.load(Relaxed),
            shared.packets_received.load(Relaxed),
        ];
        let dt = now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        let rate = |i: usize| (cur[i] - self.last[i]) as f64 / dt;
        let expected = shared.packets_expected.load(Relaxed);
        let loss = if expected > 0 {
            100.0 * expected.saturating_sub(cur[3]) as f64 / expected as f64
        } else {
            0.0
        };
        let lat_max = shared.interval_max_latency_us.swap(0, Relaxed);
        let late = shared.interval_late.swap(0, Relaxed);
        if !self.quiet {
            eprintln!(
                "[{:6.1}s] connected {}/{} failed {} | out {:.2} Mbit/s in {:.2} Mbit/s | \
                 tx {:.0} pkt/s rx {:.0} pkt/s | loss {:.3}% | latency max {:.1} ms, {} over {} ms | \
                 errors {}",
                now.duration_since(self.t0).as_secs_f64(),
                shared.connected.load(Relaxed),
                self.planned,
                shared.failed.load(Relaxed),
                rate(0) * 8e-6,
                rate(1) * 8e-6,
                rate(2),
                rate(3),
                loss,
                lat_max as f64 / 1000.0,
                late,
                stats::LATE_US / 1000,
                shared.error_count(),
            );
        }
        self.last = cur;
        self.last_at = now;
    }

    /// Waits until `until` (or an interrupt), printing progress lines.
    fn wait(&mut self, shared: &Shared, until: Instant, stop_early: impl Fn() -> bool) {
        loop {
            self.tick(shared);
            let now = clock::now();
            if now >= until || INTERRUPTED.load(Relaxed) || stop_early() {
                return;
            }
            std::thread::sleep(until.min(self.next).saturating_duration_since(now));
        }
    }
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

fn main() {
    let args = Args::parse();
    install_sigint();
    let shared = Arc::new(Shared::new());
    let endpoint = Endpoint::parse(&args.url);
    if let Err(f) = &endpoint {
        eprintln!("loadtest: {} ({})", f.message, f.kind);
    }
    let local_ip = endpoint
        .as_ref()
        .ok()
        .and_then(|e| local_ip_for(e.addr))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if args.simulcast {
        eprintln!("loadtest: --simulcast is not supported yet; publishing a single layer");
    }
    let run_id = clock::wall_us() / 1_000_000 % 100_000;
    let prefix = args
        .room_prefix
        .clone()
        .unwrap_or_else(|| format!("lt{run_id}-{}-", std::process::id()));
    let specs = plan(&args, &prefix);
    let planned = specs.len();
    let threads = args.threads.max(1);
    let cfg = Arc::new(Config {
        endpoint,
        local_ip,
        api_key: args.api_key.clone(),
        api_secret: args.api_secret.clone(),
        token_ttl: (args.duration as u64).saturating_add(3600),
        width: args.video_resolution.0,
        height: args.video_resolution.1,
        video_kbps: args.video_bitrate,
        fps: args.fps.max(1),
        gop: args.gop.max(1),
        audio_kbps: args.audio_bitrate,
    });

    let cpu_start = args.server_pid.map(process_cpu_us);
    if let Some(Err(e)) = &cpu_start {
        shared.error("server_pid", e.clone());
    }
    let t0 = clock::now();
    let mut progress = Progress {
        t0,
        next: t0 + Duration::from_secs(1),
        last_at: t0,
        last: [0; 4],
        quiet: args.quiet,
        planned,
    };

    let mut inboxes = Vec::new();
    let mut handles = Vec::new();
    for i in 0..threads {
        let (tx, rx) = mpsc::channel::<Spec>();
        let (cfg, shared) = (cfg.clone(), shared.clone());
        let h = std::thread::Builder::new()
            .name(format!("loadtest-w{i}"))
            .spawn(move || worker::run(rx, cfg, shared))
            .expect("spawn worker");
        inboxes.push(tx);
        handles.push(h);
    }

    // Ramp: hand participants to the workers at --ramp joins/s.
    let interval = if args.ramp > 0.0 {
        Duration::from_secs_f64(1.0 / args.ramp)
    } else {
        Duration::ZERO
    };
    for (i, spec) in specs.into_iter().enumerate() {
        progress.wait(&shared, t0 + interval * i as u32, || false);
        if INTERRUPTED.load(Relaxed) {
            break;
        }
        let _ = inboxes[i % threads].send(spec);
    }
    drop(inboxes);
    let ramp_s = t0.elapsed().as_secs_f64();

    // Steady state, unless everyone is already gone.
    let all_gone = || shared.finished.load(Relaxed) >= shared.started.load(Relaxed);
    let steady_end = clock::now() + Duration::from_secs_f64(args.duration.max(0.0));
    progress.wait(&shared, steady_end, || {
        shared.started.load(Relaxed) as usize == planned && all_gone()
    });
    // Publishers stop; subscribers keep receiving what is in flight.
    shared.stop_media.store(true, Relaxed);
    let media_end = clock::now();
    if !all_gone() {
        progress.wait(
            &shared,
            clock::now() + Duration::from_secs_f64(args.drain.max(0.0)),
            all_gone,
        );
    }
    shared.leave.store(true, Relaxed);
    let mut latency = latency_histogram();
    let mut clients = Vec::new();
    for h in handles {
        match h.join() {
            Ok(r) => {
                let _ = latency.add(&r.latency);
                clients.extend(r.clients);
            }
            Err(_) => shared.error("worker_panic", "a worker thread panicked"),
        }
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_end = args.server_pid.map(process_cpu_us);

    // --- summary ---
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
    for c in &clients {
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
    let loss_pct = if expected > 0 {
        100.0 * lost as f64 / expected as f64
    } else {
        0.0
    };
    let jitter_mean = if jitters.is_empty() {
        Value::Null
    } else {
        json!(round3(jitters.iter().sum::<f64>() / jitters.len() as f64))
    };
    let jitter_max = jitters
        .iter()
        .cloned()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let (cpu_s, cpu_per_packet) = match (&cpu_start, &cpu_end) {
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
    let errors = shared.errors.lock().unwrap().clone();
    let packets_sent = shared.packets_sent.load(Relaxed);
    let summary = json!({
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
            "simulcast": if args.simulcast { "requested, not supported: single layer" } else { "off" },
            "ramp_per_s": args.ramp,
            "threads": threads,
        },
        "wall_s": round3(wall_s),
        "ramp_s": round3(ramp_s),
        "media_s": round3(media_end.duration_since(t0).as_secs_f64() - ramp_s),
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
        "loss_pct": (loss_pct * 10_000.0).round() / 10_000.0,
        "out_of_order": ooo,
        "duplicates": dups,
        "keyframes_received": keyframes,
        "keyframe_requests": shared.keyframe_requests.load(Relaxed),
        "udp_bytes_out": shared.udp_bytes_out.load(Relaxed),
        "udp_bytes_in": shared.udp_bytes_in.load(Relaxed),
        "latency_ms": {
            "p50": pct(&latency, 0.5),
            "p99": pct(&latency, 0.99),
            "p999": pct(&latency, 0.999),
            "max": if latency.is_empty() { Value::Null } else { json!(round3(latency.max() as f64 / 1000.0)) },
            "mean": if latency.is_empty() { Value::Null } else { json!(round3(latency.mean() / 1000.0)) },
            "count": latency.len(),
        },
        "jitter_ms": { "mean": jitter_mean, "max": jitter_max.map(round3) },
        "join_ms": { "p50": pct(&join, 0.5), "p99": pct(&join, 0.99), "max": if join.is_empty() { Value::Null } else { json!(round3(join.max() as f64 / 1000.0)) } },
        "ready_ms": { "p50": pct(&ready, 0.5), "p99": pct(&ready, 0.99), "max": if ready.is_empty() { Value::Null } else { json!(round3(ready.max() as f64 / 1000.0)) } },
        "errors": errors.iter().map(|(k, e)| (k.clone(), json!(e.count))).collect::<serde_json::Map<_, _>>(),
        "error_examples": errors.iter().map(|(k, e)| (k.clone(), json!(e.example))).collect::<serde_json::Map<_, _>>(),
        "server_pid": args.server_pid,
        "server_cpu_s": cpu_s,
        "server_cpu_us_per_packet": cpu_per_packet,
        "interrupted": INTERRUPTED.load(Relaxed),
    });

    print_summary(&summary);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary).expect("json");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("loadtest: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    let ok = ever_ready as usize == planned
        && tracks_received >= tracks_expected
        && errors.is_empty()
        && planned > 0;
    std::process::exit(if ok { 0 } else { 1 });
}

fn print_summary(s: &Value) {
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
        "latency (1-way)   p50 {}  p99 {}  p99.9 {}  max {}  mean {}",
        ms(&l["p50"]),
        ms(&l["p99"]),
        ms(&l["p999"]),
        ms(&l["max"]),
        ms(&l["mean"])
    );
    println!(
        "jitter            mean {}  max {}",
        ms(&s["jitter_ms"]["mean"]),
        ms(&s["jitter_ms"]["max"])
    );
    println!(
        "keyframes         {} received, {} requests (PLI/FIR) reached publishers",
        s["keyframes_received"], s["keyframe_requests"]
    );
    match (s["server_cpu_s"].as_f64(), s["server_cpu_us_per_packet"].as_f64()) {
        (Some(cpu), Some(per)) => println!(
            "server CPU        {cpu:.2} s = {per:.2} us per received packet (= CPU s per million packets)"
        ),
        (Some(cpu), None) => println!("server CPU        {cpu:.2} s (no packets received)"),
        _ => println!("server CPU        - (no --server-pid)"),
    }
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
