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
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use prost::Message;

use super::participant::{ConnId, Participant, ParticipantMedia};
use super::room_ops::{reply, Outbound};
use super::rooms::{RoomState, Rooms};
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

/// A proxy asks the publisher's shard for a keyframe at most this often per track and
/// layer: its forwarder asks on every packet while a downtrack waits for one.
const KEYFRAME_ASK_EVERY: Duration = Duration::from_millis(250);

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
    /// `publisher` (dynacast counts every shard's subscribers).
    Wants {
        publisher: ConnId,
        track_sid: String,
        qualities: BTreeSet<i32>,
    },
    /// Connection quality of the sending shard's participants.
    Quality(Vec<lk::ConnectionQualityInfo>),
    /// Whether the sending shard has subscribers of a track of `publisher`: a shard
    /// that has none is not sent its packets until it says it has again.
    Interest {
        publisher: ConnId,
        track_sid: String,
        wanted: bool,
    },
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
    keyframe_asked: HashMap<(ConnId, Mid, Option<Rid>), Instant>,
    /// Local tracks whose packets some peers do not want (no subscriber there).
    pub unwanted: HashMap<String, Vec<usize>>,
    /// Proxies' tracks this shard told their publisher's shard it does not want.
    told_unwanted: HashMap<Arc<str>, Instant>,
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
            let close_at = now + Duration::from_secs(u64::from(seed.info.departure_timeout));
            self.rooms.insert(
                room.to_string(),
                RoomState {
                    info: seed.info,
                    participants: Default::default(),
                    close_at,
                    sif_trailer: seed.sif_trailer,
                    spread: RoomSpread::default(),
                },
            );
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
        state.spread.peers = peers;
        state.spread.replica = !home;
        for shard in added {
            for p in state.participants.values().filter(|p| !is_proxy(p.conn)) {
                self.spread_out.push(SpreadOut {
                    room: room.to_string(),
                    to: SpreadTo::Shard(shard),
                    msg: SpreadMsg::Member(Box::new(member_of(p))),
                });
            }
        }
    }

    /// What another shard needs to open its copy of `room`.
    pub fn seed(&self, room: &str) -> Result<Seed, super::RoomError> {
        let state = self.room(room)?;
        Ok(Seed {
            info: state.info.clone(),
            sif_trailer: state.sif_trailer.clone(),
        })
    }

    /// News from another shard hosting `room`.
    pub fn on_spread(
        &mut self,
        room: &str,
        from_shard: usize,
        msg: SpreadMsg,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        if !self.rooms.contains_key(room) {
            return;
        }
        match msg {
            SpreadMsg::Member(member) => self.upsert_proxy(room, *member, now, out),
            SpreadMsg::Gone { conn, info } => self.remove_proxy(room, conn, *info, now, out),
            SpreadMsg::Data {
                from,
                label,
                packet,
            } => {
                let Ok(packet) = lk::DataPacket::decode(packet.as_slice()) else {
                    return;
                };
                let mut touched = Vec::new();
                self.deliver_data(room, Some(proxy_conn(from)), &label, &packet, &mut touched);
                self.dirty.extend(
                    touched
                        .into_iter()
                        .map(|c| (c, super::media::Side::Subscriber)),
                );
            }
            SpreadMsg::Keyframe {
                publisher,
                mid,
                rid,
            } => {
                if !is_proxy(publisher) {
                    self.request_keyframe(publisher, mid, rid.as_deref(), now);
                }
            }
            SpreadMsg::Wants {
                track_sid,
                qualities,
                ..
            } => {
                if let Some(state) = self.rooms.get_mut(room) {
                    (state.spread.wants.entry(track_sid).or_default())
                        .insert(from_shard, qualities);
                }
                self.update_dynacast(room, out);
            }
            SpreadMsg::Quality(updates) => {
                let msg = Resp::ConnectionQuality(lk::ConnectionQualityUpdate { updates });
                self.send_to_locals(room, msg, out);
            }
            SpreadMsg::Interest {
                track_sid, wanted, ..
            } => {
                if let Some(state) = self.rooms.get_mut(room) {
                    let shards = state.spread.unwanted.entry(track_sid).or_default();
                    shards.retain(|s| *s != from_shard);
                    if !wanted {
                        shards.push(from_shard);
                    }
                }
            }
        }
    }

    /// A relayed packet of a proxy's track found no subscriber here: its publisher's
    /// shard stops sending that track's packets (asked at most once a second).
    pub(super) fn unwanted_here(&mut self, proxy: ConnId, track_sid: &Arc<str>, now: Instant) {
        let Some((room, _)) = self.conns.get(&proxy) else {
            return;
        };
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let told = state.spread.told_unwanted.get(track_sid);
        if told.is_some_and(|at| now.saturating_duration_since(*at) < Duration::from_secs(1)) {
            return;
        }
        state.spread.told_unwanted.insert(track_sid.clone(), now);
        self.spread_out.push(SpreadOut {
            room: room.clone(),
            to: SpreadTo::HostOf(origin_conn(proxy)),
            msg: SpreadMsg::Interest {
                publisher: origin_conn(proxy),
                track_sid: track_sid.to_string(),
                wanted: false,
            },
        });
    }

    /// A local participant subscribed to `track_sid` of `publisher_sid`: if this shard
    /// had said it wanted none of that track, it wants it again.
    pub(super) fn wanted_here(&mut self, room: &str, publisher_sid: &str, track_sid: &str) {
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        if state.spread.told_unwanted.remove(track_sid).is_none() {
            return;
        }
        let publisher = (state.participants.values())
            .find(|p| p.info.sid == publisher_sid && is_proxy(p.conn))
            .map(|p| origin_conn(p.conn));
        if let Some(publisher) = publisher {
            self.spread_out.push(SpreadOut {
                room: room.to_string(),
                to: SpreadTo::HostOf(publisher),
                msg: SpreadMsg::Interest {
                    publisher,
                    track_sid: track_sid.to_string(),
                    wanted: true,
                },
            });
        }
    }

    fn send_to_locals(&self, room: &str, msg: Resp, out: &mut Vec<Outbound>) {
        if let Some(state) = self.rooms.get(room) {
            for p in state.participants.values().filter(|p| !is_proxy(p.conn)) {
                reply(out, p.conn, msg.clone());
            }
        }
    }

    /// A participant of another shard joined or changed: its proxy here follows, the
    /// local participants hear of it, and auto-subscribers get its new tracks.
    fn upsert_proxy(&mut self, room: &str, member: Member, now: Instant, out: &mut Vec<Outbound>) {
        let conn = proxy_conn(member.conn);
        let identity = member.info.identity.clone();
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let (old_tracks, replaced) = match state.participants.get(&identity) {
            Some(p) if p.conn == conn => {
                // An older state than the one here (a new peer's snapshot can cross
                // a change): nothing to do.
                if p.info.version > member.info.version {
                    return;
                }
                (p.info.tracks.clone(), None)
            }
            // The identity rejoined elsewhere: whoever had it here goes.
            Some(p) => (Vec::new(), Some(p.conn)),
            None => (Vec::new(), None),
        };
        if let Some(old) = replaced {
            if is_proxy(old) {
                let info = state.participants.get(&identity).map(|p| p.info.clone());
                if let Some(info) = info {
                    self.remove_proxy(room, origin_conn(old), info, now, out);
                }
            } else {
                let reason = lk::DisconnectReason::DuplicateIdentity;
                self.remove_conn(old, reason, now, out);
            }
        }
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let hidden = member.info.permission.as_ref().is_some_and(|p| p.hidden);
        let info = member.info.clone();
        match state.participants.get_mut(&identity) {
            Some(p) => {
                p.info = member.info;
                p.media.published = member.published.into_iter().collect();
            }
            None => {
                state.participants.insert(
                    identity.clone(),
                    Participant {
                        info: member.info,
                        conn,
                        auto_subscribe: false,
                        adaptive_stream: false,
                        media: ParticipantMedia {
                            published: member.published.into_iter().collect(),
                            ..Default::default()
                        },
                        departs_at: None,
                        last_reliable_seq: 0,
                        mirrored: None,
                    },
                );
                state.info.num_participants =
                    state.participants.values().filter(|p| !p.hidden()).count() as u32;
                self.conns.insert(conn, (room.to_string(), identity));
            }
        }
        if !hidden {
            let msg = Resp::Update(lk::ParticipantUpdate {
                participants: vec![info.clone()],
            });
            self.send_to_locals(room, msg, out);
        }
        let gone: Vec<String> = (old_tracks.iter())
            .filter(|t| !info.tracks.iter().any(|n| n.sid == t.sid))
            .map(|t| t.sid.clone())
            .collect();
        self.unsubscribe_all(room, &gone, now, out);
        for track in info.tracks.iter() {
            if !old_tracks.iter().any(|t| t.sid == track.sid) {
                self.subscribe_room_to(room, conn, track, now);
            }
        }
        self.send_pending_offers(room, out);
        self.update_dynacast(room, out);
    }

    /// A participant of another shard left: its proxy goes, as a local one would, but
    /// without webhooks (its own shard sends those).
    pub(super) fn remove_proxy(
        &mut self,
        room: &str,
        origin: ConnId,
        mut info: lk::ParticipantInfo,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let conn = proxy_conn(origin);
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let ours = state
            .participants
            .get(&info.identity)
            .is_some_and(|p| p.conn == conn);
        if !ours {
            return;
        }
        let Some(gone) = state.participants.remove(&info.identity) else {
            return;
        };
        state.info.num_participants =
            state.participants.values().filter(|p| !p.hidden()).count() as u32;
        if state.participants.is_empty() {
            state.close_at = now + Duration::from_secs(u64::from(state.info.departure_timeout));
        }
        self.conns.remove(&conn);
        self.forget_speaker(room, &gone.info.sid);
        let tracks: Vec<String> = gone.info.tracks.iter().map(|t| t.sid.clone()).collect();
        self.unsubscribe_all(room, &tracks, now, out);
        info.state = lk::participant_info::State::Disconnected as i32;
        if !gone.hidden() {
            self.send_to_locals(
                room,
                Resp::Update(lk::ParticipantUpdate {
                    participants: vec![info],
                }),
                out,
            );
        }
        self.update_dynacast(room, out);
    }

    /// The news this shard has for the other shards of its spread rooms: what was
    /// queued, and every local participant whose state changed since it was last sent.
    pub fn take_spread(&mut self) -> Vec<SpreadOut> {
        for (name, state) in self.rooms.iter_mut() {
            if state.spread.peers.is_empty() {
                continue;
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
                self.spread_out.push(SpreadOut {
                    room: name.clone(),
                    to: SpreadTo::Peers,
                    msg: SpreadMsg::Member(Box::new(member_of(p))),
                });
            }
        }
        std::mem::take(&mut self.spread_out)
    }

    /// News about a local participant (`about`) of `room` for the other shards hosting
    /// it, if any do; `msg` is only built then.
    fn tell_peers(&mut self, room: &str, about: ConnId, msg: impl FnOnce() -> SpreadMsg) {
        let spread = self
            .rooms
            .get(room)
            .is_some_and(|r| !r.spread.peers.is_empty());
        if spread && !is_proxy(about) {
            self.spread_out.push(SpreadOut {
                room: room.to_string(),
                to: SpreadTo::Peers,
                msg: msg(),
            });
        }
    }

    /// A local participant left a spread room (`remove_conn_with`).
    pub(super) fn spread_gone(&mut self, room: &str, conn: ConnId, info: &lk::ParticipantInfo) {
        self.tell_peers(room, conn, || SpreadMsg::Gone {
            conn,
            info: Box::new(info.clone()),
        });
    }

    /// A data packet a local participant sent, for the other shards of its room.
    pub(super) fn spread_data(&mut self, room: &str, from: ConnId, label: &str, packet: &[u8]) {
        self.tell_peers(room, from, || SpreadMsg::Data {
            from,
            label: label.to_string(),
            packet: packet.to_vec(),
        });
    }

    /// A proxy's track needs a keyframe: ask its publisher's shard, rate-limited.
    pub(super) fn ask_remote_keyframe(
        &mut self,
        proxy: ConnId,
        mid: Mid,
        rid: Option<Rid>,
        now: Instant,
    ) {
        let Some((room, _)) = self.conns.get(&proxy) else {
            return;
        };
        let Some(state) = self.rooms.get_mut(room) else {
            return;
        };
        let asked = state
            .spread
            .keyframe_asked
            .entry((proxy, mid, rid))
            .or_insert(now - KEYFRAME_ASK_EVERY);
        if now.saturating_duration_since(*asked) < KEYFRAME_ASK_EVERY {
            return;
        }
        *asked = now;
        self.counters.keyframe_requests += 1;
        self.spread_out.push(SpreadOut {
            room: room.clone(),
            to: SpreadTo::HostOf(origin_conn(proxy)),
            msg: SpreadMsg::Keyframe {
                publisher: origin_conn(proxy),
                mid,
                rid,
            },
        });
    }

    /// The qualities this shard's subscribers want of a proxy's track, for its
    /// publisher's shard (`update_dynacast`).
    pub(super) fn spread_wants(
        &mut self,
        room: &str,
        proxy: ConnId,
        track_sid: &str,
        qualities: BTreeSet<i32>,
    ) {
        self.spread_out.push(SpreadOut {
            room: room.to_string(),
            to: SpreadTo::HostOf(origin_conn(proxy)),
            msg: SpreadMsg::Wants {
                publisher: origin_conn(proxy),
                track_sid: track_sid.to_string(),
                qualities,
            },
        });
    }

    /// Connection quality changes of local participants, for the other shards.
    pub(super) fn spread_quality(&mut self, room: &str, updates: &[lk::ConnectionQualityInfo]) {
        if !updates.is_empty() {
            // Scored here, so about local participants: no proxy to name.
            self.tell_peers(room, 0, || SpreadMsg::Quality(updates.to_vec()));
        }
    }

    /// Packets of local publishers for the other shards of their rooms, since the last
    /// call.
    pub fn take_relays(&mut self, into: &mut Vec<Relayed>) {
        into.append(&mut self.relay_out);
    }

    /// A packet relayed by the shard of its publisher (`origin`): it fans out here
    /// through the publisher's proxy. Call inside a batch (`begin_batch`): the
    /// subscriber sessions written to are driven at its end.
    pub fn forward_relayed(&mut self, origin: ConnId, rtp: RtpIn, now: Instant) {
        let mut touched = std::mem::take(&mut self.batch_touched);
        self.forward_rtp(proxy_conn(origin), rtp, now, &mut touched);
        self.batch_touched = touched;
    }

    /// Whether this shard's copy of `room` is the home's (rooms on one shard are).
    pub fn is_home(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| !r.spread.replica)
    }
}

/// What the other shards see of a local participant.
fn member_of(p: &Participant) -> Member {
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
