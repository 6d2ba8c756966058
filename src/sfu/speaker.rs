//! Active speaker detection, sans-IO: audio levels from the RFC 6464 header extension
//! (`ssrc-audio-level`, -dBov, 0 = loudest, 127 = silence) in, LiveKit `SpeakersChanged`
//! deltas out. Browsers send no VAD bit, so the decision rests on the level alone.
//!
//! Per participant the detector keeps a fixed-size state (no history):
//! - `presence`, an exponential average over time of "this packet was loud" (level at or
//!   above `active_level`). Each packet weighs its own duration (at most
//!   `packet_duration`); a gap between packets counts as silence. A participant becomes
//!   active as soon as `presence` reaches `start_presence`: with the defaults that takes
//!   about 80 ms of loud audio, so one or two isolated clicks (20-40 ms) never start
//!   anyone. This plays the part of LiveKit's "loud for at least `min_percentile` of the
//!   observe window".
//! - `last_loud`: an active participant stays active until no loud packet has come for
//!   `quiet_timeout` (the hangover that bridges pauses between words).
//! - `level`, an exponential average of the linear loudness (`10^(-dBov/20)`, as LiveKit's
//!   `ConvertAudioLevel`) of the loud packets. The reported level is that times
//!   `presence` (LiveKit likewise weights the loudest level by how much of the window was
//!   loud), quantized up to steps of 1/`level_quantization` like LiveKit does, so small
//!   fluctuations do not turn into updates.
//!
//! [`SpeakerDetector::poll`] compares the current speakers with what it last returned and
//! gives back only the differences, LiveKit style: those who started or whose level
//! changed with their level, those who stopped (or were removed) with `active = false,
//! level = 0`. Changes to who is active are returned at the next poll; level-only changes
//! at most once per `update_interval`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use livekit_protocol as lk;

/// The RFC 6464 value for silence (-127 dBov).
pub const SILENT_LEVEL: u8 = 127;

/// The dBov magnitude (0..=127) of an RFC 6464 level as a parser hands it over: some give
/// `-30`, some `30`; either way the magnitude is what counts.
pub fn dbov_magnitude(raw: i8) -> u8 {
    raw.unsigned_abs().min(SILENT_LEVEL)
}

/// Linear loudness (0.0-1.0) of a dBov magnitude, as LiveKit's `ConvertAudioLevel`.
pub fn linear_level(dbov: u8) -> f32 {
    10f32.powf(-f32::from(dbov.min(SILENT_LEVEL)) / 20.0)
}

/// Tuning of the detector. Defaults follow LiveKit where it has an equivalent.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerConfig {
    /// A packet is loud when its level is at most this many dBov below full scale
    /// (LiveKit's `active_level`, default 35).
    pub active_level: u8,
    /// Time constant of the loud-packet average (`presence`).
    pub presence_window: Duration,
    /// `presence` (0.0-1.0) at which a participant becomes active.
    pub start_presence: f32,
    /// An active participant with no loud packet for this long becomes inactive.
    pub quiet_timeout: Duration,
    /// Time constant of the level average.
    pub level_window: Duration,
    /// The audio duration one packet carries at most (Opus: 20 ms).
    pub packet_duration: Duration,
    /// Level-only changes are returned at most this often (LiveKit: `update_interval`).
    pub update_interval: Duration,
    /// Levels are rounded up to multiples of `1 / level_quantization` (LiveKit: 8);
    /// 0 turns rounding off.
    pub level_quantization: u8,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            active_level: 35,
            presence_window: Duration::from_millis(150),
            start_presence: 0.4,
            quiet_timeout: Duration::from_millis(500),
            level_window: Duration::from_millis(300),
            packet_duration: Duration::from_millis(20),
            update_interval: Duration::from_millis(500),
            level_quantization: 8,
        }
    }
}

