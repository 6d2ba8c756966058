//! `loadtest --rooms N --pubs M --subs K`: simulates LiveKit participants against an SFU
//! (signal over WebSocket, media over str0m peer connections, many per worker thread)
//! and reports what the subscribers got. See `loadtest --help`.

mod cli;
mod client;
mod clock;
mod floor;
mod media;
mod pacer;
mod ready;
mod rx_stamp;
mod scrape;
mod shaper;
mod signal;
mod stats;
mod summary;
mod token;
mod worker;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;

use cli::Args;
use client::{Config, Role, Spec};
use signal::Endpoint;
use stats::{Latencies, Shared};

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

/// How long the steady window waits after the ramp for the last joins to settle.
const SETTLE: Duration = Duration::from_secs(2);
/// The sendto floor: rounds of sends small enough for the receive buffer (see `floor`).
const FLOOR_ROUNDS: usize = 2000;
const FLOOR_PER_ROUND: usize = 64;

/// What the steady window compares: CPU of the server and of this process, packets
/// received, participants connected.
pub struct Sample {
    at: Instant,
    server_cpu_us: Option<u64>,
    /// The server's user and kernel CPU, in clock ticks (`/proc/PID/stat`): coarse, but
    /// over a window of seconds it splits `server_cpu_us` into its two parts.
    server_ticks: Option<(u64, u64)>,
    own_cpu_us: Option<u64>,
    packets_received: u64,
    connected: u64,
    scraped: Option<scrape::Page>,
}

impl Sample {
    fn take(args: &Args, shared: &Shared) -> Sample {
        let scraped = args.metrics.as_deref().and_then(|url| {
            scrape::read(url)
                .map_err(|e| shared.error("metrics", e))
                .ok()
        });
        Sample {
            scraped,
            at: clock::now(),
            server_cpu_us: args.server_pid.and_then(|p| process_cpu_us(p).ok()),
            server_ticks: args.server_pid.and_then(|p| stat_ticks(p).ok()),
            own_cpu_us: process_cpu_us(std::process::id()).ok(),
            packets_received: shared.packets_received.load(Relaxed),
            connected: shared.connected.load(Relaxed),
        }
    }
}

/// CPU time of a process, µs: its CPU-time clock (ns, every thread), else `/proc`'s
/// utime + stime (10 ms ticks, sampled: too coarse for an idle server's few ms a second).
fn process_cpu_us(pid: u32) -> Result<u64, String> {
    cpu_clock_us(pid).or_else(|_| stat_cpu_us(pid))
}

fn cpu_clock_us(pid: u32) -> Result<u64, String> {
    let pid = libc::pid_t::try_from(pid).map_err(|e| e.to_string())?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: writes one clockid_t we own.
    let err = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    if err != 0 {
        return Err(std::io::Error::from_raw_os_error(err).to_string());
    }
    clock::cpu_time(clock)
        .map(|t| t.as_micros() as u64)
        .map_err(|e| e.to_string())
}

/// utime + stime of a process from `/proc/PID/stat`, µs.
fn stat_cpu_us(pid: u32) -> Result<u64, String> {
    let (user, kernel) = stat_ticks(pid)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok((user + kernel) * 1_000_000 / hz)
}

/// utime and stime of a process from `/proc/PID/stat`, in clock ticks.
fn stat_ticks(pid: u32) -> Result<(u64, u64), String> {
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
    Ok((ticks(11)?, ticks(12)?))
}

fn plan(args: &Args, prefix: &str) -> Vec<Spec> {
    let mut roles = Vec::new();
    roles.extend((0..args.pubs).map(|i| (Role::Video, format!("pub{i}"))));
    roles.extend((0..args.audio_pubs).map(|i| (Role::Audio, format!("apub{i}"))));
    roles.extend((0..args.subs).map(|i| (Role::Sub, format!("sub{i}"))));
    let mut out = Vec::new();
    // interleave the rooms, publishers first in each; the first --constrained-subs
    // subscribers of each room get the narrow downlink
    for (i, (role, name)) in roles.iter().enumerate() {
        let sub_index = i.checked_sub((args.pubs + args.audio_pubs) as usize);
        let constrained = sub_index.is_some_and(|k| k < args.constrained_subs as usize);
        for r in 0..args.rooms {
            let room = format!("{prefix}{r}");
            out.push(Spec {
                identity: format!("{room}-{name}"),
                room,
                role: *role,
                constrained,
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
        simulcast: args.simulcast,
        sub_quality: args.sub_quality.map(cli::SubQuality::video_quality),
        constrain_kbps: args.constrain_kbps,
        constrain_queue_ms: args.constrain_queue_ms,
        single_pc: args.signal == cli::SignalPath::V1,
        viewers: args.viewers,
        pace: args.pace,
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

    // Steady state, unless everyone is already gone. The steady window, over which the
    // server's and our own CPU are sampled, starts once the last joins have settled.
    let all_gone = || shared.finished.load(Relaxed) >= shared.started.load(Relaxed);
    let duration = Duration::from_secs_f64(args.duration.max(0.0));
    let steady_end = clock::now() + duration;
    let done_early = || shared.started.load(Relaxed) as usize == planned && all_gone();
    progress.wait(
        &shared,
        clock::now() + (duration / 4).min(SETTLE),
        done_early,
    );
    let steady_from = Sample::take(&args, &shared);
    progress.wait(&shared, steady_end, done_early);
    let steady_to = Sample::take(&args, &shared);
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
    let mut latency = Latencies::new();
    let mut clients = Vec::new();
    for h in handles {
        match h.join() {
            Ok(r) => {
                latency.add(&r.latency);
                clients.extend(r.clients);
            }
            Err(_) => shared.error("worker_panic", "a worker thread panicked"),
        }
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_end = args.server_pid.map(process_cpu_us);
    // After the load, so that it does not compete with it.
    let floor_ns = floor::sendto_ns(FLOOR_ROUNDS, FLOOR_PER_ROUND)
        .map_err(|e| shared.error("floor", format!("sendto floor: {e}")))
        .ok();

    // --- summary ---
    let summary = summary::build(&summary::Run {
        args: &args,
        clients: &clients,
        latency: &latency,
        shared: &shared,
        threads,
        planned,
        wall_s,
        ramp_s,
        media_s: media_end.duration_since(t0).as_secs_f64() - ramp_s,
        cpu_start: &cpu_start,
        cpu_end: &cpu_end,
        steady: summary::Steady::between(&steady_from, &steady_to),
        floor_ns,
        interrupted: INTERRUPTED.load(Relaxed),
    });
    summary::print(&summary);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary).expect("json");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("loadtest: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    let ok = num(&summary["participants"]["connected"]) == planned as u64
        && num(&summary["tracks_received"]) >= num(&summary["tracks_expected"])
        && summary["errors"].as_object().is_some_and(|e| e.is_empty())
        && planned > 0;
    std::process::exit(if ok { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_clock_of_a_process_advances_with_its_work() {
        let me = std::process::id();
        let before = cpu_clock_us(me).expect("own CPU clock");
        // Work until the clock moves (it counts ns of CPU, every thread).
        let mut x = 0u64;
        while cpu_clock_us(me).expect("own CPU clock") == before {
            for i in 0..10_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        assert!(process_cpu_us(me).expect("own CPU time") > before);
        assert!(stat_cpu_us(me).is_ok());
    }

    #[test]
    fn a_process_that_does_not_exist_has_no_cpu_time() {
        // Above the kernel's pid_max (at most 2^22).
        assert!(process_cpu_us(9_999_999).is_err());
    }
}
