//! SyncState: after a resume the client says what it thinks it publishes and which
//! subscriptions it wants; the room reconciles as LiveKit's `onSyncState` does. A
//! published track the room does not know means the two sides disagree beyond repair:
//! the client is asked for a full reconnect.

use std::time::Instant;

use livekit_protocol as lk;
use tracing::{debug, warn};

use super::participant::ConnId;
use super::room_ops::Outbound;
use super::rooms::Rooms;

impl Rooms {
    pub(super) fn on_sync_state(
        &mut self,
        conn: ConnId,
        state: lk::SyncState,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) {
        let Some(p) = self.participant_by_conn(conn) else {
            return;
        };
        let unknown = state.publish_tracks.iter().find_map(|t| {
            let Some(info) = t.track.as_ref() else {
                return Some("a published track without its TrackInfo".to_string());
            };
            let known = p.info.tracks.iter().any(|k| k.sid == info.sid)
                || p.media
                    .pending_tracks
                    .iter()
                    .any(|k| k.info.sid == info.sid);
            (!known).then(|| format!("unknown published track {}", info.sid))
        });
        if let Some(why) = unknown {
            warn!(conn, %why, "sync state does not match: asking for a full reconnect");
            let (reason, action) = (
                lk::DisconnectReason::StateMismatch,
                lk::leave_request::Action::Reconnect,
            );
            self.remove_conn_with(conn, reason, action, now, out);
            return;
        }
        debug!(
            conn,
            disabled = state.track_sids_disabled.len(),
            "sync state reconciled"
        );
        if !state.track_sids_disabled.is_empty() {
            let settings = lk::UpdateTrackSettings {
                track_sids: state.track_sids_disabled,
                disabled: true,
                ..Default::default()
            };
            self.on_track_settings(conn, settings);
        }
        if let Some(s) = state.subscription {
            let mut sids = s.track_sids;
            for pt in s.participant_tracks {
                sids.extend(pt.track_sids);
            }
            if !sids.is_empty() {
                if let Some((r, slot, parts)) = self.at_conn(conn) {
                    r.update_subscriptions(slot, &sids, s.subscribe, now, parts, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use lk::signal_response::Message as Resp;

    use super::*;
    use crate::room::fuzzing::{join_params, rooms};

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
        let mut out = Vec::new();
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
        rooms.on_sync_state(1, state, now, &mut out);
        assert_eq!(leaves(&out, 1), 1, "{out:?}");
        assert!(rooms.participant("r", "alice").is_err());
    }

    #[test]
    fn a_state_the_room_agrees_with_keeps_the_participant() {
        let (mut rooms, now) = alice();
        let mut out = Vec::new();
        let state = lk::SyncState {
            track_sids_disabled: vec!["TR_none".into()],
            subscription: Some(lk::UpdateSubscription {
                track_sids: vec!["TR_none".into()],
                subscribe: false,
                ..Default::default()
            }),
            ..Default::default()
        };
        rooms.on_sync_state(1, state, now, &mut out);
        assert_eq!(leaves(&out, 1), 0, "{out:?}");
        assert!(rooms.participant("r", "alice").is_ok());
    }
}
