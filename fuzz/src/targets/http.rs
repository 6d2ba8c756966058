//! The HTTP/1.1 request head (and body framing) of the API listener.

use corelay::http::{parse_request, percent_decode, Limits, Parsed};

/// Parses requests off the front of the buffer as the connection loop does, pipelined
/// ones included, and asks each for what the router asks.
pub fn head(data: &[u8]) {
    let limits = Limits::default();
    let mut rest = data;
    while let Ok(Parsed::Complete { request, consumed }) = parse_request(rest, &limits) {
        let _ = request.is_websocket_upgrade();
        let _ = request.header("authorization");
        let _ = request.query_param("access_token");
        let _ = percent_decode(&request.path);
        if consumed == 0 {
            break;
        }
        rest = &rest[consumed..];
    }
}
