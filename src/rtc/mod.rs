//! Session meaning, sans-IO: rooms and (with the media plane) participants, tracks and
//! forwarding. Nothing here reads a clock or touches a socket.

pub mod allocator;
mod allocator_room;
#[cfg(test)]
mod allocator_tests;
pub mod bandwidth;
pub mod connection_quality;
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
pub mod layers;
#[cfg(test)]
mod limits_tests;
pub mod media;
pub mod munger;
mod negotiation;
#[cfg(test)]
mod negotiation_tests;
mod offers;
pub mod participant;
mod permission;
#[cfg(test)]
mod permission_tests;
mod quality_room;
pub mod red;
mod resume;
pub mod room;
pub mod room_ops;
mod room_signal;
pub mod speaker;
mod speaker_room;
mod subscription;
pub mod svc;
mod sync_state;
mod timers;
mod track_info;
pub mod vp8_munger;

pub use participant::{ConnId, JoinParams};
pub use room::{Counters, NodeInfo, RoomDefaults, RoomLimits, Rooms};
pub use room_ops::{Outbound, RoomError, RoomEvent, RoomOp, RoomReply};
