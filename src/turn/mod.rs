//! The embedded TURN server (LiveKit's `turn.*`), over UDP and TLS (or plain TCP behind
//! a TLS load balancer): for clients whose network lets only a relay through.
//! Participants get its URLs with credentials in `JoinResponse.ice_servers`
//! (`credentials`); relays may reach the node's own media addresses and public peers,
//! never other private ones (`peers`). RFC 6062 TCP allocations are not offered.

pub mod credentials;
pub mod peers;
mod relay;
pub mod stats;
mod tls;

pub use relay::{start, Settings, TurnHandle};
pub use stats::{Refusal, TurnStats};
pub use tls::{next_frame, server_config};
