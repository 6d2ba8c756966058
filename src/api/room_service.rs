//! `livekit.RoomService` over Twirp: turns a call into a grant check plus a [`RoomOp`]
//! for the shard that owns the room, and the shard's reply into the method's response
//! message. Pure: the control thread does the I/O in between.

use livekit_protocol as lk;

use super::twirp::{decode, encode, Encoding, TwirpError};
use crate::auth::Claims;
use crate::http::Response;
use crate::room::{RoomError, RoomOp, RoomReply};

pub const SERVICE: &str = "livekit.RoomService";

/// Services LiveKit serves on the same mux that corelay does not implement.
const OTHER_LIVEKIT_SERVICES: &[&str] = &[
    "livekit.Egress",
    "livekit.Ingress",
    "livekit.SIP",
    "livekit.AgentDispatchService",
];

/// How the shard's reply becomes the method's response message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Room,
    ListRooms,
    DeleteRoom,
    ListParticipants,
    Participant,
    RemoveParticipant,
    MuteTrack,
    UpdateSubscriptions,
    SendData,
    /// Forward/MoveParticipant, PerformRpc: only reachable with a live participant.
    NeedsMediaPlane(&'static str),
}

/// A validated call: what to ask the shard, and how to answer.
#[derive(Debug, Clone)]
pub struct Planned {
    pub op: RoomOp,
    pub shape: Shape,
}

/// Decodes the request, checks the caller's grants and builds the shard operation.
/// `claims` is `None` when the request carried no token.
pub fn plan(
    service: &str,
    method: &str,
    claims: Option<&Claims>,
    encoding: Encoding,
    body: &[u8],
) -> Result<Planned, TwirpError> {
    if service != SERVICE {
        if OTHER_LIVEKIT_SERVICES.contains(&service) {
            return Err(TwirpError::unimplemented(format!(
                "{service} is not supported by corelay"
            )));
        }
        return Err(bad_route(service, method));
    }
    let planned = match method {
        "CreateRoom" => {
            let req: lk::CreateRoomRequest = decode(encoding, body)?;
            require(claims, |c| c.video.room_create)?;
            Planned {
                op: RoomOp::Create(Box::new(req)),
                shape: Shape::Room,
            }
        }
        "ListRooms" => {
            let req: lk::ListRoomsRequest = decode(encoding, body)?;
            require(claims, |c| c.video.room_list)?;
            Planned {
                op: RoomOp::List { names: req.names },
                shape: Shape::ListRooms,
            }
        }
        "DeleteRoom" => {
            let req: lk::DeleteRoomRequest = decode(encoding, body)?;
            require(claims, |c| c.video.room_create)?;
            Planned {
                op: RoomOp::Delete { room: req.room },
                shape: Shape::DeleteRoom,
            }
        }
        "UpdateRoomMetadata" => {
            let req: lk::UpdateRoomMetadataRequest = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            Planned {
                op: RoomOp::UpdateMetadata {
                    room: req.room,
                    metadata: req.metadata,
                },
                shape: Shape::Room,
            }
        }
        "ListParticipants" => {
            let req: lk::ListParticipantsRequest = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            Planned {
                op: RoomOp::ListParticipants { room: req.room },
                shape: Shape::ListParticipants,
            }
        }
        "GetParticipant" | "RemoveParticipant" => {
            let req: lk::RoomParticipantIdentity = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            require_identity(&req.identity)?;
            let (room, identity) = (req.room, req.identity);
            if method == "GetParticipant" {
                Planned {
                    op: RoomOp::GetParticipant { room, identity },
                    shape: Shape::Participant,
                }
            } else {
                Planned {
                    op: RoomOp::RemoveParticipant { room, identity },
                    shape: Shape::RemoveParticipant,
                }
            }
        }
        "MutePublishedTrack" => {
            let req: lk::MuteRoomTrackRequest = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            require_identity(&req.identity)?;
            Planned {
                op: RoomOp::MutePublishedTrack(Box::new(req)),
                shape: Shape::MuteTrack,
            }
        }
        "UpdateParticipant" => {
            let req: lk::UpdateParticipantRequest = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            require_identity(&req.identity)?;
            Planned {
                op: RoomOp::UpdateParticipant(Box::new(req)),
                shape: Shape::Participant,
            }
        }
        "UpdateSubscriptions" => {
            let req: lk::UpdateSubscriptionsRequest = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            require_identity(&req.identity)?;
            Planned {
                op: RoomOp::UpdateSubscriptions(Box::new(req)),
                shape: Shape::UpdateSubscriptions,
            }
        }
        "SendData" => {
            let req: lk::SendDataRequest = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            Planned {
                op: RoomOp::SendData(Box::new(req)),
                shape: Shape::SendData,
            }
        }
        "ForwardParticipant" | "MoveParticipant" => {
            let req: lk::ForwardParticipantRequest = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            require(claims, |c| c.video.destination_room == req.destination_room)?;
            if req.room == req.destination_room {
                return Err(TwirpError::invalid_argument(
                    "destination room cannot be the same as source room",
                ));
            }
            Planned {
                op: RoomOp::RequireParticipant {
                    room: req.room,
                    identity: req.identity,
                },
                shape: Shape::NeedsMediaPlane(if method == "MoveParticipant" {
                    "MoveParticipant"
                } else {
                    "ForwardParticipant"
                }),
            }
        }
        "PerformRpc" => {
            let req: lk::PerformRpcRequest = decode(encoding, body)?;
            require_admin(claims, &req.room)?;
            Planned {
                op: RoomOp::RequireParticipant {
                    room: req.room,
                    identity: req.destination_identity,
                },
                shape: Shape::NeedsMediaPlane("PerformRpc"),
            }
        }
        _ => return Err(bad_route(service, method)),
    };
    Ok(planned)
}

