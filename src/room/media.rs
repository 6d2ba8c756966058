//! Drives the peer connections of a shard's participants: datagrams in, timeouts,
//! draining each session, and acting on what comes out (connection state, media to
//! forward, keyframe requests, data). Sans-IO: the shard driver passes time and bytes.

use std::net::SocketAddr;
use std::time::Instant;

use livekit_protocol as lk;
use tracing::{debug, info, warn};

use super::ice_fallback::IcePreference;
use super::members::Slot;
use super::participant::{ConnId, Participant};
use super::room_ops::Outbound;
use super::room_table::{RoomSlot, RoomTable};
use super::rooms::Rooms;
use crate::session::{PeerRole, PeerSession, SessionError, SessionEvent, Transmit, Transport};

/// The subscriber sessions a receive batch wrote to, not all driven yet
/// ([`Rooms::drive_batch`]).
#[derive(Debug, Default)]
pub struct BatchRest {
    touched: Vec<ConnId>,
    next: usize,
}

/// Which of a participant's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Publisher,
    Subscriber,
}

impl Side {
    pub fn role(self) -> PeerRole {
        match self {
            Side::Publisher => PeerRole::Publisher,
            Side::Subscriber => PeerRole::Subscriber,
        }
    }

    /// LiveKit's SignalTarget numbers (TrickleRequest.target).
    pub fn from_target(target: i32) -> Side {
        if target == lk::SignalTarget::Subscriber as i32 {
            Side::Subscriber
        } else {
            Side::Publisher
        }
    }

    pub fn target(self) -> i32 {
        match self {
            Side::Publisher => lk::SignalTarget::Publisher as i32,
            Side::Subscriber => lk::SignalTarget::Subscriber as i32,
        }
    }
}

pub type PeerKey = (ConnId, Side);

/// What draining a session produced, to act on once no session is borrowed.
pub(super) struct Drained {
    pub key: PeerKey,
    pub events: Vec<SessionEvent>,
}

impl Rooms {
    /// `room.enabled_codecs`: what new peer connections negotiate.
    pub fn set_codecs(&mut self, codecs: crate::session::EnabledCodecs) {
        self.parts.codecs = codecs;
    }

    /// The TURN and STUN servers participants are told about.
    pub fn set_ice_servers(&mut self, servers: super::ice_servers::IceServerConfig) {
        self.ice_servers = servers;
    }

    /// The shard's advertised UDP addresses, used for every new peer connection.
    pub fn set_local_candidates(&mut self, addrs: Vec<SocketAddr>) {
        self.parts.local_candidates.udp = addrs;
    }

    /// The shard's passive ICE/TCP addresses (`rtc.tcp_port`), advertised beside UDP.
    pub fn set_tcp_candidates(&mut self, addrs: Vec<SocketAddr>) {
        self.parts.local_candidates.tcp = addrs;
    }

    /// `rtc.allow_tcp_fallback` (on by default, as LiveKit's).
    pub fn set_tcp_fallback(&mut self, allow: bool) {
        self.tcp_fallback = allow;
    }

