//! SyncState: after a resume the client says what it thinks it publishes and which
//! subscriptions it wants; the room reconciles as LiveKit's `onSyncState` does. A
//! published track the room does not know means the two sides disagree beyond repair:
//! the client is asked for a full reconnect.

use std::time::Instant;

use livekit_protocol as lk;
use tracing::debug;

use super::members::Slot;
use super::one_room::Room;
use super::room_ops::Outbound;
use super::rooms::ShardParts;

impl Room {
    /// SyncState from the participant in `slot`, reconciled. `Err` says why it does
    /// not match the room: the caller then asks for a full reconnect.
    pub(super) fn on_sync_state(
        &mut self,
        slot: Slot,
        state: lk::SyncState,
        now: Instant,
        parts: &mut ShardParts,
        out: &mut Vec<Outbound>,
    ) -> Result<(), String> {
        let Some(p) = self.participants.at(slot) else {
            return Ok(());
        };
        let unknown = state.publish_tracks.iter().find_map(|t| {
            let Some(info) = t.track.as_ref() else {
                return Some("a published track without its TrackInfo".to_string());
            };
            let known = p.info.tracks.iter().any(|k| k.sid == info.sid)
                || (p.media.pending_tracks.iter()).any(|k| k.info.sid == info.sid);
            (!known).then(|| format!("unknown published track {}", info.sid))
        });
        if let Some(why) = unknown {
            return Err(why);
        }
        debug!(
            conn = p.conn,
            disabled = state.track_sids_disabled.len(),
            "sync state reconciled"
        );
        if !state.track_sids_disabled.is_empty() {
            let settings = lk::UpdateTrackSettings {
                track_sids: state.track_sids_disabled,
                disabled: true,
                ..Default::default()
            };
            self.on_track_settings(slot, settings);
        }
        if let Some(s) = state.subscription {
            let sids = super::subscription::named_tracks(s.track_sids, s.participant_tracks);
            if !sids.is_empty() {
                self.update_subscriptions(slot, &sids, s.subscribe, now, parts, out);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use lk::signal_response::Message as Resp;

    use super::*;
    use crate::room::fuzzing::{join_params, rooms};
    use crate::room::participant::ConnId;

    fn sync(
        rooms: &mut crate::room::rooms::Rooms,
        state: lk::SyncState,
        now: Instant,
    ) -> Vec<Outbound> {
        let request = lk::SignalRequest {
            message: Some(lk::signal_request::Message::SyncState(state)),
        };
        let mut out = Vec::new();
        rooms.signal(1, request, now, &mut out);
        out
    }

    fn leaves(out: &[Outbound], conn: ConnId) -> usize {
        out.iter()
            .filter(|o| match o {
                Outbound::Close { conn: c, leave } => {
                    *c == conn && leave.action == lk::leave_request::Action::Reconnect as i32
                }
                Outbound::Signal { conn: c, response } => {
                    *c == conn && matches!(response.message, Some(Resp::Leave(_)))
                }
            })
            .count()
    }

    /// Rooms with alice joined on conn 1.
    fn alice() -> (crate::room::rooms::Rooms, Instant) {
        let now = crate::clock::now().mono;
        let mut rooms = rooms();
        rooms
            .join(1, &join_params("alice"), now, 0, &mut Vec::new())
            .unwrap();
        (rooms, now)
    }

    #[test]
    fn an_unknown_published_track_asks_for_a_full_reconnect() {
        let (mut rooms, now) = alice();
        let state = lk::SyncState {
            publish_tracks: vec![lk::TrackPublishedResponse {
                cid: "cam".into(),
                track: Some(lk::TrackInfo {
                    sid: "TR_elsewhere".into(),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        };
        let out = sync(&mut rooms, state, now);
        assert_eq!(leaves(&out, 1), 1, "{out:?}");
        assert!(rooms.participant("r", "alice").is_err());
    }

    #[test]
    fn a_state_the_room_agrees_with_keeps_the_participant() {
        let (mut rooms, now) = alice();
        let state = lk::SyncState {
            track_sids_disabled: vec!["TR_none".into()],
            subscription: Some(lk::UpdateSubscription {
                track_sids: vec!["TR_none".into()],
                subscribe: false,
                ..Default::default()
            }),
            ..Default::default()
        };
        let out = sync(&mut rooms, state, now);
        assert_eq!(leaves(&out, 1), 0, "{out:?}");
        assert!(rooms.participant("r", "alice").is_ok());
    }
}
