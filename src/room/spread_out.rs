//! What a room tells the other shards hosting it when it is spread (`spread`): its
//! own participants' departures, data and quality, and for its proxies' tracks
//! keyframe asks, dynacast wants and whether it wants their packets at all. Each
//! message goes to the shard's outbox the caller passes (`Rooms::take_spread`
//! empties it).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livekit_protocol as lk;

use super::one_room::Room;
use super::participant::ConnId;
use super::spread::{is_proxy, origin_conn, SpreadMsg, SpreadOut, SpreadTo};
use crate::session::{Mid, Rid};

/// A proxy asks the publisher's shard for a keyframe at most this often per track and
/// layer: its forwarder asks on every packet while a downtrack waits for one.
const KEYFRAME_ASK_EVERY: Duration = Duration::from_millis(250);

impl Room {
    /// News about a local participant (`about`) for the other shards hosting the room,
    /// if any do; `msg` is only built then.
    fn tell_peers(&self, about: ConnId, msg: impl FnOnce() -> SpreadMsg, to: &mut Vec<SpreadOut>) {
        if !self.spread.peers.is_empty() && !is_proxy(about) {
            to.push(SpreadOut {
                room: self.info.name.clone(),
                to: SpreadTo::Peers,
                msg: msg(),
            });
        }
    }

    /// A message for the shard of a proxy's participant.
    fn tell_host(&self, proxy: ConnId, msg: SpreadMsg, to: &mut Vec<SpreadOut>) {
        to.push(SpreadOut {
            room: self.info.name.clone(),
            to: SpreadTo::HostOf(origin_conn(proxy)),
            msg,
        });
    }

    /// A local participant left a spread room (`remove_conn_with`).
    pub(super) fn spread_gone(
        &self,
        conn: ConnId,
        info: &lk::ParticipantInfo,
        to: &mut Vec<SpreadOut>,
    ) {
        let gone = || SpreadMsg::Gone {
            conn,
            info: Box::new(info.clone()),
        };
        self.tell_peers(conn, gone, to);
    }

    /// A data packet a local participant sent, for the other shards of its room.
    pub(super) fn spread_data(
        &self,
        from: ConnId,
        label: &str,
        packet: &lk::DataPacket,
        to: &mut Vec<SpreadOut>,
    ) {
        let data = || SpreadMsg::Data {
            from,
            label: label.to_string(),
            packet: prost::Message::encode_to_vec(packet),
        };
        self.tell_peers(from, data, to);
    }

    /// A proxy's track needs a keyframe: ask its publisher's shard, at most every
    /// `KEYFRAME_ASK_EVERY` per track and layer. Whether it asked.
    pub(super) fn ask_remote_keyframe(
        &mut self,
        proxy: ConnId,
        mid: Mid,
        rid: Option<Rid>,
        now: Instant,
        to: &mut Vec<SpreadOut>,
    ) -> bool {
        let asked = (self.spread.keyframe_asked)
            .entry((proxy, mid, rid))
            .or_insert(now - KEYFRAME_ASK_EVERY);
        if now.saturating_duration_since(*asked) < KEYFRAME_ASK_EVERY {
            return false;
        }
        *asked = now;
        let publisher = origin_conn(proxy);
        self.tell_host(
            proxy,
            SpreadMsg::Keyframe {
                publisher,
                mid,
                rid,
            },
            to,
        );
        true
    }

    /// The qualities this shard's subscribers want of a proxy's track, for its
    /// publisher's shard (`update_dynacast`).
    pub(super) fn spread_wants(
        &self,
        proxy: ConnId,
        track_sid: &str,
        qualities: BTreeSet<i32>,
        to: &mut Vec<SpreadOut>,
    ) {
        let track_sid = track_sid.to_string();
        self.tell_host(
            proxy,
            SpreadMsg::Wants {
                track_sid,
                qualities,
            },
            to,
        );
    }

    /// Connection quality changes of local participants, for the other shards.
    pub(super) fn spread_quality(
        &self,
        updates: &[lk::ConnectionQualityInfo],
        to: &mut Vec<SpreadOut>,
    ) {
        if !updates.is_empty() {
            // Scored here, so about local participants: no proxy to name.
            self.tell_peers(0, || SpreadMsg::Quality(updates.to_vec()), to);
        }
    }

    /// A relayed packet of a proxy's track found no subscriber here: its publisher's
    /// shard stops sending that track's packets (asked at most once a second).
    pub(super) fn unwanted_here(
        &mut self,
        proxy: ConnId,
        track_sid: &Arc<str>,
        now: Instant,
        to: &mut Vec<SpreadOut>,
    ) {
        let told = self.spread.told_unwanted.get(track_sid);
        if told.is_some_and(|at| now.saturating_duration_since(*at) < Duration::from_secs(1)) {
            return;
        }
        self.spread.told_unwanted.insert(track_sid.clone(), now);
        let track_sid = track_sid.to_string();
        let interest = SpreadMsg::Interest {
            track_sid,
            wanted: false,
        };
        self.tell_host(proxy, interest, to);
    }

    /// A local participant subscribed to `track_sid` of `publisher_sid`: if this shard
    /// had said it wanted none of that track, it wants it again.
    pub(super) fn wanted_here(
        &mut self,
        publisher_sid: &str,
        track_sid: &str,
        to: &mut Vec<SpreadOut>,
    ) {
        if self.spread.told_unwanted.remove(track_sid).is_none() {
            return;
        }
        let proxy = (self.participants.values())
            .find(|p| p.info.sid == publisher_sid && is_proxy(p.conn))
            .map(|p| p.conn);
        if let Some(proxy) = proxy {
            let interest = SpreadMsg::Interest {
                track_sid: track_sid.to_string(),
                wanted: true,
            };
            self.tell_host(proxy, interest, to);
        }
    }
}
