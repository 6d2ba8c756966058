//! The rooms one shard owns. Participants join through the media plane; until then a
//! room holds its info, its participants (none yet) and its lifetime deadlines.

use std::time::Instant;

use livekit_protocol as lk;

use super::members::Slot;
use super::one_room::Room;
use super::participant::{ConnId, Participant};
use super::room_ops::{Outbound, RoomError, RoomEvent, RoomOp, RoomReply};
use crate::ids;

/// Values a room gets when its CreateRoomRequest (or the first join) leaves them at 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomDefaults {
    pub empty_timeout: u32,
    pub departure_timeout: u32,
    pub max_participants: u32,
}

/// Size limits from `limit.*`; 0 means unlimited, as in LiveKit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomLimits {
    pub max_metadata_size: u32,
    pub max_room_name_length: u32,
    /// Keys plus values of one participant's attributes, in bytes.
    pub max_attributes_size: u32,
    /// Tracks of a kind one participant may be subscribed to at a time.
    pub subscription_limit_video: u32,
    pub subscription_limit_audio: u32,
}

/// Running totals of one shard, reported to the control thread every second and summed
/// there for `/metrics`. Plain integers: only this shard writes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    /// RTP packets written to subscriber downtracks.
    pub forwarded: u64,
    /// Datagrams that matched no session (neither a known address nor our ufrag).
    pub dropped_unknown_flow: u64,
    /// Keyframe requests relayed from subscribers or made for layer starts.
    pub keyframe_requests: u64,
    /// Of those, requests repeated because the layer sent no keyframe since the last.
    pub keyframe_request_repeats: u64,
    /// Requests for a layer the publisher does not send (not sent).
    pub keyframe_request_failures: u64,
    pub participant_joins: u64,
    pub data_packets: u64,
    /// Reliable data messages that waited for room in a subscriber's SCTP buffer.
    pub data_queued: u64,
    /// Lossy data messages dropped because the subscriber's SCTP buffer was full.
    pub data_lossy_dropped: u64,
    /// Participants closed because too much reliable data waited for them.
    pub data_overflow_closes: u64,
    /// Downtracks the stream allocator paused for bandwidth.
    pub bandwidth_pauses: u64,
    /// Sessions ended because str0m panicked inside them (see `session::guard`).
    pub session_panics: u64,
    /// NACK feedback messages sent to publishers (about media we receive).
    pub nacks_sent: u64,
    /// NACK feedback messages received from subscribers (about media we send).
    pub nacks_received: u64,
    /// Packets lost from publishers to us, audio and video: estimated from the loss
    /// fraction of our receiver reports (see `session::Loss`).
    pub lost_in: [u64; 2],
    /// Packets lost from us to subscribers, audio and video, as their receiver reports
    /// count them.
    pub lost_out: [u64; 2],
}

impl Counters {
    /// Index of `lost_in` / `lost_out` for a media kind (unknown counts as video).
    pub fn kind_index(kind: Option<crate::session::MediaKind>) -> usize {
        usize::from(kind != Some(crate::session::MediaKind::Audio))
    }

    /// Adds one stream's report (`SessionEvent::StreamCounts`).
    pub fn add_stream(&mut self, c: &crate::session::StreamCounts) {
        let kind = Self::kind_index(c.kind);
        match c.flow {
            crate::session::Flow::Ingress => {
                self.nacks_sent += c.nacks;
                self.lost_in[kind] += c.lost;
            }
            crate::session::Flow::Egress => {
                self.nacks_received += c.nacks;
                self.lost_out[kind] += c.lost;
            }
        }
    }
}

/// What this node says about itself in JoinResponse.server_info.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub node_id: String,
    pub region: String,
}

/// What a room's operations use of its shard besides the room: how to make peer
/// connections and route their datagrams, the limits, and the shard's outboxes (to
/// the other shards of spread rooms, webhook events, sessions to drain). Kept apart
/// from `Rooms` so that a `Room` can be handed these while the shard holds the room.
pub(super) struct ShardParts {
    /// The shard's UDP and TCP addresses, advertised as ICE host candidates.
    pub(super) local_candidates: crate::session::LocalAddrs,
    pub(super) codecs: crate::session::EnabledCodecs,
    /// Which peer connection a datagram belongs to.
    pub(super) demux: super::demux::Demux,
    pub(super) limits: RoomLimits,
    /// News for the other shards of spread rooms.
    pub(super) spread_out: Vec<super::spread::SpreadOut>,
    /// Room events since the driver last took them.
    pub(super) events: Vec<RoomEvent>,
    /// Sessions changed outside a datagram or timeout (signalling, API data) that must
    /// be drained before the shard waits again.
    pub(super) dirty: Vec<super::media::PeerKey>,
}

