//! HS256 verification against the configured API keys, with time as an argument.

use std::collections::HashMap;
use std::fmt;

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::error::sanitize;
use super::{AuthError, Claims, LEEWAY_SECS};

/// Longest token accepted; anything longer is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// base64url; like go-jose, tolerate (but do not require) `=` padding.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
}

#[derive(Clone)]
struct Entry {
    api_key: String,
    secret: String,
    key: DecodingKey,
}

/// API key → secret, with each key's HMAC [`DecodingKey`] built once.
#[derive(Clone, Default)]
pub struct KeyStore {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.entries.iter().map(|e| e.api_key.as_str()).collect();
        f.debug_struct("KeyStore")
            .field("api_keys", &keys)
            .field("secrets", &"[redacted]")
            .finish()
    }
}

impl KeyStore {
    /// Builds the store; order is kept for [`KeyStore::first`], and a repeated key keeps
    /// its first position but takes the later secret.
    pub fn new(keys: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut store = KeyStore::default();
        for (api_key, secret) in keys {
            let entry = Entry {
                key: DecodingKey::from_secret(secret.as_bytes()),
                api_key: api_key.clone(),
                secret,
            };
            match store.index.get(&api_key) {
                Some(&i) => store.entries[i] = entry,
                None => {
                    store.index.insert(api_key, store.entries.len());
                    store.entries.push(entry);
                }
            }
        }
        store
    }

    /// The secret for `api_key`.
    pub fn secret(&self, api_key: &str) -> Option<&str> {
        self.entry(api_key).map(|e| e.secret.as_str())
    }

    /// The first configured `(api_key, secret)`, used by `create-join-token`.
    pub fn first(&self) -> Option<(&str, &str)> {
        self.entries
            .first()
            .map(|e| (e.api_key.as_str(), e.secret.as_str()))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn entry(&self, api_key: &str) -> Option<&Entry> {
        self.index.get(api_key).map(|&i| &self.entries[i])
    }

    /// Verifies an HS256 token at time `now_unix` (seconds): shape and size, `alg`, the key
    /// named by `iss`, the signature, then `exp` (required) and `nbf` with
    /// [`LEEWAY_SECS`] of leeway. Never reads the clock.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, AuthError> {
        let (claims, message, signature) = decode_unverified(token)?;
        let entry = self
            .entry(&claims.iss)
            .ok_or_else(|| AuthError::UnknownKey(sanitize(&claims.iss, 64)))?;
        let signature = signature.trim_end_matches('=');
        match jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &entry.key,
            Algorithm::HS256,
        ) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Err(AuthError::BadSignature),
        }
        check_times(&claims, now_unix)?;
        Ok(claims)
    }
}

fn malformed(what: impl fmt::Display) -> AuthError {
    AuthError::Malformed(sanitize(&what.to_string(), 200))
}

