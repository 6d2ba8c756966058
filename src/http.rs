//! HTTP/1.1 framing, sans-IO: parse a request head and body out of a byte buffer with
//! bounded sizes, and encode responses. The connection loop in `api::server` feeds it.

use std::fmt::Write as _;

/// Bounds that keep a misbehaving client from costing more than a little memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head: usize,
    pub max_headers: usize,
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 64 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string, percent-decoding not applied.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names are lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A WebSocket upgrade request (`Connection: upgrade`, `Upgrade: websocket`).
    pub fn is_websocket_upgrade(&self) -> bool {
        let has = |name: &str, token: &str| {
            self.header(name)
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        has("connection", "upgrade") && has("upgrade", "websocket")
    }
}

/// Why a request could not be parsed; each maps to the status the client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request headers too large")]
    HeadTooLarge,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("chunked request bodies are not supported; send Content-Length")]
    LengthRequired,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::LengthRequired => 411,
        }
    }
}

/// Outcome of looking at the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request; `consumed` bytes of the buffer belong to it.
    Complete { request: Request, consumed: usize },
    /// Need more bytes. `expected` is the full length once the head is known.
    Partial { expected: Option<usize> },
}

/// Parses one request from the front of `buf`.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head {
                return Err(HttpError::HeadTooLarge);
            }
            return Ok(Parsed::Partial { expected: None });
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    if head_len > limits.max_head {
        return Err(HttpError::HeadTooLarge);
    }
    let method = req.method.unwrap_or_default().to_string();
    let target = req.path.unwrap_or_default();
    let version = req.version.unwrap_or(1);
    let mut owned = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::Malformed(format!("header {} is not UTF-8", h.name)))?;
        owned.push((h.name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |name: &str| {
        owned
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if find("transfer-encoding").is_some() {
        return Err(HttpError::LengthRequired);
    }
    let body_len = match find("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| HttpError::Malformed("bad Content-Length".into()))?,
    };
    if body_len > limits.max_body {
        return Err(HttpError::BodyTooLarge);
    }
    let total = head_len + body_len;
    if buf.len() < total {
        return Ok(Parsed::Partial {
            expected: Some(total),
        });
    }
    let connection = find("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = if version == 0 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let (path, query) = split_target(target);
    Ok(Parsed::Complete {
        request: Request {
            method,
            path,
            query,
            headers: owned,
            body: buf[head_len..total].to_vec(),
            keep_alive,
        },
        consumed: total,
    })
}

fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_string(), pairs)
}

/// Decodes `%XX` and `+` in a query component; invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    /// A plain-text answer, the way LiveKit reports signal and auth failures.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Serializes the response. Every answer allows any origin, as LiveKit's does.
    pub fn encode(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(
            head,
            "Access-Control-Allow-Origin: *\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse_request(buf, &Limits::default()) {
            Ok(Parsed::Complete { request, consumed }) => (request, consumed),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn parses_get_with_query() {
        let raw: &[u8] =
            b"GET /rtc/validate?access_token=a%2Eb&x=1+2&flag HTTP/1.1\r\nHost: h\r\n\r\n";
        let (req, used) = complete(raw);
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/rtc/validate");
        assert_eq!(req.query_param("access_token"), Some("a.b"));
        assert_eq!(req.query_param("x"), Some("1 2"));
        assert_eq!(req.query_param("flag"), Some(""));
        assert_eq!(req.header("host"), Some("h"));
        assert!(req.keep_alive);
        assert_eq!(used, raw.len());
    }

    #[test]
    fn waits_for_the_whole_body_then_leaves_the_next_request() {
        let one = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        let partial = parse_request(&one[..one.len() - 2], &Limits::default());
        assert_eq!(
            partial,
            Ok(Parsed::Partial {
                expected: Some(one.len())
            })
        );
        let mut two = one.to_vec();
        two.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let (req, used) = complete(&two);
        assert_eq!(req.body, b"hello");
        assert_eq!(used, one.len());
        let (next, _) = complete(&two[used..]);
        assert_eq!(next.path, "/");
    }

    #[test]
    fn connection_close_and_http10() {
        let (req, _) = complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!req.keep_alive);
        let (req, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!req.keep_alive);
    }

    #[test]
    fn rejects_malformed_and_oversized() {
        let limits = Limits {
            max_head: 64,
            max_headers: 4,
            max_body: 10,
        };
        let err = |b: &[u8]| parse_request(b, &limits).unwrap_err().status();
        assert_eq!(err(b"\x00\x01garbage\r\n\r\n"), 400);
        assert_eq!(err(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(err(b"GET / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), 413);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            400
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\n\r\n"),
            431
        );
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100));
        assert_eq!(err(long.as_bytes()), 431);
    }

    #[test]
    fn websocket_upgrade_detection() {
        let (req, _) = complete(
            b"GET /rtc HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        assert!(req.is_websocket_upgrade());
        let (req, _) = complete(b"GET /rtc HTTP/1.1\r\n\r\n");
        assert!(!req.is_websocket_upgrade());
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
    }

    #[test]
    fn encodes_with_cors_and_length() {
        let bytes = Response::text(200, "OK").encode(true);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Access-Control-Allow-Origin: *\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\nOK"));
    }
}
