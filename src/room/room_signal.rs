//! Joining, leaving and the signal requests a room answers itself: who is here, who
//! changed, pings. Media negotiation (offers, tracks) lands with the media plane.

use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;
use tracing::{debug, warn};

use super::ice_fallback::{client_supports_tcp, FallbackPaths, IcePreference, ParticipantIce};
use super::ice_servers::tls_only;
use super::participant::{leave, ConnId, JoinParams, Participant};
use super::room_ops::{reply, Outbound, RoomError, RoomEvent};
use super::rooms::Rooms;
use crate::ids;

/// The LiveKit server version corelay is compatible with. SDKs semver-parse it and
/// refuse some features below 1.8.0.
pub const COMPATIBLE_SERVER_VERSION: &str = "1.9.0";
/// LiveKit's signal protocol version this server speaks.
pub const PROTOCOL_VERSION: i32 = 16;
/// Seconds; both must be > 0 or the Rust SDK's ping task fails.
pub const PING_INTERVAL: i32 = 5;
pub const PING_TIMEOUT: i32 = 15;

impl Rooms {
    pub(super) fn join(
        &mut self,
        conn: ConnId,
        params: &JoinParams,
        now: Instant,
        unix_secs: u64,
        out: &mut Vec<Outbound>,
    ) -> Result<lk::JoinResponse, RoomError> {
        if self.room(&params.room).is_err() {
            if !params.auto_create {
                return Err(RoomError::RoomNotFound);
            }
            let req = lk::CreateRoomRequest {
                name: params.room.clone(),
                ..Default::default()
            };
            self.create(&req, now, unix_secs)?;
        }
        // A full reconnect is a new join with the same identity: the old session goes.
        if let Ok(old) = self.participant(&params.room, &params.identity) {
            let (old, info) = (old.conn, old.info.clone());
            if super::spread::is_proxy(old) {
                // It was connected to another shard, which hears of this join and
                // closes it there.
                let origin = super::spread::origin_conn(old);
                self.remove_proxy(&params.room, origin, info, now, out);
            } else {
                self.remove_conn(old, lk::DisconnectReason::DuplicateIdentity, now, out);
            }
        }
        let preference = match self.tcp_fallback {
            true => (self.ice_preferences).get(&params.room, &params.identity, now),
            false => IcePreference::Any,
        };
        let paths = FallbackPaths {
            tcp: !self.parts.local_candidates.tcp.is_empty() && client_supports_tcp(&params.client),
            tls: self.ice_servers.has_tls(),
        };
        let room = self.room_mut(&params.room)?;
        let max = room.info.max_participants as usize;
        if max > 0 && room.participants.len() >= max {
            return Err(RoomError::RoomFull);
        }
        let info = lk::ParticipantInfo {
            sid: ids::guid(ids::PARTICIPANT_PREFIX),
            identity: params.identity.clone(),
            state: lk::participant_info::State::Joined as i32,
            metadata: params.metadata.clone(),
            joined_at: unix_secs as i64,
            joined_at_ms: (unix_secs as i64).saturating_mul(1000),
            name: params.name.clone(),
            version: 1,
            permission: Some(params.permission.clone()),
            kind: params.kind,
            attributes: params.attributes.clone(),
            client_protocol: params.client.client_protocol,
            ..Default::default()
        };
        let participant = Participant {
            info: info.clone(),
            conn,
            auto_subscribe: params.auto_subscribe,
            adaptive_stream: params.adaptive_stream,
            media: super::participant::ParticipantMedia {
                single_pc: params.single_pc,
                ice: ParticipantIce::new(preference, paths),
                ..Default::default()
            },
            departs_at: None,
            last_reliable_seq: 0,
            mirrored: None,
        };
        room.participants
            .insert(params.identity.clone(), participant);
        room.recount();
        let others: Vec<lk::ParticipantInfo> = room
            .participants
            .values()
            .filter(|p| p.conn != conn && !p.hidden())
            .map(|p| p.info.clone())
            .collect();
        let room_info = room.info.clone();
        let sif_trailer = room.sif_trailer.clone();
        self.conns
            .bind(conn, params.room.clone(), params.identity.clone());
        self.counters.participant_joins += 1;
        self.parts.events.push(RoomEvent::ParticipantJoined(
            room_info.clone(),
            info.clone(),
        ));
        if let Some(room) = (self.rooms.get(&params.room)).filter(|_| !params.permission.hidden) {
            room.send_to_others(conn, Resp::Update(update(vec![info.clone()])), out);
        }
        if params.single_pc {
            self.start_single_pc(conn, params, now, out);
        } else if params.permission.can_subscribe {
            // Subscriber-primary (v0): the server opens the subscriber PC with its data
            // channels and what is already published, and offers it right after joining.
            if let Some((r, slot, parts)) = self.at_conn(conn) {
                r.start_subscriber(slot, params.auto_subscribe, now, parts, out);
            }
        }
        let (ice_servers, client_configuration) =
            self.steered_ice(&info.sid, preference, unix_secs);
        let enabled_publish_codecs = (self.parts.codecs.mimes().into_iter())
            .map(|mime| lk::Codec {
                mime: mime.into(),
                fmtp_line: String::new(),
            })
            .collect();
        Ok(lk::JoinResponse {
            room: Some(room_info),
            participant: Some(info),
            other_participants: others,
            server_version: COMPATIBLE_SERVER_VERSION.into(),
            server_region: self.node.region.clone(),
            server_info: Some(self.server_info()),
            subscriber_primary: params.permission.can_subscribe && !params.single_pc,
            fast_publish: params.permission.can_publish,
            ping_interval: PING_INTERVAL,
            ping_timeout: PING_TIMEOUT,
            ice_servers,
            client_configuration,
            sif_trailer,
            enabled_publish_codecs,
            ..Default::default()
        })
    }

