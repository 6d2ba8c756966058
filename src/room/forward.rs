//! Forwarding: a publisher's RTP to its subscribers' downtracks (one shared payload,
//! per-downtrack munging), keyframe requests upstream, and data packets across.

use std::time::Instant;

use livekit_protocol as lk;
use prost::Message;
use tracing::{debug, warn};

use super::media::Side;
use super::participant::ConnId;
use super::rooms::Rooms;
use super::spread::{is_proxy, Relayed};
use super::Outbound;
use crate::session::{DataSent, Mid, Rid, RtpIn, SessionError};
use crate::sfu::forwarder::Skip;
use crate::sfu::speaker::{dbov_magnitude, SpeakerConfig, SpeakerDetector};

impl Rooms {
    /// Writes one incoming packet to every downtrack of its track (the room keeps
    /// the list, `members::fan_out`; `sfu::forwarder` decides per downtrack), then the
    /// caller ticks the touched subscriber sessions so the packets leave this turn.
    pub(super) fn forward_rtp(
        &mut self,
        publisher: ConnId,
        rtp: RtpIn,
        now: Instant,
        touched: &mut Vec<ConnId>,
    ) {
        // Found through slots, borrowed field by field: no String lookups and no
        // allocations on this path in corelay's code (the track sid is shared).
        let Some((room_slot, slot)) = self.place_of(publisher) else {
            return;
        };
        let Some(room_state) = self.rooms.at_mut(room_slot) else {
            return;
        };
        let Some(source) = room_state.participants.at(slot) else {
            return;
        };
        let Some(track_sid) = source.media.published.get(&rtp.mid).cloned() else {
            return;
        };
        // Only audio carries the RFC 6464 level.
        if let Some(level) = rtp.audio_level {
            let sid = source.info.sid.as_str();
            let detector = (room_state.speakers)
                .get_or_insert_with(|| SpeakerDetector::new(SpeakerConfig::default()));
            detector.observe(sid, dbov_magnitude(level), now);
        }
        // A spread room: each other shard hosting it gets one shared copy (the payload
        // is reference-counted), fanned out there through this publisher's proxy.
        if !room_state.spread.peers.is_empty() && !is_proxy(publisher) {
            let unwanted = room_state.spread.unwanted.get(&*track_sid);
            for &shard in &room_state.spread.peers {
                if unwanted.is_some_and(|u| u.contains(&shard)) {
                    continue;
                }
                self.relay_out.push(Relayed {
                    shard,
                    publisher,
                    rtp: rtp.clone(),
                });
            }
        }
        let fan = &mut self.fan_out;
        fan.begin();
        let (mut forwarded, mut downtracks_here) = (0, 0);
        let (subscribers, slots) = room_state.participants.fan_out(&track_sid);
        for &(slot, down_slot) in subscribers {
            let Some(Some(p)) = slots.get_mut(slot) else {
                continue;
            };
            if p.conn == publisher {
                continue;
            }
            let (downtracks, session) = p.media.down_parts();
            let Some(down) = downtracks.at_mut_keyed(down_slot, &track_sid) else {
                continue;
            };
            downtracks_here += 1;
            let Some(session) = session else {
                continue;
            };
            let egress = match fan.decide(down, &rtp, now, |mid| session.takes_red(mid, rtp.pt)) {
                Ok(egress) => egress,
                Err(Skip::MalformedRed) => {
                    debug!(conn = publisher, "malformed RED payload dropped");
                    continue;
                }
                Err(_) => continue,
            };
            let written = session.write_rtp(
                egress.mid,
                egress.pt,
                (egress.seq, egress.timestamp, egress.marker),
                egress.payload,
                now,
            );
            match written {
                Ok(()) => {
                    forwarded += 1;
                    touched.push(p.conn);
                }
                Err(e) => debug!(conn = p.conn, error = %e, "write_rtp failed"),
            }
        }
        self.counters.forwarded += forwarded;
        if downtracks_here == 0 && is_proxy(publisher) {
            let room = (self.conns.names(publisher)).and_then(|(r, _)| self.rooms.get_mut(r));
            if let Some(room) = room {
                room.unwanted_here(publisher, &track_sid, now, &mut self.parts.spread_out);
            }
        }
        // Coalesced across subscribers and rate-limited per layer by the session.
        for i in 0..self.fan_out.keyframe_asks().len() {
            let rid = self.fan_out.keyframe_asks()[i];
            if is_proxy(publisher) {
                self.ask_remote_keyframe(publisher, rtp.mid, rid, now);
            } else {
                self.request_keyframe(publisher, rtp.mid, rid.as_deref(), now);
            }
        }
    }

