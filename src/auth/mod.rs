//! Access tokens: HS256 JWT verification and signing, LiveKit claims and grants.
//!
//! * [`token_from_request`] picks the token from `Authorization: Bearer …` or `?access_token=`.
//! * [`KeyStore::verify`] checks it at a caller-supplied `now` (this module never reads
//!   the clock): size (≤ [`MAX_TOKEN_LEN`]), `alg` (HS256 only), the key named by `iss`,
//!   the signature, `exp` (required) and `nbf`, both with [`LEEWAY_SECS`].
//! * [`sign`] and [`join_claims`] mint tokens (`create-join-token`, refreshes, tests).
//!
//! Every [`AuthError`] displays as a LiveKit-style message fit for an HTTP 401 body.

mod claims;
mod error;
mod sign;
mod verify;

pub use claims::{Claims, VideoGrant};
pub use error::AuthError;
pub use sign::{join_claims, sign};
pub use verify::{KeyStore, MAX_TOKEN_LEN};

/// Clock skew tolerated on `exp` and `nbf`, in seconds (LiveKit's go-jose default).
pub const LEEWAY_SECS: u64 = 60;

/// Picks the token from an HTTP request, as LiveKit does.
///
/// A non-empty `Authorization` header wins and must be `Bearer <jwt>` (case-sensitive
/// `Bearer `), otherwise [`AuthError::MalformedAuthorization`]. Without one, the
/// (already URL-decoded) `access_token` query value is used. `Ok(None)` when neither
/// holds a token; surrounding whitespace is trimmed from the token.
pub fn token_from_request<'a>(
    authorization: Option<&'a str>,
    access_token_query: Option<&'a str>,
) -> Result<Option<&'a str>, AuthError> {
    let token = match authorization.map(str::trim).filter(|h| !h.is_empty()) {
        Some(header) => header
            .strip_prefix("Bearer ")
            .ok_or(AuthError::MalformedAuthorization)?,
        None => access_token_query.unwrap_or_default(),
    }
    .trim();
    Ok(Some(token).filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn store() -> KeyStore {
        KeyStore::new([("APIkey".to_owned(), "secret".to_owned())])
    }

    fn raw(header: &str, payload: &str, signature: &str) -> String {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD as E, Engine};
        format!("{}.{}.{signature}", E.encode(header), E.encode(payload))
    }

    #[test]
    fn bearer_header() {
        assert_eq!(
            token_from_request(Some("Bearer abc"), None),
            Ok(Some("abc"))
        );
        assert_eq!(
            token_from_request(Some("Bearer  abc "), None),
            Ok(Some("abc"))
        );
        for bad in [
            "bearer abc",
            "BEARER abc",
            "abc",
            "Basic abc",
            "Bearer",
            "Bearerabc",
        ] {
            assert_eq!(
                token_from_request(Some(bad), None),
                Err(AuthError::MalformedAuthorization),
                "{bad}"
            );
        }
        // A header value arrives trimmed, so a bare "Bearer " is "Bearer": malformed.
        assert_eq!(
            token_from_request(Some("Bearer "), None),
            Err(AuthError::MalformedAuthorization)
        );
    }

    #[test]
    fn header_beats_query() {
        assert_eq!(
            token_from_request(Some("Bearer h"), Some("q")),
            Ok(Some("h"))
        );
        assert_eq!(
            token_from_request(Some("Token h"), Some("q")),
            Err(AuthError::MalformedAuthorization)
        );
        assert_eq!(token_from_request(None, Some("q")), Ok(Some("q")));
        assert_eq!(token_from_request(Some(""), Some("q")), Ok(Some("q")));
        assert_eq!(token_from_request(None, Some("")), Ok(None));
        assert_eq!(token_from_request(None, None), Ok(None));
    }

    #[test]
    fn request_to_claims() {
        let keys = KeyStore::new([("APIkey".to_owned(), "secret".to_owned())]);
        let token = sign(&join_claims("APIkey", "alice", "r", 100, 600), "secret").expect("sign");
        let header = format!("Bearer {token}");
        let found = token_from_request(Some(&header), None)
            .expect("header")
            .expect("token");
        let claims = keys.verify(found, 100).expect("verify");
        assert_eq!(
            (claims.identity(), claims.video.room.as_str()),
            ("alice", "r")
        );
    }

    #[test]
    fn only_hs256() {
        let s = store();
        let p = r#"{"iss":"APIkey","exp":1800000000}"#;
        let t = raw(r#"{"alg":"none","typ":"JWT"}"#, p, "");
        assert_eq!(
            s.verify(&t, NOW),
            Err(AuthError::UnsupportedAlgorithm("none".into()))
        );
        let err = s
            .verify(&raw(r#"{"alg":"RS256"}"#, p, "c2ln"), NOW)
            .expect_err("rs256");
        assert_eq!(
            err.to_string(),
            "invalid token: alg RS256 not allowed, only HS256"
        );
        let key = jsonwebtoken::EncodingKey::from_secret(b"secret");
        let hs512 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
        let t = jsonwebtoken::encode(&hs512, &join_claims("APIkey", "a", "r", NOW, 60), &key)
            .expect("encode");
        assert_eq!(
            s.verify(&t, NOW),
            Err(AuthError::UnsupportedAlgorithm("HS512".into()))
        );
        assert!(matches!(
            s.verify(&raw("{}", p, ""), NOW),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_is_rejected() {
        let s = store();
        assert_eq!(s.verify("", NOW), Err(AuthError::MissingToken));
        let good = sign(&join_claims("APIkey", "a", "r", NOW, 60), "secret").expect("sign");
        let bad = [
            "abc".to_owned(),
            "a.b".to_owned(),
            "a.b.c".to_owned(),
            "...".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{good}.x"),
            format!("{good}."),
            "!!!.???.###".to_owned(),
            raw("not json", "{}", "x"),
            raw(r#"{"alg":"HS256"}"#, "not json", "x"),
            raw(r#"{"alg":"HS256"}"#, r#"{"exp":"soon"}"#, "x"),
            raw(r#"{"alg":"HS256"}"#, "[1,2,3]", "x"),
            raw(r#"{"alg":7}"#, "{}", "x"),
        ];
        for t in &bad {
            assert!(
                matches!(s.verify(t, NOW), Err(AuthError::Malformed(_))),
                "{t}"
            );
        }
        for n in 0..good.len() {
            assert!(s.verify(&good[..n], NOW).is_err(), "truncated to {n}");
        }
        let huge = format!("{good}{}", "A".repeat(20 * 1024));
        let err = s.verify(&huge, NOW).expect_err("20 KiB");
        assert_eq!(
            err.to_string(),
            "invalid token: token is longer than 16384 bytes"
        );
    }

    #[test]
    fn mutations_never_pass_or_panic() {
        let s = store();
        let good = sign(&join_claims("APIkey", "a", "r", NOW, 60), "secret").expect("sign");
        let alphabet = b"AZaz09-_=.+/ \"{";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut bytes = good.clone().into_bytes();
            let i = (x % bytes.len() as u64) as usize;
            bytes[i] = alphabet[((x >> 32) % alphabet.len() as u64) as usize];
            let t = String::from_utf8(bytes).expect("ascii");
            if t != good {
                assert!(s.verify(&t, NOW).is_err(), "{t}");
            }
        }
    }
}
