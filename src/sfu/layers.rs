//! Simulcast layer choice, sans-IO: which layer (rid) a subscriber should get for the
//! size it asked for, and how a downtrack moves between layers, pauses and resumes,
//! only ever starting on a keyframe.

use std::time::{Duration, Instant};

use livekit_protocol as lk;

use super::munger::Munger;

/// LiveKit's rid names (JS and Rust SDKs) for the three simulcast qualities.
pub fn rid_for(quality: lk::VideoQuality) -> &'static str {
    match quality {
        lk::VideoQuality::Low => "q",
        lk::VideoQuality::Medium => "h",
        lk::VideoQuality::High | lk::VideoQuality::Off => "f",
    }
}

/// The simulcast layers a track announced: its first codec's, else the legacy field.
#[allow(deprecated)] // TrackInfo.layers: what older SDKs fill in
pub fn track_layers(track: &lk::TrackInfo) -> &[lk::VideoLayer] {
    match track.codecs.first() {
        Some(codec) if !codec.layers.is_empty() => &codec.layers,
        _ => &track.layers,
    }
}

fn quality_of(layer: &lk::VideoLayer) -> lk::VideoQuality {
    lk::VideoQuality::try_from(layer.quality).unwrap_or(lk::VideoQuality::High)
}

/// The quality to forward for a request: with a size, the smallest layer at least that
/// big (else the biggest); without one, the legacy `quality` field. Values are clamped:
/// absurd sizes or unknown qualities pick a real layer, never fail.
pub fn pick_quality(
    layers: &[lk::VideoLayer],
    settings: &lk::UpdateTrackSettings,
) -> lk::VideoQuality {
    if layers.is_empty() {
        return lk::VideoQuality::High;
    }
    let wanted = settings.width.max(settings.height);
    if wanted == 0 {
        return match lk::VideoQuality::try_from(settings.quality) {
            Ok(lk::VideoQuality::Off) | Err(_) => lk::VideoQuality::High,
            Ok(q) => q,
        };
    }
    let mut by_size: Vec<&lk::VideoLayer> = layers.iter().collect();
    by_size.sort_by_key(|l| l.width.max(l.height));
    by_size
        .iter()
        .find(|l| l.width.max(l.height) >= wanted)
        .or(by_size.last())
        .map(|l| quality_of(l))
        .unwrap_or(lk::VideoQuality::High)
}

/// What to do with one video packet on a downtrack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Forward,
    /// Not the layer being forwarded, or the downtrack is paused.
    Skip,
    /// Waiting for a keyframe (start, resume, or switch to the wanted layer): drop it
    /// and ask the publisher for one.
    NeedKeyframe,
}

/// The forwarding state of one video downtrack.
#[derive(Debug, Clone, Default)]
pub struct LayerState {
    /// The layer being forwarded (`None` without simulcast, or before the first start).
    pub current: Option<String>,
    /// The layer the subscriber asked for; `None` = whatever is flowing.
    pub target: Option<String>,
    pub started: bool,
    pub paused: bool,
    /// The track's rids from lowest to highest quality, to move towards a target that
    /// is not being sent (e.g. `f` held back for bandwidth: `h` beats `q`).
    pub order: Vec<String>,
    last_forwarded: Option<Instant>,
    /// When each rid last had a packet, to notice a layer the publisher stopped sending.
    seen: Vec<(String, Instant)>,
    /// The rank (in `order`) of the flowing layer nearest the wanted one, while the
    /// wanted one has stopped arriving; `None` when the wanted layer flows.
    detour: Option<usize>,
}

/// 90 kHz RTP clock of video.
const VIDEO_CLOCK_PER_MS: u64 = 90;
/// When nothing was forwarded for a while, the first timestamp after a switch is
/// spaced by the elapsed time, capped so a long pause does not jump too far ahead.
const MAX_GAP: Duration = Duration::from_secs(5);
/// A layer without a packet for this long counts as stopped: browsers drop their top
/// simulcast layers when their uplink estimate falls, and a downtrack left on such a
/// layer would freeze until it came back. Any real encoder sends faster than 2 fps.
const LAYER_STALL: Duration = Duration::from_millis(500);
/// More rids than any simulcast has: a publisher inventing rids cannot grow `seen`.
const MAX_SEEN: usize = 4;

impl LayerState {
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Resuming (or changing target) needs a keyframe before anything is forwarded.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    pub fn set_target(&mut self, rid: Option<String>) {
        self.target = rid;
    }

