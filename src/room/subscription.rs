//! Changes to what is published and who receives it after the fact: unpublishing by
//! renegotiation, server-side mute, and explicit subscription updates (signal request
//! and RoomService UpdateSubscriptions).

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use tracing::debug;

use super::participant::ConnId;
use super::room_ops::{reply, Outbound, RoomError, RoomEvent};
use super::rooms::Rooms;
use crate::session::OfferedMedia;

impl Rooms {
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
                self.events.push(RoomEvent::TrackUnpublished(
                    room_info.clone(),
                    info.clone(),
                    track,
                ));
            }
        }
        self.broadcast_participant(&room, conn, info, out);
        self.unsubscribe_all(&room, &stopped, now, out);
    }

    /// RoomService MutePublishedTrack: the publisher is told to mute (it answers with its
    /// own MuteTrackRequest) and everyone sees the new state.
    pub(super) fn server_mute(
        &mut self,
        req: &lk::MuteRoomTrackRequest,
        out: &mut Vec<Outbound>,
    ) -> Result<lk::TrackInfo, RoomError> {
        let room = self.room_mut(&req.room)?;
        let p = room
            .participants
            .get_mut(&req.identity)
            .ok_or(RoomError::ParticipantNotFound)?;
        let track = p
            .info
            .tracks
            .iter_mut()
            .find(|t| t.sid == req.track_sid)
            .ok_or(RoomError::TrackNotFound)?;
        track.muted = req.muted;
        let track = track.clone();
        p.bump();
        let (conn, info) = (p.conn, p.info.clone());
        out.push(Outbound::Signal {
            conn,
            response: Box::new(lk::SignalResponse {
                message: Some(Resp::Mute(lk::MuteTrackRequest {
                    sid: track.sid.clone(),
                    muted: req.muted,
                })),
            }),
        });
        let room_name = req.room.clone();
        self.broadcast_participant(&room_name, conn, info, out);
        Ok(track)
    }

    /// Subscribes or unsubscribes `conn` to the given tracks of its room.
    pub(super) fn update_subscriptions(
        &mut self,
        conn: ConnId,
        track_sids: &[String],
        subscribe: bool,
        now: std::time::Instant,
        out: &mut Vec<Outbound>,
    ) {
        let Some(room) = self.conns.room(conn) else {
            return;
        };
        // Every subscribe path checks the grant, as LiveKit does; unsubscribing is
        // always allowed.
        let may_subscribe = self
            .participant_by_conn(conn)
            .and_then(|p| p.info.permission.as_ref())
            .is_some_and(|p| p.can_subscribe);
        if subscribe && !may_subscribe {
            debug!(conn, "subscription refused: no can_subscribe grant");
            return;
        }
        let found = self.others_tracks(&room, conn, |t| track_sids.contains(&t.sid));
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
                self.subscribe(conn, &publisher_sid, &track, now);
            } else {
                self.unsubscribe(conn, &track.sid);
            }
        }
        if !subscribe {
            self.fill_free_slots(&room, now);
        }
        self.send_pending_offers(&room, out);
    }

    fn unsubscribe(&mut self, conn: ConnId, track_sid: &str) {
        let Some(p) = self.participant_by_conn(conn) else {
            return;
        };
        p.media.drop_downtrack(track_sid);
    }

    /// Subscriptions that waited for `limit.subscription_limit_*` start where a slot of
    /// their kind is free, oldest first.
    pub(super) fn fill_free_slots(&mut self, room: &str, now: std::time::Instant) {
        let waiting: Vec<(ConnId, String, lk::TrackInfo)> = match self.rooms.get_mut(room) {
            Some(r) => r
                .participants
                .values_mut()
                .flat_map(|p| {
                    let conn = p.conn;
                    std::mem::take(&mut p.media.waiting)
                        .into_iter()
                        .map(move |(publisher, track)| (conn, publisher, track))
                })
                .collect(),
            None => return,
        };
        // `subscribe` puts back what still does not fit, in the same order.
        for (conn, publisher, track) in waiting {
            self.subscribe(conn, &publisher, &track, now);
        }
    }

    /// RoomService UpdateSubscriptions, by identity.
    pub(super) fn update_subscriptions_for(
        &mut self,
        req: &lk::UpdateSubscriptionsRequest,
        now: std::time::Instant,
        out: &mut Vec<Outbound>,
    ) -> Result<(), RoomError> {
        let conn = self.participant(&req.room, &req.identity)?.conn;
        let mut sids = req.track_sids.clone();
        for pt in &req.participant_tracks {
            sids.extend(pt.track_sids.iter().cloned());
        }
        self.update_subscriptions(conn, &sids, req.subscribe, now, out);
        self.dirty.push((conn, super::media::Side::Subscriber));
        Ok(())
    }
}
