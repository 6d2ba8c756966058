//! Demultiplexing new flows: a STUN request that names one of our ufrags but is not
//! signed with our ICE password is dropped and leaves no address behind, so a
//! stranger cannot grow the address table.

use std::net::SocketAddr;

use livekit_protocol as lk;
use lk::signal_request::Message as Req;

use super::media::tests::stun;
use super::negotiation_tests::{client_offer, join, request, rooms};

/// A STUN binding request with USERNAME `ufrag:x` and no MESSAGE-INTEGRITY.
fn forged_binding_request(ufrag: &str) -> Vec<u8> {
    stun(format!("{ufrag}:x").as_bytes())
}

#[test]
fn a_forged_request_naming_our_ufrag_leaves_no_address() {
    let t0 = crate::clock::now().mono;
    let mut rooms = rooms();
    let mut out = Vec::new();
    rooms.join(1, &join("pub"), t0, 0, &mut out).unwrap();
    let offer = lk::SessionDescription {
        r#type: "offer".into(),
        sdp: client_offer("cam-1"),
        id: 1,
        ..Default::default()
    };
    rooms.signal(1, request(Req::Offer(offer)), t0, &mut out);
    let ufrags = rooms.parts.demux.ufrags();
    assert!(!ufrags.is_empty(), "the publisher PC registered its ufrag");
    let server: SocketAddr = "10.0.0.2:7882".parse().unwrap();
    let mut transmits = Vec::new();
    for (i, ufrag) in ufrags.iter().enumerate() {
        for port in 0..50u16 {
            let from: SocketAddr = format!("10.9.{i}.1:{}", 10_000 + port).parse().unwrap();
            let known = rooms.handle_datagram(
                t0,
                from,
                server,
                &forged_binding_request(ufrag),
                &mut transmits,
                &mut out,
            );
            assert!(!known, "a forged request is not a known flow");
        }
    }
    assert!(
        rooms.parts.demux.flows() == 0,
        "{} addresses kept",
        rooms.parts.demux.flows()
    );
    assert!(transmits.is_empty(), "nothing is answered");
    assert_eq!(
        rooms.counters.dropped_unknown_flow,
        50 * ufrags.len() as u64
    );
}
