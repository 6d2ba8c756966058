//! A room served by several shards (broadcast). The room's *home* shard and every
//! other shard that hosts some of its participants each hold a copy of the room; in a
//! copy, the participants of the other shards appear as *proxies*: their info and
//! tracks, no peer connection. Whatever one shard's participants do reaches the other
//! copies as [`SpreadMsg`]s (through the control thread, which knows where each room
//! and participant is, never dropped), and the media of its publishers as one shared
//! copy per packet per shard (`shard::relay_io`, dropped when a shard falls behind).
//! So today's join, ParticipantUpdate, subscription, forwarding and data code works on
//! every copy unchanged: a proxy is a participant whose packets arrive relayed.
//!
//! Ownership: each participant's state is owned by the shard it is connected to and
//! only mirrored elsewhere; the room's own state (info, metadata, lifetime, webhooks)
//! is owned by the home shard. See `../shared/docs/architecture.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use livekit_protocol as lk;

use super::one_room::Room;
use super::participant::{ConnId, Participant};
use super::rooms::Rooms;
use crate::session::{Mid, Rid, RtpIn};

/// Proxies get the connection id of the participant they stand for with this bit set:
/// ids the control thread hands out never have it, so nothing sent to a proxy can reach
/// a real connection, and a relayed packet names its proxy without a lookup.
pub const PROXY_BIT: ConnId = 1 << 63;

/// The proxy of the participant connected (on another shard) as `origin`.
pub fn proxy_conn(origin: ConnId) -> ConnId {
    origin | PROXY_BIT
}

pub fn is_proxy(conn: ConnId) -> bool {
    conn & PROXY_BIT != 0
}

/// The connection a proxy stands for.
pub fn origin_conn(conn: ConnId) -> ConnId {
    conn & !PROXY_BIT
}

/// A participant as the other shards of its room see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Its connection on the shard that hosts it.
    pub conn: ConnId,
    pub info: lk::ParticipantInfo,
    /// Its publisher PC's mids and the tracks they carry: relayed packets name the mid.
    pub published: Vec<(Mid, Arc<str>)>,
}

/// One shard's news about a spread room for the other shards hosting it.
#[derive(Debug, Clone, PartialEq)]
pub enum SpreadMsg {
    /// A local participant joined or changed.
    Member(Box<Member>),
    /// A local participant left; `info` is its last state (DISCONNECTED).
    Gone {
        conn: ConnId,
        info: Box<lk::ParticipantInfo>,
    },
    /// A data packet from a local participant, stamped with its sender.
    Data {
        from: ConnId,
        label: String,
        packet: Vec<u8>,
    },
    /// Subscribers on the sending shard need a keyframe of `publisher`'s track.
    Keyframe {
        publisher: ConnId,
        mid: Mid,
        rid: Option<Rid>,
    },
    /// The simulcast qualities the sending shard's subscribers want of a track of
    /// the receiving shard's (dynacast counts every shard's subscribers).
    Wants {
        track_sid: String,
        qualities: BTreeSet<i32>,
    },
    /// Connection quality of the sending shard's participants.
    Quality(Vec<lk::ConnectionQualityInfo>),
    /// Whether the sending shard has subscribers of a track of the receiving shard's: a
    /// shard that has none is not sent its packets until it says it has again.
    Interest { track_sid: String, wanted: bool },
}

/// Where the control thread takes a [`SpreadMsg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpreadTo {
    /// Every other shard hosting the room.
    Peers,
    /// One shard (a new peer's first view of this shard's participants).
    Shard(usize),
    /// The shard where this connection's participant is.
    HostOf(ConnId),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpreadOut {
    pub room: String,
    pub to: SpreadTo,
    pub msg: SpreadMsg,
}

/// What a shard needs to open its copy of a room homed elsewhere: the home's own info
/// (sid, creation time, options) and its E2EE trailer, so all copies look the same.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub info: lk::Room,
    pub sif_trailer: Vec<u8>,
}

/// One packet of a local publisher for another shard hosting its room.
#[derive(Debug)]
pub struct Relayed {
    pub shard: usize,
    pub publisher: ConnId,
    pub rtp: RtpIn,
}

/// A room's spread state on one shard.
#[derive(Debug, Default)]
pub struct RoomSpread {
    /// The other shards hosting the room; empty while it is on this shard only.
    pub peers: Vec<usize>,
    /// This copy is not the home's: no room webhooks, not listed, closes when its own
    /// participants are gone.
    pub replica: bool,
    /// Dynacast wants of other shards' subscribers, per track and shard.
    pub wants: HashMap<String, BTreeMap<usize, BTreeSet<i32>>>,
    /// When a proxy's track last asked its publisher's shard for a keyframe.
    pub(super) keyframe_asked: HashMap<(ConnId, Mid, Option<Rid>), Instant>,
    /// Local tracks whose packets some peers do not want (no subscriber there).
    pub unwanted: HashMap<String, Vec<usize>>,
    /// Proxies' tracks this shard told their publisher's shard it does not want.
    pub(super) told_unwanted: HashMap<Arc<str>, Instant>,
}

