//! `rtc.allow_tcp_fallback`, as LiveKit's transport manager does it: a participant whose
//! peer connection fails over UDP while its signal connection is alive is steered to
//! ICE/TCP, and one that fails over TCP to TURN/TLS. The preference is remembered per
//! room and identity for a while, so that the client's next join (or the one after a
//! failed resume) gets only TCP candidates, or is told to relay through TURN/TLS
//! (`ClientConfiguration.force_relay`, TLS-only ICE servers).
//!
//! A failure is "short" when the connection never came up or lasted less than
//! [`SHORT_CONNECTION`]: one is enough. Longer-lived connections must fail
//! [`FAILURES_TO_SWITCH`] times within [`FAILURE_WINDOW`]. A participant switches at
//! most once; its next join may switch again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use livekit_protocol as lk;

/// LiveKit's thresholds (`transportmanager.go`, `transport.go`, `iceconfigcache.go`).
pub const SHORT_CONNECTION: Duration = Duration::from_secs(90);
pub const FAILURES_TO_SWITCH: u32 = 2;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
pub const REMEMBER_FOR: Duration = Duration::from_secs(5 * 60);
/// A peer connection that has not connected this long after it was created failed
/// (LiveKit's shortest wait for DTLS after ICE). The SDKs give up at 15 s, and a
/// failure counts only while their signal connection is up: it must be shorter.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which candidates a participant is steered to (LiveKit's `ICECandidateType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IcePreference {
    #[default]
    Any,
    /// Only our passive TCP candidates.
    Tcp,
    /// Relay through TURN/TLS only.
    Tls,
}

/// What a failed connection ran over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedPath {
    Udp,
    Tcp,
    Relay,
}

/// What this node can steer to, for this client.
#[derive(Debug, Clone, Copy, Default)]
pub struct FallbackPaths {
    /// ICE/TCP is on and the client's SDK supports it.
    pub tcp: bool,
    /// TURN/TLS is offered.
    pub tls: bool,
}

/// A participant's failures since it joined.
#[derive(Debug, Default)]
pub struct FallbackState {
    failures: u32,
    last_failure: Option<Instant>,
    switched: bool,
}

impl FallbackState {
    /// A peer connection failed over `path`; the preference to switch to, if any.
    pub fn on_failure(
        &mut self,
        current: IcePreference,
        path: FailedPath,
        short: bool,
        paths: FallbackPaths,
        now: Instant,
    ) -> Option<IcePreference> {
        if self.switched {
            return None;
        }
        if !short {
            self.failures += 1;
            let last = self.last_failure.replace(now);
            let recent = last.is_some_and(|at| now.saturating_duration_since(at) <= FAILURE_WINDOW);
            if self.failures < FAILURES_TO_SWITCH || !recent {
                return None;
            }
        }
        let next = match path {
            FailedPath::Udp if current == IcePreference::Any && paths.tcp => IcePreference::Tcp,
            FailedPath::Udp if current == IcePreference::Any && paths.tls => IcePreference::Tls,
            FailedPath::Tcp if paths.tls => IcePreference::Tls,
            _ => return None,
        };
        if next == current {
            return None;
        }
        self.switched = true;
        Some(next)
    }
}

/// Whether the client's SDK does ICE over TCP (LiveKit's `SupportsICETCP`: not Go, not
/// Swift before 1.0.5).
pub fn client_supports_tcp(client: &lk::ClientInfo) -> bool {
    match lk::client_info::Sdk::try_from(client.sdk) {
        Ok(lk::client_info::Sdk::Go) => false,
        Ok(lk::client_info::Sdk::Swift) => version_at_least(&client.version, (1, 0, 5)),
        _ => true,
    }
}

fn version_at_least(version: &str, least: (u32, u32, u32)) -> bool {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= least
}

/// Preferences remembered per (room, identity) until they expire.
#[derive(Debug, Default)]
pub struct RememberedPreferences {
    by_participant: HashMap<(String, String), (IcePreference, Instant)>,
}

impl RememberedPreferences {
    pub fn get(&self, room: &str, identity: &str, now: Instant) -> IcePreference {
        match self
            .by_participant
            .get(&(room.to_string(), identity.to_string()))
        {
            Some((pref, until)) if *until > now => *pref,
            _ => IcePreference::Any,
        }
    }

