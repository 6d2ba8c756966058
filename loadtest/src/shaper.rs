//! A token-bucket shaper for incoming datagrams: a constrained subscriber's narrow
//! downlink. Datagrams wait in a small FIFO until the bucket holds enough bytes for
//! them; when the FIFO is full, new ones are dropped (tail drop, like a router queue).
//! Sans-IO: time is an argument, so tests run on synthetic time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Largest burst the bucket admits at once, at least: one full-size datagram.
const MIN_BURST_BYTES: u128 = 1500;
/// Burst: this much time at the link rate (a few ms, as a link's own buffer drains).
const BURST: Duration = Duration::from_millis(5);
/// The queue holds at least this many bytes, however slow the link.
const MIN_QUEUE_BYTES: usize = 3000;

pub struct Datagram {
    pub source: SocketAddr,
    pub data: Vec<u8>,
    pub arrived: Instant,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ShaperStats {
    pub passed: u64,
    pub passed_bytes: u64,
    pub dropped: u64,
    pub dropped_bytes: u64,
    /// Sum and max of the time passed datagrams waited in the queue.
    pub delay_sum: Duration,
    pub delay_max: Duration,
}

/// Tokens are counted in nano-bytes (bytes × 10⁹), so that a rate in bytes per second
/// adds exactly `rate` tokens per nanosecond: integer arithmetic, no rounding drift.
const NANO: u128 = 1_000_000_000;

pub struct Shaper {
    /// Bytes per second.
    rate: u128,
    /// Bucket size and content, nano-bytes.
    burst: u128,
    tokens: u128,
    last: Instant,
    queue: VecDeque<Datagram>,
    queued_bytes: usize,
    max_queue_bytes: usize,
    /// Buffers of released datagrams, for reuse.
    free: Vec<Vec<u8>>,
    pub stats: ShaperStats,
}

impl Shaper {
    /// A link of `kbps` kbit/s whose queue holds `queue` worth of data at that rate.
    pub fn new(kbps: u32, queue: Duration, now: Instant) -> Shaper {
        let rate = kbps.max(1) as u128 * 125;
        let burst = (rate * BURST.as_nanos()).max(MIN_BURST_BYTES * NANO);
        let max_queue = (rate * queue.as_nanos() / NANO) as usize;
        Shaper {
            rate,
            burst,
            tokens: burst,
            last: now,
            queue: VecDeque::new(),
            queued_bytes: 0,
            max_queue_bytes: max_queue.max(MIN_QUEUE_BYTES),
            free: Vec::new(),
            stats: ShaperStats::default(),
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            let dt = now.duration_since(self.last).as_nanos();
            self.tokens = self.tokens.saturating_add(dt.saturating_mul(self.rate));
            self.tokens = self.tokens.min(self.burst);
            self.last = now;
        }
    }