    /// A subscriber asked for a keyframe on one of its downtracks: ask the publisher.
    pub(super) fn relay_keyframe_request(&mut self, subscriber: ConnId, mid: Mid, now: Instant) {
        let Some(p) = self.participant_by_conn(subscriber) else {
            return;
        };
        let Some((track_sid, rid)) = p
            .media
            .downtracks
            .iter()
            .find(|(_, d)| d.mid == Some(mid))
            .map(|(sid, d)| (sid.clone(), d.layers.current.clone()))
        else {
            return;
        };
        let Some(room) = self.conns.room(subscriber) else {
            return;
        };
        let source = self.rooms.get(&room).and_then(|r| {
            r.participants.values().find_map(|p| {
                p.media
                    .published
                    .iter()
                    .find(|(_, sid)| ***sid == *track_sid)
                    .map(|(mid, _)| (p.conn, *mid))
            })
        });
        match source {
            Some((publisher, pub_mid)) if is_proxy(publisher) => {
                let rid = rid.as_deref().map(crate::session::Rid::from);
                self.ask_remote_keyframe(publisher, pub_mid, rid, now);
            }
            Some((publisher, pub_mid)) => {
                self.request_keyframe(publisher, pub_mid, rid.as_deref(), now)
            }
            None => {}
        }
    }

    /// A proxy's track needs a keyframe: its publisher's shard is asked.
    fn ask_remote_keyframe(&mut self, proxy: ConnId, mid: Mid, rid: Option<Rid>, now: Instant) {
        let room = (self.conns.names(proxy)).and_then(|(r, _)| self.rooms.get_mut(r));
        if room.is_some_and(|r| {
            r.ask_remote_keyframe(proxy, mid, rid, now, &mut self.parts.spread_out)
        }) {
            self.counters.keyframe_requests += 1;
        }
    }

    pub(super) fn request_keyframe(
        &mut self,
        publisher: ConnId,
        mid: Mid,
        rid: Option<&str>,
        now: Instant,
    ) {
        let Some((session, _)) = self.session_mut((publisher, Side::Publisher)) else {
            return;
        };
        match session.request_keyframe(mid, rid, now) {
            Ok(None) => {}
            Ok(Some(repeat)) => {
                self.counters.keyframe_requests += 1;
                self.counters.keyframe_request_repeats += u64::from(repeat);
            }
            Err(e) => {
                debug!(conn = publisher, error = %e, "keyframe request failed");
                self.counters.keyframe_request_failures += 1;
            }
        }
    }

