//! NACKs and lost packets per RTP stream, from str0m's once-a-second media stats.
//! str0m reports running totals per mid/rid; this keeps the last ones and turns each
//! report into what happened since the previous one.

use std::collections::HashMap;

use str0m::media::{MediaKind, Mid, Rid};

/// Which way the media of a stream flows, seen from the SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// A publisher's stream we receive (NACKs are ours, loss from our receiver reports).
    Ingress,
    /// A stream we send to a subscriber (NACKs and loss from its feedback).
    Egress,
}

/// What one stream's report adds, for the shard's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    pub flow: Flow,
    /// `None` when the mid is gone from the session.
    pub kind: Option<MediaKind>,
    /// NACK feedback messages (each can name several packets) since the last report.
    pub nacks: u64,
    /// Packets lost since the last report (see [`Loss`]).
    pub lost: u64,
}

/// How a stream's report tells its loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// The cumulative number lost from the receiver's latest RTCP report (a 24-bit
    /// signed field). Counted as its highest value grows, so a report block for another
    /// SSRC of the mid (RTX) or a negative value (duplicates) adds nothing.
    Cumulative(Option<u64>),
    /// The fraction lost in our latest receiver report, applied to the packets received
    /// since the last report: `lost = received × f / (1 − f)`, an estimate.
    Fraction(Option<f32>),
}

#[derive(Debug, Default, Clone, Copy)]
struct Last {
    nacks: u64,
    packets: u64,
    /// The highest cumulative loss reported.
    lost: u64,
    /// The fraction of an estimated lost packet not yet counted.
    lost_carry: f64,
}

/// The last running totals of each stream of one PC.
#[derive(Debug, Default)]
pub struct StreamTotals {
    last: HashMap<(Flow, Mid, Option<Rid>), Last>,
}

/// Loss fractions above this are taken as this (an all-lost interval has no finite
/// estimate from the packets received).
const MAX_LOSS: f64 = 0.99;
/// RTCP's cumulative lost is 24-bit signed: at or above this it is negative.
const NEGATIVE_LOST: u64 = 0x80_0000;

/// The receiver-report loss of a PC's streams over one link-report interval: each
/// stream's fraction weighted by the packets it sent, so that a video stream's loss is
/// not replaced by whichever stream (audio) reported last.
#[derive(Debug, Default, Clone, Copy)]
pub struct RrLoss {
    weighted: f64,
    packets: u64,
}

impl RrLoss {
    /// A stream's reported fraction lost, over `sent` packets (at least 1 is counted:
    /// a report over a stream that sent nothing since still says something).
    pub fn add(&mut self, fraction: f32, sent: u64) {
        if !fraction.is_finite() {
            return;
        }
        let sent = sent.max(1);
        self.weighted += f64::from(fraction.clamp(0.0, 1.0)) * sent as f64;
        self.packets += sent;
    }

    /// The weighted fraction since the last take; `None` without reports.
    pub fn take(&mut self) -> Option<f32> {
        let taken = std::mem::take(self);
        (taken.packets > 0).then(|| (taken.weighted / taken.packets as f64) as f32)
    }
}

impl StreamTotals {
    /// Packets sent (or received) on a stream since its last `update`, from a running
    /// total; call before `update` with the same total.
    pub fn packets_since(&self, flow: Flow, (mid, rid): (Mid, Option<Rid>), packets: u64) -> u64 {
        let last = self.last.get(&(flow, mid, rid)).map_or(0, |l| l.packets);
        packets.saturating_sub(last)
    }

