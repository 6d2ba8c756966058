//! The control thread's HTTP surface: routing (`router`), join checks (`validate`),
//! Twirp (`twirp`, `room_service`), the per-request handler and the listener loop
//! (`server`). Its framing is `crate::http`, which the signal and cluster modules share.

mod cluster_routing;
pub mod handler;
pub mod room_service;
pub mod router;
pub mod server;
pub mod twirp;
pub mod validate;
