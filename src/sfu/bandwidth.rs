//! Downlink bandwidth estimate for one subscriber, sans-IO, from the link reports str0m
//! produces once a second (loss of our TWCC-sequenced packets as the client's feedback
//! reports it, RTT, and what we actually sent).
//!
//! Why not str0m's own BWE: with it enabled, str0m's pacer pads every video-carrying
//! PC to at least 50 kbit/s and puts that padding on the RTX SSRC of the stream that
//! sent last, so a track the subscriber paused keeps receiving packets. A loss- and
//! delay-based controller (the loss half of GCC, plus an RTT-inflation guard that
//! backs off while a queue builds, before packets drop) needs no padding: upgrading a
//! layer is the probe.

use std::time::{Duration, Instant};

/// One report about the link towards the client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkReport {
    /// Fraction of packets lost over the last interval (0..=1), if known.
    pub loss: Option<f32>,
    pub rtt: Option<Duration>,
    /// Bytes sent on the PC since it started (a running total).
    pub bytes_sent: u64,
}

/// Loss below this is "the link copes": the estimate may grow.
const LOSS_LOW: f32 = 0.02;
/// Loss above this means congestion: back off to what got through.
const LOSS_HIGH: f32 = 0.10;
/// RTT this far above the lowest seen means a queue is building.
const QUEUE_DELAY: Duration = Duration::from_millis(120);
/// Growth while the link copes, per second.
const GROWTH_PER_SEC: f64 = 1.08;
const GROWTH_ADD_BPS: f64 = 20_000.0;
/// Back-off on queueing delay (no loss yet), as a share of the sent rate.
const DELAY_BACKOFF: f64 = 0.85;
/// After congestion, growth stays below the rate that congested for this long; each
/// congestion soon after the last doubles it (up to `MAX_HOLD`), so a link that
/// cannot take the next layer is probed ever more rarely.
const FIRST_HOLD: Duration = Duration::from_secs(8);
const MAX_HOLD: Duration = Duration::from_secs(64);
/// Growth during the hold stops this far below the congested rate.
const HOLD_MARGIN: f64 = 0.85;
/// Never estimate below this (audio and the lowest video layer still get through).
pub const MIN_ESTIMATE_BPS: u64 = 50_000;
/// Reports over shorter spans than this carry too few packets to judge.
const MIN_SPAN: Duration = Duration::from_millis(300);
/// Below this send rate a few lost packets are a large fraction: loss is not judged.
const MIN_JUDGED_BPS: f64 = 64_000.0;

/// Why the estimate last moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// No congestion seen yet: the subscriber gets what it asks for.
    Unconstrained,
    Decreased,
    Holding,
    Increasing,
}

#[derive(Debug, Clone)]
pub struct LinkEstimator {
    /// `None` until the link first shows congestion.
    estimate: Option<f64>,
    min_rtt: Option<Duration>,
    last: Option<(Instant, u64)>,
    sent_bps: f64,
    rtt_inflated: bool,
    trend: Trend,
    /// The rate that last congested, and until when growth stays below it.
    hold: Option<(f64, Instant)>,
    hold_for: Duration,
}

impl Default for LinkEstimator {
    fn default() -> Self {
        LinkEstimator {
            estimate: None,
            min_rtt: None,
            last: None,
            sent_bps: 0.0,
            rtt_inflated: false,
            hold: None,
            hold_for: FIRST_HOLD,
            trend: Trend::Unconstrained,
        }
    }
}

impl LinkEstimator {
    /// The current estimate in bit/s; `None` while the link has shown no congestion.
    pub fn estimate(&self) -> Option<u64> {
        self.estimate.map(|e| e.round() as u64)
    }

    pub fn trend(&self) -> Trend {
        self.trend
    }

    /// What was sent over the last report's span, bit/s.
    pub fn sent_bps(&self) -> u64 {
        self.sent_bps as u64
    }

