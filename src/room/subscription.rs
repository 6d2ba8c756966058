//! Who receives what: subscribing participants to tracks (automatically, when asked,
//! within `limit.subscription_limit_*`), unsubscribing, the subscriptions that wait
//! for a free slot, track settings (pause, layer), and mutes (the publisher's own and
//! the server-side one). All within one room: the participant is
//! named by its slot, and the shard lends what a new peer connection needs.

use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use tracing::debug;

use super::media::Side;
use super::members::Slot;
use super::one_room::Room;
use super::participant::ConnId;
use super::room_ops::{reply, Outbound, RoomError};
use super::rooms::ShardParts;
use super::track_info::{down_track, layer_rid};
use crate::session::MediaKind;
use crate::sfu::layers::{pick_quality, track_layers, LayerState};

/// The tracks a subscription change names: directly, and per publisher (UpdateSubscription,
/// SyncState's subscription, RoomService UpdateSubscriptions).
pub(super) fn named_tracks(
    track_sids: Vec<String>,
    participant_tracks: Vec<lk::ParticipantTracks>,
) -> Vec<String> {
    let mut sids = track_sids;
    sids.extend(participant_tracks.into_iter().flat_map(|pt| pt.track_sids));
    sids
}

impl Room {
    /// Subscribes the participant in `slot` to `track` of `publisher_sid`, or queues it
    /// when the participant is at its limit for the track's kind.
    pub(super) fn subscribe(
        &mut self,
        slot: Slot,
        publisher_sid: &str,
        track: &lk::TrackInfo,
        now: Instant,
        parts: &mut ShardParts,
    ) {
        if !self.ensure_session(slot, Side::Subscriber, now, parts) {
            return;
        }
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        let conn = p.conn;
        if p.media.downtracks.contains_key(&track.sid) {
            return;
        }
        let kind = if track.r#type == lk::TrackType::Audio as i32 {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        let limit = match kind {
            MediaKind::Audio => parts.limits.subscription_limit_audio,
            MediaKind::Video => parts.limits.subscription_limit_video,
        };
        let held = (p.media.downtracks.values())
            .filter(|d| d.kind == kind)
            .count();
        if limit > 0 && held >= limit as usize {
            if !p.media.waiting.iter().any(|(_, t)| t.sid == track.sid) {
                debug!(conn, track = %track.sid, limit, "subscription waits: limit reached");
                p.media
                    .waiting
                    .push((publisher_sid.to_string(), track.clone()));
            }
            return;
        }
        p.media.waiting.retain(|(_, t)| t.sid != track.sid);
        let adaptive_stream = p.adaptive_stream;
        let Some(session) = p.media.down_session() else {
            return;
        };
        let mut layers = LayerState::default();
        let mut requested = None;
        let announced = track_layers(track);
        if announced.len() > 1 {
            // Before any settings: HIGH, or LOW for adaptive-stream clients (LiveKit).
            let start = if adaptive_stream {
                lk::VideoQuality::Low
            } else {
                lk::VideoQuality::High
            };
            requested = Some(layer_rid(announced, start));
            layers.order = [
                lk::VideoQuality::Low,
                lk::VideoQuality::Medium,
                lk::VideoQuality::High,
            ]
            .into_iter()
            .filter(|q| announced.iter().any(|l| l.quality == *q as i32))
            .map(|q| layer_rid(announced, q))
            .collect();
        }
        let stream_id = format!("{publisher_sid}|{}", track.sid);
        match session.add_send_track(kind, &stream_id, &track.sid) {
            Ok(()) => {
                p.media.downtracks.insert(
                    track.sid.clone(),
                    down_track(track, kind, layers, requested),
                );
                p.media.needs_offer = true;
                self.participants.subscribed(&track.sid);
                self.wanted_here(publisher_sid, &track.sid, &mut parts.spread_out);
            }
            Err(e) => debug!(conn, error = %e, "cannot add subscribed track"),
        }
    }

    /// Subscribes every other auto-subscribing participant allowed to subscribe to
    /// `track` of the participant in `publisher`.
    pub(super) fn subscribe_room_to(
        &mut self,
        publisher: Slot,
        track: &lk::TrackInfo,
        now: Instant,
        parts: &mut ShardParts,
    ) {
        let Some(pub_sid) = self.participants.at(publisher).map(|p| p.info.sid.clone()) else {
            return;
        };
        let subscribers: Vec<Slot> = (self.participants.slots())
            .filter(|(slot, p)| *slot != publisher && p.auto_subscribe)
            .filter(|(_, p)| p.info.permission.as_ref().is_some_and(|x| x.can_subscribe))
            .map(|(slot, _)| slot)
            .collect();
        for sub in subscribers {
            self.subscribe(sub, &pub_sid, track, now, parts);
        }
    }

    /// The tracks the others publish that pass `keep`, with their publisher's sid.
    pub(super) fn others_tracks(
        &self,
        except: ConnId,
        keep: impl Fn(&lk::TrackInfo) -> bool,
    ) -> Vec<(String, lk::TrackInfo)> {
        (self.participants.values())
            .filter(|p| p.conn != except)
            .flat_map(|p| {
                (p.info.tracks.iter())
                    .filter(|t| keep(t))
                    .map(|t| (p.info.sid.clone(), t.clone()))
            })
            .collect()
    }

    /// Subscribes the participant in `slot` to everything the others publish.
    pub(super) fn subscribe_to_existing(
        &mut self,
        slot: Slot,
        now: Instant,
        parts: &mut ShardParts,
    ) {
        let Some(conn) = self.participants.at(slot).map(|p| p.conn) else {
            return;
        };
        for (pub_sid, track) in self.others_tracks(conn, |_| true) {
            self.subscribe(slot, &pub_sid, &track, now, parts);
        }
    }

    /// Opens a new participant's subscriber PC: data channels, existing tracks, offer.
    pub(super) fn start_subscriber(
        &mut self,
        slot: Slot,
        auto_subscribe: bool,
        now: Instant,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) {
        let Some(single_pc) = self.participants.at(slot).map(|p| p.media.single_pc) else {
            return;
        };
        if single_pc {
            // The client's own offer carries its channels; tracks wait for its lines.
            if auto_subscribe {
                self.subscribe_to_existing(slot, now, parts);
            }
            self.send_pending_offers(&mut parts.demux, out);
            return;
        }
        if !self.ensure_session(slot, Side::Subscriber, now, parts) {
            return;
        }
        if let Some(p) = self.participants.at_mut(slot) {
            if let Some(session) = p.media.subscriber.as_mut() {
                if let Err(e) = session.open_data_channels() {
                    debug!(conn = p.conn, error = %e, "cannot open data channels");
                }
            }
            p.media.needs_offer = true;
        }
        if auto_subscribe {
            self.subscribe_to_existing(slot, now, parts);
        }
        self.send_pending_offers(&mut parts.demux, out);
    }

    /// Drops the downtracks of unpublished tracks and renegotiates those subscribers.
    pub(super) fn unsubscribe_all(
        &mut self,
        track_sids: &[String],
        now: Instant,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) {
        if track_sids.is_empty() {
            return;
        }
        for p in self.participants.values_mut() {
            for sid in track_sids {
                p.media.drop_downtrack(sid);
            }
        }
        self.fill_free_slots(now, parts);
        self.send_pending_offers(&mut parts.demux, out);
    }

    /// Subscriptions that waited for `limit.subscription_limit_*` start where a slot of
    /// their kind is free, oldest first.
    pub(super) fn fill_free_slots(&mut self, now: Instant, parts: &mut ShardParts) {
        let waiting: Vec<(Slot, String, lk::TrackInfo)> = (self.participants.slots_mut())
            .flat_map(|(slot, p)| {
                std::mem::take(&mut p.media.waiting)
                    .into_iter()
                    .map(move |(publisher, track)| (slot, publisher, track))
            })
            .collect();
        // `subscribe` puts back what still does not fit, in the same order.
        for (slot, publisher, track) in waiting {
            self.subscribe(slot, &publisher, &track, now, parts);
        }
    }

    /// Subscribes or unsubscribes the participant in `slot` to the given tracks of the
    /// room.
    pub(super) fn update_subscriptions(
        &mut self,
        slot: Slot,
        track_sids: &[String],
        subscribe: bool,
        now: Instant,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participants.at(slot) else {
            return;
        };
        let conn = p.conn;
        // Every subscribe path checks the grant, as LiveKit does; unsubscribing is
        // always allowed.
        let may_subscribe = (p.info.permission.as_ref()).is_some_and(|p| p.can_subscribe);
        if subscribe && !may_subscribe {
            debug!(conn, "subscription refused: no can_subscribe grant");
            return;
        }
        let found = self.others_tracks(conn, |t| track_sids.contains(&t.sid));
        for sid in track_sids {
            if !found.iter().any(|(_, t)| &t.sid == sid) {
                reply(
                    out,
                    conn,
                    Resp::SubscriptionResponse(lk::SubscriptionResponse {
                        track_sid: sid.clone(),
                        err: lk::SubscriptionError::SeTrackNotfound as i32,
                    }),
                );
            }
        }
        for (publisher_sid, track) in found {
            if subscribe {
                self.subscribe(slot, &publisher_sid, &track, now, parts);
            } else if let Some(p) = self.participants.at_mut(slot) {
                p.media.drop_downtrack(&track.sid);
            }
        }
        if !subscribe {
            self.fill_free_slots(now, parts);
        }
        self.send_pending_offers(&mut parts.demux, out);
    }

    /// RoomService MutePublishedTrack: the publisher is told to mute (it answers with its
    /// own MuteTrackRequest) and everyone sees the new state.
    pub(super) fn server_mute(
        &mut self,
        req: &lk::MuteRoomTrackRequest,
        out: &mut Vec<Outbound>,
    ) -> Result<lk::TrackInfo, RoomError> {
        let p = (self.participants.get_mut(&req.identity)).ok_or(RoomError::ParticipantNotFound)?;
        let track = (p.info.tracks.iter_mut())
            .find(|t| t.sid == req.track_sid)
            .ok_or(RoomError::TrackNotFound)?;
        track.muted = req.muted;
        let track = track.clone();
        p.bump();
        let (conn, info) = (p.conn, p.info.clone());
        let mute = Resp::Mute(lk::MuteTrackRequest {
            sid: track.sid.clone(),
            muted: req.muted,
        });
        reply(out, conn, mute);
        self.send_update_to_others(conn, info, out);
        Ok(track)
    }

    /// UpdateTrackSettings from the participant in `slot`: pause/resume and pick the
    /// simulcast layer for the size it renders. Unknown sids and absurd values are
    /// ignored per track.
    pub(super) fn on_track_settings(&mut self, slot: Slot, settings: lk::UpdateTrackSettings) {
        let tracks: Vec<lk::TrackInfo> = (self.participants.values())
            .flat_map(|p| p.info.tracks.iter())
            .filter(|t| settings.track_sids.contains(&t.sid))
            .cloned()
            .collect();
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        for track in tracks {
            let Some(down) = p.media.downtracks.get_mut(&track.sid) else {
                continue;
            };
            down.disabled = settings.disabled;
            down.fps = settings.fps;
            let announced = track_layers(&track);
            if !settings.disabled && announced.len() > 1 {
                let quality = pick_quality(announced, &settings);
                down.requested = Some(layer_rid(announced, quality));
            }
            down.refresh();
        }
    }

    /// The participant in `slot` muted or unmuted one of its tracks: everyone sees it.
    pub(super) fn on_mute(
        &mut self,
        slot: Slot,
        req: lk::MuteTrackRequest,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        let Some(track) = p.info.tracks.iter_mut().find(|t| t.sid == req.sid) else {
            return;
        };
        track.muted = req.muted;
        p.bump();
        let (conn, info) = (p.conn, p.info.clone());
        self.send_update_to_others(conn, info, out);
    }
}
