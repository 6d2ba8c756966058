//! Offers, answers, trickle and track announcements: the signal requests that shape a
//! participant's peer connections (the server's own offers are in `offers`).

use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use tracing::{debug, warn};

use super::media::Side;
use super::offers::ask_for_offer;
use super::participant::{ConnId, PendingTrack};
use super::room_ops::{reply, Outbound, RoomEvent};
use super::rooms::Rooms;
use super::track_info::{track_info, track_type};
use crate::session::{codec_order, Codec, OfferedMedia};

impl Rooms {
    /// A publisher offer: answer it (echoing its id) and publish the announced tracks
    /// whose m-lines it carries.
    #[allow(deprecated)] // TrackInfo.simulcast: older SDKs read it
    pub(super) fn on_offer(
        &mut self,
        conn: ConnId,
        offer: lk::SessionDescription,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let key = (conn, Side::Publisher);
        if !self.ensure_session(key, now) {
            return;
        }
        self.apply_early_candidates(conn, Side::Publisher);
        let Some((session, _)) = self.session_mut(key) else {
            return;
        };
        let (answer, offered) = match session.accept_offer(&offer.sdp) {
            Ok(r) => r,
            Err(e) => {
                // As LiveKit (IssueFullReconnect on a failed negotiation): the client
                // would wait for an answer forever; a leave with RECONNECT makes it
                // join again with a fresh peer connection.
                warn!(conn, error = %e, "publisher offer refused: asking for a full reconnect");
                let (reason, action) = (
                    lk::DisconnectReason::StateMismatch,
                    lk::leave_request::Action::Reconnect,
                );
                self.remove_conn_with(conn, reason, action, now, out);
                return;
            }
        };
        // An ICE restart makes a new ufrag.
        let ufrag = session.local_ufrag();
        self.parts.demux.replace_ufrag(ufrag, key);
        let answer = self.prefer_announced_codecs(conn, &offered, &answer);
        let mid_to_track_id = (self.participant_by_conn(conn))
            .map(super::offers::settle_single_pc)
            .unwrap_or_default();
        if !mid_to_track_id.is_empty() {
            debug!(conn, ?mid_to_track_id, "single PC answer");
        }
        reply(
            out,
            conn,
            Resp::Answer(lk::SessionDescription {
                r#type: "answer".into(),
                sdp: answer.clone(),
                id: offer.id,
                mid_to_track_id,
            }),
        );
        if let Some(p) = self.participant_by_conn(conn) {
            if p.media.single_pc {
                // The client's offer came: tracks still waiting need another one.
                p.media.awaiting_answer = false;
                ask_for_offer(p, conn, out);
            }
        }
        self.unpublish_stopped(conn, &offered, now, out);
        let mut newly = Vec::new();
        if let Some(p) = self.participant_by_conn(conn) {
            for m in offered {
                if m.disabled
                    || !m.direction.contains("send")
                    || p.media.published.contains_key(&m.mid)
                {
                    continue;
                }
                let kind = track_type(m.kind);
                let found = p
                    .media
                    .pending_tracks
                    .iter()
                    .position(|t| m.msid_track.as_deref() == Some(t.cid.as_str()))
                    .or_else(|| {
                        p.media
                            .pending_tracks
                            .iter()
                            .position(|t| t.info.r#type == kind as i32)
                    });
                let Some(i) = found else { continue };
                let mut track = p.media.pending_tracks.remove(i).info;
                track.mid = m.mid.to_string();
                if track.mime_type.is_empty() && kind == lk::TrackType::Video {
                    // Announced without a codec: the client sends the first of the
                    // answer's codecs, which follow its own order.
                    let mid = m.mid.to_string();
                    let codec = codec_order::first_video_codec(&answer, &mid).unwrap_or(Codec::Vp8);
                    track.mime_type = format!("video/{codec}");
                    for c in track.codecs.iter_mut().filter(|c| c.mime_type.is_empty()) {
                        c.mime_type = track.mime_type.clone();
                    }
                }
                track.simulcast = m.rids.len() > 1;
                p.media.published.insert(m.mid, track.sid.as_str().into());
                p.info.tracks.push(track.clone());
                newly.push(track);
            }
            if !newly.is_empty() {
                p.info.is_publisher = true;
                p.bump();
            }
        }
        if newly.is_empty() {
            return;
        }
        let Some(room) = self.conns.room(conn) else {
            return;
        };
        if let Some(info) = self.participant_by_conn(conn).map(|p| p.info.clone()) {
            if let Some(r) = self.rooms.get(&room) {
                r.send_update_to_others(conn, info, out);
            }
        }
        if let (Some(info), Some(room_info)) = (
            self.participant_by_conn(conn).map(|p| p.info.clone()),
            self.rooms.get(&room).map(|r| r.info.clone()),
        ) {
            for track in &newly {
                self.parts.events.push(RoomEvent::TrackPublished(
                    room_info.clone(),
                    info.clone(),
                    track.clone(),
                ));
            }
        }
        for track in newly {
            if let Some((r, slot, parts)) = self.at_conn(conn) {
                r.subscribe_room_to(slot, &track, now, parts);
            }
        }
        self.send_pending_offers(&room, out);
    }

    /// Our answer, with each track's codec first on its m-line (see `codec_order`): a
    /// new track's announced one (AddTrackRequest simulcast_codecs), and for a track
    /// already published the one it was published with, so that a renegotiation does
    /// not switch it.
    fn prefer_announced_codecs(
        &mut self,
        conn: ConnId,
        offered: &[OfferedMedia],
        answer: &str,
    ) -> String {
        let Some(p) = self.participant_by_conn(conn) else {
            return answer.to_string();
        };
        let wanted: Vec<(String, Codec)> = offered
            .iter()
            .filter_map(|m| {
                let published = p
                    .media
                    .published
                    .get(&m.mid)
                    .and_then(|sid| p.info.tracks.iter().find(|t| *t.sid == **sid));
                let pending = || {
                    let cid = m.msid_track.as_deref()?;
                    let t = p.media.pending_tracks.iter().find(|t| t.cid == cid)?;
                    Some(&t.info)
                };
                let track = published.or_else(pending)?;
                let codec = if track.r#type == lk::TrackType::Audio as i32 {
                    audio_codec(track)
                } else if published.is_some() {
                    codec_order::codec_named(&track.mime_type)?
                } else {
                    codec_order::codec_named(&track.codecs.first()?.mime_type)?
                };
                Some((m.mid.to_string(), codec))
            })
            .collect();
        codec_order::prefer_codecs(answer, &wanted)
    }

