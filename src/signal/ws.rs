//! One participant's signal WebSocket, on the control thread. It frames protobuf
//! messages and nothing else: requests go to the shard, the shard's answers come back
//! through the control thread's inbox.

use std::rc::Rc;
use std::time::Duration;

use crate::net::stream::TcpStream;
use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use futures_lite::future::or;
use futures_lite::{AsyncWriteExt, StreamExt};
use livekit_protocol as lk;
use prost::Message as _;
use tracing::{debug, info};

use super::frame::{decode_binary, decode_text, ws_config, Format};
use super::params::{join_params, join_params_v1};
use crate::auth::Claims;
use crate::control::{CallError, ConnEvent, Control};
use crate::http::{Request, Response};
use crate::room::{ConnId, RoomError, RoomOp, RoomReply};
use tokio::sync::mpsc::Receiver;

/// A connection silent this long gets a WebSocket ping (LiveKit pings every 10 s), which
/// keeps proxies from closing it; SDK pings count as traffic.
const PING_EVERY: Duration = Duration::from_secs(10);
/// Clients ping every `ping_interval` (5 s); silence this long means the peer is gone.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one signal message may take to write before the client counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a close frame to a refused client may take to write.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

enum Step {
    Frame(Option<Result<Message, WsError>>),
    Event(Option<ConnEvent>),
    Ping,
}

/// Joins the room, and only if that works upgrades the connection and runs the session.
/// `join_request` is `/rtc/v1`'s (one peer connection); `None` on `/rtc`.
pub async fn serve(
    mut stream: TcpStream,
    req: &Request,
    claims: Claims,
    join_request: Option<lk::JoinRequest>,
    ctx: Rc<Control>,
) {
    if ctx.lifecycle.is_draining() {
        let busy = Response::text(503, "server is shutting down");
        let _ = write_response(&mut stream, &busy).await;
        return;
    }
    let Some(key) = req.header("sec-websocket-key") else {
        let _ = write_response(
            &mut stream,
            &Response::text(400, "missing Sec-WebSocket-Key"),
        )
        .await;
        return;
    };
    let accept = derive_accept_key(key.as_bytes());
    // A resume, and the participant sid it names (v0: `reconnect=1&sid=`).
    let resume = match &join_request {
        Some(j) => j.reconnect.then_some(Some(j.participant_sid.as_str())),
        None => is_resume(req).then(|| req.query_param("sid")),
    };
    if let Some(sid) = resume {
        super::resume::serve(stream, &claims, sid.filter(|s| !s.is_empty()), &accept, ctx).await;
        return;
    }
    let auto_create = ctx.config.room.auto_create;
    let params = match &join_request {
        Some(j) => join_params_v1(&claims, j, auto_create),
        None => join_params(&claims, req, auto_create),
    };
    let signal = if params.single_pc { "v1" } else { "v0" };
    let room = params.room.clone();
    let identity = params.identity.clone();
    let (conn, events) = ctx.open_conn();
    let started = crate::clock::mono();
    let joined = ctx
        .room_op(RoomOp::Join {
            conn,
            params: Box::new(params),
        })
        .await;
    let join = match joined {
        Ok(RoomReply::Joined(join)) => join,
        other => {
            ctx.close_conn(conn).await;
            let response = match other {
                Err(CallError::Room(RoomError::RoomNotFound)) => {
                    Response::text(404, "requested room does not exist")
                }
                Err(CallError::Room(RoomError::RoomFull)) => Response::text(503, "room is full"),
                Err(e) => Response::text(500, format!("could not join: {e}")),
                Ok(reply) => Response::text(500, format!("unexpected join reply {reply:?}")),
            };
            info!(conn, %room, %identity, status = response.status, "join refused");
            let _ = write_response(&mut stream, &response).await;
            return;
        }
    };
    let sid = join
        .participant
        .as_ref()
        .map(|p| p.sid.as_str())
        .unwrap_or("");
    ctx.bind_conn(conn, &room, &identity, sid);
    let join_ms = crate::clock::mono()
        .saturating_duration_since(started)
        .as_millis() as u64;
    let shard = ctx.conn_shard(conn).unwrap_or_default();
    info!(conn, %room, %identity, shard, join_ms, signal, "participant joined");

    let first = lk::SignalResponse {
        message: Some(lk::signal_response::Message::Join(*join)),
    };
    match upgrade(stream, &accept).await {
        Some(mut ws) => session(&mut ws, conn, 0, events, &[first], &ctx).await,
        None => ctx.close_conn(conn).await,
    }
    info!(conn, %room, %identity, "signal connection closed");
}

