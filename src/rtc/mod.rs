//! Session meaning, sans-IO: rooms and (with the media plane) participants, tracks and
//! forwarding. Nothing here reads a clock or touches a socket.

pub mod room;
pub mod room_ops;

pub use room::{RoomDefaults, RoomLimits, Rooms};
pub use room_ops::{RoomError, RoomOp, RoomReply};
