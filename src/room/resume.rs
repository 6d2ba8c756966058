//! Resume: a participant whose signal connection dropped without a leave (a Wi-Fi
//! blip, a proxy restart) stays in its room, media flowing, for the room's
//! `departure_timeout`. If its client comes back with `reconnect=1` in that time, the
//! new connection takes over the same participant (same sid, tracks and
//! subscriptions) instead of a full reconnect that every other participant would see
//! as a leave and a join. As LiveKit (`ResumeParticipant`), the participant is found by
//! identity, and the resumed connection first gets a ReconnectResponse, then the
//! participants and the room as they are now.

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::ice_fallback::IcePreference;
use super::participant::ConnId;
use super::room_ops::{RoomError, RoomReply};
use super::room_signal::update;
use super::rooms::Rooms;
use super::Outbound;

/// How long a peer connection whose ICE lost the peer may take to come back (the
/// network returning, the client's ICE restart after a resume) before its participant
/// leaves. str0m reports the loss only after consent checks stopped for a while.
pub const ICE_GRACE: Duration = Duration::from_secs(15);

impl Rooms {
    /// The participant's signal connection dropped: it may resume until the room's
    /// departure timeout, then leaves. Nothing happens for a connection whose
    /// participant already left (a leave request, a removal).
    pub fn signal_lost(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Outbound>) {
        let Some((room, identity)) = self.conns.owned_names(conn) else {
            // It left (a leave request, then the socket closed): nothing to resume,
            // and the control thread may forget the connection it parked.
            out.push(Outbound::Close {
                conn,
                leave: super::participant::leave(
                    lk::DisconnectReason::ClientInitiated,
                    lk::leave_request::Action::Disconnect,
                ),
            });
            return;
        };
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let timeout = Duration::from_secs(u64::from(r.info.departure_timeout));
        if let Some(p) = r.participants.get_mut(&identity) {
            p.departs_at = Some(now + timeout);
        }
    }

    /// A client resumes: the participant `identity` of `room` keeps its connection id
    /// (the control thread routes the new signal connection to it). The reply carries
    /// what the resumed connection sends first, in order.
    pub(super) fn resume(
        &mut self,
        room: &str,
        identity: &str,
        unix_secs: u64,
    ) -> Result<RoomReply, RoomError> {
        let server_info = self.server_info();
        let r = self.rooms.get_mut(room).ok_or(RoomError::RoomNotFound)?;
        let p = r
            .participants
            .get_mut(identity)
            .ok_or(RoomError::ParticipantNotFound)?;
        p.departs_at = None;
        // v0: the subscriber PC restarts ICE, offered after the room's state, as
        // LiveKit's server does (v1 clients restart ICE with their own offer).
        if let Some(session) = p.media.subscriber.as_mut() {
            session.restart_ice();
            p.media.needs_offer = true;
        }
        let conn = p.conn;
        let last_message_seq = p.last_reliable_seq;
        let preference = p.media.ice.preference;
        let sid = p.info.sid.clone();
        let (ice_servers, client_configuration) = self.steered_ice(&sid, preference, unix_secs);
        let Some(r) = self.rooms.get_mut(room) else {
            return Err(RoomError::RoomNotFound);
        };
        let participants: Vec<lk::ParticipantInfo> = r
            .participants
            .values()
            .filter(|p| !p.hidden() || p.conn == conn)
            .map(|p| p.info.clone())
            .collect();
        let room_info = r.info.clone();
        self.parts.dirty.push((conn, super::media::Side::Publisher));
        self.parts
            .dirty
            .push((conn, super::media::Side::Subscriber));
        let mut messages = vec![
            Resp::Reconnect(lk::ReconnectResponse {
                server_info: Some(server_info),
                last_message_seq,
                ice_servers,
                client_configuration,
            }),
            Resp::Update(update(participants)),
            Resp::RoomUpdate(lk::RoomUpdate {
                room: Some(room_info),
            }),
        ];
        if let Some((r, slot, parts)) = self.at_conn(conn) {
            if let Some(p) = r.participants.at_mut(slot) {
                messages.extend(super::offers::subscriber_offer(p, &mut parts.demux));
            }
        }
        let messages = messages
            .into_iter()
            .map(|m| lk::SignalResponse { message: Some(m) })
            .collect();
        Ok(RoomReply::Resumed { conn, messages })
    }

