//! Node-to-node relaying on the control thread, over a direct TCP connection to the
//! hosting node's API address from the registry (chosen over relaying through Redis:
//! no Redis round trip or serialization per signal message, and an established call
//! does not depend on Redis at all).
//!
//! - A signal WebSocket for a room hosted elsewhere: the client's HTTP upgrade request
//!   is replayed to the hosting node with [`RELAYED_HEADER`] added, and from then on
//!   bytes are copied both ways until either side closes. The hosting node answers the
//!   upgrade and runs the session itself, so the SDK sees exactly its wire behaviour.
//! - A Twirp call: forwarded as one HTTP request, its answer returned as it came.

use std::time::Duration;

use crate::net::stream::TcpStream;
use futures_lite::{future, io, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use crate::http::Response;

/// Marks a request one node relayed to another (its value: `Cluster::relay_token`):
/// the receiving node serves it itself instead of relaying it again.
pub const RELAYED_HEADER: &str = "x-corelay-relay";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// A relayed Twirp answer larger than this is refused (a ListRooms of a huge node).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// `head` (a complete HTTP request head) with the relay header added.
pub fn mark_relayed(head: &[u8], token: &str) -> Option<Vec<u8>> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let mut out = Vec::with_capacity(head.len() + 80);
    out.extend_from_slice(&head[..end + 2]);
    out.extend_from_slice(format!("{RELAYED_HEADER}: {token}\r\n").as_bytes());
    out.extend_from_slice(&head[end + 2..]);
    Some(out)
}

async fn connect(api: &str) -> std::io::Result<TcpStream> {
    let connecting = TcpStream::connect(api);
    let timeout = async {
        tokio::time::sleep(CONNECT_TIMEOUT).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        ))
    };
    let stream = future::or(connecting, timeout).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Relays a signal connection to the node at `api`: `head` is the client's upgrade
/// request (relay header already added), `early` whatever the client sent after it.
/// `traffic` is called for each chunk relayed: the bytes cannot be told apart (a ping
/// from an offer), so a relaying control thread stays active (`control::quiet`).
pub async fn splice(
    mut client: TcpStream,
    head: Vec<u8>,
    early: Vec<u8>,
    api: &str,
    traffic: &dyn Fn(),
) {
    let mut upstream = match connect(api).await {
        Ok(s) => s,
        Err(e) => {
            debug!(%api, error = %e, "cannot reach the room's node");
            let answer = Response::text(503, format!("cannot reach the room's node: {e}"));
            let _ = client.write_all(&answer.encode(false)).await;
            return;
        }
    };
    if upstream.write_all(&head).await.is_err() || upstream.write_all(&early).await.is_err() {
        return;
    }
    let _ = client.set_read_timeout(None);
    let (client_in, client_out) = io::split(client);
    let (upstream_in, upstream_out) = io::split(upstream);
    let up = copy(client_in, upstream_out, traffic);
    let down = copy(upstream_in, client_out, traffic);
    // Either side closing ends the relay; dropping both halves closes the other side.
    future::or(up, down).await;
    debug!(%api, "relayed signal connection ended");
}

/// Copies until either end closes or fails, calling `traffic` for each chunk.
async fn copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    traffic: &dyn Fn(),
) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                traffic();
                if to.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Forwards one HTTP request to the node at `api` and returns its answer.
pub async fn forward(
    api: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = connect(api).await?;
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {api}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut answer = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
        if answer.len() > MAX_ANSWER {
            return Err(std::io::Error::other("relayed answer too large"));
        }
        if let Some(done) = parse_answer(&answer)? {
            return Ok(done);
        }
    }
    parse_answer(&answer)?.ok_or_else(|| std::io::Error::other("relayed answer cut short"))
}

/// A complete HTTP answer in `data`, `None` while more is needed.
fn parse_answer(data: &[u8]) -> std::io::Result<Option<Response>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(std::io::Error::other(format!("bad relayed answer: {e}"))),
    };
    let status = parsed.code.unwrap_or(502);
    let header = |name: &str| {
        (parsed.headers.iter())
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let content_type = header("content-type").unwrap_or("text/plain").to_string();
    let length: Option<usize> = header("content-length").and_then(|v| v.trim().parse().ok());
    let body = &data[head_len..];
    match length {
        Some(n) if body.len() < n => Ok(None),
        Some(n) => Ok(Some(Response::new(status, &content_type, &body[..n]))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_header_goes_at_the_end_of_the_head() {
        let head = b"GET /rtc?access_token=x HTTP/1.1\r\nhost: a\r\n\r\n";
        let marked = mark_relayed(head, "tok").expect("a head");
        assert_eq!(
            marked,
            b"GET /rtc?access_token=x HTTP/1.1\r\nhost: a\r\nx-corelay-relay: tok\r\n\r\n"
        );
        assert!(mark_relayed(b"GET / HTTP/1.1\r\n", "tok").is_none());
    }

    #[test]
    fn answers_are_complete_only_with_their_whole_body() {
        let full =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let r = parse_answer(full).expect("parses").expect("complete");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        assert!(parse_answer(&full[..full.len() - 1])
            .expect("parses")
            .is_none());
        assert!(parse_answer(b"garbage\r\n\r\n").is_err());
    }
}
