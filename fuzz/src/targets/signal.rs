//! The signal WebSocket: frames as tungstenite reads them with corelay's limits, each
//! message's SignalRequest (protobuf or protojson), and a decoded request handled by
//! the room of a joined participant.

use std::io::{self, Read, Write};

use async_tungstenite::tungstenite::protocol::{Role, WebSocket};
use async_tungstenite::tungstenite::Message;
use corelay::room::fuzzing::two_joined;
use corelay::signal::frame::{decode_binary, decode_text, ws_config};
use corelay::signal::pong;

/// The client's bytes to read, and a sink for whatever the server writes.
struct Wire<'a> {
    input: &'a [u8],
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw bytes after the upgrade: every data message is decoded as the session does.
pub fn ws_frames(data: &[u8]) {
    let mut ws = WebSocket::from_raw_socket(Wire { input: data }, Role::Server, Some(ws_config()));
    // Each read consumes input or fails, so this ends with the input.
    while let Ok(message) = ws.read() {
        let _ = match message {
            Message::Text(text) => decode_text(text.as_str()),
            Message::Binary(bytes) => decode_binary(&bytes),
            _ => continue,
        }
        .map(|request| pong(&request, 0));
    }
}

pub fn proto(data: &[u8]) {
    if let Ok(request) = decode_binary(data) {
        let _ = pong(&request, 0);
    }
}

pub fn json(data: &[u8]) {
    if let Some(request) = super::text(data).and_then(|t| decode_text(t).ok()) {
        let _ = pong(&request, 0);
    }
}

/// A protobuf request from alice to the shard's room logic (offers, trickle, track
/// and subscription requests).
pub fn room(data: &[u8]) {
    let Ok(request) = decode_binary(data) else {
        return;
    };
    let now = corelay::clock::mono();
    let mut rooms = two_joined(now);
    let mut out = Vec::new();
    rooms.signal(1, request, now, &mut out);
}

/// `/rtc/v1`'s `join_request`: the query value as sent, and (so that the fuzzer gets
/// past base64 cheaply) the bytes as a WrappedJoinRequest. One that decodes joins a
/// shard's room the way a v1 client does: its tracks, then its offer.
pub fn join_request(data: &[u8]) {
    use base64::Engine as _;
    use corelay::signal::join_request::decode;
    let as_query = super::text(data).map(|t| decode(Some(t)));
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(data);
    for decoded in [as_query, Some(decode(Some(&encoded)))]
        .into_iter()
        .flatten()
    {
        let Ok(request) = decoded else { continue };
        let now = corelay::clock::mono();
        let mut rooms = two_joined(now);
        let mut params = corelay::room::fuzzing::join_params("carol");
        params.single_pc = true;
        params.add_tracks = request.add_track_requests;
        params.offer = request.publisher_offer;
        corelay::room::fuzzing::join(&mut rooms, 3, &params, now);
    }
}
