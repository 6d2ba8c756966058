//! The checks a join makes before the WebSocket upgrade, shared by `/rtc` and
//! `/rtc/validate`. Statuses and messages follow LiveKit's so SDKs report the same reasons.

use crate::auth::Claims;

/// LiveKit bounds identities and room names at 256 characters.
const MAX_NAME: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinCheck {
    Ok,
    Refused { status: u16, message: String },
}

fn refuse(status: u16, message: &str) -> JoinCheck {
    JoinCheck::Refused {
        status,
        message: message.to_string(),
    }
}

pub fn validate_join(claims: Option<&Claims>, room_exists: bool, auto_create: bool) -> JoinCheck {
    let Some(claims) = claims else {
        return refuse(401, "permissions denied: no access token");
    };
    if !claims.video.room_join {
        return refuse(401, "permissions denied: token has no roomJoin grant");
    }
    if claims.identity().is_empty() {
        return refuse(400, "identity cannot be empty");
    }
    if claims.video.room.is_empty() {
        return refuse(400, "no room name");
    }
    if claims.identity().len() > MAX_NAME {
        return refuse(400, "participant identity length exceeds limits");
    }
    if claims.video.room.len() > MAX_NAME {
        return refuse(400, "room name length exceeds limits");
    }
    if !room_exists && !auto_create {
        return refuse(404, "requested room does not exist");
    }
    JoinCheck::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::VideoGrant;

    fn join(identity: &str, room: &str) -> Claims {
        Claims {
            sub: identity.into(),
            video: VideoGrant {
                room_join: true,
                room: room.into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn status(check: JoinCheck) -> u16 {
        match check {
            JoinCheck::Ok => 200,
            JoinCheck::Refused { status, .. } => status,
        }
    }

    #[test]
    fn statuses() {
        let ok = join("alice", "r");
        let mut no_grant = ok.clone();
        no_grant.video.room_join = false;
        let long = "x".repeat(257);
        let cases: &[(Option<&Claims>, bool, bool, u16)] = &[
            (Some(&ok), false, true, 200),
            (Some(&ok), true, false, 200),
            (Some(&ok), false, false, 404),
            (None, true, true, 401),
            (Some(&no_grant), true, true, 401),
            (Some(&join("", "r")), true, true, 400),
            (Some(&join("a", "")), true, true, 400),
            (Some(&join(&long, "r")), true, true, 400),
            (Some(&join("a", &long)), true, true, 400),
        ];
        for (i, (claims, exists, auto, want)) in cases.iter().enumerate() {
            assert_eq!(
                status(validate_join(*claims, *exists, *auto)),
                *want,
                "case {i}"
            );
        }
    }
}