    /// The ICE servers participant `sid` is told of, and LiveKit's client
    /// configuration: steered to TURN/TLS, only TLS servers, and clients must relay.
    pub(super) fn steered_ice(
        &self,
        sid: &str,
        preference: IcePreference,
        unix_secs: u64,
    ) -> (Vec<lk::IceServer>, Option<lk::ClientConfiguration>) {
        let servers = self.ice_servers.for_participant(sid, unix_secs);
        if preference != IcePreference::Tls || !self.ice_servers.has_tls() {
            return (servers, None);
        }
        let relay = lk::ClientConfiguration {
            force_relay: lk::ClientConfigSetting::Enabled as i32,
            ..Default::default()
        };
        (tls_only(servers), Some(relay))
    }

    /// `/rtc/v1`: the one PC, what is already published queued for the client's
    /// `recvonly` lines, then (LiveKit's order) the tracks announced with the join and
    /// the join's offer, whose answer follows the JoinResponse.
    fn start_single_pc(
        &mut self,
        conn: ConnId,
        params: &JoinParams,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        if !self.ensure_session((conn, super::media::Side::Publisher), now) {
            return;
        }
        if params.permission.can_subscribe && params.auto_subscribe {
            if let Some((r, slot, parts)) = self.at_conn(conn) {
                r.subscribe_to_existing(slot, now, parts);
            }
        }
        for req in &params.add_tracks {
            if let Some((r, slot, _)) = self.at_conn(conn) {
                r.on_add_track(slot, req.clone(), out);
            }
        }
        match &params.offer {
            Some(offer) => self.on_offer(conn, offer.clone(), now, out),
            None => self.send_pending_offers(&params.room, out),
        }
        self.parts.dirty.push((conn, super::media::Side::Publisher));
    }

