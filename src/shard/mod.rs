//! Shard workers: one pinned glommio executor per shard, owning its rooms. The media
//! plane (UDP sockets, str0m sessions, forwarding) will live here too.

pub mod busy;
pub mod connect;
pub mod messages;
pub mod quiet;
pub mod relay_io;
mod tcp_io;
pub mod udp_io;
pub mod worker;

pub use messages::{FromShard, ShardStats, ToShard};
