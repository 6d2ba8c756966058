//! The signal connection: a non-blocking sync WebSocket carrying one protobuf
//! `SignalRequest` up / `SignalResponse` down per binary frame.

use std::io::{self, ErrorKind as IoKind};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use livekit_protocol as lk;
use prost::Message as _;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message, WebSocket};

/// tungstenite zero-fills its whole read buffer (128 KiB by default) before every read,
/// also one that finds nothing: that memset was 42 % of loadtest's CPU at 60
/// subscribers, CPU the server under test then lacked. Signal messages are small.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// A failure, by kind (the keys of the summary's `errors`) and message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// Where to connect: `ws://host:port/prefix` split up, resolved once.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `ws://host:port/prefix` without a trailing slash.
    pub base: String,
    pub addr: SocketAddr,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, Failure> {
        let url = url.trim();
        let rest = if let Some(r) = url.strip_prefix("ws://") {
            r
        } else if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("wss://") || url.starts_with("https://") {
            return Err(Failure::new(
                "bad_url",
                format!("{url}: TLS (wss/https) is not supported by loadtest yet"),
            ));
        } else {
            return Err(Failure::new(
                "bad_url",
                format!("{url}: expected ws://host:port"),
            ));
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if hostport.is_empty() {
            return Err(Failure::new("bad_url", format!("{url}: no host")));
        }
        let with_port = if hostport.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !hostport.ends_with(']')
        }) {
            hostport.to_owned()
        } else {
            format!("{hostport}:80")
        };
        use std::net::ToSocketAddrs;
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .map_err(|e| Failure::new("dns", format!("{with_port}: {e}")))?
            .collect();
        // The SFU's ICE candidates are IPv4: prefer an IPv4 signal address too.
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| Failure::new("dns", format!("{with_port}: no address")))?;
        Ok(Endpoint {
            base: format!("ws://{hostport}{path}"),
            addr,
        })
    }
}

enum State {
    Handshaking(Box<MidHandshake<ClientHandshake<TcpStream>>>),
    Open(Box<WebSocket<TcpStream>>),
    Closed,
}

pub struct Signal {
    state: State,
    fd: i32,
    /// Names the socket to the worker's epoll set ([`crate::ready`]).
    id: u64,
}

pub enum Recv {
    Msg(Box<lk::signal_response::Message>),
    /// Nothing more to read now.
    Empty,
    /// Still handshaking.
    Pending,
}

fn io_failure(e: &io::Error, what: &str) -> Failure {
    let kind = match e.kind() {
        IoKind::ConnectionRefused => "connect_refused",
        IoKind::TimedOut => "connect_timeout",
        IoKind::ConnectionReset
        | IoKind::ConnectionAborted
        | IoKind::BrokenPipe
        | IoKind::UnexpectedEof => "connection_dropped",
        _ => "connect_error",
    };
    Failure::new(kind, format!("{what}: {e}"))
}

fn ws_failure(e: WsError, what: &str) -> Failure {
    match e {
        WsError::Http(resp) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .unwrap_or_default();
            let kind = match status {
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                400..=499 => "http_4xx",
                503 => "unavailable",
                _ => "http_5xx",
            };
            Failure::new(kind, format!("{what}: HTTP {status} {body}"))
        }
        WsError::Io(e) => io_failure(&e, what),
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            Failure::new("connection_dropped", format!("{what}: connection closed"))
        }
        WsError::Protocol(p) => {
            // a peer that closes the TCP connection mid-handshake shows up here too
            Failure::new("connection_dropped", format!("{what}: {p}"))
        }
        other => Failure::new("signal_error", format!("{what}: {other}")),
    }
}

impl Signal {
    /// TCP connect (blocking, 3 s at most) and start the WebSocket handshake without
    /// blocking.
    /// With `join_request` (`--signal v1`), `/rtc/v1`; the v0 query parameters then
    /// travel inside it.
    pub fn connect(
        ep: &Endpoint,
        token: &str,
        join_request: Option<&str>,
    ) -> Result<Signal, Failure> {
        use std::os::fd::AsRawFd;
        let url = match join_request {
            Some(j) => format!("{}/rtc/v1?access_token={token}&join_request={j}", ep.base),
            None => format!(
                "{}/rtc?access_token={token}&auto_subscribe=1&sdk=go&version=loadtest&protocol=16",
                ep.base
            ),
        };
        let stream = TcpStream::connect_timeout(&ep.addr, Duration::from_secs(3))
            .map_err(|e| io_failure(&e, &format!("connect {}", ep.addr)))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_nonblocking(true)
            .map_err(|e| io_failure(&e, "set_nonblocking"))?;
        let fd = stream.as_raw_fd();
        let req = url
            .into_client_request()
            .map_err(|e| Failure::new("bad_url", format!("{}: {e}", ep.base)))?;
        let state = match tungstenite::client::client_with_config(req, stream, Some(ws_config())) {
            Ok((ws, _)) => State::Open(Box::new(ws)),
            Err(HandshakeError::Interrupted(mid)) => State::Handshaking(Box::new(mid)),
            Err(HandshakeError::Failure(e)) => return Err(ws_failure(e, "websocket upgrade")),
        };
        Ok(Signal {
            state,
            fd,
            id: crate::ready::socket_id(),
        })
    }