    /// Handles one request from a participant's signal connection.
    pub fn signal(
        &mut self,
        conn: ConnId,
        request: lk::SignalRequest,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let Some(message) = request.message else {
            return;
        };
        // Pings are answered by the signal connection (`signal::pong`).
        if matches!(message, Req::Ping(_) | Req::PingReq(_)) {
            return;
        }
        let room = self.conns.room(conn);
        self.parts.dirty.push((conn, super::media::Side::Publisher));
        self.parts
            .dirty
            .push((conn, super::media::Side::Subscriber));
        match message {
            Req::Ping(_) | Req::PingReq(_) => {}
            Req::Leave(_) => {
                self.remove_conn(conn, lk::DisconnectReason::ClientInitiated, now, out);
            }
            Req::UpdateMetadata(update) => self.update_own_metadata(conn, update, now, out),
            Req::Offer(offer) => self.on_offer(conn, offer, now, out),
            Req::Answer(answer) => {
                if let Some((r, slot, parts)) = self.at_conn(conn) {
                    r.on_answer(slot, answer, parts, out);
                }
            }
            Req::Trickle(trickle) => {
                if let Some((r, slot, _)) = self.at_conn(conn) {
                    r.on_trickle(slot, trickle);
                }
            }
            Req::AddTrack(add) => {
                if let Some((r, slot, _)) = self.at_conn(conn) {
                    r.on_add_track(slot, add, out);
                }
            }
            Req::Mute(mute) => {
                if let Some((r, slot, _)) = self.at_conn(conn) {
                    r.on_mute(slot, mute, out);
                }
            }
            Req::TrackSetting(settings) => {
                if let Some((r, slot, _)) = self.at_conn(conn) {
                    r.on_track_settings(slot, settings);
                }
            }
            Req::SyncState(state) => {
                let room = self.at_conn(conn);
                let mismatch = room.and_then(|(r, slot, parts)| {
                    r.on_sync_state(slot, state, now, parts, out).err()
                });
                if let Some(why) = mismatch {
                    warn!(conn, %why, "sync state does not match: asking for a full reconnect");
                    self.reconnect(conn, now, out);
                }
            }
            Req::Subscription(s) => {
                let sids = super::subscription::named_tracks(s.track_sids, s.participant_tracks);
                if let Some((r, slot, parts)) = self.at_conn(conn) {
                    r.update_subscriptions(slot, &sids, s.subscribe, now, parts, out);
                }
            }
            other => {
                debug!(conn, request = ?std::mem::discriminant(&other), "signal request not handled yet")
            }
        }
        if let Some(room) = room {
            self.update_dynacast(&room, out);
        }
    }

    /// A publisher offer (`Room::on_offer`); one that cannot be taken ends in a full
    /// reconnect.
    fn on_offer(
        &mut self,
        conn: ConnId,
        offer: lk::SessionDescription,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let room = self.at_conn(conn);
        let refused =
            room.and_then(|(r, slot, parts)| r.on_offer(slot, offer, now, parts, out).err());
        if let Some(why) = refused {
            warn!(conn, error = %why, "publisher offer refused: asking for a full reconnect");
            self.reconnect(conn, now, out);
        }
    }

    /// Client and room disagree beyond repair: LiveKit's leave STATE_MISMATCH /
    /// RECONNECT makes the client join again with fresh peer connections.
    fn reconnect(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Outbound>) {
        let (reason, action) = (
            lk::DisconnectReason::StateMismatch,
            lk::leave_request::Action::Reconnect,
        );
        self.remove_conn_with(conn, reason, action, now, out);
    }

    /// The connection went away (or was replaced): the participant leaves the room.
    pub fn disconnect(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Outbound>) {
        let room = self.conns.room(conn);
        self.remove_conn(conn, lk::DisconnectReason::ClientInitiated, now, out);
        if let Some(room) = room {
            self.update_dynacast(&room, out);
        }
    }

    /// Removes the participant behind `conn`, tells it why (unless it left by itself)
    /// and tells the others. An emptied room closes after its departure timeout.
    pub(super) fn remove_conn(
        &mut self,
        conn: ConnId,
        reason: lk::DisconnectReason,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let action = lk::leave_request::Action::Disconnect;
        self.remove_conn_with(conn, reason, action, now, out);
    }