    /// Participants whose signal connection stayed away past the departure timeout, or
    /// whose ICE stayed lost past [`ICE_GRACE`], leave now.
    pub fn expire_departed(&mut self, now: Instant, out: &mut Vec<Outbound>) {
        self.steer_overdue(now);
        let gone: Vec<(ConnId, lk::DisconnectReason)> = self
            .rooms
            .values()
            .flat_map(|r| r.participants.values())
            .filter_map(|p| {
                if p.departs_at.is_some_and(|at| at <= now) {
                    return Some((p.conn, lk::DisconnectReason::SignalClose));
                }
                let ice_gone = p
                    .media
                    .ice_lost
                    .iter()
                    .flatten()
                    .any(|&since| now.saturating_duration_since(since) >= ICE_GRACE);
                ice_gone.then_some((p.conn, lk::DisconnectReason::ConnectionTimeout))
            })
            .collect();
        for (conn, reason) in gone {
            self.remove_conn(conn, reason, now, out);
        }
    }

    /// Peer connections that did not connect in time, while their participant's signal
    /// connection is up, count as failures for `rtc.allow_tcp_fallback`.
    fn steer_overdue(&mut self, now: Instant) {
        let steered: Vec<(ConnId, IcePreference)> = (self.rooms.values_mut())
            .flat_map(|r| r.participants.values_mut())
            .filter(|p| p.departs_at.is_none())
            .filter_map(|p| Some((p.conn, p.media.ice.overdue(now)?)))
            .collect();
        for (conn, preference) in steered {
            self.steer(conn, preference, now);
        }
    }

