//! Shard workers: one pinned glommio executor per shard, owning its rooms and their
//! media plane (UDP and TCP sockets, the relay between shards, forwarding latency).

pub mod busy;
mod connect;
pub mod latency;
pub mod messages;
pub mod quiet;
pub mod relay_io;
mod tcp_io;
pub mod udp_io;
pub mod worker;

pub use messages::{FromShard, ShardStats, ToShard};
