//! The control thread's HTTP surface: framing (`http`), routing (`router`), join checks
//! (`validate`), Twirp (`twirp`, `room_service`), the per-request handler and the
//! listener loop (`server`).

mod cluster_routing;
pub mod handler;
pub mod http;
pub mod room_service;
pub mod router;
pub mod server;
pub mod twirp;
pub mod validate;
