//! Grants changed through UpdateParticipant take effect at once.

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::negotiation_tests::{join, messages_for, publish, rooms};
use super::room_ops::{Outbound, RoomEvent, RoomOp};
use super::rooms::Rooms;

fn camera() -> lk::AddTrackRequest {
    lk::AddTrackRequest {
        cid: "cam-1".into(),
        r#type: lk::TrackType::Video as i32,
        source: lk::TrackSource::Camera as i32,
        ..Default::default()
    }
}

/// "viewer" (conn 1, auto-subscribing, with `viewer_grants`) and "pub" (conn 2), who
/// published a camera.
fn room_with_camera(viewer_grants: lk::ParticipantPermission) -> (Rooms, String) {
    let t0 = crate::clock::now().mono;
    let mut rooms = rooms();
    let mut out = Vec::new();
    let mut viewer = join("viewer");
    viewer.permission = viewer_grants;
    rooms.join(1, &viewer, t0, 0, &mut out).unwrap();
    rooms.join(2, &join("pub"), t0, 0, &mut out).unwrap();
    publish(&mut rooms, 2, camera(), t0, &mut out);
    let sid = rooms.participant("r", "pub").unwrap().info.tracks[0]
        .sid
        .clone();
    (rooms, sid)
}

fn full_grants() -> lk::ParticipantPermission {
    join("x").permission
}

fn set_grants(
    rooms: &mut Rooms,
    identity: &str,
    permission: lk::ParticipantPermission,
) -> Vec<Outbound> {
    let mut out = Vec::new();
    let req = lk::UpdateParticipantRequest {
        room: "r".into(),
        identity: identity.into(),
        permission: Some(permission),
        ..Default::default()
    };
    let now = crate::clock::now().mono;
    rooms
        .apply(RoomOp::UpdateParticipant(Box::new(req)), now, 0, &mut out)
        .unwrap();
    out
}

#[test]
fn revoking_can_publish_unpublishes_and_unsubscribes() {
    let (mut rooms, sid) = room_with_camera(full_grants());
    assert!(rooms
        .participant("r", "viewer")
        .unwrap()
        .media
        .downtracks
        .contains_key(&sid));
    rooms.take_events();
    let revoked = lk::ParticipantPermission {
        can_publish: false,
        ..full_grants()
    };
    let out = set_grants(&mut rooms, "pub", revoked);

    let publisher = rooms.participant("r", "pub").unwrap();
    assert!(publisher.info.tracks.is_empty());
    assert!(publisher.media.published.is_empty());
    assert!(messages_for(&out, 2)
        .iter()
        .any(|m| matches!(m, Resp::TrackUnpublished(t) if t.track_sid == sid)));
    assert!(rooms
        .participant("r", "viewer")
        .unwrap()
        .media
        .downtracks
        .is_empty());
    let told = messages_for(&out, 1).into_iter().any(|m| match m {
        Resp::Update(u) => u
            .participants
            .iter()
            .any(|p| p.identity == "pub" && p.tracks.is_empty()),
        _ => false,
    });
    assert!(told, "the viewer sees the track gone");
    assert!(rooms
        .take_events()
        .iter()
        .any(|e| matches!(e, RoomEvent::TrackUnpublished(_, _, t) if t.sid == sid)));
}

#[test]
fn a_source_no_longer_listed_is_unpublished() {
    let (mut rooms, sid) = room_with_camera(full_grants());
    let microphone_only = lk::ParticipantPermission {
        can_publish_sources: vec![lk::TrackSource::Microphone as i32],
        ..full_grants()
    };
    let out = set_grants(&mut rooms, "pub", microphone_only);
    assert!(rooms
        .participant("r", "pub")
        .unwrap()
        .info
        .tracks
        .is_empty());
    assert!(messages_for(&out, 2)
        .iter()
        .any(|m| matches!(m, Resp::TrackUnpublished(t) if t.track_sid == sid)));
}

#[test]
fn revoking_then_granting_can_subscribe() {
    let (mut rooms, sid) = room_with_camera(full_grants());
    let revoked = lk::ParticipantPermission {
        can_subscribe: false,
        ..full_grants()
    };
    set_grants(&mut rooms, "viewer", revoked);
    let viewer = rooms.participant("r", "viewer").unwrap();
    assert!(viewer.media.downtracks.is_empty(), "subscriptions revoked");
    assert!(viewer.media.needs_offer || viewer.media.awaiting_answer);

    set_grants(&mut rooms, "viewer", full_grants());
    let viewer = rooms.participant("r", "viewer").unwrap();
    assert!(
        viewer.media.downtracks.contains_key(&sid),
        "auto-subscribe catches up"
    );
}

#[test]
fn a_later_can_subscribe_grant_opens_the_subscriber_connection() {
    let no_subscribe = lk::ParticipantPermission {
        can_subscribe: false,
        ..full_grants()
    };
    let (mut rooms, sid) = room_with_camera(no_subscribe);
    let viewer = rooms.participant("r", "viewer").unwrap();
    assert!(viewer.media.subscriber.is_none() && viewer.media.downtracks.is_empty());

    let out = set_grants(&mut rooms, "viewer", full_grants());
    let viewer = rooms.participant("r", "viewer").unwrap();
    assert!(viewer.media.subscriber.is_some());
    assert!(viewer.media.downtracks.contains_key(&sid));
    assert!(messages_for(&out, 1)
        .iter()
        .any(|m| matches!(m, Resp::Offer(o) if o.mid_to_track_id.values().any(|t| *t == sid))));
}

#[test]
fn a_participant_made_hidden_is_announced_to_itself_only() {
    let (mut rooms, _) = room_with_camera(full_grants());
    let hidden = lk::ParticipantPermission {
        hidden: true,
        ..full_grants()
    };
    let out = set_grants(&mut rooms, "viewer", hidden);
    assert!(messages_for(&out, 1)
        .iter()
        .any(|m| matches!(m, Resp::Update(_))));
    assert!(!messages_for(&out, 2)
        .iter()
        .any(|m| matches!(m, Resp::Update(_))));
}
