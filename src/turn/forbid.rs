//! Permissions towards denied peers are refused with 403 Forbidden (RFC 8656 §9.1),
//! as LiveKit's TURN server does, instead of being granted and their data dropped
//! later: the client then knows at once that the peer is out of reach. turn-server-proto
//! has no hook for a peer policy, so the request is answered here before the library
//! sees it, signed with the same long-term key the library would use (libwebrtc drops
//! an unsigned answer to a signed request).

use turn_server_proto::types::attribute::XorPeerAddress;
use turn_server_proto::types::message::{CHANNEL_BIND, CREATE_PERMISSION};
use turn_server_proto::types::stun::attribute::{AttributeFromRaw, ErrorCode, Username};
use turn_server_proto::types::stun::message::{
    LongTermKeyCredentials, Message, MessageClass, MessageIntegrityCredentials, MessageWrite,
    MessageWriteExt, MessageWriteVec,
};

use super::credentials::{password_for, REALM};
use super::peers::PeerPolicy;
use crate::auth::KeyStore;

/// The 403 answer to `msg` when it is an authenticated CreatePermission or
/// ChannelBind request naming a peer `policy` denies; `None` for anything else
/// (including requests whose credentials do not verify: the library answers those).
pub fn forbidden_reply(
    msg: &Message,
    policy: &PeerPolicy,
    keys: &KeyStore,
    now_unix: u64,
) -> Option<Vec<u8>> {
    if !msg.has_class(MessageClass::Request)
        || !(msg.method() == CREATE_PERMISSION || msg.method() == CHANNEL_BIND)
    {
        return None;
    }
    let denied = msg.iter_attributes().any(|(_, raw)| {
        XorPeerAddress::from_raw(raw)
            .is_ok_and(|a| !policy.allows(a.addr(msg.transaction_id()).ip()))
    });
    if !denied {
        return None;
    }
    let name = msg.attribute::<Username>().ok()?;
    let name = name.username();
    let password = password_for(name, keys, now_unix).ok()?;
    let credentials: MessageIntegrityCredentials =
        LongTermKeyCredentials::new(name.to_string(), password, REALM.to_string()).into();
    let algorithm = msg.validate_integrity(&credentials).ok()?;
    let error = ErrorCode::builder(ErrorCode::FORBIDDEN)
        .reason("Forbidden")
        .build()
        .ok()?;
    let mut reply = Message::builder_error(msg, MessageWriteVec::new());
    reply.add_attribute(&error).ok()?;
    reply.add_message_integrity(&credentials, algorithm).ok()?;
    reply.add_fingerprint().ok()?;
    Some(reply.finish())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use turn_server_proto::types::stun::message::{IntegrityAlgorithm, Method};

    use super::*;
    use crate::turn::credentials::issue;

    const SECRET: &str = "secret-secret-secret-secret-secret";

    /// `forbidden_reply` for raw bytes, as the TURN thread receives them.
    fn forbidden_reply(
        data: &[u8],
        policy: &PeerPolicy,
        keys: &KeyStore,
        now_unix: u64,
    ) -> Option<Vec<u8>> {
        let msg = Message::from_bytes(data).ok()?;
        super::forbidden_reply(&msg, policy, keys, now_unix)
    }

    fn keys() -> KeyStore {
        KeyStore::new([("devkey".to_string(), SECRET.to_string())])
    }

    fn user() -> (String, String) {
        issue("devkey", SECRET, "PA_x", 1000, 3600)
    }

    fn request(method: Method, peer: &str, user: &str, password: &str) -> Vec<u8> {
        let mut m = Message::builder_request(method, MessageWriteVec::new());
        let peer: SocketAddr = peer.parse().expect("address");
        let tid = m.transaction_id();
        m.add_attribute(&XorPeerAddress::new(peer, tid))
            .expect("peer");
        m.add_attribute(&Username::new(user).expect("name"))
            .expect("user");
        let creds: MessageIntegrityCredentials =
            LongTermKeyCredentials::new(user.into(), password.into(), REALM.into()).into();
        m.add_message_integrity(&creds, IntegrityAlgorithm::Sha1)
            .expect("integrity");
        m.finish()
    }

    #[test]
    fn a_denied_peer_gets_a_signed_403() {
        let (name, password) = user();
        let policy = PeerPolicy::default();
        for (method, peer) in [
            (CREATE_PERMISSION, "10.1.2.3:5000"),
            (CHANNEL_BIND, "127.0.0.1:5000"),
        ] {
            let data = request(method, peer, &name, &password);
            let reply = forbidden_reply(&data, &policy, &keys(), 1000).expect("refused");
            let reply = Message::from_bytes(&reply).expect("a STUN message");
            assert!(reply.has_class(MessageClass::Error));
            assert_eq!(reply.method(), method);
            assert_eq!(reply.attribute::<ErrorCode>().expect("code").code(), 403);
            let creds: MessageIntegrityCredentials =
                LongTermKeyCredentials::new(name.clone(), password.clone(), REALM.into()).into();
            assert!(reply.validate_integrity(&creds).is_ok());
        }
    }

    #[test]
    fn allowed_peers_and_unverified_requests_go_to_the_library() {
        let (name, password) = user();
        let policy = PeerPolicy {
            own: vec!["10.1.2.3".parse().expect("ip")],
        };
        let own = request(CREATE_PERMISSION, "10.1.2.3:5000", &name, &password);
        assert!(forbidden_reply(&own, &policy, &keys(), 1000).is_none());
        let public = request(CREATE_PERMISSION, "8.8.8.8:5000", &name, &password);
        assert!(forbidden_reply(&public, &policy, &keys(), 1000).is_none());
        let wrong = request(
            CREATE_PERMISSION,
            "127.0.0.1:5000",
            &name,
            "not-the-password",
        );
        assert!(forbidden_reply(&wrong, &policy, &keys(), 1000).is_none());
        let expired = request(CREATE_PERMISSION, "127.0.0.1:5000", &name, &password);
        assert!(forbidden_reply(&expired, &policy, &keys(), 999_999).is_none());
        assert!(forbidden_reply(b"garbage", &policy, &keys(), 1000).is_none());
    }
}
