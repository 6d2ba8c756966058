//! One file per decoder family. Targets exercise what corelay does with the decoded
//! value too (lookups, re-encoding), since a panic there is as reachable as one in
//! the decoder.

pub mod config;
pub mod data;
pub mod datagram;
pub mod http;
pub mod jwt;
pub mod payload;
pub mod sdp;
pub mod signal;
pub mod twirp;

/// The input as text, or `None` where the decoder only ever sees UTF-8 (a WebSocket
/// text frame, a JSON string field).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
