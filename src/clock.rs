//! The only place that reads the clock. Everything else takes `now` as an argument so
//! that state machines can be driven with synthetic time in tests.
#![allow(clippy::disallowed_methods)]

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A reading of both clocks: monotonic for deadlines, wall-clock for what goes on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub unix_secs: u64,
    pub unix_ms: i64,
}

pub fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Now {
        mono: Instant::now(),
        unix_secs: (unix_ms / 1000) as u64,
        unix_ms,
    }
}

/// The monotonic clock alone (the end of a shard's turn, where wall time is not needed).
pub fn mono() -> Instant {
    Instant::now()
}

pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
