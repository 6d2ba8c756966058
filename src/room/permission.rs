//! A participant's grants changed after it joined (RoomService UpdateParticipant):
//! what the new grants no longer allow stops, what they now allow starts, as in
//! LiveKit's `SetPermission`.

use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::media::Side;
use super::members::Slot;
use super::one_room::Room;
use super::room_ops::{reply, Outbound, RoomEvent};
use super::rooms::ShardParts;

/// May a participant with `permission` publish a track of `source`?
pub(super) fn may_publish_source(permission: &lk::ParticipantPermission, source: i32) -> bool {
    permission.can_publish
        && (permission.can_publish_sources.is_empty()
            || permission.can_publish_sources.contains(&source))
}

impl Room {
    /// Enforces the current grants of the participant in `slot` (`was` are its grants
    /// before): tracks of sources it may no longer publish are unpublished (the
    /// publisher is told with TrackUnpublished, subscribers lose them); without
    /// `can_subscribe` every subscription goes; with it, a participant that had none
    /// gets its subscriber connection, and auto-subscribe catches up.
    pub(super) fn enforce_permission(
        &mut self,
        slot: Slot,
        was: &lk::ParticipantPermission,
        now: Instant,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participants.at(slot) else {
            return;
        };
        let conn = p.conn;
        let permission = p.info.permission.clone().unwrap_or_default();
        self.unpublish_forbidden(slot, &permission, now, parts, out);
        if permission.can_subscribe {
            let (started, auto) = (self.participants.at(slot))
                .map(|p| (p.media.has_down_session(), p.auto_subscribe))
                .unwrap_or((true, false));
            if !started {
                self.start_subscriber(slot, auto, now, parts, out);
            } else if auto && !was.can_subscribe {
                self.subscribe_to_existing(slot, now, parts);
                self.send_pending_offers(&mut parts.demux, out);
            }
        } else {
            self.unsubscribe_everything(slot);
            self.send_pending_offers(&mut parts.demux, out);
        }
        parts.dirty.push((conn, Side::Subscriber));
        self.update_dynacast(out, &mut parts.spread_out);
    }

    fn unpublish_forbidden(
        &mut self,
        slot: Slot,
        permission: &lk::ParticipantPermission,
        now: Instant,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        let conn = p.conn;
        p.media
            .pending_tracks
            .retain(|t| may_publish_source(permission, t.info.source));
        let (kept, removed): (Vec<lk::TrackInfo>, Vec<lk::TrackInfo>) =
            std::mem::take(&mut p.info.tracks)
                .into_iter()
                .partition(|t| may_publish_source(permission, t.source));
        p.info.tracks = kept;
        if removed.is_empty() {
            return;
        }
        let sids: Vec<String> = removed.iter().map(|t| t.sid.clone()).collect();
        p.media
            .published
            .retain(|_, sid| !sids.iter().any(|s| **s == **sid));
        p.bump();
        let info = p.info.clone();
        for sid in &sids {
            reply(
                out,
                conn,
                Resp::TrackUnpublished(lk::TrackUnpublishedResponse {
                    track_sid: sid.clone(),
                }),
            );
        }
        for track in removed {
            let event = RoomEvent::TrackUnpublished(self.info.clone(), info.clone(), track);
            parts.events.push(event);
        }
        self.unsubscribe_all(&sids, now, parts, out);
    }

    fn unsubscribe_everything(&mut self, slot: Slot) {
        let Some(p) = self.participants.at_mut(slot) else {
            return;
        };
        p.media.waiting.clear();
        let sids: Vec<String> = p.media.downtracks.keys().cloned().collect();
        for sid in &sids {
            p.media.drop_downtrack(sid);
        }
    }
}