    /// One report of running totals: NACKs and packets (sent or received) so far on
    /// `mid`/`rid`. Totals that went down (a stream of the mid went away) start a new
    /// baseline. `None` when nothing was added.
    pub fn update(
        &mut self,
        flow: Flow,
        (mid, rid): (Mid, Option<Rid>),
        kind: Option<MediaKind>,
        (nacks, packets): (u64, u64),
        loss: Loss,
    ) -> Option<StreamCounts> {
        let last = self.last.entry((flow, mid, rid)).or_default();
        let new_nacks = nacks.saturating_sub(last.nacks);
        let new_packets = packets.saturating_sub(last.packets);
        last.nacks = nacks;
        last.packets = packets;
        let lost = match loss {
            Loss::Cumulative(Some(total)) if total < NEGATIVE_LOST => {
                let new = total.saturating_sub(last.lost);
                last.lost = last.lost.max(total);
                new
            }
            Loss::Cumulative(_) => 0,
            Loss::Fraction(f) => {
                let f = f
                    .map(f64::from)
                    .filter(|f| f.is_finite())
                    .unwrap_or(0.0)
                    .clamp(0.0, MAX_LOSS);
                let estimate = new_packets as f64 * f / (1.0 - f) + last.lost_carry;
                let lost = estimate.floor();
                last.lost_carry = estimate - lost;
                lost as u64
            }
        };
        let counts = StreamCounts {
            flow,
            kind,
            nacks: new_nacks,
            lost,
        };
        (counts.nacks > 0 || counts.lost > 0).then_some(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIDEO: Option<MediaKind> = Some(MediaKind::Video);

    fn both(c: Option<StreamCounts>) -> Option<(u64, u64)> {
        c.map(|c| (c.nacks, c.lost))
    }

    #[test]
    fn running_totals_become_deltas() {
        let mut t = StreamTotals::default();
        let s = (Mid::from("0"), None);
        let none = Loss::Cumulative(None);
        let first = t.update(Flow::Egress, s, VIDEO, (3, 100), none);
        assert_eq!(both(first), Some((3, 0)));
        assert_eq!(t.update(Flow::Egress, s, VIDEO, (3, 200), none), None);
        let c = t.update(Flow::Egress, s, VIDEO, (5, 300), Loss::Cumulative(Some(10)));
        assert_eq!(both(c), Some((2, 10)));
        let c = t.update(Flow::Egress, s, VIDEO, (5, 400), Loss::Cumulative(Some(14)));
        assert_eq!(both(c), Some((0, 4)));
        // Another rid is another stream.
        let h = (Mid::from("0"), Some(Rid::from("h")));
        let other = t.update(Flow::Egress, h, VIDEO, (1, 10), none);
        assert_eq!(both(other), Some((1, 0)));
    }

    #[test]
    fn cumulative_loss_counts_only_growth_of_the_highest() {
        let mut t = StreamTotals::default();
        let s = (Mid::from("0"), None);
        let mut lost = |n| {
            let c = t.update(Flow::Egress, s, VIDEO, (0, 0), Loss::Cumulative(Some(n)));
            c.map_or(0, |c| c.lost)
        };
        assert_eq!(lost(5), 5);
        assert_eq!(lost(0), 0, "an RTX report block");
        assert_eq!(lost(5), 0, "back to the media SSRC: nothing new");
        assert_eq!(lost(0xff_ffff), 0, "-1 (duplicates)");
        assert_eq!(lost(8), 3);
    }

    #[test]
    fn fractions_carry_over_and_count_the_expected() {
        let mut t = StreamTotals::default();
        let s = (Mid::from("1"), None);
        let f = |x| Loss::Fraction(Some(x));
        // 10 received at 5% loss: 0.526 lost, carried.
        assert_eq!(t.update(Flow::Ingress, s, VIDEO, (0, 10), f(0.05)), None);
        let c = t.update(Flow::Ingress, s, VIDEO, (0, 20), f(0.05));
        assert_eq!(both(c), Some((0, 1)));
        // Half lost: as many lost as received.
        let c = t.update(Flow::Ingress, s, VIDEO, (0, 120), f(0.5));
        assert_eq!(both(c), Some((0, 100)));
    }

    #[test]
    fn totals_going_down_and_odd_fractions_add_nothing() {
        let mut t = StreamTotals::default();
        let s = (Mid::from("2"), None);
        let f = |x| Loss::Fraction(Some(x));
        t.update(Flow::Ingress, s, VIDEO, (10, 1000), Loss::Fraction(None));
        assert_eq!(t.update(Flow::Ingress, s, VIDEO, (4, 500), f(0.5)), None);
        assert_eq!(
            t.update(Flow::Ingress, s, VIDEO, (4, 510), f(f32::NAN)),
            None
        );
        let c = t.update(Flow::Ingress, s, VIDEO, (4, 511), f(7.0));
        let lost = c.map_or(0, |c| c.lost);
        assert!((98..=99).contains(&lost), "fraction capped at 0.99: {lost}");
    }

    #[test]
    fn receiver_report_loss_is_weighted_by_what_each_stream_sent() {
        let mut t = StreamTotals::default();
        let video = (Mid::from("0"), None);
        let audio = (Mid::from("1"), None);
        t.update(Flow::Egress, video, VIDEO, (0, 100), Loss::Cumulative(None));
        assert_eq!(t.packets_since(Flow::Egress, video, 1000), 900);
        assert_eq!(t.packets_since(Flow::Egress, audio, 50), 50, "a new stream");
        let mut rr = RrLoss::default();
        // 900 video packets at 20 % loss, then 50 audio packets at none: not 0 %.
        rr.add(0.2, 900);
        rr.add(0.0, 50);
        let got = rr.take().expect("reports");
        assert!((got - 0.1895).abs() < 0.001, "{got}");
        assert_eq!(rr.take(), None, "taken");
        rr.add(f32::NAN, 10);
        assert_eq!(rr.take(), None, "not a fraction");
    }
}
