//! Join tokens: HS256 JWTs as LiveKit's server SDKs mint them. Signed here with
//! `jsonwebtoken` rather than through `corelay::auth`, so that the load generator does not
//! build the server (glommio etc.) and stays usable against any LiveKit-compatible SFU.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoGrant<'a> {
    room_join: bool,
    room: &'a str,
    can_publish: bool,
    can_subscribe: bool,
    can_publish_data: bool,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    name: &'a str,
    nbf: u64,
    exp: u64,
    video: VideoGrant<'a>,
}

pub fn join_token(
    api_key: &str,
    api_secret: &str,
    room: &str,
    identity: &str,
    ttl_secs: u64,
    can_publish: bool,
) -> Result<String, String> {
    let now = crate::clock::wall_us() / 1_000_000;
    let claims = Claims {
        iss: api_key,
        sub: identity,
        name: identity,
        nbf: now.saturating_sub(10),
        exp: now + ttl_secs,
        video: VideoGrant {
            room_join: true,
            room,
            can_publish,
            can_subscribe: true,
            can_publish_data: true,
        },
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(api_secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_has_the_claims() {
        let t = join_token("devkey", "secret", "r1", "alice", 60, false).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
        v.validate_aud = false;
        let d = jsonwebtoken::decode::<serde_json::Value>(
            &t,
            &jsonwebtoken::DecodingKey::from_secret(b"secret"),
            &v,
        )
        .unwrap();
        assert_eq!(d.claims["iss"], "devkey");
        assert_eq!(d.claims["sub"], "alice");
        assert_eq!(d.claims["video"]["roomJoin"], true);
        assert_eq!(d.claims["video"]["room"], "r1");
        assert_eq!(d.claims["video"]["canPublish"], false);
    }
}
