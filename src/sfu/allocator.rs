//! Stream allocation for one subscriber, sans-IO: shares its downlink estimate among
//! the video tracks it receives. Audio is taken off the top and never cut; video goes
//! by priority (screen share, then the active speaker, then the rest): every track
//! first gets its lowest layer while the budget lasts (the rest are paused), then
//! tracks are raised a layer at a time, in priority order, up to what they asked for.

/// What one subscribed track could take.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub video: bool,
    /// Higher goes first.
    pub priority: u8,
    /// Bit rate of each layer it may receive, lowest first, up to the layer the
    /// subscriber asked for (one entry without simulcast; audio: its rate).
    pub layer_bps: Vec<u64>,
}

/// The decision for one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Audio, or a video track with nothing to decide: send as asked.
    Full,
    /// Forward this layer (index into `layer_bps`).
    Layer(usize),
    /// Not enough bandwidth for even the lowest layer.
    Paused,
}

/// Share the budget as in the module docs. Without an estimate every track gets
/// what it asked for.
pub fn allocate(budget_bps: Option<u64>, demands: &[Demand]) -> Vec<Grant> {
    let Some(budget) = budget_bps else {
        return demands.iter().map(|_| Grant::Full).collect();
    };
    let mut grants: Vec<Grant> = demands
        .iter()
        .map(|d| {
            if d.video && !d.layer_bps.is_empty() {
                Grant::Paused
            } else {
                Grant::Full
            }
        })
        .collect();
    let audio: u64 = demands
        .iter()
        .filter(|d| !d.video)
        .filter_map(|d| d.layer_bps.first())
        .sum();
    let mut left = budget.saturating_sub(audio);
    let mut order: Vec<usize> = (0..demands.len())
        .filter(|&i| grants[i] == Grant::Paused)
        .collect();
    // Stable: equal priorities keep the caller's order.
    order.sort_by_key(|&i| std::cmp::Reverse(demands[i].priority));
    for &i in &order {
        let lowest = demands[i].layer_bps[0];
        if lowest <= left {
            left -= lowest;
            grants[i] = Grant::Layer(0);
        }
    }
    // Raise the highest priority first (equal ones in turns), then the next.
    let mut at = 0;
    while at < order.len() {
        let priority = demands[order[at]].priority;
        let end = order[at..]
            .iter()
            .position(|&i| demands[i].priority != priority)
            .map_or(order.len(), |n| at + n);
        while raise_once(&order[at..end], demands, &mut grants, &mut left) {}
        at = end;
    }
    grants
}

/// One round: each track in `group` goes up a layer if the budget allows.
fn raise_once(group: &[usize], demands: &[Demand], grants: &mut [Grant], left: &mut u64) -> bool {
    let mut raised = false;
    for &i in group {
        let Grant::Layer(at) = grants[i] else {
            continue;
        };
        let layers = &demands[i].layer_bps;
        let Some(&next) = layers.get(at + 1) else {
            continue;
        };
        let extra = next.saturating_sub(layers[at]);
        if extra <= *left {
            *left -= extra;
            grants[i] = Grant::Layer(at + 1);
            raised = true;
        }
    }
    raised
}

/// What the subscriber's requests would take in all (for the estimator's growth cap).
pub fn desired_bps(demands: &[Demand]) -> u64 {
    demands.iter().filter_map(|d| d.layer_bps.last()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Grant::*;

    fn video(priority: u8, layers: &[u64]) -> Demand {
        Demand {
            video: true,
            priority,
            layer_bps: layers.to_vec(),
        }
    }

    fn audio() -> Demand {
        Demand {
            video: false,
            priority: 0,
            layer_bps: vec![40_000],
        }
    }

    const SIMULCAST: [u64; 3] = [150_000, 500_000, 1_700_000];

    #[test]
    fn no_estimate_gives_everything() {
        let d = [video(0, &SIMULCAST), audio()];
        assert_eq!(allocate(None, &d), vec![Full, Full]);
    }

    /// One subscriber with a camera, a screen share and audio, under a falling and then
    /// recovering estimate.
    #[test]
    fn falling_and_recovering_estimate() {
        let camera = video(0, &SIMULCAST);
        let screen = video(2, &SIMULCAST);
        let d = [camera, screen, audio()];
        let table: &[(u64, [Grant; 3])] = &[
            (5_000_000, [Layer(2), Layer(2), Full]),
            (3_000_000, [Layer(1), Layer(2), Full]),
            (2_000_000, [Layer(0), Layer(2), Full]),
            (1_000_000, [Layer(0), Layer(1), Full]),
            (400_000, [Layer(0), Layer(0), Full]),
            (250_000, [Paused, Layer(0), Full]),
            // video pauses entirely before audio is touched
            (100_000, [Paused, Paused, Full]),
            (10_000, [Paused, Paused, Full]),
            // and comes back the same way
            (400_000, [Layer(0), Layer(0), Full]),
            (2_500_000, [Layer(1), Layer(2), Full]),
            (5_000_000, [Layer(2), Layer(2), Full]),
        ];
        for (budget, want) in table {
            assert_eq!(
                allocate(Some(*budget), &d),
                want.to_vec(),
                "budget {budget}"
            );
        }
    }

    #[test]
    fn equal_priorities_are_raised_in_turns() {
        let d = [video(0, &SIMULCAST), video(0, &SIMULCAST)];
        // 300k base + 350k for one raise; the second raise does not fit
        assert_eq!(allocate(Some(700_000), &d), vec![Layer(1), Layer(0)]);
        assert_eq!(allocate(Some(1_000_000), &d), vec![Layer(1), Layer(1)]);
    }

    #[test]
    fn requests_cap_the_grant_and_single_layer_tracks_pause_or_flow() {
        // asked for LOW only: never more than layer 0
        let low_only = video(0, &SIMULCAST[..1]);
        let plain = video(1, &[800_000]);
        let d = [low_only, plain];
        assert_eq!(allocate(Some(10_000_000), &d), vec![Layer(0), Layer(0)]);
        assert_eq!(allocate(Some(950_000), &d), vec![Layer(0), Layer(0)]);
        assert_eq!(allocate(Some(850_000), &d), vec![Paused, Layer(0)]);
        assert_eq!(allocate(Some(700_000), &d), vec![Layer(0), Paused]);
    }

    #[test]
    fn desired_is_the_sum_of_the_top_asks() {
        let d = [video(0, &SIMULCAST), audio(), video(0, &[])];
        assert_eq!(desired_bps(&d), 1_740_000);
        assert_eq!(allocate(Some(0), &d), vec![Paused, Full, Full]);
    }
}
