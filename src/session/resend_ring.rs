//! What one video stream of our own egress keeps for resends: the packets sent in the
//! last second (at most `MAX_PACKETS`), in sequence order, sharing the forwarded
//! payload (an `Arc` clone, no copy). A NACK names 16-bit sequence numbers; they are
//! extended against the newest packet kept. Memory follows the stream's rate: at
//! 2.5 Mbit/s about 250 entries of 48 bytes, the payloads being shared with every
//! other subscriber of the track.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a sent packet can be resent (libwebrtc's own minimum send history; NACKs
/// and their retries come within a few round trips).
pub(super) const KEEP_FOR: Duration = Duration::from_secs(1);
/// The most packets kept, whatever the rate.
pub(super) const MAX_PACKETS: usize = 1024;
/// A packet is resent at most once in this long: the receiver's next NACK for it
/// usually comes a round trip later, and one NACK that repeats an item must not
/// double the resends.
const RESEND_GAP: Duration = Duration::from_millis(40);

/// One packet as it was first sent.
#[derive(Debug, Clone)]
pub(super) struct Kept {
    /// Extended sequence number (rollover counter << 16 | seq).
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub pt: u8,
    /// The RTX payload type for `pt`, where one was negotiated.
    pub rtx_pt: Option<u8>,
    pub payload: Arc<[u8]>,
    sent_at: Instant,
    resent_at: Option<Instant>,
}

impl Kept {
    pub fn new(
        seq: u64,
        timestamp: u32,
        marker: bool,
        (pt, rtx_pt): (u8, Option<u8>),
        payload: Arc<[u8]>,
        now: Instant,
    ) -> Kept {
        Kept {
            seq,
            timestamp,
            marker,
            pt,
            rtx_pt,
            payload,
            sent_at: now,
            resent_at: None,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct ResendRing {
    kept: VecDeque<Kept>,
}

impl ResendRing {
    /// Keeps a packet just sent, and lets go of what is too old or too many. A packet
    /// whose number is not above the newest kept one (the forwarder never sends those)
    /// is not kept, so the ring stays sorted.
    pub fn keep(&mut self, packet: Kept) {
        let now = packet.sent_at;
        while let Some(front) = self.kept.front() {
            let old = now.saturating_duration_since(front.sent_at) > KEEP_FOR;
            if !old && self.kept.len() < MAX_PACKETS {
                break;
            }
            self.kept.pop_front();
        }
        if self.kept.back().is_some_and(|b| b.seq >= packet.seq) {
            return;
        }
        self.kept.push_back(packet);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// The packet a NACK item names by its 16-bit number, if it is kept, young enough
    /// and not resent in the last `RESEND_GAP`; it is marked resent at `now`.
    pub fn take_for_resend(&mut self, seq16: u16, now: Instant) -> Option<&Kept> {
        let newest = self.kept.back()?.seq;
        let seq = extend(newest, seq16);
        let at = self.kept.binary_search_by_key(&seq, |k| k.seq).ok()?;
        let k = self.kept.get_mut(at)?;
        if now.saturating_duration_since(k.sent_at) > KEEP_FOR {
            return None;
        }
        if k.resent_at
            .is_some_and(|t| now.saturating_duration_since(t) < RESEND_GAP)
        {
            return None;
        }
        k.resent_at = Some(now);
        Some(k)
    }
}

/// The extended number closest to `reference` whose low 16 bits are `seq16`.
pub(super) fn extend(reference: u64, seq16: u16) -> u64 {
    let base = reference & !0xffff;
    let candidate = base | u64::from(seq16);
    // The one of candidate - 2^16, candidate, candidate + 2^16 nearest the reference.
    let above = candidate.wrapping_add(0x1_0000);
    let below = candidate.checked_sub(0x1_0000);
    let dist = |x: u64| x.abs_diff(reference);
    let mut best = candidate;
    if dist(above) < dist(best) {
        best = above;
    }
    if let Some(b) = below {
        if dist(b) < dist(best) {
            best = b;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64, at: Instant) -> Kept {
        Kept::new(seq, 0, false, (96, Some(97)), Arc::from(&[1u8][..]), at)
    }

    #[test]
    fn sequence_numbers_extend_to_the_nearest() {
        assert_eq!(extend(70_000, 4_464), 70_000);
        assert_eq!(extend(65_540, 65_530), 65_530, "just before a wrap");
        assert_eq!(extend(65_530, 3), 65_539, "just after a wrap");
        assert_eq!(extend(5, 65_535), 65_535, "no number below zero");
    }

    #[test]
    fn kept_packets_come_back_once_per_gap_and_age_out() {
        let t0 = crate::clock::mono();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut ring = ResendRing::default();
        for i in 0..100u64 {
            ring.keep(packet(65_500 + i, ms(i * 10)));
        }
        // Across the wrap: 65 580 is sent as 44.
        let k = ring.take_for_resend(44, ms(1000)).expect("kept");
        assert_eq!(k.seq, 65_580);
        assert!(ring.take_for_resend(44, ms(1020)).is_none(), "just resent");
        assert!(ring.take_for_resend(44, ms(1041)).is_some(), "a later NACK");
        assert!(ring.take_for_resend(65_500, ms(1005)).is_none(), "too old");
        assert!(ring.take_for_resend(1234, ms(1000)).is_none(), "never sent");
        // Older than a second goes when the next is kept.
        ring.keep(packet(65_600, ms(1500)));
        assert!(ring.len() < 60, "{}", ring.len());
        // Out of order is not kept.
        ring.keep(packet(65_590, ms(1500)));
        assert_eq!(ring.kept.back().map(|k| k.seq), Some(65_600));
    }

    #[test]
    fn the_ring_is_bounded_by_count() {
        let t0 = crate::clock::mono();
        let mut ring = ResendRing::default();
        for i in 0..5000u64 {
            ring.keep(packet(i, t0));
        }
        assert_eq!(ring.len(), MAX_PACKETS);
    }
}