/// Answers the upgrade and wraps the stream; `None` when the client is gone.
pub(super) async fn upgrade(
    mut stream: TcpStream,
    accept: &str,
) -> Option<WebSocketStream<TcpStream>> {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    write_upgrade(&mut stream, accept).await.ok()?;
    Some(WebSocketStream::from_raw_socket(stream, Role::Server, Some(ws_config())).await)
}

/// Runs a participant's signal connection: `first` goes out before anything queued,
/// then requests and responses flow until the connection ends. A connection that
/// dropped without a leave parks its queue for a resume (`control::resume`); any
/// other end makes the participant leave. `generation` says which connection task of
/// the participant this is (0 for the join, more for resumes).
pub(super) async fn session(
    ws: &mut WebSocketStream<TcpStream>,
    conn: ConnId,
    generation: u64,
    mut events: Receiver<ConnEvent>,
    first: &[lk::SignalResponse],
    ctx: &Control,
) {
    let mut end = End::Lost;
    let mut sent = true;
    for msg in first {
        sent = sent && send(ws, msg).await;
    }
    if sent {
        end = run(ws, conn, &mut events, ctx).await;
    }
    match end {
        End::Left => ctx.close_conn(conn).await,
        End::Lost => ctx.signal_lost(conn, generation, events).await,
    }
}

/// How a signal connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The participant leaves: the server closed the session, or the client broke
    /// the protocol.
    Left,
    /// The connection dropped or was taken over: the participant may resume. A client
    /// that left said so with a leave request first, which the shard has handled.
    Lost,
}

async fn run(
    ws: &mut WebSocketStream<TcpStream>,
    conn: u64,
    events: &mut Receiver<ConnEvent>,
    ctx: &Control,
) -> End {
    let mut ping = std::pin::pin!(tokio::time::sleep(PING_EVERY));
    // As LiveKit: a client's text (protojson) frame switches the connection to JSON in
    // both directions, a binary one back to protobuf.
    let mut format = Format::Protobuf;
    loop {
        let step = or(
            or(async { Step::Frame(ws.next().await) }, async {
                Step::Event(events.recv().await)
            }),
            async {
                ping.as_mut().await;
                Step::Ping
            },
        )
        .await;
        match step {
            Step::Frame(Some(Ok(frame @ (Message::Binary(_) | Message::Text(_))))) => {
                // A client that talks (SDKs ping every `ping_interval`) needs no ping from
                // us; one that stays silent for PING_EVERY gets one.
                ping.as_mut()
                    .reset(tokio::time::Instant::now() + PING_EVERY);
                let decoded = match &frame {
                    Message::Text(text) => {
                        format = Format::Json;
                        decode_text(text.as_str())
                    }
                    _ => {
                        format = Format::Protobuf;
                        decode_binary(frame.into_data().as_ref())
                    }
                };
                match decoded {
                    Ok(request) => {
                        let now = crate::clock::now();
                        if let Some(pong) = super::pong(&request, now.unix_ms) {
                            if !send_as(ws, &pong, format).await {
                                return End::Lost;
                            }
                        } else {
                            // What follows a request (an answer, a trickle) must not
                            // wait for the quiet grid.
                            ctx.quiet.touch(now.mono);
                            ctx.signal(conn, request).await;
                        }
                    }
                    Err(e) => {
                        // LiveKit ends the signal connection on a frame it cannot decode.
                        debug!(conn, error = %e, "undecodable signal request, closing");
                        close_with(ws, CloseCode::Invalid, "malformed signal request").await;
                        return End::Left;
                    }
                }
            }
            Step::Frame(Some(Ok(Message::Close(_)))) | Step::Frame(None) => return End::Lost,
            Step::Frame(Some(Ok(_))) => {} // pings are answered by tungstenite
            Step::Frame(Some(Err(e))) => {
                debug!(conn, error = %e, "signal connection failed");
                if let Some((code, reason)) = refusal(&e) {
                    close_with(ws, code, reason).await;
                    return End::Left;
                }
                return End::Lost;
            }
            Step::Event(Some(ConnEvent::Signal(response))) => {
                if !send_as(ws, &response, format).await {
                    return End::Lost;
                }
            }
            Step::Event(Some(ConnEvent::Close(leave))) => {
                let msg = lk::SignalResponse {
                    message: Some(lk::signal_response::Message::Leave(leave)),
                };
                if send_as(ws, &msg, format).await {
                    close_with(ws, CloseCode::Normal, "").await;
                }
                return End::Left;
            }
            Step::Event(Some(ConnEvent::Takeover)) => return End::Lost,
            Step::Event(None) => return End::Left,
            Step::Ping => {
                ping.as_mut()
                    .reset(tokio::time::Instant::now() + PING_EVERY);
                if !write_frame(ws, Message::Ping(Vec::new().into())).await {
                    return End::Lost;
                }
            }
        }
    }
}

