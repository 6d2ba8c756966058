//! Which peer connection a datagram belongs to: by its flow (transport and remote
//! address) once an authentic STUN request came from there, else by the ufrag a STUN
//! request names. Each connection's entries are also kept with the connection, so that
//! a participant leaving or restarting ICE touches only its own, not every session's.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::media::{PeerKey, Side};
use super::participant::ConnId;
use crate::session::Transport;

/// Where datagrams come from: the transport and the remote address.
pub type Flow = (Transport, SocketAddr);

#[derive(Debug, Default)]
pub struct Demux {
    by_flow: HashMap<Flow, PeerKey>,
    by_ufrag: HashMap<String, PeerKey>,
    of_conn: HashMap<ConnId, Entries>,
}

/// One connection's entries in the two maps.
#[derive(Debug, Default)]
struct Entries {
    flows: Vec<Flow>,
    ufrags: Vec<(Side, String)>,
}

impl Demux {
    /// The session a known flow belongs to.
    pub fn by_flow(&self, flow: &Flow) -> Option<PeerKey> {
        self.by_flow.get(flow).copied()
    }

    /// The session whose local ufrag this is.
    pub fn by_ufrag(&self, ufrag: &str) -> Option<PeerKey> {
        self.by_ufrag.get(ufrag).copied()
    }

    /// Registered ufrags: about the number of sessions.
    pub fn sessions(&self) -> usize {
        self.by_ufrag.len()
    }

    /// `flow` belongs to `key` from now on (an authentic request came from it).
    pub fn learn_flow(&mut self, flow: Flow, key: PeerKey) {
        match self.by_flow.insert(flow, key) {
            Some(old) if old == key => return,
            Some(old) => self.entries(old.0, |e| e.flows.retain(|f| *f != flow)),
            None => {}
        }
        self.of_conn.entry(key.0).or_default().flows.push(flow);
    }

    /// `flow` leads nowhere any more.
    pub fn drop_flow(&mut self, flow: &Flow) {
        if let Some(old) = self.by_flow.remove(flow) {
            self.entries(old.0, |e| e.flows.retain(|f| f != flow));
        }
    }

    /// `key`'s session also answers to `ufrag` (its earlier ufrags stay).
    pub fn add_ufrag(&mut self, ufrag: String, key: PeerKey) {
        match self.by_ufrag.insert(ufrag.clone(), key) {
            Some(old) if old == key => return,
            Some(old) => self.entries(old.0, |e| e.ufrags.retain(|(_, u)| *u != ufrag)),
            None => {}
        }
        self.of_conn
            .entry(key.0)
            .or_default()
            .ufrags
            .push((key.1, ufrag));
    }

    /// `key`'s session answers to `ufrag` only (an ICE restart made a new one).
    pub fn replace_ufrag(&mut self, ufrag: String, key: PeerKey) {
        if let Some(entries) = self.of_conn.get_mut(&key.0) {
            let by_ufrag = &mut self.by_ufrag;
            entries.ufrags.retain(|(side, u)| {
                let theirs = *side == key.1 && *u != ufrag;
                if theirs && by_ufrag.get(u) == Some(&key) {
                    by_ufrag.remove(u);
                }
                !theirs
            });
        }
        self.add_ufrag(ufrag, key);
    }

    /// Forgets every entry of `conn`'s sessions.
    pub fn forget_conn(&mut self, conn: ConnId) {
        let Some(entries) = self.of_conn.remove(&conn) else {
            return;
        };
        for flow in &entries.flows {
            if self.by_flow.get(flow).is_some_and(|k| k.0 == conn) {
                self.by_flow.remove(flow);
            }
        }
        for (_, ufrag) in &entries.ufrags {
            if self.by_ufrag.get(ufrag).is_some_and(|k| k.0 == conn) {
                self.by_ufrag.remove(ufrag);
            }
        }
    }

    fn entries(&mut self, conn: ConnId, change: impl FnOnce(&mut Entries)) {
        if let Some(e) = self.of_conn.get_mut(&conn) {
            change(e);
            if e.flows.is_empty() && e.ufrags.is_empty() {
                self.of_conn.remove(&conn);
            }
        }
    }

    #[cfg(test)]
    pub fn ufrags(&self) -> Vec<String> {
        self.by_ufrag.keys().cloned().collect()
    }

    #[cfg(test)]
    pub fn flows(&self) -> usize {
        self.by_flow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(port: u16) -> Flow {
        (Transport::Udp, SocketAddr::from(([10, 0, 0, 1], port)))
    }

    #[test]
    fn flows_and_ufrags_lead_to_their_session_until_the_connection_goes() {
        let mut d = Demux::default();
        d.add_ufrag("a".into(), (1, Side::Publisher));
        d.add_ufrag("b".into(), (1, Side::Subscriber));
        d.add_ufrag("c".into(), (2, Side::Subscriber));
        d.learn_flow(flow(1), (1, Side::Publisher));
        d.learn_flow(flow(2), (2, Side::Subscriber));
        assert_eq!(d.by_ufrag("b"), Some((1, Side::Subscriber)));
        assert_eq!(d.by_flow(&flow(1)), Some((1, Side::Publisher)));
        assert_eq!(d.sessions(), 3);
        d.forget_conn(1);
        assert_eq!((d.by_ufrag("a"), d.by_ufrag("b")), (None, None));
        assert_eq!(d.by_flow(&flow(1)), None);
        assert_eq!(d.by_ufrag("c"), Some((2, Side::Subscriber)));
        assert_eq!(d.by_flow(&flow(2)), Some((2, Side::Subscriber)));
        d.forget_conn(2);
        assert_eq!((d.sessions(), d.flows()), (0, 0));
        assert!(d.of_conn.is_empty());
    }

    #[test]
    fn an_ice_restart_replaces_only_that_sessions_ufrag() {
        let mut d = Demux::default();
        d.add_ufrag("old".into(), (1, Side::Publisher));
        d.add_ufrag("sub".into(), (1, Side::Subscriber));
        d.replace_ufrag("new".into(), (1, Side::Publisher));
        assert_eq!(d.by_ufrag("old"), None);
        assert_eq!(d.by_ufrag("new"), Some((1, Side::Publisher)));
        assert_eq!(d.by_ufrag("sub"), Some((1, Side::Subscriber)));
        // A subscriber offer's restart keeps the earlier ufrag answering.
        d.add_ufrag("sub2".into(), (1, Side::Subscriber));
        assert_eq!(d.by_ufrag("sub"), Some((1, Side::Subscriber)));
        d.forget_conn(1);
        assert_eq!(d.sessions(), 0);
    }

    #[test]
    fn a_flow_or_ufrag_taken_over_leaves_its_former_connection() {
        let mut d = Demux::default();
        d.learn_flow(flow(1), (1, Side::Publisher));
        d.learn_flow(flow(1), (2, Side::Publisher));
        d.add_ufrag("u".into(), (1, Side::Publisher));
        d.add_ufrag("u".into(), (2, Side::Publisher));
        d.forget_conn(1);
        assert_eq!(d.by_flow(&flow(1)), Some((2, Side::Publisher)));
        assert_eq!(d.by_ufrag("u"), Some((2, Side::Publisher)));
        d.drop_flow(&flow(1));
        assert_eq!(d.by_flow(&flow(1)), None);
        d.forget_conn(2);
        assert!(d.of_conn.is_empty());
    }
}
