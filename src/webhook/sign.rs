//! One event as LiveKit puts it on the wire: the body bytes and the `Authorization` value.

use base64::{engine::general_purpose::STANDARD, Engine};
use livekit_protocol as lk;
use sha2::{Digest, Sha256};

use crate::auth::{self, AuthError, Claims};

/// `Content-Type` of a webhook POST.
pub const CONTENT_TYPE: &str = "application/webhook+json";
/// `User-Agent` of a webhook POST (LiveKit's).
pub const USER_AGENT: &str = "LiveKit";
/// How long the `Authorization` token is valid (LiveKit: 5 minutes).
pub const TOKEN_TTL_SECS: u64 = 5 * 60;

/// Why an event could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// protojson serialization failed (e.g. an enum field holds an unknown value).
    #[error("webhook body: {0}")]
    Body(#[from] serde_json::Error),
    /// The token could not be signed (empty secret).
    #[error("webhook token: {0}")]
    Token(#[from] AuthError),
}

/// The exact body bytes and the `Authorization` header value (a raw JWT, no `Bearer`) for
/// one event, signed at `now_unix` with `api_key`/`secret`.
///
/// The body is protojson: camelCase, defaults omitted, int64 fields (`createdAt`,
/// `joinedAt`, …) as JSON strings, enums by name. The token is HS256 with `iss` = `api_key`,
/// `nbf` = `now_unix`, `exp` = `now_unix` + [`TOKEN_TTL_SECS`] and `sha256` = std-base64
/// (padded) of the body's SHA-256, which is what the SDKs' `WebhookReceiver` checks.
pub fn encode(
    event: &lk::WebhookEvent,
    api_key: &str,
    secret: &str,
    now_unix: u64,
) -> Result<(Vec<u8>, String), WebhookError> {
    let body = serde_json::to_vec(event)?;
    let claims = Claims {
        iss: api_key.to_owned(),
        nbf: Some(now_unix),
        exp: now_unix.saturating_add(TOKEN_TTL_SECS),
        sha256: STANDARD.encode(Sha256::digest(&body)),
        ..Claims::default()
    };
    let token = auth::sign(&claims, secret)?;
    Ok((body, token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeyStore;

    const NOW: u64 = 1_700_000_000;

    fn sample() -> lk::WebhookEvent {
        let room = lk::Room {
            sid: "RM_abc".into(),
            name: "room é".into(),
            creation_time: 1_699_999_000,
            num_participants: 1,
            ..Default::default()
        };
        let p = lk::ParticipantInfo {
            sid: "PA_abc".into(),
            identity: "alice".into(),
            state: lk::participant_info::State::Active as i32,
            joined_at: 1_699_999_500,
            ..Default::default()
        };
        let t = lk::TrackInfo {
            sid: "TR_abc".into(),
            r#type: lk::TrackType::Video as i32,
            source: lk::TrackSource::Camera as i32,
            width: 1280,
            height: 720,
            ..Default::default()
        };
        super::super::track_published(&room, &p, &t, NOW as i64)
    }

    #[test]
    fn body_round_trips_and_is_protojson() {
        let ev = sample();
        let (body, _) = encode(&ev, "APIkey", "secret", NOW).expect("encode");
        let back: lk::WebhookEvent = serde_json::from_slice(&body).expect("parse back");
        assert_eq!(back, ev);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["event"], "track_published");
        assert_eq!(json["id"], ev.id.as_str());
        // int64 as a JSON string, camelCase, enums by name, defaults omitted.
        assert_eq!(json["createdAt"], "1700000000");
        assert_eq!(json["participant"]["joinedAt"], "1699999500");
        assert_eq!(json["participant"]["state"], "ACTIVE");
        assert_eq!(json["track"]["type"], "VIDEO");
        assert_eq!(json["track"]["source"], "CAMERA");
        assert_eq!(json["room"]["numParticipants"], 1);
        assert!(json.get("egressInfo").is_none() && json.get("numDropped").is_none());
        assert!(json["track"].get("muted").is_none());
    }

    #[test]
    fn token_verifies_and_hashes_the_body() {
        let ev = sample();
        let (body, token) = encode(&ev, "APIkey", "secret", NOW).expect("encode");
        assert!(!token.starts_with("Bearer"));
        let keys = KeyStore::new([("APIkey".to_owned(), "secret".to_owned())]);
        let claims = keys.verify(&token, NOW).expect("verify");
        assert_eq!(claims.iss, "APIkey");
        assert_eq!((claims.nbf, claims.exp), (Some(NOW), NOW + TOKEN_TTL_SECS));
        let digest = STANDARD.decode(&claims.sha256).expect("std base64");
        assert_eq!(digest, Sha256::digest(&body).to_vec());
        assert_eq!(claims.sha256.len(), 44, "padded std base64 of 32 bytes");
        // Expired after 5 minutes (plus leeway), rejected under another secret.
        assert!(keys
            .verify(&token, NOW + TOKEN_TTL_SECS + auth::LEEWAY_SECS + 1)
            .is_err());
        let other = KeyStore::new([("APIkey".to_owned(), "other".to_owned())]);
        assert_eq!(other.verify(&token, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn encoding_is_deterministic_for_one_event() {
        let ev = sample();
        let a = encode(&ev, "APIkey", "secret", NOW).expect("a");
        let b = encode(&ev, "APIkey", "secret", NOW).expect("b");
        assert_eq!(a, b);
    }

    #[test]
    fn errors_are_typed() {
        let ev = sample();
        assert!(matches!(
            encode(&ev, "APIkey", "", NOW),
            Err(WebhookError::Token(_))
        ));
        let bad = lk::WebhookEvent {
            room_end_reason: 9999,
            ..ev
        };
        let err = encode(&bad, "APIkey", "secret", NOW).expect_err("bad enum");
        assert!(matches!(err, WebhookError::Body(_)), "{err}");
    }
}
