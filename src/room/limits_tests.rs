//! `limit.*` and `room.enabled_codecs` as the shard applies them: subscriptions per
//! kind, attribute size, the codecs an answer holds.

use std::collections::HashMap;
use std::net::SocketAddr;

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;

use super::negotiation_tests::{join, publish, request};
use super::room_ops::{Outbound, RoomError, RoomOp};
use super::rooms::{NodeInfo, RoomDefaults, RoomLimits, Rooms};
use crate::session::EnabledCodecs;

fn rooms_with(limits: RoomLimits) -> Rooms {
    let defaults = RoomDefaults {
        empty_timeout: 300,
        departure_timeout: 20,
        max_participants: 0,
    };
    let mut rooms = Rooms::new(defaults, limits, NodeInfo::default());
    let server: SocketAddr = "10.0.0.2:7882".parse().unwrap();
    rooms.set_local_candidates(vec![server]);
    rooms
}

fn camera(cid: &str) -> lk::AddTrackRequest {
    lk::AddTrackRequest {
        cid: cid.into(),
        r#type: lk::TrackType::Video as i32,
        source: lk::TrackSource::Camera as i32,
        ..Default::default()
    }
}

fn subscribed(rooms: &Rooms, identity: &str) -> Vec<String> {
    let mut sids: Vec<String> = rooms
        .participant("r", identity)
        .unwrap()
        .media
        .downtracks
        .keys()
        .cloned()
        .collect();
    sids.sort();
    sids
}

#[test]
fn a_subscription_over_the_limit_waits_for_a_free_slot() {
    let t0 = crate::clock::now().mono;
    let mut rooms = rooms_with(RoomLimits {
        subscription_limit_video: 1,
        ..RoomLimits::default()
    });
    let mut out = Vec::new();
    rooms.join(1, &join("viewer"), t0, 0, &mut out).unwrap();
    rooms.join(2, &join("cam-a"), t0, 0, &mut out).unwrap();
    rooms.join(3, &join("cam-b"), t0, 0, &mut out).unwrap();
    publish(&mut rooms, 2, camera("a"), t0, &mut out);
    publish(&mut rooms, 3, camera("b"), t0, &mut out);
    let track_of = |rooms: &Rooms, who: &str| {
        rooms.participant("r", who).unwrap().info.tracks[0]
            .sid
            .clone()
    };
    let (a, b) = (track_of(&rooms, "cam-a"), track_of(&rooms, "cam-b"));
    assert_eq!(
        subscribed(&rooms, "viewer"),
        vec![a.clone()],
        "one video slot"
    );
    assert_eq!(
        subscribed(&rooms, "cam-a"),
        vec![b.clone()],
        "the other publisher has its own slot"
    );

    let unsubscribe = lk::UpdateSubscription {
        track_sids: vec![a],
        subscribe: false,
        ..Default::default()
    };
    rooms.signal(1, request(Req::Subscription(unsubscribe)), t0, &mut out);
    assert_eq!(
        subscribed(&rooms, "viewer"),
        vec![b],
        "the waiting track takes the slot"
    );
}

#[test]
fn attributes_over_the_limit_are_refused() {
    let t0 = crate::clock::now().mono;
    let mut rooms = rooms_with(RoomLimits {
        max_attributes_size: 8,
        ..RoomLimits::default()
    });
    let mut out = Vec::new();
    rooms.join(1, &join("alice"), t0, 0, &mut out).unwrap();
    let update = |value: &str| {
        RoomOp::UpdateParticipant(Box::new(lk::UpdateParticipantRequest {
            room: "r".into(),
            identity: "alice".into(),
            attributes: HashMap::from([("key".to_string(), value.to_string())]),
            ..Default::default()
        }))
    };
    assert!(rooms.apply(update("12345"), t0, 0, &mut out).is_ok());
    assert_eq!(
        rooms.apply(update("123456"), t0, 0, &mut out).err(),
        Some(RoomError::AttributesTooLarge)
    );
}

#[test]
fn the_answer_holds_only_enabled_codecs() {
    let t0 = crate::clock::now().mono;
    let mut rooms = rooms_with(RoomLimits::default());
    rooms.set_codecs(EnabledCodecs::from_mimes(["audio/opus", "video/VP9"]));
    let mut out = Vec::new();
    rooms.join(1, &join("alice"), t0, 0, &mut out).unwrap();
    out.clear();
    publish(&mut rooms, 1, camera("a"), t0, &mut out);
    let answer = out
        .iter()
        .find_map(|o| match o {
            Outbound::Signal { conn: 1, response } => match &response.message {
                Some(Resp::Answer(a)) => Some(a.sdp.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("an answer");
    let rtpmaps: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("a=rtpmap:"))
        .collect();
    assert!(rtpmaps.iter().any(|l| l.contains("VP9/90000")), "{answer}");
    assert!(
        !rtpmaps
            .iter()
            .any(|l| l.contains("VP8/") || l.contains("H264/") || l.contains("AV1/")),
        "{answer}"
    );
}