    pub fn put(&mut self, room: &str, identity: &str, pref: IcePreference, now: Instant) {
        self.by_participant.retain(|_, (_, until)| *until > now);
        self.by_participant
            .insert((room.into(), identity.into()), (pref, now + REMEMBER_FOR));
    }
}

/// A participant's steering: its preference, what it may be steered to, and when each
/// of its peer connections (publisher, subscriber) started and connected.
#[derive(Debug, Default)]
pub struct ParticipantIce {
    pub preference: IcePreference,
    pub paths: FallbackPaths,
    state: FallbackState,
    started: [Option<Instant>; 2],
    connected: [Option<Instant>; 2],
}

impl ParticipantIce {
    pub fn new(preference: IcePreference, paths: FallbackPaths) -> Self {
        ParticipantIce {
            preference,
            paths,
            ..Default::default()
        }
    }

    /// Peer connection `side` was created.
    pub fn started(&mut self, side: usize, now: Instant) {
        if let Some(s) = self.started.get_mut(side) {
            *s = Some(now);
        }
    }

    pub fn connected(&mut self, side: usize, now: Instant) {
        if side < 2 {
            self.started[side] = None;
            self.connected[side] = Some(now);
        }
    }

    /// ICE lost the peer of connected side `side`, last heard over UDP (`udp`) or TCP.
    pub fn lost(&mut self, side: usize, udp: bool, now: Instant) -> Option<IcePreference> {
        let since = (*self.connected.get(side)?)?;
        let short = now.saturating_duration_since(since) < SHORT_CONNECTION;
        let path = match (self.preference, udp) {
            (IcePreference::Tls, _) => FailedPath::Relay,
            (_, true) => FailedPath::Udp,
            (_, false) => FailedPath::Tcp,
        };
        self.state
            .on_failure(self.preference, path, short, self.paths, now)
    }