    /// Decides for one packet of layer `rid`. Starting, resuming and switching happen
    /// only on a keyframe, and re-anchor the munger so sequence numbers and timestamps
    /// stay continuous for the subscriber.
    pub fn admit(
        &mut self,
        rid: Option<&str>,
        keyframe: bool,
        now: Instant,
        munger: &mut Munger,
    ) -> Admit {
        self.note_seen(rid, now);
        if self.paused {
            if self.started {
                // The next packet after resume starts a new source.
                self.started = false;
            }
            return Admit::Skip;
        }
        let wanted = self.target.as_deref().or(self.current.as_deref());
        self.detour = self.detour_for(wanted, now);
        let is_wanted = match self.detour {
            Some(rank) => rid == Some(self.order[rank].as_str()),
            None => wanted.is_none() || wanted == rid,
        };
        if !self.started {
            // First start (or resume): the wanted layer's keyframe, or, while nothing
            // flows yet, any layer's keyframe so the subscriber sees video at once.
            let acceptable = is_wanted || self.current.is_none();
            if !(keyframe && acceptable) {
                return Admit::NeedKeyframe;
            }
            self.begin(rid, now, munger);
            return Admit::Forward;
        }
        if self.current.as_deref() == rid {
            // Also while a switch is pending: the old layer flows until the target's
            // keyframe arrives (the caller asks for it, see `switch_pending`).
            self.last_forwarded = Some(now);
            return Admit::Forward;
        }
        if keyframe && (is_wanted || self.closer_to_target(rid)) {
            self.begin(rid, now, munger);
            return Admit::Forward;
        }
        if is_wanted {
            return Admit::NeedKeyframe;
        }
        Admit::Skip
    }

    /// The layer this downtrack heads for: the target, or while the target (or, without
    /// one, the current layer) has stopped arriving, the flowing layer nearest to it.
    pub fn aim(&self) -> Option<&str> {
        match self.detour {
            Some(rank) => Some(self.order[rank].as_str()),
            None => self.target.as_deref(),
        }
    }

    /// Whether the downtrack waits for a layer it does not forward yet.
    pub fn switch_pending(&self) -> bool {
        let aim = self.aim();
        !self.paused && aim.is_some() && (aim != self.current.as_deref() || !self.started)
    }

    fn rank(&self, rid: Option<&str>) -> Option<usize> {
        rid.and_then(|r| self.order.iter().position(|o| o == r))
    }

    /// Whether `rid` is nearer the aim than the current layer (by quality order).
    fn closer_to_target(&self, rid: Option<&str>) -> bool {
        let aim = self.detour.or_else(|| self.rank(self.target.as_deref()));
        match (self.rank(rid), self.rank(self.current.as_deref()), aim) {
            (Some(candidate), Some(current), Some(aim)) => {
                candidate.abs_diff(aim) < current.abs_diff(aim)
            }
            _ => false,
        }
    }

    fn note_seen(&mut self, rid: Option<&str>, now: Instant) {
        let Some(rid) = rid else {
            return;
        };
        if let Some(entry) = self.seen.iter_mut().find(|(r, _)| r == rid) {
            entry.1 = now;
        } else if self.seen.len() < MAX_SEEN {
            self.seen.push((rid.to_string(), now));
        }
    }

    fn flowing(&self, rid: &str, now: Instant) -> bool {
        self.seen
            .iter()
            .any(|(r, at)| r == rid && now.saturating_duration_since(*at) < LAYER_STALL)
    }

    /// When `wanted` has stopped arriving but other layers flow: the rank of the flowing
    /// layer nearest below it, else nearest above (a capped subscriber's budget is not
    /// exceeded while anything within it flows).
    fn detour_for(&self, wanted: Option<&str>, now: Instant) -> Option<usize> {
        let wanted_rank = self.rank(wanted)?;
        if self.flowing(&self.order[wanted_rank], now) {
            return None;
        }
        (0..self.order.len())
            .filter(|&r| self.flowing(&self.order[r], now))
            .min_by_key(|&r| (r > wanted_rank, r.abs_diff(wanted_rank)))
    }