    /// Whether a reliable data packet with this `sequence` from `conn` is new; records
    /// it. Sequence 0 (an SDK that does not number its packets) is always new.
    pub(super) fn fresh_reliable(&mut self, conn: ConnId, sequence: u32) -> bool {
        if sequence == 0 {
            return true;
        }
        let Some(p) = self.participant_by_conn(conn) else {
            return false;
        };
        if sequence <= p.last_reliable_seq {
            return false;
        }
        p.last_reliable_seq = sequence;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::negotiation_tests::{alice_and_bob, join, rooms};
    use crate::room::room_ops::RoomOp;

    fn left(out: &[Outbound]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Outbound::Signal { response, .. } => match &response.message {
                    Some(Resp::Update(u)) => Some(u.participants.clone()),
                    _ => None,
                },
                _ => None,
            })
            .flatten()
            .filter(|p| p.state == lk::participant_info::State::Disconnected as i32)
            .map(|p| p.identity)
            .collect()
    }

    #[test]
    fn a_lost_signal_keeps_the_participant_until_the_departure_timeout() {
        let t0 = crate::clock::now().mono;
        let mut rooms = alice_and_bob(t0);
        let mut out = Vec::new();
        rooms.signal_lost(1, t0, &mut Vec::new());
        rooms.expire_departed(t0 + Duration::from_secs(19), &mut out);
        assert!(left(&out).is_empty(), "still there before the timeout");
        assert!(rooms.participant("r", "alice").is_ok());
        rooms.expire_departed(t0 + Duration::from_secs(20), &mut out);
        assert_eq!(left(&out), ["alice"], "bob hears that alice left");
        assert!(rooms.participant("r", "alice").is_err());
        assert!(
            rooms.apply(resume_op("alice"), t0, 0, &mut out).is_err(),
            "gone: nothing to resume"
        );
    }

    fn resume_op(identity: &str) -> RoomOp {
        RoomOp::Resume {
            room: "r".into(),
            identity: identity.into(),
        }
    }

    #[test]
    fn a_resume_keeps_the_sid_and_says_reconnect_then_participants_then_room() {
        let t0 = crate::clock::now().mono;
        let mut rooms = alice_and_bob(t0);
        let mut out = Vec::new();
        let sid = rooms.participant("r", "alice").unwrap().info.sid.clone();
        rooms.signal_lost(1, t0, &mut Vec::new());
        let reply = rooms.apply(resume_op("alice"), t0, 0, &mut out).unwrap();
        let RoomReply::Resumed { conn, messages } = reply else {
            panic!("not resumed: {reply:?}");
        };
        assert_eq!(conn, 1, "the participant keeps its connection id");
        let kinds: Vec<_> = messages.iter().filter_map(|m| m.message.as_ref()).collect();
        assert!(matches!(kinds[0], Resp::Reconnect(_)));
        assert!(matches!(kinds[1], Resp::Update(u)
            if u.participants.iter().any(|p| p.sid == sid)
                && u.participants.iter().any(|p| p.identity == "bob")));
        assert!(matches!(kinds[2], Resp::RoomUpdate(_)));
        out.clear();
        rooms.expire_departed(t0 + Duration::from_secs(60), &mut out);
        assert!(
            left(&out).is_empty(),
            "a resumed participant no longer departs"
        );
        assert_eq!(rooms.participant("r", "alice").unwrap().info.sid, sid);
    }

    #[test]
    fn reliable_data_is_delivered_once_by_sequence() {
        let t0 = crate::clock::now().mono;
        let mut rooms = rooms();
        rooms
            .join(1, &join("alice"), t0, 0, &mut Vec::new())
            .unwrap();
        assert!(rooms.fresh_reliable(1, 1));
        assert!(rooms.fresh_reliable(1, 2));
        assert!(!rooms.fresh_reliable(1, 2), "resent after a resume");
        assert!(!rooms.fresh_reliable(1, 1));
        assert!(rooms.fresh_reliable(1, 0), "unnumbered packets always pass");
        assert!(rooms.fresh_reliable(1, 0));
        assert!(rooms.fresh_reliable(1, 3));
        let RoomReply::Resumed { messages, .. } = rooms
            .apply(resume_op("alice"), t0, 0, &mut Vec::new())
            .unwrap()
        else {
            panic!("not resumed");
        };
        assert!(matches!(&messages[0].message,
            Some(Resp::Reconnect(r)) if r.last_message_seq == 3));
    }

    #[test]
    fn lost_ice_gets_a_grace_period_and_may_come_back() {
        use crate::room::media::Side;
        use crate::session::SessionEvent;
        let t0 = crate::clock::now().mono;
        let mut rooms = alice_and_bob(t0);
        let mut out = Vec::new();
        let mut event = |rooms: &mut Rooms, e, at| {
            rooms.on_event((1, Side::Subscriber), e, at, &mut out, &mut Vec::new())
        };
        event(&mut rooms, SessionEvent::IceLost, t0);
        event(
            &mut rooms,
            SessionEvent::IceLost,
            t0 + Duration::from_secs(5),
        );
        let mut out = Vec::new();
        rooms.expire_departed(t0 + ICE_GRACE - Duration::from_millis(1), &mut out);
        assert!(left(&out).is_empty(), "within the grace period");
        rooms.expire_departed(t0 + ICE_GRACE, &mut out);
        assert_eq!(
            left(&out),
            ["alice"],
            "the grace counts from the first loss"
        );

        // Bob's ICE comes back in time: he stays.
        let mut out = Vec::new();
        let mut touched = Vec::new();
        rooms.on_event(
            (2, Side::Publisher),
            SessionEvent::IceLost,
            t0,
            &mut out,
            &mut touched,
        );
        let back = t0 + Duration::from_secs(10);
        rooms.on_event(
            (2, Side::Publisher),
            SessionEvent::IceRestored,
            back,
            &mut out,
            &mut touched,
        );
        rooms.expire_departed(t0 + Duration::from_secs(60), &mut out);
        assert!(left(&out).is_empty());
        assert!(rooms.participant("r", "bob").is_ok());
    }
}