    /// The client's answer to our subscriber offer; a change queued meanwhile is offered now.
    pub(super) fn on_answer(
        &mut self,
        conn: ConnId,
        answer: lk::SessionDescription,
        out: &mut Vec<Outbound>,
    ) {
        if self.is_single_pc(conn) {
            debug!(conn, "answer on a single PC, where we never offer: ignored");
            return;
        }
        if let Some((session, _)) = self.session_mut((conn, Side::Subscriber)) {
            if let Err(e) = session.accept_answer(&answer.sdp) {
                debug!(conn, error = %e, "subscriber answer refused");
            }
        }
        if let Some(p) = self.participant_by_conn(conn) {
            p.media.awaiting_answer = false;
        }
        if let Some(room) = self.conns.room(conn) {
            self.send_pending_offers(&room, out);
        }
    }

    pub(super) fn on_trickle(&mut self, conn: ConnId, mut trickle: lk::TrickleRequest) {
        if self.is_single_pc(conn) {
            // One PC: whatever the target says (the Rust SDK names SUBSCRIBER too).
            trickle.target = lk::SignalTarget::Publisher as i32;
        }
        let side = Side::from_target(trickle.target);
        match self.session_mut((conn, side)) {
            Some((session, _)) => {
                if let Err(e) = session.add_remote_candidate(&trickle.candidate_init) {
                    debug!(conn, error = %e, "remote candidate ignored");
                }
            }
            None => {
                if let Some(p) = self.participant_by_conn(conn) {
                    // Bounded: a client trickles a handful before its offer.
                    if p.media.early_candidates.len() < 64 {
                        p.media
                            .early_candidates
                            .push((trickle.target, trickle.candidate_init));
                    }
                }
            }
        }
    }