    /// A datagram arrived from the network: queue it, or drop it when the queue is
    /// full. Returns whether it was queued.
    pub fn push(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> bool {
        if self.queued_bytes + data.len() > self.max_queue_bytes {
            self.stats.dropped += 1;
            self.stats.dropped_bytes += data.len() as u64;
            return false;
        }
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.queued_bytes += data.len();
        self.queue.push_back(Datagram {
            source,
            data: buf,
            arrived: now,
        });
        true
    }

    /// The next datagram the link has delivered by `now`, if any.
    pub fn pop(&mut self, now: Instant) -> Option<Datagram> {
        self.refill(now);
        let need = self.need()?;
        if self.tokens < need {
            return None;
        }
        let d = self.queue.pop_front()?;
        self.tokens -= need;
        self.queued_bytes -= d.data.len();
        let waited = now.saturating_duration_since(d.arrived);
        self.stats.passed += 1;
        self.stats.passed_bytes += d.data.len() as u64;
        self.stats.delay_sum += waited;
        self.stats.delay_max = self.stats.delay_max.max(waited);
        Some(d)
    }

    /// Gives a released datagram's buffer back for reuse.
    pub fn recycle(&mut self, d: Datagram) {
        if self.free.len() < 64 {
            self.free.push(d.data);
        }
    }

    /// Tokens the head of the queue takes (a datagram bigger than the burst goes once
    /// the bucket is full).
    fn need(&self) -> Option<u128> {
        let len = self.queue.front()?.data.len() as u128;
        Some((len * NANO).min(self.burst))
    }

    /// When the head of the queue can go (None when the queue is empty).
    pub fn next_release(&self) -> Option<Instant> {
        let deficit = self.need()?.saturating_sub(self.tokens);
        let ns = deficit.div_ceil(self.rate);
        Some(self.last + Duration::from_nanos(ns.min(u64::MAX as u128) as u64))
    }

    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    /// Drains everything due at `now`; returns the number of datagrams released.
    fn drain(s: &mut Shaper, now: Instant) -> usize {
        let mut n = 0;
        while let Some(d) = s.pop(now) {
            s.recycle(d);
            n += 1;
        }
        n
    }

    #[test]
    fn passes_at_the_configured_rate() {
        let t0 = crate::clock::now();
        // 400 kbit/s = 50 000 B/s; queue of 200 ms = 10 000 B
        let mut s = Shaper::new(400, Duration::from_millis(200), t0);
        let pkt = [0u8; 1000];
        let mut released = 0;
        // offer 1000 B every 10 ms (800 kbit/s, twice the link) for 2 s, in 1 ms steps
        for ms in 0..2000u64 {
            let now = t0 + Duration::from_millis(ms);
            if ms % 10 == 0 {
                s.push(now, addr(), &pkt);
            }
            released += drain(&mut s, now);
        }
        // 2 s at 50 kB/s = 100 datagrams, plus the initial burst (1500 B: one)
        assert!((99..=102).contains(&released), "{released}");
        assert_eq!(s.stats.passed as usize, released);
        // the rest was dropped or is still queued
        assert_eq!(
            s.stats.passed + s.stats.dropped + s.queued() as u64,
            200,
            "{:?}",
            s.stats
        );
        assert!(s.stats.dropped >= 85, "{:?}", s.stats);
        // a full 10 kB queue at 50 kB/s delays by about 200 ms
        assert!(
            s.stats.delay_max >= Duration::from_millis(180),
            "{:?}",
            s.stats
        );
        assert!(
            s.stats.delay_max <= Duration::from_millis(220),
            "{:?}",
            s.stats
        );
    }

    #[test]
    fn under_the_rate_nothing_waits() {
        let t0 = crate::clock::now();
        let mut s = Shaper::new(1000, Duration::from_millis(50), t0);
        for ms in 0..1000u64 {
            let now = t0 + Duration::from_millis(ms);
            // 500 B every 10 ms = 400 kbit/s on a 1 Mbit/s link
            if ms % 10 == 0 {
                assert!(s.push(now, addr(), &[1u8; 500]));
                let d = s.pop(now).expect("released at once");
                assert_eq!(d.data.len(), 500);
                assert_eq!(d.source, addr());
                s.recycle(d);
            }
        }
        assert_eq!(s.stats.passed, 100);
        assert_eq!(s.stats.dropped, 0);
        assert_eq!(s.stats.delay_max, Duration::ZERO);
        assert!(s.next_release().is_none());
    }

    #[test]
    fn next_release_says_when_the_head_can_go() {
        let t0 = crate::clock::now();
        // 80 kbit/s = 10 000 B/s; burst 1500 B
        let mut s = Shaper::new(80, Duration::from_millis(500), t0);
        assert!(s.push(t0, addr(), &[0; 1200]));
        assert!(s.push(t0, addr(), &[0; 1200]));
        assert!(s.pop(t0).is_some()); // the burst covers the first
        assert!(s.pop(t0).is_none()); // 300 B of tokens left, 1200 needed
        let at = s.next_release().expect("queued");
        assert_eq!(at, t0 + Duration::from_millis(90)); // 900 B at 10 kB/s
        assert!(s.pop(at - Duration::from_millis(1)).is_none());
        let d = s.pop(at).expect("due");
        assert_eq!(d.arrived, t0);
        assert_eq!(s.stats.delay_max, Duration::from_millis(90));
        assert!(s.next_release().is_none());
    }

    #[test]
    fn a_full_queue_drops_new_datagrams() {
        let t0 = crate::clock::now();
        // 8 kbit/s: 1000 B/s; the queue floor is 3000 B
        let mut s = Shaper::new(8, Duration::from_millis(10), t0);
        assert!(s.push(t0, addr(), &[0; 1400]));
        assert!(s.push(t0, addr(), &[0; 1400]));
        assert!(!s.push(t0, addr(), &[0; 1400]));
        assert_eq!(s.stats.dropped, 1);
        assert_eq!(s.stats.dropped_bytes, 1400);
        assert_eq!(s.queued(), 2);
        // once one leaves, there is room again
        assert!(s.pop(t0).is_some());
        assert!(s.push(t0, addr(), &[0; 1400]));
    }
}