    /// `remove_conn`, with the leave's action: RECONNECT makes the SDK join again
    /// (LiveKit's full reconnect, e.g. after a negotiation it cannot recover from).
    pub(super) fn remove_conn_with(
        &mut self,
        conn: ConnId,
        reason: lk::DisconnectReason,
        action: lk::leave_request::Action,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        if super::spread::is_proxy(conn) {
            // Only its own shard removes a participant.
            return;
        }
        let Some((room_name, identity)) = self.forget_conn(conn) else {
            return;
        };
        let Ok(room) = self.room_mut(&room_name) else {
            return;
        };
        let Some(mut gone) = room.participants.remove(&identity) else {
            return;
        };
        let gone_tracks: Vec<String> = gone.info.tracks.iter().map(|t| t.sid.clone()).collect();
        room.recount();
        room.close_if_left(now);
        room.forget_speaker(&gone.info.sid);
        let room_info = room.info.clone();
        if reason != lk::DisconnectReason::ClientInitiated {
            out.push(Outbound::Close {
                conn,
                leave: leave(reason, action),
            });
        }
        self.forget_peers(conn);
        if let Some((r, parts)) = self.with_parts(&room_name) {
            r.unsubscribe_all(&gone_tracks, now, parts, out);
        }
        gone.bump();
        gone.info.state = lk::participant_info::State::Disconnected as i32;
        gone.info.disconnect_reason = reason as i32;
        if let Some(room) = self.rooms.get(&room_name) {
            room.spread_gone(conn, &gone.info, &mut self.parts.spread_out);
        }
        for track in &gone.info.tracks {
            self.parts.events.push(RoomEvent::TrackUnpublished(
                room_info.clone(),
                gone.info.clone(),
                track.clone(),
            ));
        }
        self.parts
            .events
            .push(RoomEvent::ParticipantLeft(room_info, gone.info.clone()));
        if let Some(room) = self.rooms.get(&room_name).filter(|_| !gone.hidden()) {
            room.send_to_others(conn, Resp::Update(update(vec![gone.info])), out);
        }
    }

    /// Closes every connection of a room and forgets the room.
    pub(super) fn close_room(
        &mut self,
        room_name: &str,
        reason: lk::DisconnectReason,
        out: &mut Vec<Outbound>,
    ) {
        if let Some(room) = self.rooms.remove(room_name) {
            for p in room.participants.values() {
                self.forget_conn(p.conn);
                // A proxy's own shard closes it and sends its webhook.
                if super::spread::is_proxy(p.conn) {
                    continue;
                }
                self.parts.events.push(RoomEvent::ParticipantLeft(
                    room.info.clone(),
                    p.info.clone(),
                ));
                self.forget_peers(p.conn);
                out.push(Outbound::Close {
                    conn: p.conn,
                    leave: leave(reason, lk::leave_request::Action::Disconnect),
                });
            }
            if !room.spread.replica {
                self.parts.events.push(RoomEvent::RoomFinished(room.info));
            }
        }
    }

    /// RoomService UpdateParticipant: metadata, name, attributes, permission. New
    /// grants take effect at once (`enforce_permission`).
    pub(super) fn update_participant(
        &mut self,
        room_name: &str,
        identity: &str,
        req: &lk::UpdateParticipantRequest,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) -> Result<lk::ParticipantInfo, RoomError> {
        let room = self.room_mut(room_name)?;
        let p = room
            .participants
            .get_mut(identity)
            .ok_or(RoomError::ParticipantNotFound)?;
        if !req.metadata.is_empty() {
            p.info.metadata = req.metadata.clone();
        }
        if !req.name.is_empty() {
            p.info.name = req.name.clone();
        }
        apply_attributes(&mut p.info.attributes, &req.attributes);
        let mut changed_grants = None;
        if let Some(permission) = &req.permission {
            if p.info.permission.as_ref() != Some(permission) {
                let was = p.info.permission.replace(permission.clone());
                changed_grants = Some(was.unwrap_or_default());
            }
        }
        p.bump();
        let conn = p.conn;
        if let Some(was) = changed_grants {
            let (room, parts) = self.with_parts(room_name).ok_or(RoomError::RoomNotFound)?;
            if let Some(slot) = room.participants.slot_of(identity) {
                room.enforce_permission(slot, &was, now, parts, out);
            }
        }
        let p = self.participant(room_name, identity)?;
        let (info, hidden) = (p.info.clone(), p.hidden());
        let msg = Resp::Update(update(vec![info.clone()]));
        // A hidden participant is seen by nobody but itself.
        if hidden {
            reply(out, conn, msg);
        } else {
            self.room(room_name)?.send_to_all(msg, out);
        }
        Ok(info)
    }

