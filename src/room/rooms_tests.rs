//! `Rooms` as the API sees it: creating, listing, finding and closing rooms.

use std::time::Duration;

use livekit_protocol as lk;

use super::room_ops::{RoomError, RoomOp, RoomReply};
use super::rooms::{Counters, NodeInfo, RoomDefaults, RoomLimits, Rooms};

const DEFAULTS: RoomDefaults = RoomDefaults {
    empty_timeout: 300,
    departure_timeout: 20,
    max_participants: 0,
};

/// A shard's rooms with the defaults above and no limits.
fn plain_rooms() -> Rooms {
    Rooms::new(DEFAULTS, RoomLimits::default(), NodeInfo::default())
}

fn create(name: &str) -> RoomOp {
    RoomOp::Create(Box::new(lk::CreateRoomRequest {
        name: name.into(),
        ..Default::default()
    }))
}

fn room_of(reply: Result<RoomReply, RoomError>) -> lk::Room {
    match reply {
        Ok(RoomReply::Room(r)) => r,
        other => panic!("expected a room, got {other:?}"),
    }
}

#[test]
fn create_fills_defaults_and_is_idempotent() {
    let t0 = crate::clock::now().mono;
    let mut rooms = plain_rooms();
    let first = room_of(rooms.apply(create("a"), t0, 1_700_000_000, &mut Vec::new()));
    assert!(first.sid.starts_with("RM_"));
    assert_eq!(first.empty_timeout, 300);
    assert_eq!(first.departure_timeout, 20);
    assert_eq!(first.creation_time, 1_700_000_000);
    let again = room_of(rooms.apply(create("a"), t0, 1_700_000_005, &mut Vec::new()));
    assert_eq!(again, first);
    assert_eq!(rooms.len(), 1);
}

#[test]
fn explicit_values_win_over_defaults() {
    let t0 = crate::clock::now().mono;
    let mut rooms = plain_rooms();
    let req = lk::CreateRoomRequest {
        name: "b".into(),
        empty_timeout: 7,
        max_participants: 3,
        metadata: "m".into(),
        ..Default::default()
    };
    let room = room_of(rooms.apply(RoomOp::Create(Box::new(req)), t0, 0, &mut Vec::new()));
    assert_eq!((room.empty_timeout, room.max_participants), (7, 3));
    assert_eq!(room.metadata, "m");
}

#[test]
fn empty_and_oversized_names_are_refused() {
    let t0 = crate::clock::now().mono;
    let limits = RoomLimits {
        max_room_name_length: 4,
        max_metadata_size: 2,
        ..RoomLimits::default()
    };
    let mut rooms = Rooms::new(DEFAULTS, limits, NodeInfo::default());
    assert_eq!(
        rooms.apply(create(""), t0, 0, &mut Vec::new()),
        Err(RoomError::NoRoomName)
    );
    assert_eq!(
        rooms.apply(create("toolong"), t0, 0, &mut Vec::new()),
        Err(RoomError::RoomNameTooLong)
    );
    rooms.apply(create("ok"), t0, 0, &mut Vec::new()).unwrap();
    let op = RoomOp::UpdateMetadata {
        room: "ok".into(),
        metadata: "xyz".into(),
    };
    assert_eq!(
        rooms.apply(op, t0, 0, &mut Vec::new()),
        Err(RoomError::MetadataTooLarge)
    );
}

#[test]
fn list_filters_by_name_and_sorts() {
    let t0 = crate::clock::now().mono;
    let mut rooms = plain_rooms();
    for n in ["c", "a", "b"] {
        rooms.apply(create(n), t0, 0, &mut Vec::new()).unwrap();
    }
    let names = |r: Result<RoomReply, RoomError>| match r {
        Ok(RoomReply::Rooms(v)) => v.into_iter().map(|r| r.name).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        names(rooms.apply(RoomOp::List { names: vec![] }, t0, 0, &mut Vec::new())),
        ["a", "b", "c"]
    );
    let only = RoomOp::List {
        names: vec!["b".into(), "zz".into()],
    };
    assert_eq!(names(rooms.apply(only, t0, 0, &mut Vec::new())), ["b"]);
}

#[test]
fn missing_rooms_and_participants_are_not_found() {
    let t0 = crate::clock::now().mono;
    let mut rooms = plain_rooms();
    let get = |room: &str| RoomOp::GetParticipant {
        room: room.into(),
        identity: "p".into(),
    };
    assert_eq!(
        rooms.apply(get("x"), t0, 0, &mut Vec::new()),
        Err(RoomError::RoomNotFound)
    );
    rooms.apply(create("x"), t0, 0, &mut Vec::new()).unwrap();
    assert_eq!(
        rooms.apply(get("x"), t0, 0, &mut Vec::new()),
        Err(RoomError::ParticipantNotFound)
    );
    let list = RoomOp::ListParticipants { room: "x".into() };
    assert_eq!(
        rooms.apply(list, t0, 0, &mut Vec::new()),
        Ok(RoomReply::Participants(vec![]))
    );
    let delete = || RoomOp::Delete { room: "x".into() };
    assert_eq!(
        rooms.apply(delete(), t0, 0, &mut Vec::new()),
        Ok(RoomReply::Done)
    );
    assert_eq!(
        rooms.apply(delete(), t0, 0, &mut Vec::new()),
        Err(RoomError::RoomNotFound)
    );
}

#[test]
fn unjoined_room_closes_after_empty_timeout() {
    let t0 = crate::clock::now().mono;
    let mut rooms = plain_rooms();
    let req = lk::CreateRoomRequest {
        name: "short".into(),
        empty_timeout: 5,
        ..Default::default()
    };
    rooms
        .apply(RoomOp::Create(Box::new(req)), t0, 0, &mut Vec::new())
        .unwrap();
    rooms.apply(create("long"), t0, 0, &mut Vec::new()).unwrap();
    assert!(rooms.expire(t0 + Duration::from_secs(4)).is_empty());
    assert_eq!(rooms.expire(t0 + Duration::from_secs(5)), ["short"]);
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms.expire(t0 + Duration::from_secs(300)), ["long"]);
}

#[test]
fn stream_counts_add_up_by_direction_and_kind() {
    use crate::session::{Flow, MediaKind, StreamCounts};
    let mut c = Counters::default();
    let counts = |flow, kind, nacks, lost| StreamCounts {
        flow,
        kind,
        nacks,
        lost,
    };
    c.add_stream(&counts(Flow::Ingress, Some(MediaKind::Audio), 1, 2));
    c.add_stream(&counts(Flow::Ingress, Some(MediaKind::Video), 3, 4));
    c.add_stream(&counts(Flow::Egress, Some(MediaKind::Video), 5, 6));
    c.add_stream(&counts(Flow::Egress, None, 0, 1));
    assert_eq!((c.nacks_sent, c.nacks_received), (4, 5));
    assert_eq!((c.lost_in, c.lost_out), ([2, 4], [0, 7]));
}
