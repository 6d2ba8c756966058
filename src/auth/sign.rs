//! HS256 signing: `create-join-token`, refresh tokens, webhooks and tests.

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::{AuthError, Claims, VideoGrant};

/// Signs `claims` with HS256 (header `{"typ":"JWT","alg":"HS256"}`).
///
/// Fails only on an empty secret (a token anyone could forge) or a serialization error.
pub fn sign(claims: &Claims, secret: &str) -> Result<String, AuthError> {
    if secret.is_empty() {
        return Err(AuthError::Signing("API secret is empty".into()));
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| AuthError::Signing(e.to_string()))
}

/// Claims for a join token: `roomJoin` to `room` as `identity`, issued by `api_key`,
/// valid from `now_unix` (`nbf`) for `ttl_secs` (`exp`).
pub fn join_claims(
    api_key: &str,
    identity: &str,
    room: &str,
    now_unix: u64,
    ttl_secs: u64,
) -> Claims {
    Claims {
        iss: api_key.to_owned(),
        sub: identity.to_owned(),
        nbf: Some(now_unix),
        exp: now_unix.saturating_add(ttl_secs),
        video: VideoGrant {
            room_join: true,
            room: room.to_owned(),
            ..VideoGrant::default()
        },
        ..Claims::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn part(token: &str, i: usize) -> serde_json::Value {
        let b64 = token.split('.').nth(i).expect("part");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .expect("base64url");
        serde_json::from_slice(&raw).expect("json")
    }

    #[test]
    fn join_claims_shape() {
        let c = join_claims("APIkey", "alice", "room1", 1_000, 600);
        assert_eq!((c.iss.as_str(), c.identity()), ("APIkey", "alice"));
        assert_eq!((c.nbf, c.exp), (Some(1_000), 1_600));
        assert!(c.video.room_join);
        assert_eq!(c.video.room, "room1");
        assert_eq!(join_claims("k", "i", "r", u64::MAX - 1, 10).exp, u64::MAX);
    }

    #[test]
    fn signed_token_looks_like_livekit() {
        let token = sign(&join_claims("APIkey", "alice", "r", 1_000, 600), "secret").expect("sign");
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(
            part(&token, 0),
            serde_json::json!({"typ": "JWT", "alg": "HS256"})
        );
        assert_eq!(
            part(&token, 1),
            serde_json::json!({"iss": "APIkey", "sub": "alice", "nbf": 1000, "exp": 1600,
                               "video": {"roomJoin": true, "room": "r"}})
        );
    }

    #[test]
    fn empty_secret_is_refused() {
        let err = sign(&Claims::default(), "").expect_err("empty secret");
        assert!(matches!(err, AuthError::Signing(_)));
    }
}
