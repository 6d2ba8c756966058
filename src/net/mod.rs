//! Sockets for the media plane: which local addresses to use, and UDP sockets bound the
//! way a shard needs them.

pub mod addrs;
pub mod batch;
pub mod drops;
pub mod framing;
pub mod pktinfo;
pub mod recv_batch;
pub mod stream;
pub mod tcp;
pub mod trains;
pub mod udp;
