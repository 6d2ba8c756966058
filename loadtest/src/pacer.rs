//! A publisher's send pacer, as libwebrtc's: video leaves at a multiple of its bitrate
//! in bursts of a few milliseconds, not a whole frame (a keyframe is ~50 packets at
//! 2.5 Mbit/s) in one go. Without it every keyframe reaches the SFU as one burst, and a
//! packet's latency is mostly the time the SFU needs to push the burst to every
//! subscriber, which real senders never ask of it.
//! Sans-IO: time is an argument, so tests run on synthetic time.

use std::time::{Duration, Instant};

/// libwebrtc's pacing factor, 2.5, in halves: the pacer's rate over the encoder's
/// target bitrate.
const PACING_FACTOR_HALVES: i128 = 5;
/// The burst a pacer may send at once: this much time at its rate (libwebrtc processes
/// its queue every 5 ms).
const BURST: Duration = Duration::from_millis(5);
/// A burst holds at least one full-size packet, however slow the stream.
const MIN_BURST_BYTES: i128 = 1500;
const NANO: i128 = 1_000_000_000;

/// Token bucket in nano-bytes (bytes × 10⁹): a rate in bytes per second adds exactly
/// `rate` tokens per nanosecond.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Bytes per second.
    rate: i128,
    budget: i128,
    max_budget: i128,
    last: Instant,
}

impl Pacer {
    /// Paces `kbps` of media (all of a publisher's layers) at libwebrtc's factor (2.5×).
    pub fn for_bitrate(kbps: u64, now: Instant) -> Pacer {
        let bytes_per_sec = (kbps as i128 * 125 * PACING_FACTOR_HALVES / 2).max(1);
        Pacer::new(bytes_per_sec, now)
    }

    pub fn new(bytes_per_sec: i128, now: Instant) -> Pacer {
        let rate = bytes_per_sec.max(1);
        let max_budget = (rate * BURST.as_nanos() as i128).max(MIN_BURST_BYTES * NANO);
        Pacer {
            rate,
            budget: max_budget,
            max_budget,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_nanos() as i128;
        self.budget = (self.budget + dt * self.rate).min(self.max_budget);
        self.last = self.last.max(now);
    }

    /// Whether a packet of `bytes` may leave at `now`; if so it is charged. As
    /// libwebrtc's, the budget may go negative by the last packet sent: a packet leaves
    /// whenever some budget is left.
    pub fn try_send(&mut self, now: Instant, bytes: usize) -> bool {
        self.refill(now);
        if self.budget <= 0 {
            return false;
        }
        self.budget -= bytes as i128 * NANO;
        true
    }

    /// When the next packet may leave (now, if the budget allows).
    pub fn next_send(&self) -> Instant {
        if self.budget > 0 {
            return self.last;
        }
        let wait_ns = (1 - self.budget).div_euclid(self.rate) + 1;
        self.last + Duration::from_nanos(wait_ns.min(u64::MAX as i128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = crate::clock::now();
        // 1 MB/s: a 5 ms burst is 5000 bytes.
        let mut p = Pacer::new(1_000_000, t0);
        let sent = (0..10).take_while(|_| p.try_send(t0, 1000)).count();
        assert_eq!(sent, 5, "the burst");
        assert!(!p.try_send(t0, 1000));
        // 1000 bytes at 1 MB/s: 1 ms later the budget is positive again.
        let next = p.next_send();
        assert!(
            next > t0 && next <= t0 + Duration::from_micros(1001),
            "{next:?}"
        );
        assert!(!p.try_send(next - Duration::from_micros(10), 1000));
        assert!(p.try_send(next, 1000));
    }

    #[test]
    fn over_a_second_it_sends_its_rate_and_no_more() {
        let t0 = crate::clock::now();
        let mut p = Pacer::new(100_000, t0);
        let mut now = t0;
        let mut bytes = 0usize;
        while now < t0 + Duration::from_secs(1) {
            while p.try_send(now, 1200) {
                bytes += 1200;
            }
            now = p.next_send().max(now + Duration::from_micros(100));
        }
        // the rate, plus the first burst and the one packet it may overdraw
        assert!(
            (100_000..=100_000 + 1500 + 1200).contains(&bytes),
            "{bytes}"
        );
    }

    #[test]
    fn the_factor_is_libwebrtcs() {
        let t0 = crate::clock::now();
        let p = Pacer::for_bitrate(2_000, t0); // 2 Mbit/s = 250 kB/s, paced at 625 kB/s
        assert_eq!(p.rate, 625_000);
        assert_eq!(p.max_budget, 625_000 * 5_000_000);
    }

    #[test]
    fn a_slow_stream_still_sends_whole_packets() {
        let t0 = crate::clock::now();
        let mut p = Pacer::for_bitrate(8, t0); // 1 kB/s: 5 bytes per 5 ms
        assert!(p.try_send(t0, 1200), "one packet fits the minimum burst");
    }
}
