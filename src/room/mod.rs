//! Rooms, participants and their signalling state, sans-IO: joins, negotiation,
//! subscriptions, permissions, resume, and the forwarding loop that hands each packet
//! to the per-packet decisions of `sfu` and the peer connections of `session`.
//! Nothing here reads a clock or touches a socket.

mod allocator_room;
#[cfg(test)]
mod allocator_tests;
mod connections;
mod demux;
#[cfg(test)]
mod demux_tests;
pub mod dynacast;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod ice_fallback;
#[cfg(test)]
mod ice_fallback_tests;
pub mod ice_servers;
pub mod keyed_slots;
#[cfg(test)]
mod limits_tests;
pub mod media;
mod members;
mod negotiation;
#[cfg(test)]
mod negotiation_tests;
mod offers;
mod one_room;
pub mod participant;
mod permission;
#[cfg(test)]
mod permission_tests;
mod quality_room;
mod resume;
pub mod room_ops;
mod room_peers;
mod room_signal;
mod room_table;
pub mod rooms;
#[cfg(test)]
mod rooms_tests;
mod speaker_room;
pub mod spread;
mod spread_in;
mod spread_out;
#[cfg(test)]
mod spread_tests;
mod subscription;
mod sync_state;
mod timers;
mod track_info;

pub use participant::{ConnId, JoinParams};
pub use room_ops::{Outbound, RoomError, RoomEvent, RoomOp, RoomReply};
pub use rooms::{Counters, NodeInfo, RoomDefaults, RoomLimits, Rooms};