/// Encodes the shard's answer as the method's response.
pub fn respond(shape: Shape, encoding: Encoding, result: Result<RoomReply, RoomError>) -> Response {
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => return room_error(&e).to_response(),
    };
    match (shape, reply) {
        (Shape::Room, RoomReply::Room(room)) => encode(encoding, &room),
        (Shape::ListRooms, RoomReply::Rooms(rooms)) => {
            encode(encoding, &lk::ListRoomsResponse { rooms })
        }
        (Shape::DeleteRoom, RoomReply::Done) => encode(encoding, &lk::DeleteRoomResponse {}),
        (Shape::ListParticipants, RoomReply::Participants(participants)) => {
            encode(encoding, &lk::ListParticipantsResponse { participants })
        }
        (Shape::Participant, RoomReply::Participant(p)) => encode(encoding, &p),
        (Shape::RemoveParticipant, RoomReply::Done) => {
            encode(encoding, &lk::RemoveParticipantResponse {})
        }
        (Shape::MuteTrack, RoomReply::Track(track)) => {
            encode(encoding, &lk::MuteRoomTrackResponse { track: Some(track) })
        }
        (Shape::UpdateSubscriptions, RoomReply::Done) => {
            encode(encoding, &lk::UpdateSubscriptionsResponse {})
        }
        (Shape::SendData, RoomReply::Done) => encode(encoding, &lk::SendDataResponse {}),
        (Shape::NeedsMediaPlane(method), _) => TwirpError::unimplemented(format!(
            "{method} needs the media plane, which this build does not have yet"
        ))
        .to_response(),
        (shape, reply) => {
            TwirpError::internal(format!("unexpected shard reply {reply:?} for {shape:?}"))
                .to_response()
        }
    }
}

pub fn room_error(e: &RoomError) -> TwirpError {
    match e {
        RoomError::RoomNotFound | RoomError::ParticipantNotFound | RoomError::TrackNotFound => {
            TwirpError::not_found(e.to_string())
        }
        RoomError::NoRoomName
        | RoomError::RoomNameTooLong
        | RoomError::MetadataTooLarge
        | RoomError::AttributesTooLarge => TwirpError::invalid_argument(e.to_string()),
        RoomError::RoomFull => TwirpError::unavailable(e.to_string()),
    }
}

fn bad_route(service: &str, method: &str) -> TwirpError {
    TwirpError::bad_route(format!("no handler for path \"/twirp/{service}/{method}\""))
}

/// LiveKit answers a missing grant with `unauthenticated`, not `permission_denied`.
fn require(claims: Option<&Claims>, grant: impl Fn(&Claims) -> bool) -> Result<(), TwirpError> {
    match claims {
        Some(c) if grant(c) => Ok(()),
        _ => Err(TwirpError::unauthenticated("permissions denied")),
    }
}