impl RoomSpread {
    /// Qualities other shards want of `track_sid`.
    pub fn remote_wants(&self, track_sid: &str) -> BTreeSet<i32> {
        self.wants
            .get(track_sid)
            .map(|per_shard| per_shard.values().flatten().copied().collect())
            .unwrap_or_default()
    }
}

impl Rooms {
    /// The room's hosting shards changed: `peers` are the others now, `home` says
    /// whether this copy is the home's. With `seed`, a shard that has no copy opens one.
    /// Each newly added peer is sent this shard's participants.
    pub fn set_peers(
        &mut self,
        room: &str,
        peers: Vec<usize>,
        home: bool,
        seed: Option<Seed>,
        now: Instant,
    ) {
        if !self.rooms.contains_key(room) {
            let Some(seed) = seed else {
                return;
            };
            (self.rooms).insert(room.to_string(), Room::copy_of(seed, now));
        }
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let added: Vec<usize> = (peers.iter())
            .filter(|p| !state.spread.peers.contains(p))
            .copied()
            .collect();
        state.spread.wants.values_mut().for_each(|per_shard| {
            per_shard.retain(|shard, _| peers.contains(shard));
        });
        (state.spread.unwanted.values_mut())
            .for_each(|shards| shards.retain(|s| peers.contains(s)));
        if !peers.is_empty() && !self.spread_rooms.iter().any(|r| r == room) {
            self.spread_rooms.push(room.to_string());
        }
        state.spread.peers = peers;
        let promoted = home && state.spread.replica;
        if promoted && state.local_participants().next().is_none() {
            // The home closed its copy, which it does once nobody is left anywhere:
            // the room is over and finished there. This empty copy stays a copy and
            // closes now, without finishing the room a second time.
            state.close_at = now;
        } else {
            state.spread.replica = !home;
        }
        for shard in added {
            for p in state.participants.values().filter(|p| !is_proxy(p.conn)) {
                self.parts.spread_out.push(SpreadOut {
                    room: room.to_string(),
                    to: SpreadTo::Shard(shard),
                    msg: SpreadMsg::Member(Box::new(member_of(p))),
                });
            }
        }
    }

    /// The news this shard has for the other shards of its spread rooms: what was
    /// queued, and every local participant whose state changed since it was last sent.
    pub fn take_spread(&mut self) -> Vec<SpreadOut> {
        let (rooms, spread_out) = (&mut self.rooms, &mut self.parts.spread_out);
        self.spread_rooms.retain(|name| {
            let Some(state) = rooms.get_mut(name) else {
                return false;
            };
            if state.spread.peers.is_empty() {
                return false;
            }
            for p in state.participants.values_mut() {
                if is_proxy(p.conn) {
                    continue;
                }
                let now_at = (p.info.version, p.media.published.len());
                if p.mirrored == Some(now_at) {
                    continue;
                }
                p.mirrored = Some(now_at);
                spread_out.push(SpreadOut {
                    room: name.clone(),
                    to: SpreadTo::Peers,
                    msg: SpreadMsg::Member(Box::new(member_of(p))),
                });
            }
            true
        });
        std::mem::take(&mut self.parts.spread_out)
    }

    /// What another shard needs to open its copy of `room`.
    pub fn seed(&self, room: &str) -> Result<Seed, super::RoomError> {
        let state = self.room(room)?;
        Ok(Seed {
            info: state.info.clone(),
            sif_trailer: state.sif_trailer.clone(),
        })
    }

    /// Packets of local publishers for the other shards of their rooms, queued since
    /// the caller last drained them.
    pub fn relays(&mut self) -> &mut Vec<Relayed> {
        &mut self.relay_out
    }

    /// A packet relayed by the shard of its publisher (`origin`): it fans out here
    /// through the publisher's proxy. Call inside a batch (`begin_batch`): the
    /// subscriber sessions written to are driven at its end.
    pub fn forward_relayed(&mut self, origin: ConnId, rtp: RtpIn, now: Instant) {
        let mut touched = std::mem::take(&mut self.batch_touched);
        self.forward_rtp(proxy_conn(origin), rtp, now, &mut touched);
        self.batch_touched = touched;
    }
}

/// What the other shards see of a local participant.
pub(super) fn member_of(p: &Participant) -> Member {
    Member {
        conn: p.conn,
        info: p.info.clone(),
        published: p
            .media
            .published
            .iter()
            .map(|(mid, sid)| (*mid, sid.clone()))
            .collect(),
    }
}
