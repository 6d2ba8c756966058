//! How long a shard's executor spends in turns (handling a datagram, a timer round or
//! an inbox message, flush included) rather than waiting for one. Turns of different
//! tasks interleave where a flush awaits, so the busy time is the union of the turns:
//! it runs from the moment the first one starts until no turn is left.

use std::time::Instant;

#[derive(Debug, Default)]
pub struct Busy {
    active: u32,
    since: Option<Instant>,
    total_us: u64,
}

impl Busy {
    /// A turn starts at `now` (the reading it already took for its work).
    pub fn begin(&mut self, now: Instant) {
        if self.active == 0 {
            self.since = Some(now);
        }
        self.active += 1;
    }

    /// A turn that began earlier is done at `now`.
    pub fn end(&mut self, now: Instant) {
        self.active = self.active.saturating_sub(1);
        if self.active == 0 {
            if let Some(since) = self.since.take() {
                let us = now.saturating_duration_since(since).as_micros();
                self.total_us = self.total_us.saturating_add(us as u64);
            }
        }
    }

    /// Busy µs so far (turns still running are counted when they end).
    pub fn total_us(&self) -> u64 {
        self.total_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn overlapping_turns_count_once() {
        let t0 = crate::clock::now().mono;
        let at = |us| t0 + Duration::from_micros(us);
        let mut b = Busy::default();
        b.begin(at(0));
        b.begin(at(2));
        b.end(at(5));
        assert_eq!(b.total_us(), 0, "one turn still runs");
        b.end(at(10));
        assert_eq!(b.total_us(), 10);
        // Idle from 10 to 20.
        b.begin(at(20));
        b.end(at(23));
        assert_eq!(b.total_us(), 13);
        // An unmatched end changes nothing.
        b.end(at(30));
        assert_eq!(b.total_us(), 13);
    }
}
