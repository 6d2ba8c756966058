//! Connection quality per participant, sans-IO: a score from the loss and round-trip
//! time its peer connections report, mapped to LiveKit's EXCELLENT / GOOD / POOR, and
//! LOST when a connected participant's reports stop.

use std::time::{Duration, Instant};

use livekit_protocol as lk;

/// The latest link figures of one participant's PCs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityInputs {
    /// Loss of what the participant publishes (as we receive it).
    pub upstream_loss: Option<f32>,
    /// Loss of what we send it (its feedback).
    pub downstream_loss: Option<f32>,
    pub rtt: Option<Duration>,
    /// When either PC last reported.
    pub last_report: Option<Instant>,
}

/// Reports stop for this long: the participant is LOST.
const LOST_AFTER: Duration = Duration::from_secs(8);

/// A score out of 5 and its quality.
pub fn score(inputs: &QualityInputs, now: Instant) -> (lk::ConnectionQuality, f32) {
    let stale = inputs
        .last_report
        .is_none_or(|at| now.saturating_duration_since(at) > LOST_AFTER);
    if stale {
        return (lk::ConnectionQuality::Lost, 0.0);
    }
    let loss = inputs
        .upstream_loss
        .unwrap_or(0.0)
        .max(inputs.downstream_loss.unwrap_or(0.0))
        .clamp(0.0, 1.0);
    let rtt_ms = inputs.rtt.map_or(0.0, |r| r.as_secs_f32() * 1000.0);
    // 1 point per 4 % loss, 1 per 250 ms of RTT beyond 200 ms (LiveKit's thresholds
    // land in the same places: GOOD from ~2.5 % loss, POOR from ~10 %).
    let penalty = loss * 100.0 / 4.0 + ((rtt_ms - 200.0).max(0.0) / 250.0);
    let score = (5.0 - penalty).clamp(1.0, 5.0);
    let quality = if score >= 4.4 {
        lk::ConnectionQuality::Excellent
    } else if score >= 2.6 {
        lk::ConnectionQuality::Good
    } else {
        lk::ConnectionQuality::Poor
    };
    (quality, (score * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lk::ConnectionQuality::*;

    /// upstream loss, downstream loss, RTT, expected quality
    type Row = (
        Option<f32>,
        Option<f32>,
        Option<Duration>,
        lk::ConnectionQuality,
    );

    #[test]
    fn quality_table() {
        let now = crate::clock::now().mono + Duration::from_secs(60);
        let fresh = Some(now - Duration::from_secs(1));
        let ms = |v| Some(Duration::from_millis(v));
        let table: &[Row] = &[
            (None, None, None, Excellent),
            (Some(0.0), Some(0.01), ms(40), Excellent),
            (Some(0.03), None, ms(40), Good),
            (None, Some(0.05), ms(40), Good),
            (Some(0.0), Some(0.0), ms(600), Good),
            (Some(0.12), None, ms(40), Poor),
            (None, Some(0.5), ms(40), Poor),
            (Some(0.0), None, ms(1500), Poor),
            (Some(f32::NAN), None, ms(40), Excellent),
            (Some(7.0), None, None, Poor),
        ];
        for (up, down, rtt, want) in table {
            let inputs = QualityInputs {
                upstream_loss: *up,
                downstream_loss: *down,
                rtt: *rtt,
                last_report: fresh,
            };
            assert_eq!(score(&inputs, now).0, *want, "{up:?} {down:?} {rtt:?}");
        }
    }

    #[test]
    fn silence_is_lost() {
        let now = crate::clock::now().mono + Duration::from_secs(60);
        let mut inputs = QualityInputs::default();
        assert_eq!(score(&inputs, now).0, Lost);
        inputs.last_report = Some(now - Duration::from_secs(9));
        assert_eq!(score(&inputs, now), (Lost, 0.0));
        inputs.last_report = Some(now - Duration::from_secs(2));
        assert_eq!(score(&inputs, now), (Excellent, 5.0));
    }
}