    /// Takes a report; `desired_bps` (what the subscriber's requests would take) caps
    /// growth so an idle link does not claim capacity nobody tried.
    pub fn on_report(&mut self, now: Instant, report: LinkReport, desired_bps: u64) -> Option<u64> {
        let Some((at, bytes)) = self.last else {
            self.last = Some((now, report.bytes_sent));
            return self.estimate();
        };
        let span = now.saturating_duration_since(at);
        if span < MIN_SPAN {
            return self.estimate();
        }
        self.last = Some((now, report.bytes_sent));
        let sent = report.bytes_sent.saturating_sub(bytes) as f64 * 8.0 / span.as_secs_f64();
        self.sent_bps = sent;
        // One inflated round trip can be a hiccup; two in a row are a queue.
        let inflated = match (report.rtt, self.min_rtt) {
            (Some(rtt), Some(min)) => rtt.saturating_sub(min) > QUEUE_DELAY,
            _ => false,
        };
        let queueing = inflated && self.rtt_inflated;
        self.rtt_inflated = inflated;
        if let Some(rtt) = report.rtt {
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        let loss = if sent >= MIN_JUDGED_BPS {
            report.loss.unwrap_or(0.0).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let floor = MIN_ESTIMATE_BPS as f64;
        if loss > LOSS_HIGH || queueing {
            let target = if loss > LOSS_HIGH {
                sent * (1.0 - 0.5 * loss as f64)
            } else {
                sent * DELAY_BACKOFF
            };
            let current = self.estimate.unwrap_or(f64::MAX);
            self.estimate = Some(current.min(target).max(floor));
            self.trend = Trend::Decreased;
            // Congested again soon after the last hold ended: wait longer next time.
            self.hold_for = match self.hold {
                Some((_, until)) if now < until + self.hold_for * 2 => {
                    (self.hold_for * 2).min(MAX_HOLD)
                }
                _ => FIRST_HOLD,
            };
            self.hold = Some((sent, now + self.hold_for));
        } else if let Some(e) = self.estimate {
            if loss < LOSS_LOW {
                let grown = e * GROWTH_PER_SEC.powf(span.as_secs_f64()) + GROWTH_ADD_BPS;
                let mut cap = (desired_bps as f64 * 1.5).max(e);
                if let Some((congested, until)) = self.hold {
                    if now < until {
                        cap = cap.min((congested * HOLD_MARGIN).max(e));
                    }
                }
                self.estimate = Some(grown.min(cap));
                self.trend = Trend::Increasing;
            } else {
                self.trend = Trend::Holding;
            }
        }
        self.estimate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Step {
        loss: f32,
        rtt_ms: u64,
        sent_kbps: u64,
    }

    /// Feeds one report a second and returns the estimate (kbit/s) after each.
    fn run(e: &mut LinkEstimator, steps: &[Step], desired_kbps: u64) -> Vec<Option<u64>> {
        let t0 = crate::clock::now().mono;
        let mut bytes = 0u64;
        e.on_report(
            t0,
            LinkReport {
                loss: None,
                rtt: None,
                bytes_sent: 0,
            },
            desired_kbps * 1000,
        );
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                bytes += s.sent_kbps * 1000 / 8;
                let now = t0 + Duration::from_secs(i as u64 + 1);
                let r = LinkReport {
                    loss: Some(s.loss),
                    rtt: Some(Duration::from_millis(s.rtt_ms)),
                    bytes_sent: bytes,
                };
                e.on_report(now, r, desired_kbps * 1000).map(|b| b / 1000)
            })
            .collect()
    }

    fn step(loss: f32, rtt_ms: u64, sent_kbps: u64) -> Step {
        Step {
            loss,
            rtt_ms,
            sent_kbps,
        }
    }

    #[test]
    fn a_clean_link_stays_unconstrained() {
        let mut e = LinkEstimator::default();
        let got = run(&mut e, &[step(0.0, 20, 2000), step(0.01, 25, 2000)], 2000);
        assert_eq!(got, vec![None, None]);
        assert_eq!(e.trend(), Trend::Unconstrained);
    }

    #[test]
    fn falling_then_recovering_link() {
        let mut e = LinkEstimator::default();
        let got = run(
            &mut e,
            &[
                step(0.0, 20, 2000),
                // saturated: 30 % loss at 2 Mbit/s sent
                step(0.30, 20, 2000),
                // still lossy at the lower rate: lower again
                step(0.20, 20, 1000),
                // moderate loss: hold
                step(0.05, 20, 800),
                // clean: growth is held below the rate that congested
                step(0.0, 20, 800),
                step(0.0, 20, 800),
            ],
            2000,
        );
        assert_eq!(got[0], None);
        assert_eq!(got[1], Some(1700));
        assert_eq!(got[2], Some(900));
        assert_eq!(got[3], Some(900));
        // clean, but held at what it had (below 1000 * 0.85 it would not grow)
        assert_eq!(got[4], Some(900));
        assert_eq!(got[5], Some(900));
        assert_eq!(e.trend(), Trend::Increasing);
    }

    #[test]
    fn queueing_delay_backs_off_before_loss() {
        let mut e = LinkEstimator::default();
        let got = run(
            &mut e,
            &[
                step(0.0, 20, 1000),
                step(0.0, 200, 1000),
                step(0.0, 20, 1000),
                step(0.0, 200, 1000),
                step(0.0, 210, 1000),
            ],
            2000,
        );
        assert_eq!(got, vec![None, None, None, None, Some(850)]);
        assert_eq!(e.trend(), Trend::Decreased);
    }

    #[test]
    fn growth_is_capped_by_what_is_wanted_and_the_floor_holds() {
        let mut e = LinkEstimator::default();
        let mut steps = vec![step(0.9, 20, 70)];
        steps.extend((0..60).map(|_| step(0.0, 20, 100)));
        let got = run(&mut e, &steps, 400);
        assert_eq!(got[0], Some(MIN_ESTIMATE_BPS / 1000));
        assert_eq!(*got.last().unwrap(), Some(600));
    }

    #[test]
    fn after_congestion_growth_holds_below_it_and_the_hold_doubles() {
        let mut e = LinkEstimator::default();
        // congested at 1000 kbit/s: estimate 750, then clean at 270 sent
        let mut steps = vec![step(0.5, 20, 1000)];
        steps.extend((0..20).map(|_| step(0.0, 20, 270)));
        let got = run(&mut e, &steps, 2000);
        assert_eq!(got[0], Some(750));
        // held under 850 (1000 * 0.85) for 8 s ...
        assert!(got[1..=7].iter().all(|g| g.unwrap() <= 850), "{got:?}");
        assert_eq!(got[6], Some(850));
        // ... then free to grow (the probe)
        assert!(got[12].unwrap() > 900, "{got:?}");
        // congested again within the next hold: 16 s this time
        let t = crate::clock::now().mono + Duration::from_secs(40);
        let mut e2 = e.clone();
        let r = |bytes| LinkReport {
            loss: Some(0.5),
            rtt: None,
            bytes_sent: bytes,
        };
        let _ = e2.on_report(t, r(u64::MAX / 2), 2_000_000);
        assert_eq!(
            e2.hold_for, FIRST_HOLD,
            "late enough: back to the first hold"
        );
        let _ = e.on_report(t - Duration::from_secs(18), r(10_000_000), 2_000_000);
        assert_eq!(e.hold_for, FIRST_HOLD * 2);
    }

    #[test]
    fn loss_at_a_trickle_is_not_judged() {
        let mut e = LinkEstimator::default();
        let got = run(&mut e, &[step(0.5, 20, 40), step(0.5, 20, 60)], 2000);
        assert_eq!(got, vec![None, None]);
    }

    #[test]
    fn reports_too_close_together_are_ignored() {
        let mut e = LinkEstimator::default();
        let t0 = crate::clock::now().mono;
        let r = |bytes| LinkReport {
            loss: Some(0.5),
            rtt: None,
            bytes_sent: bytes,
        };
        e.on_report(t0, r(0), 1_000_000);
        assert_eq!(
            e.on_report(t0 + Duration::from_millis(10), r(100), 1_000_000),
            None
        );
        assert!(e
            .on_report(t0 + Duration::from_secs(1), r(125_000), 1_000_000)
            .is_some());
    }
}