/// What one participant's audio looks like now. Fixed size: no history is kept.
#[derive(Debug, Clone)]
struct State {
    /// Average of loudness presence (0.0-1.0), as of `last_packet`.
    presence: f32,
    /// Average linear level of loud packets (0.0 until the first loud one).
    level: f32,
    last_packet: Option<Instant>,
    last_loud: Option<Instant>,
    active: bool,
    /// The level last returned by `poll` while active; `None` when last returned as
    /// inactive (or never returned).
    reported: Option<f32>,
}

impl State {
    fn new() -> Self {
        State {
            presence: 0.0,
            level: 0.0,
            last_packet: None,
            last_loud: None,
            active: false,
            reported: None,
        }
    }
}

/// Active speaker detection for one room (see the module docs).
#[derive(Debug)]
pub struct SpeakerDetector {
    config: SpeakerConfig,
    participants: HashMap<String, State>,
    /// Removed participants that were last returned as active, with that level: the next
    /// update reports them inactive.
    removed: Vec<(String, f32)>,
    last_update: Option<Instant>,
}

/// `1 - e^(-dt/tau)`: the weight of `dt` worth of input in an exponential average.
fn blend(dt: Duration, tau: Duration) -> f32 {
    if tau.is_zero() {
        return 1.0;
    }
    1.0 - (-dt.as_secs_f32() / tau.as_secs_f32()).exp()
}

/// `e^(-dt/tau)`: how much of an exponential average survives `dt` of silence.
fn decay(dt: Duration, tau: Duration) -> f32 {
    1.0 - blend(dt, tau)
}