    /// A data packet from a publisher's `_reliable`/`_lossy` channel: stamp the sender,
    /// then deliver on the same label to everyone else (or the named identities).
    #[allow(deprecated)] // the legacy UserPacket sender fields: older SDKs read them
    pub(super) fn relay_data(
        &mut self,
        from: ConnId,
        label: &str,
        data: &[u8],
        touched: &mut Vec<ConnId>,
    ) {
        let Ok(mut packet) = lk::DataPacket::decode(data) else {
            debug!(conn = from, "undecodable data packet dropped");
            return;
        };
        let Some(sender) = self.participant_by_conn(from) else {
            return;
        };
        let permission = sender.info.permission.clone().unwrap_or_default();
        if !permission.can_publish_data {
            return;
        }
        if matches!(packet.value, Some(lk::data_packet::Value::Metrics(_))) {
            return;
        }
        let (sid, identity) = if permission.hidden {
            (String::new(), String::new())
        } else {
            (sender.info.sid.clone(), sender.info.identity.clone())
        };
        // A resuming client resends its reliable packets after the ReconnectResponse's
        // last_message_seq; one that had arrived already is not delivered twice.
        if label == "_reliable" && !self.fresh_reliable(from, packet.sequence) {
            return;
        }
        packet.participant_sid = sid.clone();
        packet.participant_identity = identity.clone();
        if let Some(lk::data_packet::Value::User(user)) = &mut packet.value {
            user.participant_sid = sid;
            user.participant_identity = identity;
            if packet.destination_identities.is_empty() {
                packet.destination_identities = user.destination_identities.clone();
            }
        }
        let Some(room) = self.conns.room(from) else {
            return;
        };
        self.deliver_data(&room, Some(from), label, &packet, touched);
        if let Some(r) = self.rooms.get(&room) {
            r.spread_data(from, label, &packet, &mut self.parts.spread_out);
        }
    }

    /// Delivers a data packet to the room (RoomService SendData comes here too).
    pub(super) fn deliver_data(
        &mut self,
        room: &str,
        from: Option<ConnId>,
        label: &str,
        packet: &lk::DataPacket,
        touched: &mut Vec<ConnId>,
    ) {
        self.counters.data_packets += 1;
        let bytes = packet.encode_to_vec();
        let destinations = &packet.destination_identities;
        let reliable = label == "_reliable";
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let (mut queued, mut dropped) = (0, 0);
        for p in r.participants.values_mut() {
            if Some(p.conn) == from
                || (!destinations.is_empty() && !destinations.contains(&p.info.identity))
            {
                continue;
            }
            if let Some(session) = p.media.down_session() {
                match session.send_data(label, reliable, &bytes) {
                    Ok(DataSent::Sent) => touched.push(p.conn),
                    Ok(DataSent::Queued) => {
                        queued += 1;
                        touched.push(p.conn);
                    }
                    Ok(DataSent::Dropped) => dropped += 1,
                    Err(SessionError::DataOverflow(waiting)) => {
                        warn!(
                            conn = p.conn,
                            waiting, "subscriber too slow for its reliable data: closing it"
                        );
                        self.data_overflowed.push(p.conn);
                    }
                    Err(e) => debug!(conn = p.conn, error = %e, "data not delivered"),
                }
            }
        }
        self.counters.data_queued += queued;
        self.counters.data_lossy_dropped += dropped;
    }

    /// Closes the subscribers whose reliable data queue overflowed (`deliver_data`): a
    /// leave with RECONNECT, so that the SDK joins again and nothing is lost unnoticed.
    pub(super) fn close_overflowed(&mut self, now: Instant, out: &mut Vec<Outbound>) {
        for conn in std::mem::take(&mut self.data_overflowed) {
            self.counters.data_overflow_closes += 1;
            let (reason, action) = (
                lk::DisconnectReason::StateMismatch,
                lk::leave_request::Action::Reconnect,
            );
            self.remove_conn_with(conn, reason, action, now, out);
        }
    }
}

impl Rooms {
    /// RoomService SendData: a packet with no sender, on the channel its kind names.
    #[allow(deprecated)] // DataPacket.kind and UserPacket destinations: older SDKs read them
    pub(super) fn send_api_data(&mut self, req: &lk::SendDataRequest) {
        let lossy = req.kind == lk::data_packet::Kind::Lossy as i32;
        let packet = lk::DataPacket {
            kind: req.kind,
            destination_identities: req.destination_identities.clone(),
            value: Some(lk::data_packet::Value::User(lk::UserPacket {
                payload: req.data.clone(),
                topic: req.topic.clone(),
                destination_identities: req.destination_identities.clone(),
                nonce: req.nonce.clone(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let mut touched = Vec::new();
        let label = if lossy { "_lossy" } else { "_reliable" };
        self.deliver_data(&req.room, None, label, &packet, &mut touched);
        self.drive_subscribers(touched);
    }
}
