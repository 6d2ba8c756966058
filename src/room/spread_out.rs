//! What a shard tells the other shards hosting a spread room (`spread`): its own
//! participants' changes, departures and data, and for its proxies' tracks keyframe
//! asks, dynacast wants and whether it wants their packets at all.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livekit_protocol as lk;

use super::participant::ConnId;
use super::rooms::Rooms;
use super::spread::{is_proxy, member_of, origin_conn, SpreadMsg, SpreadOut, SpreadTo};
use crate::session::{Mid, Rid};

/// A proxy asks the publisher's shard for a keyframe at most this often per track and
/// layer: its forwarder asks on every packet while a downtrack waits for one.
const KEYFRAME_ASK_EVERY: Duration = Duration::from_millis(250);

impl Rooms {
    /// The news this shard has for the other shards of its spread rooms: what was
    /// queued, and every local participant whose state changed since it was last sent.
    pub fn take_spread(&mut self) -> Vec<SpreadOut> {
        let (rooms, spread_out) = (&mut self.rooms, &mut self.spread_out);
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
    pub(super) fn spread_data(
        &mut self,
        room: &str,
        from: ConnId,
        label: &str,
        packet: &lk::DataPacket,
    ) {
        self.tell_peers(room, from, || SpreadMsg::Data {
            from,
            label: label.to_string(),
            packet: prost::Message::encode_to_vec(packet),
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
        let Some((room, _)) = self.conns.names(proxy) else {
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
            room: room.to_string(),
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

    /// A relayed packet of a proxy's track found no subscriber here: its publisher's
    /// shard stops sending that track's packets (asked at most once a second).
    pub(super) fn unwanted_here(&mut self, proxy: ConnId, track_sid: &Arc<str>, now: Instant) {
        let Some((room, _)) = self.conns.names(proxy) else {
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
            room: room.to_string(),
            to: SpreadTo::HostOf(origin_conn(proxy)),
            msg: SpreadMsg::Interest {
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
                    track_sid: track_sid.to_string(),
                    wanted: true,
                },
            });
        }
    }
}
