//! Builds a join from the verified token and the `/rtc` query string.

use livekit_protocol as lk;

use crate::auth::Claims;
use crate::http::Request;
use crate::room::participant::source_numbers;
use crate::room::JoinParams;

/// LiveKit query booleans are `1`/`true`; anything else is false.
fn flag(req: &Request, name: &str, default: bool) -> bool {
    match req.query_param(name) {
        None => default,
        Some(v) => v == "1" || v.eq_ignore_ascii_case("true"),
    }
}

fn kind(name: &str) -> i32 {
    use lk::participant_info::Kind;
    match name.to_ascii_lowercase().as_str() {
        "ingress" => Kind::Ingress as i32,
        "egress" => Kind::Egress as i32,
        "sip" => Kind::Sip as i32,
        "agent" => Kind::Agent as i32,
        _ => Kind::Standard as i32,
    }
}

fn client_info(req: &Request) -> lk::ClientInfo {
    let text = |name: &str| req.query_param(name).unwrap_or_default().to_string();
    let number = |name: &str| {
        req.query_param(name)
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0)
    };
    let sdk = req
        .query_param("sdk")
        .map(|s| s.replace('-', "_").to_ascii_uppercase())
        .and_then(|s| lk::client_info::Sdk::from_str_name(&s))
        .unwrap_or(lk::client_info::Sdk::Unknown);
    lk::ClientInfo {
        sdk: sdk as i32,
        version: text("version"),
        protocol: number("protocol"),
        os: text("os"),
        os_version: text("os_version"),
        device_model: text("device_model"),
        browser: text("browser"),
        browser_version: text("browser_version"),
        network: text("network"),
        client_protocol: number("client_protocol"),
        ..Default::default()
    }
}

/// `/rtc/v1`: the same from the token, the rest from the JoinRequest (LiveKit ignores
/// the v0 query parameters there, and takes name, metadata and attributes only from
/// the token).
pub fn join_params_v1(claims: &Claims, req: &lk::JoinRequest, auto_create: bool) -> JoinParams {
    let settings = req.connection_settings.unwrap_or_default();
    JoinParams {
        auto_subscribe: settings.auto_subscribe,
        adaptive_stream: settings.adaptive_stream,
        client: req.client_info.clone().unwrap_or_default(),
        single_pc: true,
        add_tracks: req.add_track_requests.clone(),
        offer: req.publisher_offer.clone(),
        ..from_token(claims, auto_create)
    }
}

pub fn join_params(claims: &Claims, req: &Request, auto_create: bool) -> JoinParams {
    JoinParams {
        auto_subscribe: flag(req, "auto_subscribe", true),
        adaptive_stream: flag(req, "adaptive_stream", false),
        client: client_info(req),
        ..from_token(claims, auto_create)
    }
}

fn from_token(claims: &Claims, auto_create: bool) -> JoinParams {
    let grant = &claims.video;
    JoinParams {
        room: grant.room.clone(),
        identity: claims.identity().to_string(),
        name: claims.name.clone(),
        metadata: claims.metadata.clone(),
        attributes: claims.attributes.clone(),
        kind: kind(&claims.kind),
        permission: lk::ParticipantPermission {
            can_subscribe: grant.can_subscribe(),
            can_publish: grant.can_publish(),
            can_publish_data: grant.can_publish_data(),
            can_publish_sources: source_numbers(&grant.can_publish_sources),
            hidden: grant.hidden,
            can_update_metadata: grant.can_update_own_metadata(),
            ..Default::default()
        },
        auto_subscribe: true,
        auto_create,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::VideoGrant;
    use crate::http::{parse_request, Limits, Parsed};

    fn request(target: &str) -> Request {
        let raw = format!("GET {target} HTTP/1.1\r\n\r\n");
        match parse_request(raw.as_bytes(), &Limits::default()) {
            Ok(Parsed::Complete { request, .. }) => request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn query_and_grants_become_join_params() {
        let claims = Claims {
            sub: "alice".into(),
            name: "Alice".into(),
            kind: "agent".into(),
            video: VideoGrant {
                room_join: true,
                room: "r".into(),
                can_publish: Some(false),
                can_publish_sources: vec!["camera".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let req = request("/rtc?auto_subscribe=0&sdk=python&protocol=16&version=1.2.1");
        let p = join_params(&claims, &req, true);
        assert_eq!((p.room.as_str(), p.identity.as_str()), ("r", "alice"));
        assert!(!p.auto_subscribe);
        assert_eq!(p.kind, lk::participant_info::Kind::Agent as i32);
        assert!(!p.permission.can_publish);
        assert!(!p.permission.can_publish_data, "data follows canPublish");
        assert!(p.permission.can_subscribe);
        assert_eq!(
            p.permission.can_publish_sources,
            [lk::TrackSource::Camera as i32]
        );
        assert_eq!(p.client.sdk, lk::client_info::Sdk::Python as i32);
        assert_eq!(p.client.protocol, 16);
        let defaults = join_params(&claims, &request("/rtc?sdk=react-native"), false);
        assert!(defaults.auto_subscribe);
        assert_eq!(
            defaults.client.sdk,
            lk::client_info::Sdk::ReactNative as i32
        );
    }
}
