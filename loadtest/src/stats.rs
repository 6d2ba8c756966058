//! Counters shared between the workers and the main thread (progress lines), errors by
//! kind, and per-received-track accounting from the probes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use hdrhistogram::Histogram;

/// Progress lines count packets slower than this (µs).
pub const LATE_US: u64 = 50_000;

/// Latency histogram in µs, up to 60 s.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

#[derive(Debug, Clone, Default)]
pub struct ErrorKind {
    pub count: u64,
    /// The first message seen of this kind, to say what went wrong.
    pub example: String,
}

#[derive(Default)]
pub struct Shared {
    /// Participants handed to workers.
    pub started: AtomicU64,
    /// Got a JoinResponse.
    pub joined: AtomicU64,
    /// Joined with every peer connection up (subscriber, and publisher for publishers).
    pub connected: AtomicU64,
    /// Gave up after an error.
    pub failed: AtomicU64,
    /// Finished (left or failed): the worker holds nothing for them any more.
    pub finished: AtomicU64,

    /// UDP bytes, every peer connection, every kind of packet.
    pub udp_bytes_out: AtomicU64,
    pub udp_bytes_in: AtomicU64,
    /// Media packets written by publishers (RTP payloads with a probe).
    pub packets_sent: AtomicU64,
    pub payload_bytes_sent: AtomicU64,
    /// Packets with a probe received by subscribing participants (duplicates excluded).
    pub packets_received: AtomicU64,
    pub payload_bytes_received: AtomicU64,
    /// Sum over received tracks of the probe sequence span seen so far (first..=highest).
    pub packets_expected: AtomicU64,
    pub keyframe_requests: AtomicU64,
    /// Highest one-way latency since the last progress line (the main thread resets it), µs.
    pub interval_max_latency_us: AtomicU64,
    /// Packets that took over [`LATE_US`] since the last progress line.
    pub interval_late: AtomicU64,

    /// Publishers stop sending media.
    pub stop_media: AtomicBool,
    /// Everyone leaves; workers return.
    pub leave: AtomicBool,

    pub errors: Mutex<BTreeMap<String, ErrorKind>>,
    /// Join (connect start → JoinResponse) and ready (→ all peer connections up), µs.
    pub join_us: Mutex<Option<Histogram<u64>>>,
    pub ready_us: Mutex<Option<Histogram<u64>>>,
}

impl Shared {
    pub fn new() -> Self {
        let s = Shared::default();
        *s.join_us.lock().unwrap() = Some(latency_histogram());
        *s.ready_us.lock().unwrap() = Some(latency_histogram());
        s
    }

    pub fn error(&self, kind: &str, message: impl Into<String>) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        let e = errors.entry(kind.to_owned()).or_default();
        if e.count == 0 {
            e.example = message.into();
        }
        e.count += 1;
    }

    pub fn error_count(&self) -> u64 {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|e| e.count)
            .sum()
    }

    pub fn record_join(&self, us: u64) {
        if let Some(h) = self.join_us.lock().unwrap().as_mut() {
            h.saturating_record(us.max(1));
        }
    }

    pub fn record_ready(&self, us: u64) {
        if let Some(h) = self.ready_us.lock().unwrap().as_mut() {
            h.saturating_record(us.max(1));
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// One received track (one SSRC on a subscriber PC), accounted from the probes.
#[derive(Debug, Clone)]
pub struct RxTrack {
    /// Track SID from the offer's `mid_to_track_id` (or the msid), else the SSRC.
    pub track: String,
    pub audio: bool,
    first: u32,
    highest: u32,
    /// Seen bits for the 1024 sequence numbers up to `highest`.
    window: [u64; 16],
    pub unique: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub keyframes: u64,
    /// RFC 3550 interarrival jitter, µs.
    pub jitter_us: f64,
    last_transit_us: Option<i64>,
}

impl RxTrack {
    pub fn new(track: String, audio: bool) -> Self {
        RxTrack {
            track,
            audio,
            first: 0,
            highest: 0,
            window: [0; 16],
            unique: 0,
            duplicates: 0,
            out_of_order: 0,
            keyframes: 0,
            jitter_us: 0.0,
            last_transit_us: None,
        }
    }

    fn bit(&mut self, seq: u32) -> (usize, u64) {
        let i = (seq % 1024) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Returns how much the expected span grew, and whether the packet was new (not a
    /// duplicate).
    pub fn on_packet(&mut self, seq: u32, transit_us: i64) -> (u64, bool) {
        if let Some(last) = self.last_transit_us {
            let d = (transit_us - last).abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.last_transit_us = Some(transit_us);
        if self.unique == 0 && self.duplicates == 0 {
            self.first = seq;
            self.highest = seq;
            let (w, b) = self.bit(seq);
            self.window[w] |= b;
            self.unique = 1;
            return (1, true);
        }
        let ahead = seq.wrapping_sub(self.highest);
        if ahead != 0 && ahead < 0x8000_0000 {
            // newer: clear the bits between, mark this one
            if ahead >= 1024 {
                self.window = [0; 16];
            } else {
                for s in 1..=ahead {
                    let (w, b) = self.bit(self.highest.wrapping_add(s));
                    self.window[w] &= !b;
                }
            }
            let (w, b) = self.bit(seq);
            self.window[w] |= b;
            self.highest = seq;
            self.unique += 1;
            return (ahead as u64, true);
        }
        let behind = self.highest.wrapping_sub(seq);
        if behind < 1024 {
            let (w, b) = self.bit(seq);
            if self.window[w] & b != 0 {
                self.duplicates += 1;
                return (0, false);
            }
            self.window[w] |= b;
        }
        if seq.wrapping_sub(self.first) >= 0x8000_0000 {
            // older than the first packet we saw: widen the span
            let grow = self.first.wrapping_sub(seq) as u64;
            self.first = seq;
            self.unique += 1;
            self.out_of_order += 1;
            return (grow, true);
        }
        self.unique += 1;
        self.out_of_order += 1;
        (0, true)
    }

    pub fn expected(&self) -> u64 {
        if self.unique == 0 {
            0
        } else {
            self.highest.wrapping_sub(self.first) as u64 + 1
        }
    }

    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_reorder_duplicates() {
        let mut t = RxTrack::new("TR_x".into(), false);
        for s in [10, 11, 13, 12, 12, 15, 16] {
            t.on_packet(s, 100);
        }
        assert_eq!(t.expected(), 7);
        assert_eq!(t.unique, 6);
        assert_eq!(t.lost(), 1); // 14
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.jitter_us, 0.0);
        // a big jump forward, then an old one
        t.on_packet(5000, 100);
        assert_eq!(t.expected(), 4991);
        t.on_packet(9, 100);
        assert_eq!(t.expected(), 4992);
    }

    #[test]
    fn jitter_grows_with_transit_variation() {
        let mut t = RxTrack::new("a".into(), true);
        t.on_packet(0, 100);
        t.on_packet(1, 1700);
        assert!((t.jitter_us - 100.0).abs() < 1e-9);
    }
}