    /// One frame from an ICE/TCP connection (without its length prefix); as
    /// `handle_datagram` otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_tcp_frame(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        frame: &[u8],
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) -> bool {
        self.receive(
            Transport::Tcp,
            now,
            source,
            destination,
            frame,
            transmits,
            out,
        )
    }

    /// One datagram from the network. Unknown flows that are not a STUN request for one
    /// of our ufrags are dropped (returns false so the caller can count them).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) -> bool {
        self.receive(
            Transport::Udp,
            now,
            source,
            destination,
            datagram,
            transmits,
            out,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn receive(
        &mut self,
        transport: Transport,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) -> bool {
        self.counters.packets_in += 1;
        self.counters.bytes_in += datagram.len() as u64;
        let flow = (transport, source);
        let key = match self.parts.demux.by_flow(&flow) {
            Some(k) => k,
            None => {
                let key = stun_ufrag(datagram).and_then(|u| self.parts.demux.by_ufrag(u));
                // Remember the address only for an authentic request: one that merely
                // names our ufrag must not grow the table.
                let authentic = key.is_some_and(|k| {
                    self.session_mut(k)
                        .is_some_and(|(s, _)| s.accepts_via(transport, source, datagram))
                });
                match key {
                    Some(k) if authentic => {
                        self.parts.demux.learn_flow(flow, k);
                        k
                    }
                    _ => {
                        self.counters.dropped_unknown_flow += 1;
                        return false;
                    }
                }
            }
        };
        let mut drained = Vec::new();
        let mut sent = (0, 0);
        let mut next = None;
        let ok = match self.session_mut(key) {
            Some((session, deadline)) => {
                let r = session.handle_receive_via(transport, now, source, destination, datagram);
                if let Err(e) = &r {
                    debug!(conn = key.0, error = %e, "bad datagram");
                }
                let before = *deadline;
                (sent, next) = drain_into(key, session, deadline, transmits, &mut drained);
                // An unchanged deadline already has its entry in the heap.
                if next == before {
                    next = None;
                }
                true
            }
            None => {
                self.parts.demux.drop_flow(&flow);
                self.counters.dropped_unknown_flow += 1;
                false
            }
        };
        self.count_sent(sent);
        self.schedule(key, next);
        self.process(drained, now, transmits, out);
        ok
    }

    /// Gives every session whose deadline has passed its timeout (only those: the
    /// deadlines are in a heap, see `timers`).
    pub fn handle_timeouts(
        &mut self,
        now: Instant,
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) {
        let mut due = std::mem::take(&mut self.due_scratch);
        due.clear();
        {
            let (rooms, conns) = (&self.rooms, &self.conns);
            self.timers
                .pop_due(now, |k| deadline_of(rooms, conns, k), &mut due);
        }
        for &key in &due {
            self.tick(key, now, transmits, out);
        }
        self.due_scratch = due;
    }

    /// Starts a receive batch: the subscriber sessions that forwarding writes into are
    /// driven once, at [`end_batch`](Self::end_batch), not after every datagram.
    pub fn begin_batch(&mut self) {
        self.batching = true;
    }

    /// Ends a receive batch: each subscriber session written to during it sends now
    /// (the shard does this in shares, `Shard::end_batch`).
    #[cfg(test)]
    pub fn end_batch(
        &mut self,
        now: Instant,
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) {
        let mut rest = self.finish_batch();
        while self.drive_batch(&mut rest, now, transmits, out, usize::MAX) {}
    }

    /// Ends a receive batch without driving its sessions yet: the subscriber sessions
    /// written to during it, for [`drive_batch`](Self::drive_batch).
    pub fn finish_batch(&mut self) -> BatchRest {
        self.batching = false;
        let mut touched = std::mem::take(&mut self.batch_touched);
        touched.sort_unstable();
        touched.dedup();
        BatchRest { touched, next: 0 }
    }

    /// Drives the sessions of `rest` in turn until `transmits` holds `flush_at`
    /// datagrams or none is left; returns whether some are left. A keyframe for many
    /// subscribers is thousands of datagrams: sending each share as it is ready, rather
    /// than all once the last subscriber's is encrypted, lets the first subscribers
    /// have it sooner at no extra system calls (a send takes this many at most anyway).
    pub fn drive_batch(
        &mut self,
        rest: &mut BatchRest,
        now: Instant,
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
        flush_at: usize,
    ) -> bool {
        while let Some(&conn) = rest.touched.get(rest.next) {
            rest.next += 1;
            self.tick((conn, Side::Subscriber), now, transmits, out);
            if transmits.len() >= flush_at && rest.next < rest.touched.len() {
                return true;
            }
        }
        // The list's allocation serves the next batch.
        if self.batch_touched.is_empty() && rest.touched.capacity() > self.batch_touched.capacity()
        {
            rest.touched.clear();
            std::mem::swap(&mut self.batch_touched, &mut rest.touched);
        }
        false
    }

    /// Subscriber sessions written to outside a datagram or timeout (API or relayed
    /// data): drained before the shard waits again (`flush_dirty`).
    pub(super) fn drive_subscribers(&mut self, touched: Vec<ConnId>) {
        (self.parts.dirty).extend(touched.into_iter().map(|c| (c, Side::Subscriber)));
    }

    /// Drains the sessions that signalling or the API changed.
    pub fn flush_dirty(
        &mut self,
        now: Instant,
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) {
        self.close_overflowed(now, out);
        let mut dirty = std::mem::take(&mut self.parts.dirty);
        dirty.sort_unstable_by_key(|(c, s)| (*c, *s == Side::Subscriber));
        dirty.dedup();
        for key in dirty {
            self.tick(key, now, transmits, out);
        }
    }

    /// The earliest session deadline of the shard.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let (rooms, conns) = (&self.rooms, &self.conns);
        self.timers.next(|k| deadline_of(rooms, conns, k))
    }

    /// When the shard's timer must run next: the earliest session deadline, the next
    /// active-speaker poll (rooms with audio) and connection-quality tick (rooms with
    /// participants); `None` when nothing waits.
    pub fn next_wake(&mut self, now: Instant) -> Option<Instant> {
        let has_speakers = self.rooms.values().any(|r| r.speakers.is_some());
        let speakers = has_speakers.then(|| self.next_speaker_poll.unwrap_or(now));
        let quality = (!self.conns.is_empty()).then(|| self.next_quality_tick.unwrap_or(now));
        [self.next_deadline(), speakers, quality]
            .into_iter()
            .flatten()
            .min()
    }

    /// Records a session's new deadline in the heap, rebuilding the heap when stale
    /// entries have piled up.
    fn schedule(&mut self, key: PeerKey, next: Option<Instant>) {
        let Some(at) = next else {
            return;
        };
        self.timers.schedule(key, at);
        if self.timers.needs_rebuild(self.parts.demux.sessions()) {
            let current = self
                .rooms
                .values()
                .flat_map(|r| r.participants.values())
                .flat_map(|p| {
                    let m = &p.media;
                    [
                        m.publisher_deadline.map(|d| ((p.conn, Side::Publisher), d)),
                        m.subscriber_deadline
                            .map(|d| ((p.conn, Side::Subscriber), d)),
                    ]
                    .into_iter()
                    .flatten()
                });
            self.timers.rebuild(current);
        }
    }

    /// Runs one session's timers and acts on the result.
    pub(super) fn tick(
        &mut self,
        key: PeerKey,
        now: Instant,
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) {
        let key = self.canonical(key);
        let mut drained = Vec::new();
        let mut sent = (0, 0);
        let mut next = None;
        if let Some((session, deadline)) = self.session_mut(key) {
            if let Err(e) = session.handle_timeout(now) {
                debug!(conn = key.0, error = %e, "session timeout failed");
            }
            (sent, next) = drain_into(key, session, deadline, transmits, &mut drained);
        }
        self.count_sent(sent);
        self.schedule(key, next);
        self.process(drained, now, transmits, out);
    }

    fn count_sent(&mut self, (packets, bytes): (u64, u64)) {
        self.counters.packets_out += packets;
        self.counters.bytes_out += bytes;
    }

    pub(super) fn participant_by_conn(&mut self, conn: ConnId) -> Option<&mut Participant> {
        let (room, slot, _) = self.at_conn(conn)?;
        room.participants.at_mut(slot)
    }

    /// A PC's once-a-second link figures go to its participant's room (`allocator_room`).
    pub(super) fn on_link_stats(
        &mut self,
        (conn, side): PeerKey,
        stats: crate::session::LinkStats,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        debug!(conn, ?side, ?stats, "link figures");
        if let Some((room, slot, _)) = self.at_conn(conn) {
            let paused = room.on_link_stats((slot, side), stats, now, out);
            self.counters.bandwidth_pauses += paused;
        }
    }

    /// The room and member slots of a connection's participant: the cached place when
    /// the participant there still has this connection id, else found by name and
    /// cached.
    pub(super) fn place_of(&mut self, conn: ConnId) -> Option<(RoomSlot, Slot)> {
        self.conns.place(&self.rooms, conn)
    }

    /// Forgets a connection's room and identity (and its cached place).
    pub(super) fn forget_conn(&mut self, conn: ConnId) -> Option<(String, String)> {
        self.conns.forget(conn)
    }

    /// The key a session is filed under: a single PC (`/rtc/v1`) is the publisher
    /// side, whichever side asks for it.
    pub(super) fn canonical(&self, (conn, side): PeerKey) -> PeerKey {
        if side == Side::Subscriber && self.is_single_pc(conn) {
            (conn, Side::Publisher)
        } else {
            (conn, side)
        }
    }

    pub(super) fn is_single_pc(&self, conn: ConnId) -> bool {
        (self.conns.participant(&self.rooms, conn)).is_some_and(|p| p.media.single_pc)
    }

    pub(super) fn session_mut(
        &mut self,
        (conn, side): PeerKey,
    ) -> Option<(&mut PeerSession, &mut Option<Instant>)> {
        self.participant_by_conn(conn)?
            .media
            .session_and_deadline(side)
    }

    /// Creates the session for `key` if missing (`Room::ensure_session`).
    pub(super) fn ensure_session(&mut self, (conn, side): PeerKey, now: Instant) -> bool {
        (self.at_conn(conn))
            .is_some_and(|(r, slot, parts)| r.ensure_session(slot, side, now, parts))
    }

    /// Forgets every demux entry of a participant's sessions.
    pub(super) fn forget_peers(&mut self, conn: ConnId) {
        self.parts.demux.forget_conn(conn);
    }

    /// Acts on drained events. Forwarding writes into other sessions, which are then
    /// ticked so their packets leave in this same turn.
    fn process(
        &mut self,
        drained: Vec<Drained>,
        now: Instant,
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) {
        for Drained { key, events } in drained {
            let mut touched = Vec::new();
            for event in events {
                self.on_event(key, event, now, out, &mut touched);
            }
            if self.batching {
                self.batch_touched.extend(touched);
                continue;
            }
            touched.sort_unstable();
            touched.dedup();
            for conn in touched {
                self.tick((conn, Side::Subscriber), now, transmits, out);
            }
        }
        // Relayed data may have overflowed a subscriber's queue (`deliver_data`).
        self.close_overflowed(now, out);
    }

    pub(super) fn on_event(
        &mut self,
        key: PeerKey,
        event: SessionEvent,
        now: Instant,
        out: &mut Vec<Outbound>,
        touched: &mut Vec<ConnId>,
    ) {
        match event {
            SessionEvent::Connected => {
                if let Some(p) = self.participant_by_conn(key.0) {
                    p.media.ice.connected(key.1 as usize, now);
                }
                self.on_connected(key, out)
            }
            SessionEvent::Panicked(why) => {
                warn!(conn = key.0, side = ?key.1, panic = %why, "peer connection panicked: ending its session");
                self.counters.session_panics += 1;
            }
            SessionEvent::Disconnected => {
                debug!(conn = key.0, side = ?key.1, "peer connection lost");
                self.remove_conn(key.0, lk::DisconnectReason::UnknownReason, now, out);
            }
            SessionEvent::IceLost => {
                debug!(conn = key.0, side = ?key.1, "ICE lost the peer; waiting for it to return");
                let udp = self
                    .session_mut(key)
                    .is_none_or(|(s, _)| s.last_transport() != Some(Transport::Tcp));
                let steer = self.participant_by_conn(key.0).and_then(|p| {
                    p.media.ice_lost[key.1 as usize].get_or_insert(now);
                    // A failure counts only while the signal connection is up: else the
                    // whole network went, not UDP (LiveKit).
                    match p.departs_at {
                        None => p.media.ice.lost(key.1 as usize, udp, now),
                        Some(_) => None,
                    }
                });
                if let Some(preference) = steer {
                    self.steer(key.0, preference, now);
                }
            }
            SessionEvent::IceRestored => {
                debug!(conn = key.0, side = ?key.1, "ICE found the peer again");
                if let Some(p) = self.participant_by_conn(key.0) {
                    p.media.ice_lost[key.1 as usize] = None;
                }
            }
            SessionEvent::Rtp(rtp) if key.1 == Side::Publisher => {
                self.forward_rtp(key.0, rtp, now, touched);
            }
            // Only PCs we send on get these: subscriber PCs, and single PCs.
            SessionEvent::KeyframeRequest { mid, .. } => {
                self.relay_keyframe_request(key.0, mid, now);
            }
            SessionEvent::LinkStats(stats) => self.on_link_stats(key, stats, now, out),
            SessionEvent::StreamCounts(c) => self.counters.add_stream(&c),
            SessionEvent::ChannelData { label, data, .. } if key.1 == Side::Publisher => {
                self.relay_data(key.0, &label, &data, touched);
            }
            _ => {}
        }
    }

    /// `rtc.allow_tcp_fallback`: the participant's next connections use `preference`
    /// (remembered for its next join).
    pub(super) fn steer(&mut self, conn: ConnId, preference: IcePreference, now: Instant) {
        if !self.tcp_fallback {
            return;
        }
        let Some((room, identity)) = self.conns.owned_names(conn) else {
            return;
        };
        info!(%room, %identity, ?preference, "ICE fallback: the participant's next connection is steered");
        self.ice_preferences.put(&room, &identity, preference, now);
        if let Some(p) = self.participant_by_conn(conn) {
            p.media.ice.preference = preference;
        }
    }

    fn on_connected(&mut self, key: PeerKey, out: &mut Vec<Outbound>) {
        let Some(p) = self.participant_by_conn(key.0) else {
            return;
        };
        if p.media.connected {
            return;
        }
        p.media.connected = true;
        p.info.state = lk::participant_info::State::Active as i32;
        p.bump();
        let info = p.info.clone();
        if !p.hidden() {
            if let Some((room, _, _)) = self.at_conn(key.0) {
                room.send_update_to_others(key.0, info, out);
            }
        }
    }
}

