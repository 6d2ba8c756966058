//! A participant's grants changed after it joined (RoomService UpdateParticipant):
//! what the new grants no longer allow stops, what they now allow starts, as in
//! LiveKit's `SetPermission`.

use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::media::Side;
use super::participant::ConnId;
use super::room_ops::{reply, Outbound, RoomEvent};
use super::rooms::Rooms;

/// May a participant with `permission` publish a track of `source`?
pub(super) fn may_publish_source(permission: &lk::ParticipantPermission, source: i32) -> bool {
    permission.can_publish
        && (permission.can_publish_sources.is_empty()
            || permission.can_publish_sources.contains(&source))
}

impl Rooms {
    /// Enforces `conn`'s current grants: tracks of sources it may no longer publish
    /// are unpublished (the publisher is told with TrackUnpublished, subscribers lose
    /// them); without `can_subscribe` every subscription goes; with it, a participant
    /// that had none gets its subscriber connection, and auto-subscribe catches up.
    pub(super) fn enforce_permission(
        &mut self,
        conn: ConnId,
        was: &lk::ParticipantPermission,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let Some(room) = self.conns.room(conn) else {
            return;
        };
        let Some(p) = self.participant_by_conn(conn) else {
            return;
        };
        let permission = p.info.permission.clone().unwrap_or_default();
        self.unpublish_forbidden(&room, conn, &permission, now, out);
        if permission.can_subscribe {
            let (started, auto) = self
                .participant_by_conn(conn)
                .map(|p| (p.media.has_down_session(), p.auto_subscribe))
                .unwrap_or((true, false));
            if !started {
                if let Some((r, slot, parts)) = self.at_conn(conn) {
                    r.start_subscriber(slot, auto, now, parts, out);
                }
            } else if auto && !was.can_subscribe {
                if let Some((r, slot, parts)) = self.at_conn(conn) {
                    r.subscribe_to_existing(slot, now, parts);
                }
                self.send_pending_offers(&room, out);
            }
        } else {
            self.unsubscribe_everything(conn);
            self.send_pending_offers(&room, out);
        }
        self.dirty.push((conn, Side::Subscriber));
        self.update_dynacast(&room, out);
    }

    fn unpublish_forbidden(
        &mut self,
        room: &str,
        conn: ConnId,
        permission: &lk::ParticipantPermission,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participant_by_conn(conn) else {
            return;
        };
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
        if let Some(room_info) = self.rooms.get(room).map(|r| r.info.clone()) {
            for track in removed {
                self.events.push(RoomEvent::TrackUnpublished(
                    room_info.clone(),
                    info.clone(),
                    track,
                ));
            }
        }
        if let Some((r, parts)) = self.with_parts(room) {
            r.unsubscribe_all(&sids, now, parts, out);
        }
    }

    fn unsubscribe_everything(&mut self, conn: ConnId) {
        let Some(p) = self.participant_by_conn(conn) else {
            return;
        };
        p.media.waiting.clear();
        let sids: Vec<String> = p.media.downtracks.keys().cloned().collect();
        for sid in &sids {
            p.media.drop_downtrack(sid);
        }
    }
}