/// Splits and decodes a token without checking its signature: returns the claims, the
/// signing input (`header.payload`) and the encoded signature.
fn decode_unverified(token: &str) -> Result<(Claims, &str, &str), AuthError> {
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed(format_args!(
            "token is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("token must have three dot-separated parts"));
    };
    let header = B64URL
        .decode(header)
        .map_err(|_| malformed("header is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&header)
        .map_err(|e| malformed(format_args!("header is not valid JSON: {e}")))?;
    if header.alg != "HS256" {
        return Err(AuthError::UnsupportedAlgorithm(sanitize(&header.alg, 32)));
    }
    let payload = B64URL
        .decode(payload)
        .map_err(|_| malformed("payload is not base64url"))?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|e| malformed(format_args!("claims are not valid: {e}")))?;
    let message = &token[..token.len() - signature.len() - 1];
    Ok((claims, message, signature))
}

/// go-jose semantics: expired once `now >= exp + leeway`; not valid while `now + leeway < nbf`.
fn check_times(claims: &Claims, now: u64) -> Result<(), AuthError> {
    if claims.exp == 0 {
        return Err(AuthError::MissingExpiry);
    }
    if now >= claims.exp.saturating_add(LEEWAY_SECS) {
        return Err(AuthError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| now.saturating_add(LEEWAY_SECS) < nbf)
    {
        return Err(AuthError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{join_claims, sign};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{json, Value};

    const NOW: u64 = 1_700_000_000;

    fn store() -> KeyStore {
        KeyStore::new([
            ("APIkey".to_owned(), "secret".to_owned()),
            ("other".to_owned(), "othersecret".to_owned()),
        ])
    }

    /// Signs a hand-written payload, as an SDK would (optionally without `typ`).
    fn hand(payload: Value, secret: &str, alg: Algorithm, typ: bool) -> String {
        let mut header = Header::new(alg);
        if !typ {
            header.typ = None;
        }
        jsonwebtoken::encode(
            &header,
            &payload,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    fn hs(payload: Value) -> String {
        hand(payload, "secret", Algorithm::HS256, true)
    }

    fn exp_at(exp: Value) -> Value {
        json!({"iss": "APIkey", "sub": "a", "exp": exp})
    }

    #[test]
    fn round_trip() {
        let claims = join_claims("APIkey", "alice", "room1", NOW, 3600);
        let token = sign(&claims, "secret").expect("sign");
        assert_eq!(store().verify(&token, NOW), Ok(claims));
    }

    #[test]
    fn python_sdk_join_token() {
        let token = hs(json!({
            "sub": "", "iss": "APIkey", "nbf": NOW, "exp": NOW + 21600, "name": "Bob",
            "kind": "standard", "metadata": "", "attributes": {},
            "video": {"roomJoin": true, "room": "r", "canPublish": true, "canSubscribe": true,
                      "canPublishData": true}
        }));
        let c = store().verify(&token, NOW).expect("verify");
        assert_eq!((c.identity(), c.name.as_str()), ("", "Bob"));
        assert!(c.video.room_join && c.video.can_publish_data());
        assert_eq!(c.video.room, "r");
    }

    #[test]
    fn node_sdk_service_token() {
        let payload =
            json!({"iss": "other", "nbf": 0, "exp": NOW + 600, "video": {"roomCreate": true}});
        let token = hand(payload, "othersecret", Algorithm::HS256, false);
        let c = store().verify(&token, NOW).expect("verify");
        assert!(c.video.room_create && !c.video.room_join);
        assert_eq!((c.identity(), c.nbf), ("", Some(0)));
    }

    #[test]
    fn expiry_and_leeway() {
        let s = store();
        assert!(s.verify(&hs(exp_at(json!(NOW - 59))), NOW).is_ok());
        assert!(s.verify(&hs(exp_at(json!(NOW - 1))), NOW).is_ok());
        assert_eq!(
            s.verify(&hs(exp_at(json!(NOW - 60))), NOW),
            Err(AuthError::Expired)
        );
        assert_eq!(
            s.verify(&hs(exp_at(json!(NOW - 3600))), NOW),
            Err(AuthError::Expired)
        );
        assert!(s.verify(&hs(exp_at(json!(1e300))), NOW).is_ok());
        let t = hs(json!({"iss": "APIkey", "sub": "a"}));
        assert_eq!(s.verify(&t, NOW), Err(AuthError::MissingExpiry));
        assert_eq!(
            s.verify(&hs(exp_at(Value::Null)), NOW),
            Err(AuthError::MissingExpiry)
        );
    }

    #[test]
    fn not_before_and_leeway() {
        let s = store();
        let at = |nbf: u64| hs(json!({"iss": "APIkey", "exp": NOW + 600, "nbf": nbf}));
        assert!(s.verify(&at(NOW + 60), NOW).is_ok());
        assert_eq!(s.verify(&at(NOW + 61), NOW), Err(AuthError::NotYetValid));
        assert_eq!(s.verify(&at(u64::MAX), NOW), Err(AuthError::NotYetValid));
    }

    #[test]
    fn wrong_key_or_signature() {
        let s = store();
        let claims = join_claims("APIkey", "a", "r", NOW, 60);
        let t = sign(&claims, "not-the-secret").expect("sign");
        assert_eq!(s.verify(&t, NOW), Err(AuthError::BadSignature));
        let t = sign(&join_claims("nobody", "a", "r", NOW, 60), "secret").expect("sign");
        let err = s.verify(&t, NOW).expect_err("unknown key");
        assert_eq!(err, AuthError::UnknownKey("nobody".into()));
        assert_eq!(err.to_string(), "invalid token: unknown API key \"nobody\"");
        let t = hs(json!({"exp": NOW}));
        assert_eq!(s.verify(&t, NOW), Err(AuthError::UnknownKey(String::new())));
        // A payload swapped under a valid signature.
        let good = sign(&claims, "secret").expect("sign");
        let other = sign(&join_claims("APIkey", "a", "admin", NOW, 60), "secret").expect("sign");
        let (g, o): (Vec<&str>, Vec<&str>) =
            (good.split('.').collect(), other.split('.').collect());
        let forged = format!("{}.{}.{}", g[0], o[1], g[2]);
        assert_eq!(s.verify(&forged, NOW), Err(AuthError::BadSignature));
        let t = format!("{}.{}.", g[0], g[1]);
        assert_eq!(s.verify(&t, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn key_store() {
        let s = KeyStore::new([
            ("k1".to_owned(), "s1".to_owned()),
            ("k2".to_owned(), "s2".to_owned()),
            ("k1".to_owned(), "s1b".to_owned()),
        ]);
        assert_eq!((s.len(), s.first()), (2, Some(("k1", "s1b"))));
        assert_eq!((s.secret("k2"), s.secret("k3")), (Some("s2"), None));
        assert!(!format!("{s:?}").contains("s1b"));
        let empty = KeyStore::new([]);
        assert!(empty.is_empty() && empty.first().is_none());
        let t = sign(&join_claims("k1", "a", "r", NOW, 60), "s1b").expect("sign");
        assert!(s.verify(&t, NOW).is_ok());
        assert_eq!(
            empty.verify(&t, NOW),
            Err(AuthError::UnknownKey("k1".into()))
        );
    }
}
