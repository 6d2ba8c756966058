//! Shard workers: one pinned thread per shard (`runtime`), owning its rooms and their
//! media plane (UDP and TCP sockets, the relay between shards, forwarding latency).

pub mod busy;
pub mod latency;
pub mod messages;
pub mod quiet;
pub mod relay_io;
mod tcp_io;
pub mod udp_io;
pub mod worker;

pub use messages::{FromShard, ShardStats, ToShard};
