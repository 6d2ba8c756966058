//! Offers, answers, trickle and track announcements: the signal requests that shape a
//! participant's peer connections (the server's own offers are in `offers`). Each
//! concerns one participant of one room, named by its slot.

use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use tracing::debug;

use super::media::Side;
use super::members::Slot;
use super::offers::ask_for_offer;
use super::one_room::Room;
use super::participant::{Participant, PendingTrack};
use super::room_ops::{reply, Outbound, RoomEvent};
use super::rooms::ShardParts;
use super::track_info::{track_info, track_type};
use crate::session::{codec_order, Codec, OfferedMedia};

impl Room {
    /// A publisher offer from the participant in `slot`: answer it (echoing its id)
    /// and publish the announced tracks whose m-lines it carries. `Err` when the offer
    /// cannot be taken: the caller asks for a full reconnect, as LiveKit does
    /// (IssueFullReconnect), since the client would wait for an answer forever.
    #[allow(deprecated)] // TrackInfo.simulcast: older SDKs read it
    pub(super) fn on_offer(
        &mut self,
        slot: Slot,
        offer: lk::SessionDescription,
        now: Instant,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) -> Result<(), String> {
        if !self.ensure_session(slot, Side::Publisher, now, parts) {
            return Ok(());
        }
        let Some(p) = self.participants.at_mut(slot) else {
            return Ok(());
        };
        let conn = p.conn;
        apply_early_candidates(p, Side::Publisher);
        let Some(session) = p.media.session(Side::Publisher) else {
            return Ok(());
        };
        let (answer, offered) = session
            .accept_offer(&offer.sdp)
            .map_err(|e| e.to_string())?;
        // An ICE restart makes a new ufrag.
        let ufrag = session.local_ufrag();
        parts.demux.replace_ufrag(ufrag, (conn, Side::Publisher));
        let answer = prefer_announced_codecs(p, &offered, &answer);
        let mid_to_track_id = super::offers::settle_single_pc(p);
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
        if p.media.single_pc {
            // The client's offer came: tracks still waiting need another one.
            p.media.awaiting_answer = false;
            ask_for_offer(p, conn, out);
        }
        self.unpublish_stopped(slot, &offered, now, parts, out);
        let Some(p) = self.participants.at_mut(slot) else {
            return Ok(());
        };
        let newly = publish_offered(p, offered, &answer);
        if newly.is_empty() {
            return Ok(());
        }
        let info = p.info.clone();
        self.send_update_to_others(conn, info.clone(), out);
        for track in &newly {
            let event = RoomEvent::TrackPublished(self.info.clone(), info.clone(), track.clone());
            parts.events.push(event);
        }
        for track in newly {
            self.subscribe_room_to(slot, &track, now, parts);
        }
        self.send_pending_offers(&mut parts.demux, out);
        Ok(())
    }

    /// The client's answer to our subscriber offer; a change queued meanwhile is offered now.
    pub(super) fn on_answer(
        &mut self,
        slot: Slot,
        answer: lk::SessionDescription,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        if p.media.single_pc {
            debug!(
                conn = p.conn,
                "answer on a single PC, where we never offer: ignored"
            );
            return;
        }
        if let Some(session) = p.media.session(Side::Subscriber) {
            if let Err(e) = session.accept_answer(&answer.sdp) {
                debug!(conn = p.conn, error = %e, "subscriber answer refused");
            }
        }
        p.media.awaiting_answer = false;
        self.send_pending_offers(&mut parts.demux, out);
    }

    /// A trickled candidate from the participant in `slot`; one that comes before its
    /// peer connection is kept for it (a handful at most).
    pub(super) fn on_trickle(&mut self, slot: Slot, mut trickle: lk::TrickleRequest) {
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        if p.media.single_pc {
            // One PC: whatever the target says (the Rust SDK names SUBSCRIBER too).
            trickle.target = lk::SignalTarget::Publisher as i32;
        }
        let conn = p.conn;
        let side = Side::from_target(trickle.target);
        if let Some(session) = p.media.session(side) {
            if let Err(e) = session.add_remote_candidate(&trickle.candidate_init) {
                debug!(conn, error = %e, "remote candidate ignored");
            }
        } else if p.media.early_candidates.len() < 64 {
            // Bounded: a client trickles a handful before its offer.
            (p.media.early_candidates).push((trickle.target, trickle.candidate_init));
        }
    }