/// How to tell a client why its connection ends when it broke the framing rules (too
/// big a message, a protocol violation); `None` when the connection simply failed.
fn refusal(e: &WsError) -> Option<(CloseCode, &'static str)> {
    match e {
        WsError::Capacity(_) => Some((CloseCode::Size, "message too big")),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) => Some((CloseCode::Protocol, "protocol violation")),
        WsError::Utf8(_) => Some((CloseCode::Invalid, "invalid UTF-8")),
        _ => None,
    }
}

/// Ends the session with a close frame saying why; the socket is dropped afterwards.
/// A client that does not read cannot hold the session open: the frame is tiny, and
/// a write that stalls anyway is abandoned after [`CLOSE_WRITE_TIMEOUT`].
async fn close_with(ws: &mut WebSocketStream<TcpStream>, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = or(async { ws.close(Some(frame)).await.is_ok() }, async {
        tokio::time::sleep(CLOSE_WRITE_TIMEOUT).await;
        false
    })
    .await;
}

/// `reconnect=1`: the client wants to resume a session.
fn is_resume(req: &Request) -> bool {
    matches!(req.query_param("reconnect"), Some("1") | Some("true"))
}

/// LiveKit's answer to a resume of a participant it does not have, which makes every
/// SDK do a full reconnect instead: `leave {STATE_MISMATCH, RECONNECT}` first.
pub(super) async fn refuse_resume(mut stream: TcpStream, accept: &str) {
    if write_upgrade(&mut stream, accept).await.is_err() {
        return;
    }
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    let leave = crate::room::participant::leave(
        lk::DisconnectReason::StateMismatch,
        lk::leave_request::Action::Reconnect,
    );
    let msg = lk::SignalResponse {
        message: Some(lk::signal_response::Message::Leave(leave)),
    };
    if send(&mut ws, &msg).await {
        let _ = ws
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    }
}

async fn write_upgrade(stream: &mut TcpStream, accept: &str) -> std::io::Result<()> {
    let upgrade = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(upgrade.as_bytes()).await
}

/// Writes one message; false when the connection failed or the client has not taken
/// it within [`WRITE_TIMEOUT`] (it is not reading: the session ends).
pub(super) async fn send(ws: &mut WebSocketStream<TcpStream>, msg: &lk::SignalResponse) -> bool {
    send_as(ws, msg, Format::Protobuf).await
}

async fn send_as(
    ws: &mut WebSocketStream<TcpStream>,
    msg: &lk::SignalResponse,
    format: Format,
) -> bool {
    let frame = match format {
        Format::Protobuf => Message::Binary(msg.encode_to_vec().into()),
        Format::Json => match serde_json::to_string(msg) {
            Ok(text) => Message::Text(text.into()),
            Err(_) => return false,
        },
    };
    write_frame(ws, frame).await
}

async fn write_frame(ws: &mut WebSocketStream<TcpStream>, frame: Message) -> bool {
    or(async { ws.send(frame).await.is_ok() }, async {
        tokio::time::sleep(WRITE_TIMEOUT).await;
        debug!("signal write timed out");
        false
    })
    .await
}

pub(super) async fn write_response(
    stream: &mut TcpStream,
    response: &Response,
) -> std::io::Result<()> {
    stream.write_all(&response.encode(false)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::frame::MAX_MESSAGE;
    use async_tungstenite::tungstenite::error::CapacityError;

    #[test]
    fn framing_errors_name_their_close_code() {
        let big = WsError::Capacity(CapacityError::MessageTooLong {
            size: 3 << 20,
            max_size: MAX_MESSAGE,
        });
        assert_eq!(refusal(&big).map(|r| r.0), Some(CloseCode::Size));
        let unmasked = WsError::Protocol(ProtocolError::UnmaskedFrameFromClient);
        assert_eq!(refusal(&unmasked).map(|r| r.0), Some(CloseCode::Protocol));
        // A client that went away is not told anything.
        let reset = WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert_eq!(refusal(&reset), None);
        assert_eq!(refusal(&WsError::ConnectionClosed), None);
    }
}
