//! A spread room's news from the other shards hosting it (`spread`): proxies follow
//! their participants, and data, keyframe asks, dynacast wants, interest and
//! connection quality reach this shard's participants or publishers.

use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use prost::Message;

use super::participant::{ConnId, Participant, ParticipantMedia};
use super::room_ops::Outbound;
use super::rooms::Rooms;
use super::spread::{is_proxy, origin_conn, proxy_conn, Member, SpreadMsg};

impl Rooms {
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
                self.drive_subscribers(touched);
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
            } => {
                if let Some(state) = self.rooms.get_mut(room) {
                    (state.spread.wants.entry(track_sid).or_default())
                        .insert(from_shard, qualities);
                }
                self.update_dynacast(room, out);
            }
            SpreadMsg::Quality(updates) => {
                if let Some(state) = self.rooms.get(room) {
                    let msg = Resp::ConnectionQuality(lk::ConnectionQualityUpdate { updates });
                    state.send_to_all(msg, out);
                }
            }
            SpreadMsg::Interest { track_sid, wanted } => {
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
                state.recount();
                self.conns.bind(conn, room.to_string(), identity);
            }
        }
        if let Some(state) = self.rooms.get(room) {
            if !(state.participant(&info.identity)).is_ok_and(|p| p.hidden()) {
                let msg = Resp::Update(lk::ParticipantUpdate {
                    participants: vec![info.clone()],
                });
                state.send_to_all(msg, out);
            }
        }
        let gone: Vec<String> = (old_tracks.iter())
            .filter(|t| !info.tracks.iter().any(|n| n.sid == t.sid))
            .map(|t| t.sid.clone())
            .collect();
        if let Some((r, parts)) = self.with_parts(room) {
            r.unsubscribe_all(&gone, now, parts, out);
        }
        for track in info.tracks.iter() {
            if !old_tracks.iter().any(|t| t.sid == track.sid) {
                if let Some((r, slot, parts)) = self.at_conn(conn) {
                    r.subscribe_room_to(slot, track, now, parts);
                }
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
        state.recount();
        state.close_if_left(now);
        state.forget_speaker(&gone.info.sid);
        self.forget_conn(conn);
        let tracks: Vec<String> = gone.info.tracks.iter().map(|t| t.sid.clone()).collect();
        if let Some((r, parts)) = self.with_parts(room) {
            r.unsubscribe_all(&tracks, now, parts, out);
        }
        info.state = lk::participant_info::State::Disconnected as i32;
        if let Some(state) = self.rooms.get(room).filter(|_| !gone.hidden()) {
            let msg = Resp::Update(lk::ParticipantUpdate {
                participants: vec![info],
            });
            state.send_to_all(msg, out);
        }
        self.update_dynacast(room, out);
    }
}