fn require_admin(claims: Option<&Claims>, room: &str) -> Result<(), TwirpError> {
    require(claims, |c| c.video.room_admin && c.video.room == room)
}

fn require_identity(identity: &str) -> Result<(), TwirpError> {
    if identity.is_empty() {
        return Err(TwirpError::invalid_argument("identity cannot be empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn claims(f: impl FnOnce(&mut Claims)) -> Claims {
        let mut c = Claims::default();
        f(&mut c);
        c
    }

    fn proto<M: Message>(m: &M) -> Vec<u8> {
        m.encode_to_vec()
    }

    #[test]
    fn grants_per_method() {
        let creator = claims(|c| c.video.room_create = true);
        let lister = claims(|c| c.video.room_list = true);
        let admin_a = claims(|c| {
            c.video.room_admin = true;
            c.video.room = "a".into();
        });
        let create = proto(&lk::CreateRoomRequest {
            name: "a".into(),
            ..Default::default()
        });
        let list = proto(&lk::ListRoomsRequest::default());
        let meta_a = proto(&lk::UpdateRoomMetadataRequest {
            room: "a".into(),
            metadata: "m".into(),
        });
        let meta_b = proto(&lk::UpdateRoomMetadataRequest {
            room: "b".into(),
            metadata: "m".into(),
        });
        type Case<'a> = (&'a str, Option<&'a Claims>, &'a [u8], Option<&'a str>);
        let table: &[Case] = &[
            ("CreateRoom", Some(&creator), &create, None),
            (
                "CreateRoom",
                Some(&lister),
                &create,
                Some("unauthenticated"),
            ),
            ("CreateRoom", None, &create, Some("unauthenticated")),
            ("ListRooms", Some(&lister), &list, None),
            ("ListRooms", Some(&creator), &list, Some("unauthenticated")),
            ("DeleteRoom", Some(&creator), &list, None),
            ("UpdateRoomMetadata", Some(&admin_a), &meta_a, None),
            (
                "UpdateRoomMetadata",
                Some(&admin_a),
                &meta_b,
                Some("unauthenticated"),
            ),
            (
                "UpdateRoomMetadata",
                Some(&creator),
                &meta_a,
                Some("unauthenticated"),
            ),
            ("Nope", Some(&creator), &create, Some("bad_route")),
        ];
        for (method, who, body, want) in table {
            let got = plan(SERVICE, method, *who, Encoding::Protobuf, body).err();
            assert_eq!(got.map(|e| e.code), *want, "{method}");
        }
    }

    #[test]
    fn body_is_decoded_before_grants_are_checked() {
        let got = plan(SERVICE, "CreateRoom", None, Encoding::Json, b"{oops").unwrap_err();
        assert_eq!(got.code, "malformed");
    }

    #[test]
    fn other_services_are_unimplemented_and_unknown_ones_bad_route() {
        let e = plan("livekit.Egress", "ListEgress", None, Encoding::Json, b"{}").unwrap_err();
        assert_eq!(e.code, "unimplemented");
        let e = plan("foo.Bar", "Baz", None, Encoding::Json, b"{}").unwrap_err();
        assert_eq!(e.code, "bad_route");
    }

    #[test]
    fn empty_identity_is_invalid() {
        let admin = claims(|c| {
            c.video.room_admin = true;
            c.video.room = "r".into();
        });
        let body = br#"{"room":"r","identity":""}"#;
        let e = plan(
            SERVICE,
            "GetParticipant",
            Some(&admin),
            Encoding::Json,
            body,
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_argument");
    }

    #[test]
    fn replies_map_to_messages_and_errors() {
        let resp = respond(
            Shape::ListRooms,
            Encoding::Json,
            Ok(RoomReply::Rooms(vec![])),
        );
        assert_eq!(resp.status, 200);
        let resp = respond(Shape::Room, Encoding::Json, Err(RoomError::RoomNotFound));
        assert_eq!(resp.status, 404);
        let resp = respond(Shape::Room, Encoding::Json, Err(RoomError::NoRoomName));
        assert_eq!(resp.status, 400);
        let resp = respond(Shape::Room, Encoding::Json, Ok(RoomReply::Done));
        assert_eq!(resp.status, 500);
    }
}
