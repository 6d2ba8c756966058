//! What decides per packet, sans-IO: layer choice and switching (`layers`, `svc`),
//! sequence/timestamp munging (`munger`, `vp8_munger`), RED (`red`), the stream
//! allocator and its bandwidth estimate (`allocator`, `bandwidth`), active speakers
//! (`speaker`) and connection quality (`connection_quality`). Each unit takes its
//! inputs plus `now` and returns decisions; none knows about rooms or sessions (only
//! the VP9 descriptor `session` reads on arrival).

pub mod allocator;
pub mod bandwidth;
pub mod connection_quality;
pub mod layers;
pub mod munger;
pub mod red;
pub mod speaker;
pub mod svc;
pub mod vp8_munger;
