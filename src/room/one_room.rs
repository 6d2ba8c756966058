//! One room as a shard holds it: its info, its participants, when it closes, and the
//! basics of what a room does on its own (telling its participants, counting them,
//! its lifetime). The rest of a room's own behaviour is `impl Room` in the file of its
//! concern (negotiation, subscription, permission, speakers, quality, dynacast, the
//! allocator, ...), each taking a participant by its slot. `Rooms` finds a room by
//! name or by connection and lends it the shard's parts it needs (`ShardParts`).

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::participant::{ConnId, Participant};
use super::room_ops::{reply, Outbound, RoomError};
use super::spread::{is_proxy, RoomSpread, Seed};
use crate::ids;

pub(super) struct Room {
    pub(super) info: lk::Room,
    /// Keyed by identity.
    pub(super) participants: super::members::Members,
    /// Close the room at this instant unless someone is in it.
    pub(super) close_at: Instant,
    /// JoinResponse.sif_trailer: random per room, as LiveKit's. E2EE clients treat a
    /// frame ending in it as server-injected and do not try to decrypt it.
    pub(super) sif_trailer: Vec<u8>,
    /// The other shards hosting this room, if it spans several (`spread`).
    pub(super) spread: RoomSpread,
    /// Active-speaker detection, from the room's first audio level on.
    pub(super) speakers: Option<crate::sfu::speaker::SpeakerDetector>,
}

impl Room {
    /// A room opened on this shard: it closes after its empty timeout unless someone
    /// joins first.
    pub(super) fn open(info: lk::Room, now: Instant) -> Room {
        let close_at = now + Duration::from_secs(u64::from(info.empty_timeout));
        Room {
            info,
            participants: Default::default(),
            close_at,
            sif_trailer: format!("{}{}", ids::guid(""), ids::guid("")).into_bytes(),
            spread: RoomSpread::default(),
            speakers: None,
        }
    }

    /// This shard's copy of a room homed on another: the home's info and trailer, so
    /// that all copies look the same to clients.
    pub(super) fn copy_of(seed: Seed, now: Instant) -> Room {
        let close_at = now + Duration::from_secs(u64::from(seed.info.departure_timeout));
        Room {
            info: seed.info,
            participants: Default::default(),
            close_at,
            sif_trailer: seed.sif_trailer,
            spread: RoomSpread::default(),
            speakers: None,
        }
    }

    /// Nobody of this shard is in it. A copy of a room homed elsewhere does not count
    /// the proxies of the other shards' participants (they stay on those shards' copies).
    pub(super) fn unused(&self) -> bool {
        (self.participants.values()).all(|p| self.spread.replica && is_proxy(p.conn))
    }

    pub(super) fn participant(&self, identity: &str) -> Result<&Participant, RoomError> {
        (self.participants.get(identity)).ok_or(RoomError::ParticipantNotFound)
    }

    /// Participants on this shard (proxies of other shards' not counted).
    pub(super) fn local_participants(&self) -> impl Iterator<Item = &Participant> {
        self.participants.values().filter(|p| !is_proxy(p.conn))
    }

    /// Recounts `num_participants` after someone came or went: hidden ones are not
    /// counted, as in LiveKit.
    pub(super) fn recount(&mut self) {
        self.info.num_participants = visible_count(self.participants.values());
    }

    /// Starts the departure timeout once the last participant has gone.
    pub(super) fn close_if_left(&mut self, now: Instant) {
        if self.participants.is_empty() {
            self.close_at = now + Duration::from_secs(u64::from(self.info.departure_timeout));
        }
    }

    /// Sends `msg` to the room's participants on this shard but `except`. Proxies of
    /// other shards' participants are skipped: their own shard tells them.
    pub(super) fn send_to_others(&self, except: ConnId, msg: Resp, out: &mut Vec<Outbound>) {
        for p in self.local_participants().filter(|p| p.conn != except) {
            reply(out, p.conn, msg.clone());
        }
    }

    /// Sends `msg` to every participant of the room on this shard.
    pub(super) fn send_to_all(&self, msg: Resp, out: &mut Vec<Outbound>) {
        self.send_to_others(ConnId::MAX, msg, out);
    }

    /// ParticipantUpdate with a participant's new state, to everyone else here.
    pub(super) fn send_update_to_others(
        &self,
        about: ConnId,
        info: lk::ParticipantInfo,
        out: &mut Vec<Outbound>,
    ) {
        let msg = Resp::Update(lk::ParticipantUpdate {
            participants: vec![info],
        });
        self.send_to_others(about, msg, out);
    }

    /// RoomUpdate with the room's current info, to everyone here.
    pub(super) fn send_room_update(&self, out: &mut Vec<Outbound>) {
        let msg = Resp::RoomUpdate(lk::RoomUpdate {
            room: Some(self.info.clone()),
        });
        self.send_to_all(msg, out);
    }
}

pub(super) fn visible_count<'a>(participants: impl Iterator<Item = &'a Participant>) -> u32 {
    participants.filter(|p| !p.hidden()).count() as u32
}
