//! Twirp framing: request decoding in the client's encoding (protobuf for Python, JSON
//! for Node), response encoding in the same one, and Twirp's JSON error bodies.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::http::Response;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// Picks the encoding from `Content-Type`, ignoring `;charset=…` parameters.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Encoding, TwirpError> {
        let mime = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/protobuf" | "application/x-protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            other => Err(TwirpError::bad_route(format!(
                "unexpected Content-Type: {other:?}"
            ))),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A Twirp error: code, message and the HTTP status the code implies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("twirp error {code}: {msg}")]
pub struct TwirpError {
    pub code: &'static str,
    pub msg: String,
}

impl TwirpError {
    fn new(code: &'static str, msg: impl Into<String>) -> Self {
        TwirpError {
            code,
            msg: msg.into(),
        }
    }
    pub fn unauthenticated(msg: impl Into<String>) -> Self {
        Self::new("unauthenticated", msg)
    }
    pub fn permission_denied(msg: impl Into<String>) -> Self {
        Self::new("permission_denied", msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new("not_found", msg)
    }
    pub fn invalid_argument(msg: impl Into<String>) -> Self {
        Self::new("invalid_argument", msg)
    }
    pub fn malformed(msg: impl Into<String>) -> Self {
        Self::new("malformed", msg)
    }
    pub fn bad_route(msg: impl Into<String>) -> Self {
        Self::new("bad_route", msg)
    }
    pub fn unimplemented(msg: impl Into<String>) -> Self {
        Self::new("unimplemented", msg)
    }
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::new("unavailable", msg)
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new("internal", msg)
    }

    pub fn status(&self) -> u16 {
        match self.code {
            "unauthenticated" => 401,
            "permission_denied" => 403,
            "not_found" | "bad_route" => 404,
            "invalid_argument" | "malformed" | "out_of_range" => 400,
            "already_exists" | "aborted" => 409,
            "failed_precondition" => 412,
            "resource_exhausted" => 429,
            "unimplemented" => 501,
            "unavailable" => 503,
            "deadline_exceeded" => 408,
            "canceled" => 408,
            _ => 500,
        }
    }

    pub fn to_response(&self) -> Response {
        let body = serde_json::json!({ "code": self.code, "msg": self.msg, "meta": {} });
        Response::new(self.status(), "application/json", body.to_string())
    }
}

/// Decodes a request message. JSON goes through pbjson, which reads camelCase and
/// snake_case names, enum names or numbers, and skips unknown fields.
pub fn decode<T>(encoding: Encoding, body: &[u8]) -> Result<T, TwirpError>
where
    T: prost::Message + Default + DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => T::decode(body)
            .map_err(|e| TwirpError::malformed(format!("the request could not be decoded: {e}"))),
        Encoding::Json => {
            // An empty body is an empty message, as in Twirp's Go server.
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(T::default());
            }
            serde_json::from_slice(body).map_err(|e| {
                TwirpError::malformed(format!("the json request could not be decoded: {e}"))
            })
        }
    }
}

pub fn encode<T>(encoding: Encoding, message: &T) -> Response
where
    T: prost::Message + Serialize,
{
    let body = match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => match serde_json::to_vec(message) {
            Ok(b) => b,
            Err(e) => return TwirpError::internal(format!("encode: {e}")).to_response(),
        },
    };
    Response::new(200, encoding.content_type(), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_protocol as lk;

    #[test]
    fn content_types() {
        let enc = |s| Encoding::from_content_type(Some(s));
        assert_eq!(enc("application/json;charset=UTF-8"), Ok(Encoding::Json));
        assert_eq!(enc("application/protobuf"), Ok(Encoding::Protobuf));
        assert_eq!(enc("Application/JSON"), Ok(Encoding::Json));
        assert_eq!(enc("text/plain").unwrap_err().code, "bad_route");
        assert!(Encoding::from_content_type(None).is_err());
    }

    #[test]
    fn json_accepts_both_name_styles_and_unknown_fields() {
        let camel: lk::CreateRoomRequest = decode(
            Encoding::Json,
            br#"{"name":"a","emptyTimeout":5,"whatever":1}"#,
        )
        .unwrap();
        let snake: lk::CreateRoomRequest =
            decode(Encoding::Json, br#"{"name":"a","empty_timeout":5}"#).unwrap();
        assert_eq!(camel, snake);
        assert_eq!(camel.empty_timeout, 5);
        let empty: lk::ListRoomsRequest = decode(Encoding::Json, b"").unwrap();
        assert!(empty.names.is_empty());
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let bad_json: Result<lk::CreateRoomRequest, _> = decode(Encoding::Json, b"{not json");
        assert_eq!(bad_json.unwrap_err().code, "malformed");
        let wrong_type: Result<lk::CreateRoomRequest, _> =
            decode(Encoding::Json, br#"{"name": 5}"#);
        assert_eq!(wrong_type.unwrap_err().code, "malformed");
        let bad_proto: Result<lk::CreateRoomRequest, _> =
            decode(Encoding::Protobuf, &[0xff, 0xff, 0xff]);
        assert_eq!(bad_proto.unwrap_err().code, "malformed");
    }

    #[test]
    fn round_trips_protobuf_and_json() {
        let room = lk::Room {
            sid: "RM_x".into(),
            name: "n".into(),
            creation_time: 17,
            ..Default::default()
        };
        let proto = encode(Encoding::Protobuf, &room);
        assert_eq!(proto.headers[0].1, "application/protobuf");
        let back: lk::Room = decode(Encoding::Protobuf, &proto.body).unwrap();
        assert_eq!(back, room);
        let json = encode(Encoding::Json, &room);
        let back: lk::Room = decode(Encoding::Json, &json.body).unwrap();
        assert_eq!(back, room);
    }

    #[test]
    fn error_body_is_twirp_json() {
        let resp = TwirpError::not_found("requested room does not exist").to_response();
        assert_eq!(resp.status, 404);
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["code"], "not_found");
        assert_eq!(v["msg"], "requested room does not exist");
        assert_eq!(resp.headers[0], ("Content-Type", "application/json".into()));
    }
}
