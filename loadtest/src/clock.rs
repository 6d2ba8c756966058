//! The only place loadtest reads the clocks (the workspace's clippy.toml forbids
//! `Instant::now`/`SystemTime::now` elsewhere). Latency is measured across processes on
//! the same host, so probes carry wall-clock time; everything else is monotonic.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// The CPU time a CPU-time clock shows (this thread's, or a process's from
/// `clock_getcpuclockid`).
pub fn cpu_time(clock: libc::clockid_t) -> std::io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Wall clock, µs since the UNIX epoch.
#[allow(clippy::disallowed_methods)]
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
