//! The operations a shard performs on the rooms it owns, and their typed replies.
//! The control thread builds these from RoomService calls; the shard applies them.

use livekit_protocol as lk;

use super::participant::{ConnId, JoinParams};

/// One request to the rooms of a shard. Each variant has exactly one successful reply
/// shape (see [`RoomReply`]).
#[derive(Debug, Clone)]
pub enum RoomOp {
    Create(Box<lk::CreateRoomRequest>),
    /// A signal connection joins (creating the room when allowed).
    Join {
        conn: ConnId,
        params: Box<JoinParams>,
    },
    List {
        names: Vec<String>,
    },
    Delete {
        room: String,
    },
    UpdateMetadata {
        room: String,
        metadata: String,
    },
    ListParticipants {
        room: String,
    },
    GetParticipant {
        room: String,
        identity: String,
    },
    RemoveParticipant {
        room: String,
        identity: String,
    },
    MutePublishedTrack(Box<lk::MuteRoomTrackRequest>),
    UpdateParticipant(Box<lk::UpdateParticipantRequest>),
    UpdateSubscriptions(Box<lk::UpdateSubscriptionsRequest>),
    SendData(Box<lk::SendDataRequest>),
    /// A client resumes its participant over a new signal connection (`room::resume`).
    Resume {
        room: String,
        identity: String,
    },
    /// What another shard needs to host this room too (`room::spread`).
    Seed {
        room: String,
    },
    /// Forward-, MoveParticipant and PerformRpc: they need a live participant.
    RequireParticipant {
        room: String,
        identity: String,
    },
}

impl RoomOp {
    /// The room this op targets, or `None` for ops that span every room of a shard.
    pub fn room(&self) -> Option<&str> {
        match self {
            RoomOp::Create(r) => Some(&r.name),
            RoomOp::Join { params, .. } => Some(&params.room),
            RoomOp::List { .. } => None,
            RoomOp::Delete { room }
            | RoomOp::UpdateMetadata { room, .. }
            | RoomOp::ListParticipants { room }
            | RoomOp::GetParticipant { room, .. }
            | RoomOp::RemoveParticipant { room, .. }
            | RoomOp::RequireParticipant { room, .. }
            | RoomOp::Seed { room }
            | RoomOp::Resume { room, .. } => Some(room),
            RoomOp::MutePublishedTrack(r) => Some(&r.room),
            RoomOp::UpdateParticipant(r) => Some(&r.room),
            RoomOp::UpdateSubscriptions(r) => Some(&r.room),
            RoomOp::SendData(r) => Some(&r.room),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RoomReply {
    Room(lk::Room),
    Rooms(Vec<lk::Room>),
    Participants(Vec<lk::ParticipantInfo>),
    Participant(lk::ParticipantInfo),
    Track(lk::TrackInfo),
    Joined(Box<lk::JoinResponse>),
    /// The resumed participant's connection id, and what its new connection sends first.
    Resumed {
        conn: ConnId,
        messages: Vec<lk::SignalResponse>,
    },
    Seed(Box<super::spread::Seed>),
    Done,
}

/// Something that happened in a room, for webhooks (and later analytics). Carries
/// snapshots so the consumer needs no access to shard state.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    RoomStarted(lk::Room),
    RoomFinished(lk::Room),
    ParticipantJoined(lk::Room, lk::ParticipantInfo),
    ParticipantLeft(lk::Room, lk::ParticipantInfo),
    TrackPublished(lk::Room, lk::ParticipantInfo, lk::TrackInfo),
    TrackUnpublished(lk::Room, lk::ParticipantInfo, lk::TrackInfo),
}

/// Queues one signal message for `conn`.
pub(super) fn reply(out: &mut Vec<Outbound>, conn: ConnId, message: lk::signal_response::Message) {
    out.push(Outbound::Signal {
        conn,
        response: Box::new(lk::SignalResponse {
            message: Some(message),
        }),
    });
}

/// A message a shard sends to one participant's signal connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Signal {
        conn: ConnId,
        response: Box<lk::SignalResponse>,
    },
    /// Send this LeaveRequest, then close the connection.
    Close {
        conn: ConnId,
        leave: lk::LeaveRequest,
    },
}

impl Outbound {
    /// The connection it is for.
    pub fn conn(&self) -> ConnId {
        match self {
            Outbound::Signal { conn, .. } | Outbound::Close { conn, .. } => *conn,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("requested room does not exist")]
    RoomNotFound,
    #[error("participant does not exist")]
    ParticipantNotFound,
    #[error("track is not found")]
    TrackNotFound,
    #[error("no room name")]
    NoRoomName,
    #[error("room name length exceeds limits")]
    RoomNameTooLong,
    #[error("metadata size exceeds limits")]
    MetadataTooLarge,
    #[error("attribute size exceeds limits")]
    AttributesTooLarge,
    #[error("room is full")]
    RoomFull,
}
