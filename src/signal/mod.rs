//! The LiveKit signal connection (`/rtc`, protocol v0, and `/rtc/v1`, one peer
//! connection): join parameters from the token and the query or the `join_request`
//! (`params`, `join_request`), and the WebSocket session on the control thread (`ws`), which
//! frames messages and answers pings itself: every other request goes to the shard
//! that owns the participant.

pub mod frame;
pub mod join_request;
pub mod params;
pub mod resume;
pub mod ws;

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;

/// The answer to a keep-alive ping (`ping` or `ping_req`), `None` for any other
/// request. Pings need no room state, so the signal connection answers them without
/// waking the participant's shard: an idle client pings every `ping_interval`.
pub fn pong(request: &lk::SignalRequest, unix_ms: i64) -> Option<lk::SignalResponse> {
    let message = match request.message.as_ref()? {
        Req::Ping(_) => Resp::Pong(unix_ms),
        Req::PingReq(ping) => Resp::PongResp(lk::Pong {
            last_ping_timestamp: ping.timestamp,
            timestamp: unix_ms,
        }),
        _ => return None,
    };
    Some(lk::SignalResponse {
        message: Some(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_are_answered_with_their_timestamp_and_nothing_else_is() {
        let ping = |m| lk::SignalRequest { message: Some(m) };
        let answer = pong(
            &ping(Req::PingReq(lk::Ping {
                timestamp: 42,
                rtt: 7,
            })),
            1000,
        );
        assert!(matches!(answer.and_then(|r| r.message),
            Some(Resp::PongResp(p)) if p.last_ping_timestamp == 42 && p.timestamp == 1000));
        let answer = pong(&ping(Req::Ping(42)), 1000);
        assert!(matches!(
            answer.and_then(|r| r.message),
            Some(Resp::Pong(1000))
        ));
        let leave = ping(Req::Leave(lk::LeaveRequest::default()));
        assert!(pong(&leave, 1000).is_none());
        assert!(pong(&lk::SignalRequest { message: None }, 1000).is_none());
    }
}
