//! The checks a join makes before the WebSocket upgrade, shared by `/rtc` and
//! `/rtc/validate`. Statuses and messages follow LiveKit's so SDKs report the same reasons.

use crate::auth::Claims;
use crate::config::LimitConfig;

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

/// What a join is checked against besides its token.
pub struct JoinContext<'a> {
    pub limits: &'a LimitConfig,
    pub room_exists: bool,
    pub auto_create: bool,
    /// Why the node takes no more joins (`limit.num_tracks`, `limit.bytes_per_sec`).
    pub node_full: Option<String>,
}

/// `0` is no limit, as in LiveKit.
fn over(len: usize, limit: u32) -> bool {
    limit > 0 && len > limit as usize
}

pub fn validate_join(claims: Option<&Claims>, ctx: &JoinContext) -> JoinCheck {
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
    let limits = ctx.limits;
    if over(
        claims.identity().len(),
        limits.max_participant_identity_length,
    ) {
        let max = limits.max_participant_identity_length;
        return refuse(
            400,
            &format!("participant identity length exceeds limits: max length {max}"),
        );
    }
    if over(claims.video.room.len(), limits.max_room_name_length) {
        let max = limits.max_room_name_length;
        return refuse(
            400,
            &format!("room name length exceeds limits: max length {max}"),
        );
    }
    if !ctx.room_exists && !ctx.auto_create {
        return refuse(404, "requested room does not exist");
    }
    if let Some(why) = &ctx.node_full {
        return refuse(
            503,
            &format!("node has exceeded its configured limit: {why}"),
        );
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
        let limits = LimitConfig::default();
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
            let ctx = JoinContext {
                limits: &limits,
                room_exists: *exists,
                auto_create: *auto,
                node_full: None,
            };
            assert_eq!(status(validate_join(*claims, &ctx)), *want, "case {i}");
        }
    }

    #[test]
    fn configured_limits_and_a_full_node() {
        let limits = LimitConfig {
            max_participant_identity_length: 5,
            max_room_name_length: 0,
            ..LimitConfig::default()
        };
        let mut ctx = JoinContext {
            limits: &limits,
            room_exists: true,
            auto_create: true,
            node_full: None,
        };
        let long_room = "r".repeat(1000);
        assert_eq!(
            status(validate_join(Some(&join("alice", &long_room)), &ctx)),
            200
        );
        assert_eq!(status(validate_join(Some(&join("alice6", "r")), &ctx)), 400);
        ctx.node_full = Some("track limit reached (10)".into());
        let full = validate_join(Some(&join("alice", "r")), &ctx);
        assert!(
            matches!(&full, JoinCheck::Refused { status: 503, message } if message.contains("limit")),
            "{full:?}"
        );
    }
}