/// Every room of one shard, keyed by name.
pub struct Rooms {
    pub(super) rooms: super::room_table::RoomTable,
    /// Which room and identity each signal connection belongs to, and where its
    /// participant is (`place_of`).
    pub(super) conns: super::connections::Connections,
    pub(super) node: NodeInfo,
    /// What the rooms' own operations are lent (see `ShardParts`).
    pub(super) parts: ShardParts,
    /// `rtc.turn_servers` and `rtc.stun_servers`, for JoinResponse.ice_servers.
    pub(super) ice_servers: super::ice_servers::IceServerConfig,
    pub counters: Counters,
    /// The forwarder's per-packet state, reused from packet to packet.
    pub(super) fan_out: crate::sfu::forwarder::FanOut,
    /// Every session's next timeout (see `timers`).
    pub(super) timers: super::timers::DeadlineHeap,
    /// Reused by `handle_timeouts` for the sessions due.
    pub(super) due_scratch: Vec<super::media::PeerKey>,
    /// In a receive batch (`begin_batch`): subscribers written to, driven at its end.
    pub(super) batching: bool,
    pub(super) batch_touched: Vec<super::participant::ConnId>,
    /// Subscribers whose reliable data queue overflowed, closed at the end of the turn.
    pub(super) data_overflowed: Vec<super::participant::ConnId>,
    pub(super) next_speaker_poll: Option<Instant>,
    pub(super) next_quality_tick: Option<Instant>,
    defaults: RoomDefaults,
    /// `rtc.allow_tcp_fallback`, and the preferences it steered participants to.
    pub(super) tcp_fallback: bool,
    pub(super) ice_preferences: super::ice_fallback::RememberedPreferences,
    /// Packets of local publishers for the other shards of their rooms.
    pub(super) relay_out: Vec<super::spread::Relayed>,
    /// The rooms that have peers (maybe stale: `take_spread` drops those that no
    /// longer do), so that a turn on a shard with no spread room looks at none.
    pub(super) spread_rooms: Vec<String>,
}

impl Rooms {
    pub fn new(defaults: RoomDefaults, limits: RoomLimits, node: NodeInfo) -> Self {
        Rooms {
            rooms: Default::default(),
            conns: Default::default(),
            node,
            ice_servers: Default::default(),
            counters: Counters::default(),
            fan_out: Default::default(),
            timers: Default::default(),
            due_scratch: Vec::new(),
            batching: false,
            batch_touched: Vec::new(),
            data_overflowed: Vec::new(),
            next_speaker_poll: None,
            next_quality_tick: None,
            defaults,
            tcp_fallback: true,
            ice_preferences: Default::default(),
            parts: ShardParts {
                local_candidates: Default::default(),
                codecs: Default::default(),
                demux: Default::default(),
                limits,
                spread_out: Vec::new(),
                events: Vec::new(),
                dirty: Vec::new(),
            },
            relay_out: Vec::new(),
            spread_rooms: Vec::new(),
        }
    }