    /// The connection's fd and socket id, while it is open.
    pub fn socket(&self) -> Option<(i32, u64)> {
        match self.state {
            State::Closed => None,
            _ => Some((self.fd, self.id)),
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Next message from the server, if any.
    pub fn recv(&mut self) -> Result<Recv, Failure> {
        loop {
            match std::mem::replace(&mut self.state, State::Closed) {
                State::Closed => {
                    return Err(Failure::new("signal_closed", "signal connection closed"))
                }
                State::Handshaking(mid) => match mid.handshake() {
                    Ok((ws, _)) => self.state = State::Open(Box::new(ws)),
                    Err(HandshakeError::Interrupted(mid)) => {
                        self.state = State::Handshaking(Box::new(mid));
                        return Ok(Recv::Pending);
                    }
                    Err(HandshakeError::Failure(e)) => {
                        return Err(ws_failure(e, "websocket upgrade"))
                    }
                },
                State::Open(mut ws) => {
                    let r = ws.read();
                    match r {
                        Ok(Message::Binary(b)) => {
                            self.state = State::Open(ws);
                            let resp = lk::SignalResponse::decode(b.as_ref()).map_err(|e| {
                                Failure::new("signal_decode", format!("SignalResponse: {e}"))
                            })?;
                            match resp.message {
                                Some(m) => return Ok(Recv::Msg(Box::new(m))),
                                None => continue,
                            }
                        }
                        Ok(Message::Close(frame)) => {
                            return Err(Failure::new(
                                "signal_closed",
                                format!("server closed the signal connection: {frame:?}"),
                            ));
                        }
                        Ok(_) => {
                            // ping/pong/text: tungstenite queues pong replies itself
                            self.state = State::Open(ws);
                        }
                        Err(WsError::Io(e)) if e.kind() == IoKind::WouldBlock => {
                            self.state = State::Open(ws);
                            return Ok(Recv::Empty);
                        }
                        Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                            return Err(Failure::new(
                                "signal_closed",
                                "signal connection closed by the server",
                            ));
                        }
                        Err(e) => {
                            let f = ws_failure(e, "signal read");
                            let kind = if f.kind == "connection_dropped" {
                                "signal_closed"
                            } else {
                                f.kind
                            };
                            return Err(Failure::new(kind, f.message));
                        }
                    }
                }
            }
        }
    }

    pub fn send(&mut self, msg: lk::signal_request::Message) -> Result<(), Failure> {
        let State::Open(ws) = &mut self.state else {
            return Err(Failure::new("signal_closed", "send on a closed signal"));
        };
        let bytes = lk::SignalRequest { message: Some(msg) }.encode_to_vec();
        match ws.send(Message::binary(bytes)) {
            Ok(()) => Ok(()),
            Err(WsError::Io(e)) if e.kind() == IoKind::WouldBlock => Ok(()), // queued
            Err(e) => Err(ws_failure(e, "signal write")),
        }
    }

    /// Push out queued frames (and pong replies).
    pub fn flush(&mut self) -> Result<(), Failure> {
        if let State::Open(ws) = &mut self.state {
            match ws.flush() {
                Ok(()) => {}
                Err(WsError::Io(e)) if e.kind() == IoKind::WouldBlock => {}
                Err(e) => return Err(ws_failure(e, "signal flush")),
            }
        }
        Ok(())
    }

    pub fn close(&mut self) {
        if let State::Open(ws) = &mut self.state {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        self.state = State::Closed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("ws://127.0.0.1:7880").unwrap();
        assert_eq!(e.base, "ws://127.0.0.1:7880");
        assert_eq!(e.addr, "127.0.0.1:7880".parse().unwrap());
        let e = Endpoint::parse("http://127.0.0.1:1/prefix/").unwrap();
        assert_eq!(e.base, "ws://127.0.0.1:1/prefix");
        let e = Endpoint::parse("ws://localhost:7880").unwrap();
        assert!(e.addr.is_ipv4());
        assert_eq!(Endpoint::parse("wss://x:1").unwrap_err().kind, "bad_url");
        assert_eq!(Endpoint::parse("nonsense").unwrap_err().kind, "bad_url");
        assert_eq!(
            Endpoint::parse("ws://no-such-host.invalid:1")
                .unwrap_err()
                .kind,
            "dns"
        );
    }
}
