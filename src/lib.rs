//! corelay: a thread-per-core WebRTC SFU that speaks the LiveKit protocol.
//!
//! # Threads
//! * **main** parses the CLI, loads and validates the config, spawns the other threads and
//!   waits for them (`app`).
//! * **control** is one thread with a single-threaded tokio runtime on epoll
//!   (`control::runtime`): the HTTP listener (`api`), the signal WebSockets (`signal`),
//!   JWT checks (`auth`), the Twirp RoomService and the room directory (`control`), which
//!   maps each room to the shard that owns it.
//! * **shard *i*** is a glommio executor pinned to its own core (`shard`). It owns its rooms
//!   (`rtc`) and, once the media plane lands, their peer connections and UDP sockets.
//!
//! Control and shards share nothing mutable: they talk over bounded tokio `mpsc`
//! channels (a send wakes the receiving task, a parked glommio executor through its
//! eventfd); shards talk to each other over glommio `shared_channel`s.
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
pub mod session;
pub mod sfu;
pub mod shard;
pub mod signal;
pub mod turn;
pub mod webhook;
