//! One stream our own egress sends (`own_egress`): its numbers, counts and resend
//! history, and what its sender reports said, to correct str0m's and to measure the
//! round trip from the receiver's reports.

use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid};

use super::own_egress::OwnRoute;
use super::resend_ring::ResendRing;

/// Sender reports remembered per stream, to find the one a receiver report refers to.
const REPORTS_KEPT: usize = 4;
/// A number this far below the highest sent on its stream is a numbering that started
/// over, not a publisher's late packet passed on (two seconds of video at 2.5 Mbit/s;
/// a late packet is a round trip or a frame behind). A restart closer than this to the
/// highest number is not seen, and repeats indexes until it passes it.
const RESTART_GAP: u64 = 512;
/// Resends are paid from a budget that a quarter of a packet fills per packet sent:
/// at most a quarter of a stream's rate is resent, whatever a receiver asks for.
pub(super) const BUDGET_PER_PACKET: u32 = 1;
pub(super) const BUDGET_PER_RESEND: u32 = 4;
pub(super) const BUDGET_MAX: u32 = 256;

#[derive(Debug)]
pub(super) struct OwnStream {
    pub(super) mid: Mid,
    pub(super) kind: MediaKind,
    pub(super) ssrc: u32,
    pub(super) rtx_ssrc: Option<u32>,
    pub(super) clock_rate: u32,
    /// The RTP time and send time of the latest packet, for the sender report.
    pub(super) last: Option<(u32, Instant)>,
    pub(super) packets: u64,
    pub(super) octets: u64,
    pub(super) rtx_seq: u64,
    /// Added to the numbers written: a downtrack made again on the same SSRC (a track
    /// subscribed again on a reused m-line) starts its numbers over, which would
    /// repeat SRTP indexes the receiver has seen (dropped as replays). Ours go on.
    seq_shift: u64,
    /// The highest number sent, after the shift.
    highest_seq: Option<u64>,
    pub(super) ring: ResendRing,
    pub(super) budget: u32,
    pub(super) nack_items: u64,
    /// `packets` at the previous receiver report.
    pub(super) packets_at_report: u64,
    /// The latest sender reports on the stream: the middle 32 bits of their NTP time
    /// (what a receiver report's LSR echoes) and when they went.
    reports_sent: [(u32, Option<Instant>); REPORTS_KEPT],
}

impl OwnStream {
    pub(super) fn new(route: &OwnRoute) -> OwnStream {
        OwnStream {
            mid: route.mid,
            kind: route.kind,
            ssrc: route.ssrc,
            rtx_ssrc: route.rtx.map(|(s, _)| s),
            clock_rate: route.clock_rate,
            last: None,
            packets: 0,
            octets: 0,
            rtx_seq: 0,
            seq_shift: 0,
            highest_seq: None,
            ring: ResendRing::default(),
            budget: BUDGET_MAX / 2,
            nack_items: 0,
            packets_at_report: 0,
            reports_sent: [(0, None); REPORTS_KEPT],
        }
    }

    /// The number `seq` goes out as: shifted past everything sent when it falls far
    /// behind (a numbering that started over), as it is otherwise. Reordered packets
    /// (the forwarder passes a publisher's late ones on) stay within `RESTART_GAP`.
    pub(super) fn continue_numbers(&mut self, seq: u64) -> u64 {
        let mut out = seq + self.seq_shift;
        if let Some(highest) = self.highest_seq {
            if out + RESTART_GAP < highest {
                self.seq_shift = highest + 1 - seq;
                out = highest + 1;
            }
        }
        self.highest_seq = Some(self.highest_seq.map_or(out, |h| h.max(out)));
        out
    }

    /// Puts our RTP time (the latest packet's, moved on by the time since) and counts
    /// into str0m's sender report `sr` on this stream; whether it changed anything.
    pub(super) fn correct_report(&mut self, sr: &mut [u8], now: Instant) -> bool {
        let Some((ts, at)) = self.last else {
            return false;
        };
        let since = now.saturating_duration_since(at);
        let ticks = since.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000;
        sr[16..20].copy_from_slice(&ts.wrapping_add(ticks as u32).to_be_bytes());
        sr[20..24].copy_from_slice(&(self.packets as u32).to_be_bytes());
        sr[24..28].copy_from_slice(&(self.octets as u32).to_be_bytes());
        let ntp_middle = u32::from_be_bytes([sr[10], sr[11], sr[12], sr[13]]);
        self.reports_sent.rotate_right(1);
        self.reports_sent[0] = (ntp_middle, Some(now));
        true
    }

    /// RFC 3550 §6.4.1: the round trip from a receiver report's LSR (a sender report
    /// we remember) and DLSR (1/65536 s); `None` for a report we do not know.
    pub(super) fn round_trip(&self, now: Instant, last_sr: u32, delay: u32) -> Option<Duration> {
        if last_sr == 0 {
            return None;
        }
        let (_, sent) = self.reports_sent.iter().find(|(lsr, _)| *lsr == last_sr)?;
        let held = Duration::from_micros((u64::from(delay) * 1_000_000) >> 16);
        now.saturating_duration_since((*sent)?).checked_sub(held)
    }
}
