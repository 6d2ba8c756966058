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

/// One-way latency of every media packet received, µs, measured twice.
pub struct Latencies {
    /// To the datagram's arrival at the subscriber's socket (the kernel's stamp): what
    /// the publisher, the network and the SFU took.
    pub arrival: Histogram<u64>,
    /// To when loadtest's reader got to it: its own backlog on a shared machine too.
    pub read: Histogram<u64>,
}

impl Latencies {
    pub fn new() -> Self {
        Latencies {
            arrival: latency_histogram(),
            read: latency_histogram(),
        }
    }

    pub fn add(&mut self, other: &Latencies) {
        let _ = self.arrival.add(&other.arrival);
        let _ = self.read.add(&other.read);
    }
}

/// When a datagram arrived and when loadtest read it, µs since the UNIX epoch.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub arrived_us: u64,
    pub read_us: u64,
}

impl Stamp {
    /// Read now; arrived when the kernel said, or now where it did not.
    pub fn read_now(arrived_us: Option<u64>) -> Stamp {
        let read_us = crate::clock::wall_us();
        Stamp {
            arrived_us: arrived_us.unwrap_or(read_us),
            read_us,
        }
    }
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
    /// The same by the layer of the stream they named: q, h, f, single.
    pub keyframe_requests_by_layer: [AtomicU64; 4],
    /// SubscribedQualityUpdate (dynacast) messages publishers got.
    pub quality_updates: AtomicU64,
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
    /// Connect start → the first media packet a client received, µs.
    pub first_media_us: Mutex<Option<Histogram<u64>>>,
}

