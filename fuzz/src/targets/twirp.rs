//! RoomService Twirp bodies, for a caller holding every grant so that decoding is
//! followed by what each method does with the request.

use corelay::api::room_service::{plan, SERVICE};
use corelay::api::twirp::Encoding;
use corelay::auth::{Claims, VideoGrant};

const METHODS: &[&str] = &[
    "CreateRoom",
    "ListRooms",
    "DeleteRoom",
    "UpdateRoomMetadata",
    "ListParticipants",
    "GetParticipant",
    "RemoveParticipant",
    "MutePublishedTrack",
    "UpdateParticipant",
    "UpdateSubscriptions",
    "SendData",
    "ForwardParticipant",
    "MoveParticipant",
    "PerformRpc",
];

/// The first byte picks the method, the rest is the body.
fn body(encoding: Encoding, data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(pick) % METHODS.len()];
    let claims = Claims {
        video: VideoGrant {
            room_create: true,
            room_list: true,
            room_admin: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let _ = plan(SERVICE, method, Some(&claims), encoding, body);
}

pub fn proto(data: &[u8]) {
    body(Encoding::Protobuf, data);
}

pub fn json(data: &[u8]) {
    body(Encoding::Json, data);
}
