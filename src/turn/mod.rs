//! The embedded TURN server (LiveKit's `turn.*`), TURN over UDP: for clients whose
//! network lets only a relay through. Participants get its URLs with credentials in
//! `JoinResponse.ice_servers` (`credentials`); relays may reach the node's own media
//! addresses and public peers, never other private ones (`peers`). TURN/TLS and TCP
//! allocations are not served yet.

pub mod credentials;
pub mod peers;
mod relay;
pub mod stats;

pub use relay::{start, Settings, TurnHandle};
pub use stats::{Refusal, TurnStats};