    fn update_own_metadata(
        &mut self,
        conn: ConnId,
        req: lk::UpdateParticipantMetadata,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let Some((room_name, identity)) = self.conns.owned_names(conn) else {
            return;
        };
        let allowed = self
            .participant(&room_name, &identity)
            .is_ok_and(|p| p.can_update_metadata());
        let fits = self.check_metadata(&req.metadata).is_ok()
            && self.check_attributes(&req.attributes).is_ok();
        if !allowed || !fits {
            let reason = if allowed {
                lk::request_response::Reason::LimitExceeded
            } else {
                lk::request_response::Reason::NotAllowed
            };
            reply(
                out,
                conn,
                Resp::RequestResponse(lk::RequestResponse {
                    request_id: req.request_id,
                    reason: reason as i32,
                    message: "cannot update metadata".into(),
                    ..Default::default()
                }),
            );
            return;
        }
        let as_admin = lk::UpdateParticipantRequest {
            room: room_name.clone(),
            identity: identity.clone(),
            metadata: req.metadata,
            name: req.name,
            attributes: req.attributes,
            ..Default::default()
        };
        let _ = self.update_participant(&room_name, &identity, &as_admin, now, out);
        reply(
            out,
            conn,
            Resp::RequestResponse(lk::RequestResponse {
                request_id: req.request_id,
                reason: lk::request_response::Reason::Ok as i32,
                ..Default::default()
            }),
        );
    }

    pub(super) fn server_info(&self) -> lk::ServerInfo {
        lk::ServerInfo {
            edition: lk::server_info::Edition::Standard as i32,
            version: COMPATIBLE_SERVER_VERSION.into(),
            protocol: PROTOCOL_VERSION,
            region: self.node.region.clone(),
            node_id: self.node.node_id.clone(),
            ..Default::default()
        }
    }
}

pub(super) fn update(participants: Vec<lk::ParticipantInfo>) -> lk::ParticipantUpdate {
    lk::ParticipantUpdate { participants }
}

