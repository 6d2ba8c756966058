//! corelay: a thread-per-core WebRTC SFU that speaks the LiveKit protocol.
//!
//! # Threads
//! * **main** parses the CLI, loads and validates the config, spawns the other threads and
//!   waits for them (`app`).
//! * **control** is one thread with a single-threaded tokio runtime on epoll
//!   (`runtime`): the HTTP listener (`api`), the signal WebSockets (`signal`),
//!   JWT checks (`auth`), the Twirp RoomService and the room directory (`control`), which
//!   maps each room to the shard that owns it.
//! * **shard *i*** is a thread pinned to its own core with the same kind of runtime
//!   (`shard`, `runtime`). It owns its rooms (`room`), their peer connections and its
//!   UDP and ICE/TCP sockets.
//!
//! Control and shards share nothing mutable: they talk over bounded tokio `mpsc`
//! channels (a send wakes the receiving task, a parked runtime through its eventfd);
//! shards relay media of rooms that span shards to each other the same way.
//!
//! # Time
//! Protocol state machines (`rtc`, token checks) take `now` as an argument; only the
//! drivers (`shard`, `control`) read the clock. That keeps them testable with synthetic time.
//!
//! # Errors
//! Input from outside gets a typed `thiserror` error and never a panic; `anyhow` lives only
//! at the binary's edge (`main`, `app`).

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod control;
pub mod http;
pub mod ids;
pub mod lifecycle;
pub mod metrics;
pub mod net;
pub mod room;
pub mod runtime;
pub mod session;
pub mod sfu;
pub mod shard;
pub mod signal;
pub mod turn;
pub mod webhook;