/// A session's current deadline, for the heap to tell current entries from stale ones.
fn deadline_of(
    rooms: &RoomTable,
    conns: &super::connections::Connections,
    (conn, side): PeerKey,
) -> Option<Instant> {
    let m = &conns.participant(rooms, conn)?.media;
    match side {
        Side::Publisher => m.publisher_deadline,
        Side::Subscriber => m.subscriber_deadline,
    }
}

/// Drains one session; returns the datagrams and bytes it queued for sending, and its
/// new deadline (also stored in `deadline`) for the heap.
fn drain_into(
    key: PeerKey,
    session: &mut PeerSession,
    deadline: &mut Option<Instant>,
    transmits: &mut Vec<Transmit>,
    drained: &mut Vec<Drained>,
) -> ((u64, u64), Option<Instant>) {
    let mut events = Vec::new();
    let before = transmits.len();
    let result = session.drain(transmits, &mut events);
    let added = &transmits[before..];
    let sent = (
        added.len() as u64,
        added.iter().map(|t| t.contents.len() as u64).sum::<u64>(),
    );
    match result {
        Ok(next) => *deadline = Some(next),
        Err(e) => {
            if let SessionError::Panicked(why) = &e {
                events.push(SessionEvent::Panicked(why.clone()));
            }
            debug!(conn = key.0, error = %e, "session failed");
            *deadline = None;
            events.push(SessionEvent::Disconnected);
        }
    }
    if !events.is_empty() {
        drained.push(Drained { key, events });
    }
    (sent, *deadline)
}

