//! Errors from token extraction, verification and signing.
//!
//! `Display` is written for the body of an HTTP 401 and follows LiveKit's wording, so a
//! developer who switches servers sees familiar messages.

/// Why a request's access token was refused (or could not be signed).
///
/// Everything but [`AuthError::Signing`] is the client's fault and maps to HTTP 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum AuthError {
    /// Neither an `Authorization` header nor an `access_token` query value was given,
    /// or the token is empty.
    #[error("no authorization token provided")]
    MissingToken,
    /// An `Authorization` header without the case-sensitive `Bearer ` prefix.
    #[error("authorization header must be \"Bearer <token>\"")]
    MalformedAuthorization,
    /// The token is not a well-formed JWT (shape, base64, JSON, claim types, size).
    #[error("invalid token: {0}")]
    Malformed(String),
    /// `iss` names an API key this server does not know (sanitized, at most 64 chars).
    #[error("invalid token: unknown API key {0:?}")]
    UnknownKey(String),
    /// The HMAC does not match the secret of the key named by `iss`.
    #[error("invalid token: signature is invalid")]
    BadSignature,
    /// `exp` (plus leeway) is in the past.
    #[error("invalid token: token is expired")]
    Expired,
    /// `nbf` (minus leeway) is in the future.
    #[error("invalid token: token is not valid yet")]
    NotYetValid,
    /// The token has no `exp` claim; LiveKit requires one.
    #[error("invalid token: exp claim is required")]
    MissingExpiry,
    /// The header's `alg` is not HS256 (sanitized, at most 32 chars).
    #[error("invalid token: alg {0} not allowed, only HS256")]
    UnsupportedAlgorithm(String),
    /// Signing failed (server side, e.g. an empty secret).
    #[error("could not sign token: {0}")]
    Signing(String),
}

/// Makes attacker-controlled text safe to echo in an error body: keeps printable ASCII,
/// replaces everything else with `?`, and cuts it to `max` chars (marking the cut with `...`).
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_livekit() {
        assert_eq!(
            AuthError::Expired.to_string(),
            "invalid token: token is expired"
        );
        assert_eq!(
            AuthError::UnknownKey("abc".into()).to_string(),
            "invalid token: unknown API key \"abc\""
        );
        assert_eq!(
            AuthError::BadSignature.to_string(),
            "invalid token: signature is invalid"
        );
        assert_eq!(
            AuthError::MalformedAuthorization.to_string(),
            "authorization header must be \"Bearer <token>\""
        );
        assert_eq!(
            AuthError::MissingToken.to_string(),
            "no authorization token provided"
        );
        assert_eq!(
            AuthError::NotYetValid.to_string(),
            "invalid token: token is not valid yet"
        );
        assert_eq!(
            AuthError::UnsupportedAlgorithm("RS256".into()).to_string(),
            "invalid token: alg RS256 not allowed, only HS256"
        );
    }

    #[test]
    fn sanitize_bounds_and_escapes() {
        assert_eq!(sanitize("abc", 8), "abc");
        assert_eq!(sanitize("a\nb\u{e9}", 8), "a?b?");
        assert_eq!(sanitize("abcdefghij", 4), "abcd...");
        assert_eq!(sanitize("abcd", 4), "abcd");
    }
}
