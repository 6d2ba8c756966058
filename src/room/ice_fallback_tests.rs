//! `rtc.allow_tcp_fallback` through the rooms: a peer connection that does not come up
//! while the signal connection is alive steers the participant's next join to ICE/TCP
//! only, and a failure there to TURN/TLS only, with `force_relay`.

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::ice_fallback::CONNECT_TIMEOUT;
use super::ice_servers::IceServerConfig;
use super::negotiation_tests::{join, messages_for, rooms};
use super::rooms::Rooms;
use crate::turn::credentials::EmbeddedTurn;

const TCP: &str = "127.0.0.1:7881";

fn steering_rooms() -> Rooms {
    let mut rooms = rooms();
    rooms.set_tcp_candidates(vec![TCP.parse().expect("address")]);
    rooms.set_ice_servers(IceServerConfig {
        embedded: Some(EmbeddedTurn {
            urls: vec![
                "turn:127.0.0.1:3478?transport=udp".into(),
                "turns:turn.example.com:5349?transport=tcp".into(),
            ],
            api_key: "devkey".into(),
            secret: "secret".into(),
            ttl_secs: 0,
        }),
        ..Default::default()
    });
    rooms
}

/// Alice joins on `conn` at `now`: her JoinResponse, and the candidate lines of the
/// subscriber offer she is sent.
fn join_alice(rooms: &mut Rooms, conn: u64, now: Instant) -> (lk::JoinResponse, Vec<String>) {
    let mut out = Vec::new();
    let response = rooms
        .join(conn, &join("alice"), now, 0, &mut out)
        .expect("joined");
    let candidates = messages_for(&out, conn)
        .into_iter()
        .filter_map(|m| match m {
            Resp::Offer(o) => Some(o.sdp),
            _ => None,
        })
        .flat_map(|sdp| {
            sdp.lines()
                .filter(|l| l.starts_with("a=candidate"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    (response, candidates)
}

fn only_tcp(candidates: &[String]) -> bool {
    !candidates.is_empty()
        && candidates
            .iter()
            .all(|c| c.contains(" tcp ") || c.contains(" TCP "))
}

#[test]
fn udp_failure_steers_to_tcp_and_a_tcp_failure_to_turn_tls() {
    let t0 = crate::clock::now().mono;
    let mut rooms = steering_rooms();
    let (first, candidates) = join_alice(&mut rooms, 1, t0);
    assert!(first.client_configuration.is_none());
    assert!(
        !only_tcp(&candidates),
        "UDP and TCP at first: {candidates:?}"
    );

    // Her subscriber PC never connects while her signal connection is up.
    rooms.expire_departed(
        t0 + CONNECT_TIMEOUT - Duration::from_millis(1),
        &mut Vec::new(),
    );
    let (_, candidates) = join_alice(&mut rooms, 2, t0 + Duration::from_secs(1));
    assert!(!only_tcp(&candidates), "not steered before the timeout");

    let t1 = t0 + Duration::from_secs(20);
    rooms.expire_departed(t1, &mut Vec::new());
    let (second, candidates) = join_alice(&mut rooms, 3, t1);
    assert!(only_tcp(&candidates), "steered to ICE/TCP: {candidates:?}");
    assert!(second.client_configuration.is_none());

    // Over TCP it fails too: TURN/TLS only, and the client must relay.
    let t2 = t1 + CONNECT_TIMEOUT;
    rooms.expire_departed(t2, &mut Vec::new());
    let (third, _) = join_alice(&mut rooms, 4, t2);
    let config = third.client_configuration.expect("a client configuration");
    assert_eq!(config.force_relay, lk::ClientConfigSetting::Enabled as i32);
    let urls: Vec<&String> = third.ice_servers.iter().flat_map(|s| &s.urls).collect();
    assert_eq!(urls, ["turns:turn.example.com:5349?transport=tcp"]);
    assert!(third.ice_servers.iter().all(|s| !s.username.is_empty()));
}

#[test]
fn no_steering_when_the_signal_is_down_or_fallback_is_off() {
    let t0 = crate::clock::now().mono;
    let mut rooms = steering_rooms();
    join_alice(&mut rooms, 1, t0);
    rooms.signal_lost(1, t0, &mut Vec::new());
    rooms.expire_departed(t0 + CONNECT_TIMEOUT, &mut Vec::new());
    let (_, candidates) = join_alice(&mut rooms, 2, t0 + CONNECT_TIMEOUT);
    assert!(
        !only_tcp(&candidates),
        "the signal was down: {candidates:?}"
    );

    let mut rooms = steering_rooms();
    rooms.set_tcp_fallback(false);
    join_alice(&mut rooms, 1, t0);
    rooms.expire_departed(t0 + CONNECT_TIMEOUT, &mut Vec::new());
    let (_, candidates) = join_alice(&mut rooms, 2, t0 + CONNECT_TIMEOUT);
    assert!(!only_tcp(&candidates), "allow_tcp_fallback: false");
}