impl Shared {
    pub fn new() -> Self {
        let s = Shared::default();
        *s.join_us.lock().unwrap() = Some(latency_histogram());
        *s.ready_us.lock().unwrap() = Some(latency_histogram());
        *s.first_media_us.lock().unwrap() = Some(latency_histogram());
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

    pub fn record_first_media(&self, us: u64) {
        if let Some(h) = self.first_media_us.lock().unwrap().as_mut() {
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

/// The probe sequence numbers seen of one layer since the subscriber started receiving
/// it (again): the span first..=highest, and which of the last 1024 arrived.
#[derive(Debug, Clone, Default)]
struct Span {
    started: bool,
    first: u32,
    highest: u32,
    /// Seen bits for the 1024 sequence numbers up to `highest`.
    window: [u64; 16],
}

enum Seen {
    /// New; the span grew by this much.
    New(u64),
    OutOfOrder(u64),
    Duplicate,
}

impl Span {
    fn bit(seq: u32) -> (usize, u64) {
        let i = (seq % 1024) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    fn mark(&mut self, seq: u32) {
        let (w, b) = Span::bit(seq);
        self.window[w] |= b;
    }

    /// Whether `seq` is not past the highest seen (a late or repeated packet).
    fn is_behind(&self, seq: u32) -> bool {
        let d = seq.wrapping_sub(self.highest);
        self.started && (d == 0 || d >= 0x8000_0000)
    }

    fn on_packet(&mut self, seq: u32) -> Seen {
        if !self.started {
            *self = Span {
                started: true,
                first: seq,
                highest: seq,
                window: [0; 16],
            };
            self.mark(seq);
            return Seen::New(1);
        }
        let ahead = seq.wrapping_sub(self.highest);
        if ahead != 0 && ahead < 0x8000_0000 {
            // newer: clear the bits between, mark this one
            if ahead >= 1024 {
                self.window = [0; 16];
            } else {
                for s in 1..=ahead {
                    let (w, b) = Span::bit(self.highest.wrapping_add(s));
                    self.window[w] &= !b;
                }
            }
            self.mark(seq);
            self.highest = seq;
            return Seen::New(ahead as u64);
        }
        let behind = self.highest.wrapping_sub(seq);
        if behind < 1024 {
            let (w, b) = Span::bit(seq);
            if self.window[w] & b != 0 {
                return Seen::Duplicate;
            }
            self.window[w] |= b;
        }
        if seq.wrapping_sub(self.first) >= 0x8000_0000 {
            // older than the first packet we saw: widen the span
            let grow = self.first.wrapping_sub(seq) as u64;
            self.first = seq;
            return Seen::OutOfOrder(grow);
        }
        Seen::OutOfOrder(0)
    }

    fn expected(&self) -> u64 {
        if self.started {
            self.highest.wrapping_sub(self.first) as u64 + 1
        } else {
            0
        }
    }
}

/// Layer changes kept per track (the first ones).
pub const HISTORY_LEN: usize = 32;

/// Names of the layer slots ([`layer_slot`]).
pub const SLOT_NAMES: [&str; 4] = ["q", "h", "f", "single"];

/// Index of a layer byte in [`RxTrack::layer_packets`]: q, h, f, then single.
pub fn layer_slot(layer: u8) -> usize {
    (layer as usize).min(3)
}

/// One received track (one SSRC on a subscriber PC), accounted from the probes. Each
/// simulcast layer has its own probe sequence; when the SFU switches layers, the new
/// layer's packets start a new span (the packets skipped on the others are not losses).
#[derive(Debug, Clone)]
pub struct RxTrack {
    /// Track SID from the offer's `mid_to_track_id` (or the msid), else the SSRC.
    pub track: String,
    pub audio: bool,
    /// Per layer slot ([`layer_slot`]).
    spans: [Span; 4],
    /// Expected packets of spans left behind by a switch and then restarted.
    closed_expected: u64,
    /// The layer slot of the latest (non-late) packet.
    pub layer: Option<usize>,
    /// New packets per layer slot: q, h, f, single.
    pub layer_packets: [u64; 4],
    /// Changes of layer seen.
    pub switches: u64,
    /// (wall clock µs, layer slot) of the first packet and of every switch; the first
    /// [`HISTORY_LEN`] only.
    pub history: Vec<(u64, usize)>,
    pub unique: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub keyframes: u64,
    /// Payload bytes of new packets.
    pub bytes: u64,
    /// RFC 3550 interarrival jitter, µs.
    pub jitter_us: f64,
    last_transit_us: Option<i64>,
}

impl RxTrack {
    pub fn new(track: String, audio: bool) -> Self {
        RxTrack {
            track,
            audio,
            spans: Default::default(),
            closed_expected: 0,
            layer: None,
            layer_packets: [0; 4],
            switches: 0,
            history: Vec::new(),
            unique: 0,
            duplicates: 0,
            out_of_order: 0,
            keyframes: 0,
            bytes: 0,
            jitter_us: 0.0,
            last_transit_us: None,
        }
    }

    /// Returns how much the expected span grew, and whether the packet was new (not a
    /// duplicate).
    pub fn on_packet(&mut self, seq: u32, transit_us: i64, layer: u8) -> (u64, bool) {
        if let Some(last) = self.last_transit_us {
            let d = (transit_us - last).abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.last_transit_us = Some(transit_us);
        let slot = layer_slot(layer);
        if self.layer != Some(slot) {
            // a late packet of a layer we left (a retransmission, reordering) counts in
            // its old span and changes nothing; anything else is a switch to that layer
            let late = self.layer.is_some() && self.spans[slot].is_behind(seq);
            if !late {
                if self.layer.is_some() {
                    self.switches += 1;
                }
                let span = std::mem::take(&mut self.spans[slot]);
                self.closed_expected += span.expected();
                self.layer = Some(slot);
            }
        }
        let seen = self.spans[slot].on_packet(seq);
        let grow = match seen {
            Seen::Duplicate => {
                self.duplicates += 1;
                return (0, false);
            }
            Seen::New(g) => g,
            Seen::OutOfOrder(g) => {
                self.out_of_order += 1;
                g
            }
        };
        self.unique += 1;
        self.layer_packets[slot] += 1;
        (grow, true)
    }

    /// Notes the current layer at `wall_us` in the history, if it changed.
    pub fn note_layer(&mut self, wall_us: u64) {
        let Some(l) = self.layer else { return };
        if self.history.len() < HISTORY_LEN && self.history.last().is_none_or(|h| h.1 != l) {
            self.history.push((wall_us, l));
        }
    }

    /// The history as text: `f@0.000 h@3.125` (seconds since the first packet).
    pub fn history_text(&self) -> String {
        let t0 = self.history.first().map_or(0, |h| h.0);
        let parts: Vec<String> = self
            .history
            .iter()
            .map(|(t, l)| {
                format!(
                    "{}@{:.3}",
                    SLOT_NAMES[*l],
                    t.saturating_sub(t0) as f64 / 1e6
                )
            })
            .collect();
        parts.join(" ")
    }

    pub fn expected(&self) -> u64 {
        self.closed_expected + self.spans.iter().map(Span::expected).sum::<u64>()
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
            t.on_packet(s, 100, 2);
        }
        assert_eq!(t.expected(), 7);
        assert_eq!(t.unique, 6);
        assert_eq!(t.lost(), 1); // 14
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.jitter_us, 0.0);
        // a big jump forward, then an old one
        t.on_packet(5000, 100, 2);
        assert_eq!(t.expected(), 4991);
        t.on_packet(9, 100, 2);
        assert_eq!(t.expected(), 4992);
        assert_eq!(t.switches, 0);
        assert_eq!(t.layer_packets, [0, 0, 8, 0]);
    }

    #[test]
    fn layer_switches_start_new_spans() {
        let mut t = RxTrack::new("v".into(), false);
        // q from 100, the SFU switches to f (its own sequence) at a keyframe
        for s in 100..110 {
            t.on_packet(s, 100, 0);
        }
        for s in 5000..5020 {
            t.on_packet(s, 100, 2);
        }
        assert_eq!(t.layer, Some(2));
        assert_eq!(t.switches, 1);
        assert_eq!(t.lost(), 0);
        // a late retransmission of q: counted in q's span, no switch
        let before = t.expected();
        t.on_packet(105, 100, 0);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.layer, Some(2));
        assert_eq!(t.expected(), before);
        // back to q much later: a new span, the q packets sent meanwhile are not lost
        for s in 400..405 {
            t.on_packet(s, 100, 0);
        }
        t.on_packet(407, 100, 0); // 405 and 406 lost
        assert_eq!(t.switches, 2);
        assert_eq!(t.layer, Some(0));
        assert_eq!(t.expected(), 10 + 20 + 8);
        assert_eq!(t.lost(), 2);
        assert_eq!(t.layer_packets, [16, 0, 20, 0]);
        let mut h = RxTrack::new("v".into(), false);
        h.note_layer(5); // nothing received yet
        h.on_packet(1, 0, 2);
        h.note_layer(1_000_000);
        h.on_packet(2, 0, 2);
        h.note_layer(1_500_000);
        h.on_packet(900, 0, 1);
        h.note_layer(3_250_000);
        assert_eq!(h.history_text(), "f@0.000 h@2.250");
        assert_eq!(SLOT_NAMES[layer_slot(crate::media::LAYER_SINGLE)], "single");
        for (i, rid) in crate::media::RIDS.iter().enumerate() {
            assert_eq!(SLOT_NAMES[layer_slot(i as u8)], *rid);
        }
    }

    #[test]
    fn jitter_grows_with_transit_variation() {
        let mut t = RxTrack::new("a".into(), true);
        t.on_packet(0, 100, 0xff);
        t.on_packet(1, 1700, 0xff);
        assert!((t.jitter_us - 100.0).abs() < 1e-9);
    }
}