/// The local ufrag of a STUN binding request (USERNAME is `ours:theirs`), without
/// allocating. Anything that is not a well-formed STUN message gives `None`.
pub fn stun_ufrag(datagram: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    const USERNAME: u16 = 0x0006;
    if datagram.len() < 20 || datagram[0] & 0xC0 != 0 || datagram[4..8] != MAGIC {
        return None;
    }
    let body_len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(20..20 + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A STUN binding request with this USERNAME and no MESSAGE-INTEGRITY.
    pub(in crate::room) fn stun(username: &[u8]) -> Vec<u8> {
        let padded = username.len().div_ceil(4) * 4;
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&0x0006u16.to_be_bytes());
        m.extend_from_slice(&(username.len() as u16).to_be_bytes());
        m.extend_from_slice(username);
        m.resize(20 + 4 + padded, 0);
        m
    }

    #[test]
    fn a_batch_is_driven_in_shares_and_each_session_once() {
        let t0 = crate::clock::now().mono;
        let mut rooms = crate::room::fuzzing::two_joined(t0);
        rooms.begin_batch();
        rooms.batch_touched.extend([2, 1, 2]);
        let mut rest = rooms.finish_batch();
        assert_eq!(rest.touched, vec![1, 2], "in order, each once");
        let waiting = Transmit {
            transport: Transport::Udp,
            source: "10.0.0.2:7882".parse().unwrap(),
            destination: "10.0.0.1:5000".parse().unwrap(),
            contents: vec![0; 100],
        };
        let (mut transmits, mut out) = (vec![waiting], Vec::new());
        // A datagram is ready once the first session is driven: it is sent first.
        assert!(rooms.drive_batch(&mut rest, t0, &mut transmits, &mut out, 1));
        assert_eq!(rest.next, 1);
        // The last session ends the batch even with datagrams ready.
        assert!(!rooms.drive_batch(&mut rest, t0, &mut transmits, &mut out, 1));
        assert_eq!(rest.next, 2);
        assert!(!rooms.drive_batch(&mut rest, t0, &mut transmits, &mut out, 1));
        assert_eq!(rest.next, 2, "nothing is driven twice");
        // Its list's allocation serves the next batch, which starts empty.
        assert!(rooms.batch_touched.is_empty());
        assert!(rooms.batch_touched.capacity() >= 2);
        rooms.begin_batch();
        assert!(rooms.finish_batch().touched.is_empty());
    }

    #[test]
    fn ufrag_from_stun_username() {
        assert_eq!(stun_ufrag(&stun(b"ourufrag:theirs")), Some("ourufrag"));
        assert_eq!(stun_ufrag(&stun(b"x")), Some("x"));
    }

    #[test]
    fn non_stun_and_truncated_input_is_none() {
        assert_eq!(stun_ufrag(b""), None);
        assert_eq!(stun_ufrag(&[0x80; 40]), None, "RTP");
        let mut cut = stun(b"ourufrag:theirs");
        cut.truncate(26);
        assert_eq!(stun_ufrag(&cut), None);
        let mut lying = stun(b"ab:cd");
        lying[3] = 0xff;
        assert_eq!(stun_ufrag(&lying), None);
    }
}