    fn apply_early_candidates(&mut self, conn: ConnId, side: Side) {
        let early = match self.participant_by_conn(conn) {
            Some(p) => std::mem::take(&mut p.media.early_candidates),
            None => return,
        };
        let (now, later): (Vec<_>, Vec<_>) = early
            .into_iter()
            .partition(|(target, _)| Side::from_target(*target) == side);
        if let Some((session, _)) = self.session_mut((conn, side)) {
            for (_, c) in now {
                let _ = session.add_remote_candidate(&c);
            }
        }
        if let Some(p) = self.participant_by_conn(conn) {
            p.media.early_candidates = later;
        }
    }

    /// AddTrackRequest: check the grant, give the track its sid and wait for its m-line.
    pub(super) fn on_add_track(
        &mut self,
        conn: ConnId,
        req: lk::AddTrackRequest,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participant_by_conn(conn) else {
            return;
        };
        let permission = p.info.permission.clone().unwrap_or_default();
        if !super::permission::may_publish_source(&permission, req.source) {
            reply(
                out,
                conn,
                Resp::RequestResponse(lk::RequestResponse {
                    reason: lk::request_response::Reason::NotAllowed as i32,
                    message: "does not have permission to publish".into(),
                    ..Default::default()
                }),
            );
            return;
        }
        let existing = p
            .media
            .pending_tracks
            .iter()
            .find(|t| t.cid == req.cid)
            .map(|t| t.info.clone());
        let track = existing.unwrap_or_else(|| {
            let info = track_info(&req);
            p.media.pending_tracks.push(PendingTrack {
                cid: req.cid.clone(),
                info: info.clone(),
            });
            info
        });
        reply(
            out,
            conn,
            Resp::TrackPublished(lk::TrackPublishedResponse {
                cid: req.cid,
                track: Some(track),
            }),
        );
    }

    /// Tracks whose m-line a new publisher offer stopped sending are unpublished.
    pub(super) fn unpublish_stopped(
        &mut self,
        conn: ConnId,
        offered: &[OfferedMedia],
        now: std::time::Instant,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participant_by_conn(conn) else {
            return;
        };
        let stopped: Vec<String> = offered
            .iter()
            .filter(|m| m.disabled || !m.direction.contains("send"))
            .filter_map(|m| p.media.published.remove(&m.mid))
            .map(|sid| sid.to_string())
            .collect();
        if stopped.is_empty() {
            return;
        }
        let removed: Vec<lk::TrackInfo> = p
            .info
            .tracks
            .iter()
            .filter(|t| stopped.contains(&t.sid))
            .cloned()
            .collect();
        p.info.tracks.retain(|t| !stopped.contains(&t.sid));
        p.bump();
        let info = p.info.clone();
        let Some(room) = self.conns.room(conn) else {
            return;
        };
        if let Some(room_info) = self.rooms.get(&room).map(|r| r.info.clone()) {
            for track in removed {
                self.parts.events.push(RoomEvent::TrackUnpublished(
                    room_info.clone(),
                    info.clone(),
                    track,
                ));
            }
        }
        if let Some(r) = self.rooms.get(&room) {
            r.send_update_to_others(conn, info, out);
        }
        if let Some((r, parts)) = self.with_parts(&room) {
            r.unsubscribe_all(&stopped, now, parts, out);
        }
    }
}

/// The codec a publisher's audio track goes first with: RED, as LiveKit prefers it,
/// unless the track was published with `disable_red` or is end-to-end encrypted (the
/// SDK's frame encryption would cover the RED wrapper, which the server then could
/// neither read nor strip for subscribers without RED).
pub(super) fn audio_codec(track: &lk::TrackInfo) -> Codec {
    let encrypted = track.encryption != lk::encryption::Type::None as i32;
    if track.disable_red || encrypted {
        Codec::Opus
    } else {
        Codec::Red
    }
}
