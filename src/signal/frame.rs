//! Decoding one client frame of the signal WebSocket into a `SignalRequest`. As LiveKit,
//! a text frame is protojson and a binary one protobuf; the connection answers in the
//! format of the client's last frame.

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use livekit_protocol as lk;
use prost::Message as _;

/// LiveKit's inbound limit for one signal message.
pub const MAX_MESSAGE: usize = 2 * 1024 * 1024;
/// tungstenite zero-fills its whole read buffer before every read (128 KiB by default):
/// that was a tenth of an idle control thread's CPU, and 128 KiB per connection.
/// Signal messages are small; a large one takes a few reads.
const READ_BUFFER: usize = 4 * 1024;

/// How a connection's messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

/// The framing limits of a signal connection.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// A text frame's request (protojson).
pub fn decode_text(text: &str) -> Result<lk::SignalRequest, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// A binary frame's request (protobuf).
pub fn decode_binary(data: &[u8]) -> Result<lk::SignalRequest, String> {
    lk::SignalRequest::decode(data).map_err(|e| e.to_string())
}
