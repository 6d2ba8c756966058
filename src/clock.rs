//! The only place that reads the clock. Everything else takes `now` as an argument so
//! that state machines can be driven with synthetic time in tests.
#![allow(clippy::disallowed_methods)]

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A reading of both clocks: monotonic for deadlines, wall-clock for what goes on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub unix_secs: u64,
}

pub fn now() -> Now {
    Now {
        mono: Instant::now(),
        unix_secs: unix_secs(),
    }
}

pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