/// LiveKit semantics: an empty value deletes the attribute.
fn apply_attributes(
    attributes: &mut std::collections::HashMap<String, String>,
    changes: &std::collections::HashMap<String, String>,
) {
    for (k, v) in changes {
        if v.is_empty() {
            attributes.remove(k);
        } else {
            attributes.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::rooms::{NodeInfo, RoomDefaults, RoomLimits};
    use std::time::Duration;

    fn rooms() -> Rooms {
        let defaults = RoomDefaults {
            empty_timeout: 300,
            departure_timeout: 20,
            max_participants: 0,
        };
        Rooms::new(defaults, RoomLimits::default(), NodeInfo::default())
    }

    fn params(identity: &str) -> JoinParams {
        JoinParams {
            room: "r".into(),
            identity: identity.into(),
            auto_create: true,
            permission: lk::ParticipantPermission {
                can_subscribe: true,
                can_publish: true,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn updates_for(out: &[Outbound], conn: ConnId) -> Vec<(String, i32)> {
        out.iter()
            .filter_map(|o| match o {
                Outbound::Signal { conn: c, response } if *c == conn => match &response.message {
                    Some(Resp::Update(u)) => Some(
                        u.participants
                            .iter()
                            .map(|p| (p.identity.clone(), p.state))
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                },
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn join_answers_with_what_sdks_require_and_tells_others() {
        let t0 = crate::clock::now().mono;
        let mut rooms = rooms();
        let mut out = Vec::new();
        let a = rooms.join(1, &params("alice"), t0, 100, &mut out).unwrap();
        let p = a.participant.unwrap();
        assert!(p.sid.starts_with("PA_"));
        assert!(a.room.unwrap().sid.starts_with("RM_"));
        assert!(a.ping_interval > 0 && a.ping_timeout > 0);
        assert_eq!(a.server_info.unwrap().version, COMPATIBLE_SERVER_VERSION);
        assert!(a.subscriber_primary);
        // The only message: the subscriber PC's first offer, to the joiner itself.
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0], Outbound::Signal { conn: 1, response }
            if matches!(&response.message, Some(Resp::Offer(o)) if o.id == 1 && o.sdp.contains("m=application"))));
        out.clear();

        let b = rooms.join(2, &params("bob"), t0, 101, &mut out).unwrap();
        assert_eq!(b.other_participants.len(), 1);
        assert_eq!(b.room.unwrap().num_participants, 2);
        let joined = lk::participant_info::State::Joined as i32;
        assert_eq!(updates_for(&out, 1), [("bob".to_string(), joined)]);
        assert!(updates_for(&out, 2).is_empty());
    }

    #[test]
    fn a_v1_join_has_one_pc_that_waits_for_the_clients_offer() {
        let t0 = crate::clock::now().mono;
        let mut rooms = rooms();
        let mut out = Vec::new();
        let v1 = JoinParams {
            single_pc: true,
            ..params("alice")
        };
        let a = rooms.join(1, &v1, t0, 100, &mut out).unwrap();
        assert!(!a.subscriber_primary, "v1: the client's PC is the primary");
        assert!(a.fast_publish);
        assert!(a
            .enabled_publish_codecs
            .iter()
            .any(|c| c.mime == "video/VP8"));
        assert!(
            !out.iter()
                .any(|o| matches!(o, Outbound::Signal { response, .. }
                if matches!(response.message, Some(Resp::Offer(_))))),
            "the server never offers on v1: {out:?}"
        );
        let p = rooms.participant("r", "alice").unwrap();
        assert!(p.media.single_pc);
        let role = p.media.publisher.as_ref().map(|s| s.role());
        assert_eq!(role, Some(crate::session::PeerRole::Single));
        assert!(p.media.subscriber.is_none());
    }

    #[test]
    fn leave_tells_others_and_starts_departure_timeout() {
        let t0 = crate::clock::now().mono;
        let mut rooms = rooms();
        let mut out = Vec::new();
        rooms.join(1, &params("alice"), t0, 0, &mut out).unwrap();
        rooms.join(2, &params("bob"), t0, 0, &mut out).unwrap();
        out.clear();
        let leave_req = lk::SignalRequest {
            message: Some(Req::Leave(lk::LeaveRequest::default())),
        };
        rooms.signal(2, leave_req, t0, &mut out);
        let gone = lk::participant_info::State::Disconnected as i32;
        assert_eq!(updates_for(&out, 1), [("bob".to_string(), gone)]);
        rooms.disconnect(1, t0, &mut out);
        assert!(rooms.expire(t0 + Duration::from_secs(19)).is_empty());
        assert_eq!(rooms.expire(t0 + Duration::from_secs(20)), ["r"]);
    }

    #[test]
    fn same_identity_evicts_the_old_session() {
        let t0 = crate::clock::now().mono;
        let mut rooms = rooms();
        let mut out = Vec::new();
        rooms.join(1, &params("alice"), t0, 0, &mut out).unwrap();
        rooms.join(2, &params("alice"), t0, 0, &mut out).unwrap();
        let closed = out.iter().any(|o| {
            matches!(o, Outbound::Close { conn: 1, leave }
                if leave.reason == lk::DisconnectReason::DuplicateIdentity as i32)
        });
        assert!(closed);
        assert_eq!(rooms.participant_count(), 1);
    }

    #[test]
    fn join_refused_when_full_or_missing() {
        let t0 = crate::clock::now().mono;
        let mut rooms = rooms();
        let mut out = Vec::new();
        let mut no_create = params("a");
        no_create.auto_create = false;
        assert_eq!(
            rooms.join(1, &no_create, t0, 0, &mut out),
            Err(RoomError::RoomNotFound)
        );
        let req = lk::CreateRoomRequest {
            name: "r".into(),
            max_participants: 1,
            ..Default::default()
        };
        rooms.create(&req, t0, 0).unwrap();
        rooms.join(1, &params("a"), t0, 0, &mut out).unwrap();
        assert_eq!(
            rooms.join(2, &params("b"), t0, 0, &mut out),
            Err(RoomError::RoomFull)
        );
    }

    #[test]
    fn metadata_needs_the_grant() {
        let t0 = crate::clock::now().mono;
        let mut rooms = rooms();
        let mut out = Vec::new();
        rooms.join(1, &params("alice"), t0, 0, &mut out).unwrap();
        out.clear();
        let update = lk::SignalRequest {
            message: Some(Req::UpdateMetadata(lk::UpdateParticipantMetadata {
                metadata: "m".into(),
                request_id: 7,
                ..Default::default()
            })),
        };
        rooms.signal(1, update, t0, &mut out);
        let messages: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Outbound::Signal { response, .. } => response.message.clone(),
                _ => None,
            })
            .collect();
        assert!(matches!(&messages[0], Resp::RequestResponse(r)
            if r.request_id == 7 && r.reason == lk::request_response::Reason::NotAllowed as i32));
    }
}