    /// A peer connection that has not connected within [`CONNECT_TIMEOUT`] failed
    /// (counted once): over what it was allowed to use.
    pub fn overdue(&mut self, now: Instant) -> Option<IcePreference> {
        let mut late = false;
        for started in &mut self.started {
            if started.is_some_and(|at| now.saturating_duration_since(at) >= CONNECT_TIMEOUT) {
                *started = None;
                late = true;
            }
        }
        if !late {
            return None;
        }
        let path = match self.preference {
            IcePreference::Any => FailedPath::Udp,
            IcePreference::Tcp => FailedPath::Tcp,
            IcePreference::Tls => FailedPath::Relay,
        };
        self.state
            .on_failure(self.preference, path, true, self.paths, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: FallbackPaths = FallbackPaths {
        tcp: true,
        tls: true,
    };

    #[test]
    fn a_short_udp_failure_steers_to_tcp_then_a_tcp_failure_to_tls() {
        let t0 = crate::clock::now().mono;
        let mut first = FallbackState::default();
        let next = first.on_failure(IcePreference::Any, FailedPath::Udp, true, BOTH, t0);
        assert_eq!(next, Some(IcePreference::Tcp));
        // Once per participant: the same session failing again changes nothing.
        assert_eq!(
            first.on_failure(IcePreference::Tcp, FailedPath::Tcp, true, BOTH, t0),
            None
        );
        // The next join, steered to TCP, fails over TCP: TURN/TLS.
        let mut second = FallbackState::default();
        let next = second.on_failure(IcePreference::Tcp, FailedPath::Tcp, true, BOTH, t0);
        assert_eq!(next, Some(IcePreference::Tls));
        // Relayed through TURN/TLS: nowhere further to go.
        let mut third = FallbackState::default();
        assert_eq!(
            third.on_failure(IcePreference::Tls, FailedPath::Relay, true, BOTH, t0),
            None
        );
    }

    #[test]
    fn without_ice_tcp_udp_failures_go_to_tls_and_without_either_nowhere() {
        let t0 = crate::clock::now().mono;
        let tls_only = FallbackPaths {
            tcp: false,
            tls: true,
        };
        let mut s = FallbackState::default();
        assert_eq!(
            s.on_failure(IcePreference::Any, FailedPath::Udp, true, tls_only, t0),
            Some(IcePreference::Tls)
        );
        let mut s = FallbackState::default();
        let none = FallbackPaths::default();
        assert_eq!(
            s.on_failure(IcePreference::Any, FailedPath::Udp, true, none, t0),
            None
        );
    }

    #[test]
    fn long_lived_connections_switch_after_two_failures_within_a_minute() {
        let t0 = crate::clock::now().mono;
        let mut s = FallbackState::default();
        assert_eq!(
            s.on_failure(IcePreference::Any, FailedPath::Udp, false, BOTH, t0),
            None
        );
        // The second failure comes too late: counted, still no switch.
        let late = t0 + FAILURE_WINDOW + Duration::from_secs(1);
        assert_eq!(
            s.on_failure(IcePreference::Any, FailedPath::Udp, false, BOTH, late),
            None
        );
        let soon = late + Duration::from_secs(10);
        assert_eq!(
            s.on_failure(IcePreference::Any, FailedPath::Udp, false, BOTH, soon),
            Some(IcePreference::Tcp)
        );
    }

    #[test]
    fn preferences_are_remembered_per_participant_until_they_expire() {
        let t0 = crate::clock::now().mono;
        let mut r = RememberedPreferences::default();
        r.put("room", "alice", IcePreference::Tcp, t0);
        assert_eq!(r.get("room", "alice", t0), IcePreference::Tcp);
        assert_eq!(r.get("room", "bob", t0), IcePreference::Any);
        assert_eq!(r.get("other", "alice", t0), IcePreference::Any);
        assert_eq!(
            r.get("room", "alice", t0 + REMEMBER_FOR),
            IcePreference::Any
        );
    }

    #[test]
    fn a_connection_that_never_comes_up_counts_once_as_a_short_failure() {
        let t0 = crate::clock::now().mono;
        let mut ice = ParticipantIce::new(IcePreference::Any, BOTH);
        ice.started(0, t0);
        ice.started(1, t0);
        ice.connected(1, t0 + Duration::from_secs(1));
        assert_eq!(
            ice.overdue(t0 + CONNECT_TIMEOUT - Duration::from_millis(1)),
            None
        );
        assert_eq!(ice.overdue(t0 + CONNECT_TIMEOUT), Some(IcePreference::Tcp));
        assert_eq!(ice.overdue(t0 + CONNECT_TIMEOUT * 2), None);

        // Steered to TCP, the next join's connection does not come up either: TLS.
        let mut ice = ParticipantIce::new(IcePreference::Tcp, BOTH);
        ice.started(0, t0);
        assert_eq!(ice.overdue(t0 + CONNECT_TIMEOUT), Some(IcePreference::Tls));
    }

    #[test]
    fn losing_ice_soon_after_connecting_is_short_and_later_is_not() {
        let t0 = crate::clock::now().mono;
        let mut ice = ParticipantIce::new(IcePreference::Any, BOTH);
        assert_eq!(ice.lost(0, true, t0), None, "never connected: not a loss");
        ice.started(0, t0);
        ice.connected(0, t0);
        assert_eq!(
            ice.lost(0, true, t0 + Duration::from_secs(5)),
            Some(IcePreference::Tcp)
        );

        let mut ice = ParticipantIce::new(IcePreference::Any, BOTH);
        ice.connected(0, t0);
        let later = t0 + SHORT_CONNECTION;
        assert_eq!(ice.lost(0, true, later), None);
        assert_eq!(
            ice.lost(0, true, later + Duration::from_secs(5)),
            Some(IcePreference::Tcp)
        );
    }

    #[test]
    fn go_and_old_swift_clients_do_not_get_ice_tcp() {
        let client = |sdk: lk::client_info::Sdk, version: &str| lk::ClientInfo {
            sdk: sdk as i32,
            version: version.into(),
            ..Default::default()
        };
        assert!(client_supports_tcp(&client(
            lk::client_info::Sdk::Js,
            "2.23.0"
        )));
        assert!(!client_supports_tcp(&client(
            lk::client_info::Sdk::Go,
            "2.0.0"
        )));
        assert!(!client_supports_tcp(&client(
            lk::client_info::Sdk::Swift,
            "1.0.4"
        )));
        assert!(client_supports_tcp(&client(
            lk::client_info::Sdk::Swift,
            "1.0.5"
        )));
        assert!(client_supports_tcp(&lk::ClientInfo::default()));
    }
}
