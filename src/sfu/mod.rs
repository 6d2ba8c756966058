//! What decides per packet, sans-IO: the forwarder's decision for each downtrack of
//! a packet's track (`forwarder`, over `downtrack`'s state), layer choice and
//! switching (`layers`, `svc`), sequence/timestamp munging (`munger`, `vp8_munger`),
//! RED (`red`), the stream allocator and its bandwidth estimate (`allocator`,
//! `bandwidth`), active speakers (`speaker`) and connection quality
//! (`connection_quality`). Each unit takes its inputs plus `now` and returns
//! decisions; none knows about rooms. Of `session` they use only its value types
//! (the received packet, payload types, mids and rids, the VP9 descriptor), never a
//! peer connection.

pub mod allocator;
pub mod bandwidth;
pub mod connection_quality;
pub mod downtrack;
pub mod forwarder;
pub mod layers;
pub mod munger;
pub mod red;
pub mod speaker;
pub mod svc;
pub mod vp8_munger;
