//! The only place loadtest reads the clocks (the workspace's clippy.toml forbids
//! `Instant::now`/`SystemTime::now` elsewhere). Latency is measured across processes on
//! the same host, so probes carry wall-clock time; everything else is monotonic.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// Wall clock, µs since the UNIX epoch.
#[allow(clippy::disallowed_methods)]
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
