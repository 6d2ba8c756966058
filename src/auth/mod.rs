//! Access tokens: HS256 JWT verification and signing, LiveKit claims and grants.