    /// Rooms whose home is this shard (copies of rooms homed elsewhere not counted).
    pub fn len(&self) -> usize {
        self.rooms.values().filter(|r| !r.spread.replica).count()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Participants connected to this shard (proxies of other shards' not counted).
    pub fn participant_count(&self) -> usize {
        self.local_participants().count()
    }

    fn local_participants(&self) -> impl Iterator<Item = &Participant> {
        self.rooms.values().flat_map(|r| r.local_participants())
    }

    /// Published tracks and subscribed downtracks on this shard.
    pub fn track_counts(&self) -> (usize, usize) {
        self.local_participants()
            .fold((0, 0), |(published, subscribed), p| {
                (
                    published + p.info.tracks.len(),
                    subscribed + p.media.downtracks.len(),
                )
            })
    }

    /// Applies one operation. `now` drives room lifetimes; `unix_secs` is what goes on
    /// the wire as `creation_time`.
    /// Messages for participants' signal connections go to `out`.
    pub fn apply(
        &mut self,
        op: RoomOp,
        now: Instant,
        unix_secs: u64,
        out: &mut Vec<Outbound>,
    ) -> Result<RoomReply, RoomError> {
        match op {
            RoomOp::Create(req) => self.create(&req, now, unix_secs).map(RoomReply::Room),
            RoomOp::Join { conn, params } => self
                .join(conn, &params, now, unix_secs, out)
                .map(|r| RoomReply::Joined(Box::new(r))),
            RoomOp::List { names } => Ok(RoomReply::Rooms(self.list(&names))),
            RoomOp::Resume { room, identity } => self.resume(&room, &identity, unix_secs),
            RoomOp::Delete { room } => {
                self.room(&room)?;
                self.close_room(&room, lk::DisconnectReason::RoomDeleted, out);
                Ok(RoomReply::Done)
            }
            RoomOp::UpdateMetadata { room, metadata } => {
                self.check_metadata(&metadata)?;
                let state = self.room_mut(&room)?;
                state.info.metadata = metadata;
                state.send_room_update(out);
                Ok(RoomReply::Room(state.info.clone()))
            }
            RoomOp::ListParticipants { room } => {
                let state = self.room(&room)?;
                Ok(RoomReply::Participants(
                    state
                        .participants
                        .values()
                        .map(|p| p.info.clone())
                        .collect(),
                ))
            }
            RoomOp::GetParticipant { room, identity } => self
                .participant(&room, &identity)
                .map(|p| RoomReply::Participant(p.info.clone())),
            RoomOp::RemoveParticipant { room, identity } => {
                let conn = self.participant(&room, &identity)?.conn;
                self.remove_conn(conn, lk::DisconnectReason::ParticipantRemoved, now, out);
                Ok(RoomReply::Done)
            }
            RoomOp::Seed { room } => self.seed(&room).map(|s| RoomReply::Seed(Box::new(s))),
            RoomOp::RequireParticipant { room, identity } => {
                self.participant(&room, &identity).map(|_| RoomReply::Done)
            }
            RoomOp::MutePublishedTrack(req) => (self.room_mut(&req.room)?)
                .server_mute(&req, out)
                .map(RoomReply::Track),
            RoomOp::UpdateParticipant(req) => {
                self.check_metadata(&req.metadata)?;
                self.check_attributes(&req.attributes)?;
                self.participant(&req.room, &req.identity)?;
                let info = self.update_participant(&req.room, &req.identity, &req, now, out)?;
                Ok(RoomReply::Participant(info))
            }
            RoomOp::UpdateSubscriptions(req) => {
                let (room, parts) = self.with_parts(&req.room).ok_or(RoomError::RoomNotFound)?;
                let slot = (room.participants.slot_of(&req.identity))
                    .ok_or(RoomError::ParticipantNotFound)?;
                let conn = room.participant(&req.identity)?.conn;
                let sids =
                    super::subscription::named_tracks(req.track_sids, req.participant_tracks);
                room.update_subscriptions(slot, &sids, req.subscribe, now, parts, out);
                parts.dirty.push((conn, super::media::Side::Subscriber));
                self.update_dynacast(&req.room, out);
                Ok(RoomReply::Done)
            }
            RoomOp::SendData(req) => {
                self.room(&req.room)?;
                self.send_api_data(&req);
                Ok(RoomReply::Done)
            }
        }
    }

    /// Closes rooms whose lifetime ran out and returns their names.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let closed: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.unused() && r.close_at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in &closed {
            if let Some(room) = self.rooms.remove(name) {
                for p in room.participants.values() {
                    self.forget_conn(p.conn);
                }
                if !room.spread.replica {
                    self.parts.events.push(RoomEvent::RoomFinished(room.info));
                }
            }
        }
        closed
    }

    /// Sends SpeakersChanged where a room's active speakers changed.
    pub fn tick_speakers(&mut self, now: Instant, out: &mut Vec<Outbound>) {
        if self.next_speaker_poll.is_some_and(|at| now < at) {
            return;
        }
        self.next_speaker_poll = Some(now + super::speaker_room::POLL_EVERY);
        for r in self.rooms.values_mut() {
            r.poll_speakers(now, out);
        }
    }

    /// Sends ConnectionQualityUpdate where a participant's score changed (every 5 s).
    pub fn tick_quality(&mut self, now: Instant, out: &mut Vec<Outbound>) {
        if self.next_quality_tick.is_some_and(|at| now < at) {
            return;
        }
        self.next_quality_tick = Some(now + super::quality_room::UPDATE_EVERY);
        for r in self.rooms.values_mut() {
            r.tick_quality(now, out, &mut self.parts.spread_out);
        }
    }

