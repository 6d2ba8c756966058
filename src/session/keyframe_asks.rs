//! When to ask a publisher for a keyframe again, per layer (mid, rid). A layer that
//! answers is asked again after 500 ms at the earliest; one that keeps ignoring the
//! requests is asked less often (1 s, then every 2 s), never given up on, so a
//! downtrack waiting for its first keyframe can not wait forever and a publisher
//! that cannot answer is not flooded.

use std::time::{Duration, Instant};

use str0m::media::{Mid, Rid};

/// The shortest gap between two requests for one layer.
const FIRST_INTERVAL: Duration = Duration::from_millis(500);
/// The interval doubles per unanswered request up to `FIRST_INTERVAL << MAX_DOUBLINGS`.
const MAX_DOUBLINGS: u32 = 2;
/// More layers than any publisher PC sends: a client inventing mids cannot grow this.
const MAX_LAYERS: usize = 64;

#[derive(Debug)]
struct Ask {
    mid: Mid,
    rid: Option<Rid>,
    at: Instant,
    unanswered: u32,
}

#[derive(Debug, Default)]
pub(super) struct KeyframeAsks {
    asks: Vec<Ask>,
}

impl KeyframeAsks {
    /// Whether a request for this layer may go out now; if so it is recorded, and the
    /// second of the pair says whether it repeats one that got no keyframe.
    pub fn ask(&mut self, mid: Mid, rid: Option<Rid>, now: Instant) -> Option<bool> {
        match self.asks.iter_mut().find(|a| a.mid == mid && a.rid == rid) {
            Some(a) => {
                let wait = FIRST_INTERVAL * (1 << a.unanswered.min(MAX_DOUBLINGS));
                if now.saturating_duration_since(a.at) < wait {
                    return None;
                }
                let repeat = a.unanswered > 0;
                a.at = now;
                a.unanswered = a.unanswered.saturating_add(1);
                Some(repeat)
            }
            None => {
                if self.asks.len() >= MAX_LAYERS {
                    self.asks.remove(0);
                }
                self.asks.push(Ask {
                    mid,
                    rid,
                    at: now,
                    unanswered: 1,
                });
                Some(false)
            }
        }
    }

    /// A keyframe arrived on this layer: the next request is a fresh one.
    pub fn answered(&mut self, mid: Mid, rid: Option<Rid>) {
        if let Some(a) = self.asks.iter_mut().find(|a| a.mid == mid && a.rid == rid) {
            a.unanswered = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanswered_requests_back_off_and_a_keyframe_resets_them() {
        let t0 = crate::clock::mono();
        let ms = |n| t0 + Duration::from_millis(n);
        let mid = Mid::from("v");
        let mut asks = KeyframeAsks::default();
        assert_eq!(asks.ask(mid, None, t0), Some(false));
        assert_eq!(asks.ask(mid, None, ms(400)), None);
        // Unanswered: 1 s, then every 2 s, and never given up on.
        assert_eq!(asks.ask(mid, None, ms(999)), None);
        assert_eq!(asks.ask(mid, None, ms(1000)), Some(true));
        assert_eq!(asks.ask(mid, None, ms(2500)), None);
        assert_eq!(asks.ask(mid, None, ms(3000)), Some(true));
        assert_eq!(asks.ask(mid, None, ms(5000)), Some(true));
        assert_eq!(asks.ask(mid, None, ms(7000)), Some(true));
        // Another layer is its own.
        assert_eq!(asks.ask(mid, Some(Rid::from("q")), ms(7000)), Some(false));
        asks.answered(mid, None);
        assert_eq!(asks.ask(mid, None, ms(7500)), Some(false));
        assert_eq!(asks.ask(mid, None, ms(7900)), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = crate::clock::mono();
        let mut asks = KeyframeAsks::default();
        for i in 0..1000 {
            asks.ask(Mid::from(&*i.to_string()), None, t0);
        }
        assert!(asks.asks.len() <= MAX_LAYERS);
    }
}