    /// AddTrackRequest: check the grant, give the track its sid and wait for its m-line.
    pub(super) fn on_add_track(
        &mut self,
        slot: Slot,
        req: lk::AddTrackRequest,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        let conn = p.conn;
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
        let existing = (p.media.pending_tracks.iter())
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
    fn unpublish_stopped(
        &mut self,
        slot: Slot,
        offered: &[OfferedMedia],
        now: Instant,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        let stopped: Vec<String> = (offered.iter())
            .filter(|m| m.disabled || !m.direction.contains("send"))
            .filter_map(|m| p.media.published.remove(&m.mid))
            .map(|sid| sid.to_string())
            .collect();
        if stopped.is_empty() {
            return;
        }
        let removed: Vec<lk::TrackInfo> = (p.info.tracks.iter())
            .filter(|t| stopped.contains(&t.sid))
            .cloned()
            .collect();
        p.info.tracks.retain(|t| !stopped.contains(&t.sid));
        p.bump();
        let (conn, info) = (p.conn, p.info.clone());
        for track in removed {
            let event = RoomEvent::TrackUnpublished(self.info.clone(), info.clone(), track);
            parts.events.push(event);
        }
        self.send_update_to_others(conn, info, out);
        self.unsubscribe_all(&stopped, now, parts, out);
    }
}

/// Publishes the announced tracks whose m-lines the offer carries (matched by the
/// client's track id, else by kind); returns them.
#[allow(deprecated)] // TrackInfo.simulcast: older SDKs read it
fn publish_offered(
    p: &mut Participant,
    offered: Vec<OfferedMedia>,
    answer: &str,
) -> Vec<lk::TrackInfo> {
    let mut newly = Vec::new();
    for m in offered {
        if m.disabled || !m.direction.contains("send") || p.media.published.contains_key(&m.mid) {
            continue;
        }
        let kind = track_type(m.kind);
        let pending = &p.media.pending_tracks;
        let found = (pending.iter())
            .position(|t| m.msid_track.as_deref() == Some(t.cid.as_str()))
            .or_else(|| pending.iter().position(|t| t.info.r#type == kind as i32));
        let Some(i) = found else { continue };
        let mut track = p.media.pending_tracks.remove(i).info;
        track.mid = m.mid.to_string();
        if track.mime_type.is_empty() && kind == lk::TrackType::Video {
            // Announced without a codec: the client sends the first of the
            // answer's codecs, which follow its own order.
            let mid = m.mid.to_string();
            let codec = codec_order::first_video_codec(answer, &mid).unwrap_or(Codec::Vp8);
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
    newly
}

/// Candidates trickled for `side` before its session existed go to it now.
fn apply_early_candidates(p: &mut Participant, side: Side) {
    let early = std::mem::take(&mut p.media.early_candidates);
    let (now, later): (Vec<_>, Vec<_>) =
        (early.into_iter()).partition(|(target, _)| Side::from_target(*target) == side);
    if let Some(session) = p.media.session(side) {
        for (_, c) in now {
            let _ = session.add_remote_candidate(&c);
        }
    }
    p.media.early_candidates = later;
}

/// Our answer, with each track's codec first on its m-line (see `codec_order`): a new
/// track's announced one (AddTrackRequest simulcast_codecs), and for a track already
/// published the one it was published with, so that a renegotiation does not switch it.
fn prefer_announced_codecs(p: &Participant, offered: &[OfferedMedia], answer: &str) -> String {
    let wanted: Vec<(String, Codec)> = (offered.iter())
        .filter_map(|m| {
            let published = (p.media.published.get(&m.mid))
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