    /// Dynacast for `room` after its subscriptions or layers changed.
    pub(super) fn update_dynacast(&mut self, room: &str, out: &mut Vec<Outbound>) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.update_dynacast(out, &mut self.parts.spread_out);
        }
    }

    /// The room `name`, with the shard's parts beside it.
    pub(super) fn with_parts(&mut self, name: &str) -> Option<(&mut Room, &mut ShardParts)> {
        Some((self.rooms.get_mut(name)?, &mut self.parts))
    }

    /// The room and member slot of `conn`'s participant, with the shard's parts.
    pub(super) fn at_conn(&mut self, conn: ConnId) -> Option<(&mut Room, Slot, &mut ShardParts)> {
        let (room, slot) = self.place_of(conn)?;
        Some((self.rooms.at_mut(room)?, slot, &mut self.parts))
    }

    /// Subscriber offers (or asks to offer) for `room`'s participants with changes
    /// queued (`offers`).
    pub(super) fn send_pending_offers(&mut self, room: &str, out: &mut Vec<Outbound>) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.send_pending_offers(&mut self.parts.demux, out);
        }
    }

    /// Room events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<RoomEvent> {
        std::mem::take(&mut self.parts.events)
    }

    pub(super) fn create(
        &mut self,
        req: &lk::CreateRoomRequest,
        now: Instant,
        unix_secs: u64,
    ) -> Result<lk::Room, RoomError> {
        if req.name.is_empty() {
            return Err(RoomError::NoRoomName);
        }
        let max_name = self.parts.limits.max_room_name_length as usize;
        if max_name > 0 && req.name.len() > max_name {
            return Err(RoomError::RoomNameTooLong);
        }
        self.check_metadata(&req.metadata)?;
        if let Some(existing) = self.rooms.get(&req.name) {
            return Ok(existing.info.clone());
        }
        let or_default = |v: u32, d: u32| if v == 0 { d } else { v };
        let info = lk::Room {
            sid: ids::guid(ids::ROOM_PREFIX),
            name: req.name.clone(),
            empty_timeout: or_default(req.empty_timeout, self.defaults.empty_timeout),
            departure_timeout: or_default(req.departure_timeout, self.defaults.departure_timeout),
            max_participants: or_default(req.max_participants, self.defaults.max_participants),
            creation_time: unix_secs as i64,
            creation_time_ms: (unix_secs as i64).saturating_mul(1000),
            metadata: req.metadata.clone(),
            ..Default::default()
        };
        self.parts.events.push(RoomEvent::RoomStarted(info.clone()));
        (self.rooms).insert(req.name.clone(), Room::open(info.clone(), now));
        Ok(info)
    }

    fn list(&self, names: &[String]) -> Vec<lk::Room> {
        let mut rooms: Vec<lk::Room> = self
            .rooms
            .values()
            .filter(|r| !r.spread.replica)
            .filter(|r| names.is_empty() || names.contains(&r.info.name))
            .map(|r| r.info.clone())
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        rooms
    }

    pub(super) fn check_metadata(&self, metadata: &str) -> Result<(), RoomError> {
        let max = self.parts.limits.max_metadata_size as usize;
        if max > 0 && metadata.len() > max {
            return Err(RoomError::MetadataTooLarge);
        }
        Ok(())
    }

    /// LiveKit's check: the keys and values of the request, not of the result.
    pub(super) fn check_attributes(
        &self,
        attributes: &std::collections::HashMap<String, String>,
    ) -> Result<(), RoomError> {
        let max = self.parts.limits.max_attributes_size as usize;
        let size: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        if max > 0 && size > max {
            return Err(RoomError::AttributesTooLarge);
        }
        Ok(())
    }

    pub(super) fn room(&self, name: &str) -> Result<&Room, RoomError> {
        self.rooms.get(name).ok_or(RoomError::RoomNotFound)
    }

    pub(super) fn room_mut(&mut self, name: &str) -> Result<&mut Room, RoomError> {
        self.rooms.get_mut(name).ok_or(RoomError::RoomNotFound)
    }

    pub(super) fn participant(
        &self,
        room: &str,
        identity: &str,
    ) -> Result<&Participant, RoomError> {
        self.room(room)?.participant(identity)
    }
}