impl SpeakerDetector {
    pub fn new(config: SpeakerConfig) -> Self {
        SpeakerDetector {
            config,
            participants: HashMap::new(),
            removed: Vec::new(),
            last_update: None,
        }
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// One audio packet from `participant_sid` at `now` with `level` (dBov magnitude,
    /// 0..=127; larger values count as silence). Allocates only the first time a sid is
    /// seen.
    pub fn observe(&mut self, participant_sid: &str, level: u8, now: Instant) {
        let state = match self.participants.get_mut(participant_sid) {
            Some(state) => state,
            None => {
                let mut state = State::new();
                // Removed and back before the removal was reported: carry on from what
                // was last returned, so the deltas stay consistent.
                if let Some(i) = self.removed.iter().position(|(s, _)| s == participant_sid) {
                    state.reported = Some(self.removed.swap_remove(i).1);
                }
                self.participants
                    .entry(participant_sid.to_owned())
                    .or_insert(state)
            }
        };
        let cfg = &self.config;
        let level = level.min(SILENT_LEVEL);
        let loud = level <= cfg.active_level;

        // This packet's own duration; the rest of the gap since the previous one is
        // silence. A reordered or duplicate packet (no gap) weighs nothing.
        let gap = match state.last_packet {
            Some(prev) => now.saturating_duration_since(prev),
            None => cfg.packet_duration,
        };
        let own = gap.min(cfg.packet_duration);
        state.presence *= decay(gap - own, cfg.presence_window);
        let target = if loud { 1.0 } else { 0.0 };
        state.presence += (target - state.presence) * blend(own, cfg.presence_window);
        if state.last_packet.is_none_or(|prev| now > prev) {
            state.last_packet = Some(now);
        }

        if loud {
            let linear = linear_level(level);
            if state.level <= 0.0 {
                state.level = linear;
            } else {
                state.level += (linear - state.level) * blend(own, cfg.level_window);
            }
            if state.last_loud.is_none_or(|prev| now > prev) {
                state.last_loud = Some(now);
            }
        }
        // Starting is decided here, on the packet that tips it, so a short burst is not
        // missed between two polls; stopping needs the time and is decided in `poll`.
        if !state.active && state.presence >= cfg.start_presence {
            state.active = true;
        }
    }

    /// A participant left or unpublished its audio: drop its state. If it was last
    /// returned as active, the next update reports it inactive.
    pub fn remove(&mut self, participant_sid: &str) {
        if let Some(state) = self.participants.remove(participant_sid) {
            if let Some(level) = state.reported {
                self.removed.push((participant_sid.to_owned(), level));
            }
        }
    }

    /// The changes since the last update returned, loudest first (those who stopped last,
    /// with `active = false, level = 0`); empty when there is nothing to send. Call it
    /// every ~100 ms: changes to who is active are returned at once, level-only changes at
    /// most once per `update_interval`.
    pub fn poll(&mut self, now: Instant) -> Vec<lk::SpeakerInfo> {
        let cfg = &self.config;
        let mut transition = !self.removed.is_empty();
        let mut level_changed = false;
        for state in self.participants.values_mut() {
            if state.active
                && state
                    .last_loud
                    .is_none_or(|t| now.saturating_duration_since(t) >= cfg.quiet_timeout)
            {
                state.active = false;
                state.level = 0.0;
            }
            match (state.active, state.reported) {
                (true, None) | (false, Some(_)) => transition = true,
                (true, Some(prev)) => level_changed |= prev != current_level(cfg, state, now),
                (false, None) => {}
            }
        }
        let interval_due = self
            .last_update
            .is_none_or(|t| now.saturating_duration_since(t) >= cfg.update_interval);
        if !(transition || (level_changed && interval_due)) {
            return Vec::new();
        }

        let mut changes: Vec<lk::SpeakerInfo> = self
            .removed
            .drain(..)
            .map(|(sid, _)| inactive(sid))
            .collect();
        for (sid, state) in self.participants.iter_mut() {
            if state.active {
                let level = current_level(cfg, state, now);
                if state.reported != Some(level) {
                    state.reported = Some(level);
                    changes.push(lk::SpeakerInfo {
                        sid: sid.clone(),
                        level,
                        active: true,
                    });
                }
            } else if state.reported.take().is_some() {
                changes.push(inactive(sid.clone()));
            }
        }
        sort_loudest_first(&mut changes);
        self.last_update = Some(now);
        changes
    }

    /// The active speakers as last returned by `poll`, loudest first: a snapshot for a
    /// participant who joins now, which the following `poll` deltas keep up to date.
    pub fn active(&self) -> Vec<lk::SpeakerInfo> {
        let mut speakers: Vec<lk::SpeakerInfo> = self
            .participants
            .iter()
            .filter_map(|(sid, state)| {
                state.reported.map(|level| lk::SpeakerInfo {
                    sid: sid.clone(),
                    level,
                    active: true,
                })
            })
            .collect();
        sort_loudest_first(&mut speakers);
        speakers
    }
}

fn inactive(sid: String) -> lk::SpeakerInfo {
    lk::SpeakerInfo {
        sid,
        level: 0.0,
        active: false,
    }
}

/// Level to report for an active participant at `now`: its average loudness weighted by
/// its presence (decayed over the time since its last packet), rounded up to the
/// quantization step, never 0.
fn current_level(cfg: &SpeakerConfig, state: &State, now: Instant) -> f32 {
    let since = state
        .last_packet
        .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
    let presence = state.presence * decay(since, cfg.presence_window);
    let raw = (state.level * presence).clamp(0.0, 1.0);
    if cfg.level_quantization == 0 {
        return raw.max(1e-3);
    }
    let steps = f32::from(cfg.level_quantization);
    ((raw * steps).ceil() / steps).clamp(1.0 / steps, 1.0)
}

fn sort_loudest_first(speakers: &mut [lk::SpeakerInfo]) {
    speakers.sort_by(|a, b| b.level.total_cmp(&a.level).then_with(|| a.sid.cmp(&b.sid)));
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKET: Duration = Duration::from_millis(20);
    const POLL: Duration = Duration::from_millis(100);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// What one participant sends over time: `(from_ms, level)` steps, each holding until
    /// the next; `None` sends no packets.
    type Script = &'static [(u64, Option<u8>)];

    fn level_at(script: Script, t: u64) -> Option<u8> {
        script
            .iter()
            .take_while(|(from, _)| *from <= t)
            .last()
            .and_then(|(_, level)| *level)
    }

    /// Runs the scripts from 0 to `end_ms`: a packet every 20 ms per participant, a poll
    /// every 100 ms. Returns every non-empty update with its time in ms.
    fn run(
        det: &mut SpeakerDetector,
        base: Instant,
        scripts: &[(&str, Script)],
        end_ms: u64,
    ) -> Vec<(u64, Vec<lk::SpeakerInfo>)> {
        let mut updates = Vec::new();
        let mut t = 0;
        while t <= end_ms {
            for (sid, script) in scripts {
                if let Some(level) = level_at(script, t) {
                    det.observe(sid, level, base + ms(t));
                }
            }
            if t % POLL.as_millis() as u64 == 0 {
                let changes = det.poll(base + ms(t));
                if !changes.is_empty() {
                    updates.push((t, changes));
                }
            }
            t += PACKET.as_millis() as u64;
        }
        updates
    }

    fn base() -> Instant {
        crate::clock::now().mono
    }

    fn sids(changes: &[lk::SpeakerInfo]) -> Vec<(&str, bool)> {
        changes.iter().map(|s| (s.sid.as_str(), s.active)).collect()
    }

    #[test]
    fn talker_starts_fast_stays_and_stops_once() {
        // Silence until 1000 ms, talking at -20 dBov until 3000 ms, silence after.
        let script: Script = &[(0, Some(127)), (1000, Some(20)), (3000, Some(127))];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let updates = run(&mut det, base(), &[("PA_a", script)], 5000);

        let (t_start, first) = &updates[0];
        assert!(*t_start <= 1300, "reported at {t_start} ms");
        assert_eq!(sids(first), [("PA_a", true)]);
        assert!(first[0].level > 0.0 && first[0].level <= 1.0);

        let stops: Vec<u64> = updates
            .iter()
            .filter(|(_, c)| c.iter().any(|s| !s.active))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(stops.len(), 1, "{updates:?}");
        assert!(
            stops[0] > 3000 && stops[0] <= 4000,
            "stopped at {}",
            stops[0]
        );
        let (_, last) = updates.last().unwrap();
        assert_eq!(last, &[inactive("PA_a".into())]);
        // Active all the way through the talking: no inactive entry before the end.
        assert!(updates[..updates.len() - 1]
            .iter()
            .all(|(_, c)| c.iter().all(|s| s.active)));
        assert!(det.active().is_empty());
    }

    #[test]
    fn active_while_talking() {
        let script: Script = &[(0, Some(20))];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let b = base();
        run(&mut det, b, &[("PA_a", script)], 3000);
        let active = det.active();
        assert_eq!(sids(&active), [("PA_a", true)]);
        assert!(active[0].level > 0.0);
    }

    #[test]
    fn two_speakers_loudest_first() {
        let quiet: Script = &[(0, Some(30))];
        let loud: Script = &[(0, Some(2))];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let updates = run(&mut det, base(), &[("PA_q", quiet), ("PA_l", loud)], 1000);
        let (_, first) = &updates[0];
        assert_eq!(sids(first), [("PA_l", true), ("PA_q", true)]);
        assert!(first[0].level > first[1].level);
        let active = det.active();
        assert_eq!(sids(&active), [("PA_l", true), ("PA_q", true)]);
        assert!(active[0].level > active[1].level);
    }

    #[test]
    fn clicks_do_not_start_anyone() {
        // (script, what it is)
        let cases: &[(Script, &str)] = &[
            (
                &[(0, Some(127)), (500, Some(0)), (520, Some(127))],
                "one loud packet",
            ),
            (
                &[(0, Some(127)), (500, Some(10)), (540, Some(127))],
                "two loud packets",
            ),
            (
                &[
                    (0, Some(127)),
                    (300, Some(10)),
                    (320, Some(127)),
                    (700, Some(10)),
                    (740, Some(127)),
                    (1200, Some(5)),
                    (1220, Some(127)),
                ],
                "clicks far apart",
            ),
            (
                &[(0, Some(36)), (500, Some(127))],
                "just below the threshold",
            ),
            (
                &[(0, None), (400, Some(0)), (420, None)],
                "a loud packet out of nothing",
            ),
        ];
        for (script, what) in cases {
            let mut det = SpeakerDetector::new(SpeakerConfig::default());
            let updates = run(&mut det, base(), &[("PA_a", script)], 3000);
            assert!(updates.is_empty(), "{what}: {updates:?}");
            assert!(det.active().is_empty(), "{what}");
        }
    }

    #[test]
    fn short_burst_starts_a_speaker() {
        // ~100 ms loud, then silence: reported once active, then once inactive.
        let script: Script = &[(0, Some(127)), (500, Some(20)), (600, Some(127))];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let updates = run(&mut det, base(), &[("PA_a", script)], 3000);
        let flags: Vec<Vec<(&str, bool)>> = updates.iter().map(|(_, c)| sids(c)).collect();
        assert_eq!(flags, [vec![("PA_a", true)], vec![("PA_a", false)]]);
    }

    #[test]
    fn poll_returns_only_changes() {
        let script: Script = &[(0, Some(20))];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let b = base();
        let updates = run(&mut det, b, &[("PA_a", script)], 2000);
        // Steady talking: one start, then nothing (the level does not change).
        assert_eq!(updates.len(), 1, "{updates:?}");
        // Nobody at all: nothing, ever.
        let mut empty = SpeakerDetector::new(SpeakerConfig::default());
        assert!(empty.poll(b).is_empty());
        assert!(empty.poll(b + ms(10_000)).is_empty());
    }

    #[test]
    fn level_changes_respect_the_interval() {
        // Loudness swinging every 100 ms between full scale and just above the threshold.
        let swing: Script = &[
            (0, Some(0)),
            (100, Some(30)),
            (200, Some(0)),
            (300, Some(30)),
            (400, Some(0)),
            (500, Some(30)),
            (600, Some(0)),
            (700, Some(30)),
            (800, Some(0)),
            (900, Some(30)),
            (1000, Some(0)),
            (1100, Some(30)),
            (1200, Some(0)),
            (1300, Some(30)),
            (1400, Some(0)),
            (1500, Some(30)),
            (1600, Some(0)),
            (1700, Some(30)),
            (1800, Some(0)),
            (1900, Some(30)),
            (2000, Some(0)),
            (2100, Some(30)),
            (2200, Some(0)),
            (2300, Some(30)),
            (2400, Some(0)),
            (2500, Some(30)),
        ];
        let cfg = SpeakerConfig::default();
        let interval = cfg.update_interval.as_millis() as u64;
        let mut det = SpeakerDetector::new(cfg);
        let updates = run(&mut det, base(), &[("PA_a", swing)], 2600);
        assert!(updates.len() >= 3, "levels should change: {updates:?}");
        for pair in updates.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= interval, "{updates:?}");
        }
        assert!(updates.iter().flat_map(|(_, c)| c).all(|s| s.active));
    }

    #[test]
    fn start_bypasses_the_interval() {
        // A talks from 0; B starts 100 ms after A's first update: B must not wait 500 ms.
        let a: Script = &[(0, Some(20))];
        let b_script: Script = &[(0, Some(127)), (300, Some(10))];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let updates = run(&mut det, base(), &[("PA_a", a), ("PA_b", b_script)], 1000);
        let t_b = updates
            .iter()
            .find(|(_, c)| c.iter().any(|s| s.sid == "PA_b" && s.active))
            .map(|(t, _)| *t)
            .unwrap();
        assert!(t_b <= 300 + 300, "B reported at {t_b} ms");
    }

    #[test]
    fn remove_reports_inactive_once() {
        let script: Script = &[(0, Some(20))];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let b = base();
        run(&mut det, b, &[("PA_a", script), ("PA_b", script)], 1000);
        assert_eq!(det.active().len(), 2);

        det.remove("PA_a");
        det.remove("PA_nobody");
        let changes = det.poll(b + ms(1020));
        assert_eq!(changes, [inactive("PA_a".into())]);
        assert!(det.poll(b + ms(1040)).is_empty());
        assert_eq!(sids(&det.active()), [("PA_b", true)]);

        // A participant removed before it was ever reported leaves no trace.
        det.observe("PA_c", 127, b + ms(1100));
        det.remove("PA_c");
        assert!(det.poll(b + ms(2000)).iter().all(|s| s.sid != "PA_c"));
    }

    #[test]
    fn removed_and_back_before_the_poll_stays_consistent() {
        let script: Script = &[(0, Some(20))];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let b = base();
        run(&mut det, b, &[("PA_a", script)], 1000);
        det.remove("PA_a");
        // Back, silent: the next update says inactive exactly once.
        det.observe("PA_a", 127, b + ms(1020));
        assert_eq!(det.poll(b + ms(1040)), [inactive("PA_a".into())]);
        assert!(det.poll(b + ms(2000)).is_empty());
    }

    #[test]
    fn packets_stopping_altogether_ends_the_speaker() {
        // Muted or DTX: loud, then no packets at all.
        let script: Script = &[(0, Some(20)), (1000, None)];
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let updates = run(&mut det, base(), &[("PA_a", script)], 3000);
        let (t, last) = updates.last().unwrap();
        assert_eq!(last, &[inactive("PA_a".into())]);
        assert!(*t <= 2000, "stopped at {t} ms");
    }

    #[test]
    fn edge_levels_never_panic() {
        // (raw i8 as a parser may give it, magnitude)
        let raws: &[(i8, u8)] = &[
            (0, 0),
            (127, 127),
            (-127, 127),
            (-128, 127),
            (-20, 20),
            (20, 20),
            (-1, 1),
        ];
        for &(raw, want) in raws {
            assert_eq!(dbov_magnitude(raw), want, "raw {raw}");
        }
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let b = base();
        for (i, level) in [0u8, 127, 128, 200, 255, 1, 35, 36].into_iter().enumerate() {
            for k in 0..20u64 {
                let t = b + ms((i as u64 * 20 + k) * 20);
                det.observe("PA_a", level, t);
                det.observe("PA_a", level, t); // duplicate
                let _ = det.poll(t);
            }
        }
        // Time going backwards is ignored, not a panic.
        det.observe("PA_a", 0, b);
        for s in det.poll(b + ms(10_000)).iter().chain(det.active().iter()) {
            assert!(s.level.is_finite() && (0.0..=1.0).contains(&s.level));
        }
        assert_eq!(linear_level(0), 1.0);
        assert!(linear_level(127) < 1e-6);
        assert!(linear_level(255) < 1e-6);

        // Full scale all the time: level 1.0, not more.
        let mut det = SpeakerDetector::new(SpeakerConfig::default());
        let updates = run(&mut det, b, &[("PA_a", &[(0, Some(0))])], 2000);
        let last_level = updates.last().unwrap().1[0].level;
        assert!(last_level > 0.5 && last_level <= 1.0, "{updates:?}");
    }

    #[test]
    fn unquantized_levels_stay_in_range() {
        let cfg = SpeakerConfig {
            level_quantization: 0,
            ..SpeakerConfig::default()
        };
        let mut det = SpeakerDetector::new(cfg);
        let b = base();
        let updates = run(
            &mut det,
            b,
            &[("PA_a", &[(0, Some(35)), (800, Some(127))])],
            3000,
        );
        let levels: Vec<f32> = updates
            .iter()
            .flat_map(|(_, c)| c)
            .map(|s| s.level)
            .collect();
        assert!(levels.iter().all(|l| (0.0..=1.0).contains(l)));
        assert!(levels[0] > 0.0);
        assert_eq!(*levels.last().unwrap(), 0.0);
    }
}