    fn begin(&mut self, rid: Option<&str>, now: Instant, munger: &mut Munger) {
        tracing::debug!(from = ?self.current, to = ?rid, target = ?self.target, "layer start");
        if let Some(last) = self.last_forwarded {
            let gap = now.saturating_duration_since(last).min(MAX_GAP);
            let ticks = (gap.as_millis() as u64 * VIDEO_CLOCK_PER_MS).max(1);
            munger.switch_source(ticks as u32);
        }
        self.current = rid.map(str::to_string);
        self.started = true;
        self.last_forwarded = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(q: lk::VideoQuality, w: u32, h: u32) -> lk::VideoLayer {
        lk::VideoLayer {
            quality: q as i32,
            width: w,
            height: h,
            ..Default::default()
        }
    }

    fn settings(width: u32, height: u32, quality: i32) -> lk::UpdateTrackSettings {
        lk::UpdateTrackSettings {
            width,
            height,
            quality,
            ..Default::default()
        }
    }

    #[test]
    fn pick_quality_table() {
        use lk::VideoQuality::*;
        let layers = [
            layer(Low, 320, 180),
            layer(Medium, 640, 360),
            layer(High, 1280, 720),
        ];
        let table: &[(u32, u32, i32, lk::VideoQuality)] = &[
            (320, 180, 0, Low),
            (100, 50, 0, Low),
            (321, 181, 0, Medium),
            (640, 360, 0, Medium),
            (1280, 720, 0, High),
            (4000, 4000, 0, High),
            (u32::MAX, u32::MAX, 0, High),
            (0, 0, Low as i32, Low),
            (0, 0, Medium as i32, Medium),
            (0, 0, Off as i32, High),
            (0, 0, 99, High),
            (0, 0, -5, High),
        ];
        for (w, h, q, want) in table {
            assert_eq!(
                pick_quality(&layers, &settings(*w, *h, *q)),
                *want,
                "{w}x{h} q{q}"
            );
        }
        assert_eq!(pick_quality(&[], &settings(640, 360, 0)), High);
    }

    fn run(state: &mut LayerState, m: &mut Munger, steps: &[(Option<&str>, bool, Admit)]) {
        let t0 = crate::clock::now().mono;
        for (i, (rid, key, want)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(33 * i as u64);
            assert_eq!(state.admit(*rid, *key, now, m), *want, "step {i}");
        }
    }

    #[test]
    fn starts_on_any_keyframe_then_switches_to_target_on_its_keyframe() {
        let mut s = LayerState::default();
        let mut m = Munger::new();
        s.set_target(Some("f".into()));
        run(
            &mut s,
            &mut m,
            &[
                (Some("q"), false, Admit::NeedKeyframe),
                (Some("q"), true, Admit::Forward),
                (Some("f"), false, Admit::NeedKeyframe),
                (Some("q"), false, Admit::Forward),
                (Some("f"), true, Admit::Forward),
                (Some("q"), false, Admit::Skip),
                (Some("f"), false, Admit::Forward),
            ],
        );
        assert_eq!(s.current.as_deref(), Some("f"));
        assert!(!s.switch_pending());
    }

    #[test]
    fn pause_drops_everything_and_resume_waits_for_a_keyframe() {
        let mut s = LayerState::default();
        let mut m = Munger::new();
        run(
            &mut s,
            &mut m,
            &[(None, true, Admit::Forward), (None, false, Admit::Forward)],
        );
        s.pause();
        run(
            &mut s,
            &mut m,
            &[(None, true, Admit::Skip), (None, false, Admit::Skip)],
        );
        s.resume();
        run(
            &mut s,
            &mut m,
            &[
                (None, false, Admit::NeedKeyframe),
                (None, true, Admit::Forward),
            ],
        );
    }

    #[test]
    fn moves_towards_a_target_that_is_not_sent() {
        let mut s = LayerState {
            order: vec!["q".into(), "h".into(), "f".into()],
            ..Default::default()
        };
        let mut m = Munger::new();
        s.set_target(Some("f".into()));
        run(
            &mut s,
            &mut m,
            &[
                (Some("q"), true, Admit::Forward),
                // f is not sent: h, the nearest layer that flows, is asked for.
                (Some("h"), false, Admit::NeedKeyframe),
                (Some("h"), true, Admit::Forward),
                (Some("q"), true, Admit::Skip),
                (Some("h"), false, Admit::Forward),
                (Some("f"), true, Admit::Forward),
                (Some("h"), true, Admit::Skip),
            ],
        );
        // and down: a LOW target while on f moves to h's keyframe, then q's
        s.set_target(Some("q".into()));
        run(
            &mut s,
            &mut m,
            &[
                (Some("h"), true, Admit::Forward),
                (Some("f"), true, Admit::Skip),
                (Some("q"), true, Admit::Forward),
            ],
        );
        assert_eq!(s.current.as_deref(), Some("q"));
    }

    /// Like `run`, with each packet's time (ms from the start) given.
    fn run_at(s: &mut LayerState, m: &mut Munger, t0: Instant, steps: &[(u64, &str, bool, Admit)]) {
        for (i, (ms, rid, key, want)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(*ms);
            assert_eq!(
                s.admit(Some(rid), *key, now, m),
                *want,
                "step {i} ({ms} ms, {rid})"
            );
        }
    }

    fn simulcast(target: &str) -> LayerState {
        let mut s = LayerState {
            order: vec!["q".into(), "h".into(), "f".into()],
            ..Default::default()
        };
        s.set_target(Some(target.into()));
        s
    }

    #[test]
    fn a_layer_the_publisher_stops_is_left_for_the_nearest_flowing_one() {
        let mut s = simulcast("f");
        let mut m = Munger::new();
        let t0 = crate::clock::now().mono;
        run_at(
            &mut s,
            &mut m,
            t0,
            &[
                (0, "f", true, Admit::Forward),
                (10, "h", false, Admit::Skip),
                (20, "q", false, Admit::Skip),
                (40, "f", false, Admit::Forward),
                // f stops; h and q keep flowing. Within the stall window nothing moves.
                (300, "h", true, Admit::Skip),
                // Past it, h (nearest to f) is aimed for: its delta asks for a keyframe,
                // q is not taken, h's keyframe switches.
                (600, "h", false, Admit::NeedKeyframe),
                (610, "q", true, Admit::Skip),
                (620, "h", true, Admit::Forward),
                (650, "h", false, Admit::Forward),
            ],
        );
        assert_eq!(s.current.as_deref(), Some("h"));
        assert!(
            !s.switch_pending(),
            "on the nearest flowing layer: nothing to wait for"
        );
        // f comes back (browsers restart a layer with a keyframe): up again at once.
        run_at(
            &mut s,
            &mut m,
            t0,
            &[
                (700, "f", true, Admit::Forward),
                (710, "h", false, Admit::Skip),
            ],
        );
        assert_eq!(s.current.as_deref(), Some("f"));
    }

    #[test]
    fn a_target_that_never_flows_asks_for_nothing() {
        let mut s = simulcast("f");
        let mut m = Munger::new();
        let t0 = crate::clock::now().mono;
        run_at(
            &mut s,
            &mut m,
            t0,
            &[
                (0, "q", true, Admit::Forward),
                (30, "h", true, Admit::Forward),
                (60, "q", false, Admit::Skip),
                (90, "h", false, Admit::Forward),
            ],
        );
        // f was never seen: h is as near as it gets, so no keyframe of f is chased.
        assert_eq!(s.aim(), Some("h"));
        assert!(!s.switch_pending());
    }

    #[test]
    fn a_stopped_middle_layer_is_replaced_from_below_first() {
        let mut s = simulcast("h");
        let mut m = Munger::new();
        let t0 = crate::clock::now().mono;
        run_at(
            &mut s,
            &mut m,
            t0,
            &[
                (0, "h", true, Admit::Forward),
                (10, "q", false, Admit::Skip),
                (20, "f", false, Admit::Skip),
                // h stops; q and f flow: q keeps a capped subscriber within its budget.
                (550, "q", false, Admit::NeedKeyframe),
                (560, "f", true, Admit::Skip),
                (570, "q", true, Admit::Forward),
            ],
        );
        assert_eq!(s.current.as_deref(), Some("q"));
    }

    #[test]
    fn with_everything_stopped_the_target_stays() {
        let mut s = simulcast("f");
        let mut m = Munger::new();
        let t0 = crate::clock::now().mono;
        run_at(&mut s, &mut m, t0, &[(0, "f", true, Admit::Forward)]);
        // Seconds later the first packet is of f again: still the layer to forward.
        run_at(&mut s, &mut m, t0, &[(5_000, "f", false, Admit::Forward)]);
        assert_eq!(s.aim(), Some("f"));
    }

    #[test]
    fn a_layer_that_does_not_exist_never_starts_a_switch() {
        let mut s = LayerState::default();
        let mut m = Munger::new();
        s.set_target(Some("h".into()));
        run(
            &mut s,
            &mut m,
            &[
                (Some("q"), true, Admit::Forward),
                (Some("zz"), true, Admit::Skip),
                (Some("q"), false, Admit::Forward),
            ],
        );
        assert!(s.switch_pending());
    }

    #[test]
    fn switching_keeps_munged_numbers_continuous() {
        let mut s = LayerState::default();
        let mut m = Munger::new();
        let t0 = crate::clock::now().mono;
        assert_eq!(s.admit(Some("q"), true, t0, &mut m), Admit::Forward);
        let a = m.munge(100, 9000).unwrap();
        s.set_target(Some("f".into()));
        let later = t0 + Duration::from_millis(33);
        assert_eq!(s.admit(Some("f"), true, later, &mut m), Admit::Forward);
        let b = m.munge(5000, 123_456).unwrap();
        assert_eq!(b.seq, a.seq + 1);
        assert_eq!(b.timestamp, a.timestamp + 33 * 90);
    }
}
