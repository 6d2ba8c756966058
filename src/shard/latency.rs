//! A latency histogram a shard records into (µs, hdrhistogram) and ships to the control
//! thread once a second, where the shards' copies are merged (and rendered by
//! `metrics::histogram`).

use hdrhistogram::Histogram;

/// The largest value kept apart; longer ones are recorded as this (60 s).
const MAX_US: u64 = 60_000_000;
/// Two significant digits: ~20 KB of counts, each within 1% of the value recorded.
const SIGFIG: u8 = 2;

/// The `le` edges rendered, in µs (then `+Inf`).
pub const BUCKETS_US: [u64; 16] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000,
];

/// Counts of durations in µs, plus their exact sum. Cumulative since the shard started.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    sum_us: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            // Panics only on bad bounds, and these are fixed.
            hist: Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("histogram bounds"),
            sum_us: 0,
        }
    }
}

impl LatencyHistogram {
    pub fn record_us(&mut self, us: u64) {
        self.hist.saturating_record(us.clamp(1, MAX_US));
        self.sum_us = self.sum_us.saturating_add(us);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// Adds `other`'s counts (another shard's, same bounds).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Fails only for a histogram with a larger range, and all are built alike.
        let _ = self.hist.add(&other.hist);
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Cumulative counts for each of [`BUCKETS_US`]. A value counts towards an edge only
    /// when hdrhistogram's bucket holding it lies wholly at or below the edge, so a count
    /// never includes a value above its edge; values within ~1% below one may be counted
    /// at the next edge.
    pub fn cumulative(&self) -> [u64; BUCKETS_US.len()] {
        let mut counts = [0u64; BUCKETS_US.len()];
        for v in self.hist.iter_recorded() {
            let top = v.value_iterated_to();
            if let Some(first) = BUCKETS_US.iter().position(|&edge| top <= edge) {
                counts[first] += v.count_at_value();
            }
        }
        let mut running = 0;
        for c in counts.iter_mut() {
            running += *c;
            *c = running;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_at_the_count() {
        let mut h = LatencyHistogram::default();
        for us in [5, 10, 11, 30, 900, 1_000, 20_000, 2_000_000, 90_000_000] {
            h.record_us(us);
        }
        let c = h.cumulative();
        assert!(c.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(c[0], 2, "5 and 10 are <= 10 µs");
        assert_eq!(c[1], 3, "11 <= 25 µs");
        assert_eq!(*c.last().unwrap(), 7, "2 s and 90 s are above 1 s");
        assert_eq!(h.count(), 9);
        assert_eq!(
            h.sum_us(),
            5 + 10 + 11 + 30 + 900 + 1_000 + 20_000 + 2_000_000 + 90_000_000
        );
    }

    #[test]
    fn merge_adds_counts_and_sums() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        a.record_us(100);
        b.record_us(100);
        b.record_us(400);
        a.merge(&b);
        assert_eq!((a.count(), a.sum_us()), (3, 600));
        assert_eq!(a.cumulative()[3], 2, "two at <= 100 µs");
    }
}
