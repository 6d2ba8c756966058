//! `WebhookEvent` builders, one per event corelay emits (LiveKit's `telemetry/events.go`).

use livekit_protocol as lk;

use crate::ids::guid;

/// Prefix of webhook event ids (`EV_` + 12 base57 characters).
pub const EVENT_ID_PREFIX: &str = "EV_";

pub const ROOM_STARTED: &str = "room_started";
pub const ROOM_FINISHED: &str = "room_finished";
pub const PARTICIPANT_JOINED: &str = "participant_joined";
pub const PARTICIPANT_LEFT: &str = "participant_left";
pub const TRACK_PUBLISHED: &str = "track_published";
pub const TRACK_UNPUBLISHED: &str = "track_unpublished";

fn event(
    name: &str,
    room: &lk::Room,
    participant: Option<&lk::ParticipantInfo>,
    track: Option<&lk::TrackInfo>,
    now_unix: i64,
) -> lk::WebhookEvent {
    lk::WebhookEvent {
        event: name.to_owned(),
        room: Some(room.clone()),
        participant: participant.cloned(),
        track: track.cloned(),
        id: guid(EVENT_ID_PREFIX),
        created_at: now_unix,
        ..Default::default()
    }
}

/// `room_started`: the room was created.
pub fn room_started(room: &lk::Room, now_unix: i64) -> lk::WebhookEvent {
    event(ROOM_STARTED, room, None, None, now_unix)
}

/// `room_finished`: the room closed.
pub fn room_finished(room: &lk::Room, now_unix: i64) -> lk::WebhookEvent {
    event(ROOM_FINISHED, room, None, None, now_unix)
}

/// `participant_joined`: the participant became active in `room`.
pub fn participant_joined(
    room: &lk::Room,
    p: &lk::ParticipantInfo,
    now_unix: i64,
) -> lk::WebhookEvent {
    event(PARTICIPANT_JOINED, room, Some(p), None, now_unix)
}

/// `participant_left`: the participant left `room` (or was removed).
pub fn participant_left(
    room: &lk::Room,
    p: &lk::ParticipantInfo,
    now_unix: i64,
) -> lk::WebhookEvent {
    event(PARTICIPANT_LEFT, room, Some(p), None, now_unix)
}

/// `track_published`: `p` published `t`.
pub fn track_published(
    room: &lk::Room,
    p: &lk::ParticipantInfo,
    t: &lk::TrackInfo,
    now_unix: i64,
) -> lk::WebhookEvent {
    event(TRACK_PUBLISHED, room, Some(p), Some(t), now_unix)
}

/// `track_unpublished`: `p` unpublished `t` (or left with it published).
pub fn track_unpublished(
    room: &lk::Room,
    p: &lk::ParticipantInfo,
    t: &lk::TrackInfo,
    now_unix: i64,
) -> lk::WebhookEvent {
    event(TRACK_UNPUBLISHED, room, Some(p), Some(t), now_unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> lk::Room {
        lk::Room {
            sid: "RM_abc".into(),
            name: "r1".into(),
            ..Default::default()
        }
    }

    fn participant() -> lk::ParticipantInfo {
        lk::ParticipantInfo {
            sid: "PA_abc".into(),
            identity: "alice".into(),
            ..Default::default()
        }
    }

    fn track() -> lk::TrackInfo {
        lk::TrackInfo {
            sid: "TR_abc".into(),
            ..Default::default()
        }
    }

    fn check_id(id: &str) {
        assert!(id.starts_with(EVENT_ID_PREFIX), "{id}");
        assert_eq!(id.len(), 15, "{id}");
        assert!(id[3..].bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }

    #[test]
    fn builders_set_name_id_time_and_payload() {
        let (r, p, t) = (room(), participant(), track());
        let events = [
            (room_started(&r, 10), ROOM_STARTED, false, false),
            (room_finished(&r, 11), ROOM_FINISHED, false, false),
            (
                participant_joined(&r, &p, 12),
                PARTICIPANT_JOINED,
                true,
                false,
            ),
            (participant_left(&r, &p, 13), PARTICIPANT_LEFT, true, false),
            (track_published(&r, &p, &t, 14), TRACK_PUBLISHED, true, true),
            (
                track_unpublished(&r, &p, &t, 15),
                TRACK_UNPUBLISHED,
                true,
                true,
            ),
        ];
        let mut ids = std::collections::HashSet::new();
        for (i, (ev, name, has_p, has_t)) in events.iter().enumerate() {
            assert_eq!(ev.event, *name);
            check_id(&ev.id);
            assert!(ids.insert(ev.id.clone()), "ids are unique");
            assert_eq!(ev.created_at, 10 + i as i64);
            assert_eq!(ev.room.as_ref().map(|r| r.name.as_str()), Some("r1"));
            assert_eq!(ev.participant.is_some(), *has_p, "{name}");
            assert_eq!(ev.track.is_some(), *has_t, "{name}");
            if *has_p {
                assert_eq!(ev.participant.as_ref().expect("p").identity, "alice");
            }
            if *has_t {
                assert_eq!(ev.track.as_ref().expect("t").sid, "TR_abc");
            }
            assert!(ev.egress_info.is_none() && ev.ingress_info.is_none() && ev.job.is_none());
        }
    }
}
