//! The embedded TURN server's credentials, LiveKit's scheme: nothing is stored. A
//! participant is given username = enc(`apiKey|participantSid|expiry`) and password =
//! enc(sha256(`secret|participantSid|expiry`)); the server recomputes the password from
//! the username with the named key's secret when the client allocates. LiveKit encodes
//! with jxskiss/base62; corelay uses URL-safe base64 (clients only pass the strings
//! through, and only this server reads them).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::auth::KeyStore;

/// The embedded TURN server as participants are told of it: its URLs, and the key its
/// stateless credentials are derived with ([`issue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedTurn {
    pub urls: Vec<String>,
    pub api_key: String,
    pub secret: String,
    /// Credential lifetime (`turn.ttl_seconds`; 0: the default).
    pub ttl_secs: u64,
}

/// The realm the server challenges with (LiveKit's).
pub const REALM: &str = "livekit";

/// Credentials for participant `sid`, valid until `now_unix + ttl_secs`.
pub fn issue(
    api_key: &str,
    secret: &str,
    sid: &str,
    now_unix: u64,
    ttl_secs: u64,
) -> (String, String) {
    let expiry = now_unix.saturating_add(ttl_secs);
    let username = URL_SAFE_NO_PAD.encode(format!("{api_key}|{sid}|{expiry}"));
    (username, password(secret, sid, expiry))
}

fn password(secret: &str, sid: &str, expiry: u64) -> String {
    let sum = Sha256::digest(format!("{secret}|{sid}|{expiry}").as_bytes());
    URL_SAFE_NO_PAD.encode(sum)
}

/// Why a username does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not one of ours, or naming a key this node does not have.
    Unknown,
    Expired,
}

/// The password for `username`, if it names a known key and has not expired.
pub fn password_for(username: &str, keys: &KeyStore, now_unix: u64) -> Result<String, Invalid> {
    if username.len() > 512 {
        return Err(Invalid::Unknown);
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(username)
        .map_err(|_| Invalid::Unknown)?;
    let text = std::str::from_utf8(&decoded).map_err(|_| Invalid::Unknown)?;
    let parts: Vec<&str> = text.split('|').collect();
    let [key, sid, expiry] = parts[..] else {
        return Err(Invalid::Unknown);
    };
    let expiry: u64 = expiry.parse().map_err(|_| Invalid::Unknown)?;
    let secret = keys.secret(key).ok_or(Invalid::Unknown)?;
    if expiry == 0 || expiry < now_unix {
        return Err(Invalid::Expired);
    }
    Ok(password(secret, sid, expiry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeyStore {
        KeyStore::new([("devkey".to_string(), "secret".to_string())])
    }

    #[test]
    fn issued_credentials_verify_until_they_expire() {
        let (user, pass) = issue("devkey", "secret", "PA_x", 1000, 300);
        assert_eq!(password_for(&user, &keys(), 1000), Ok(pass.clone()));
        assert_eq!(password_for(&user, &keys(), 1300), Ok(pass));
        assert_eq!(password_for(&user, &keys(), 1301), Err(Invalid::Expired));
    }

    #[test]
    fn unknown_keys_and_garbage_are_refused() {
        let (user, _) = issue("otherkey", "s", "PA_x", 1000, 300);
        assert_eq!(password_for(&user, &keys(), 1000), Err(Invalid::Unknown));
        for bad in [
            "",
            "!!!",
            &"A".repeat(600),
            &URL_SAFE_NO_PAD.encode("devkey|PA|x"),
        ] {
            assert_eq!(
                password_for(bad, &keys(), 1000),
                Err(Invalid::Unknown),
                "{bad}"
            );
        }
        let extra = URL_SAFE_NO_PAD.encode("devkey|PA_x|2000|more");
        assert_eq!(password_for(&extra, &keys(), 1000), Err(Invalid::Unknown));
    }
}
