//! The LiveKit signal connection (`/rtc`, protocol v0): join parameters from the token
//! and query (`params`), and the WebSocket session on the control thread (`ws`), which
//! only frames messages: every request goes to the shard that owns the participant.

pub mod params;
pub mod ws;
