//! UDP datagrams on the shard's socket: the STUN USERNAME reader that routes new flows,
//! and the demultiplexer as a whole (`Rooms::handle_datagram`) with one live session.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Instant;

use corelay::rtc::fuzzing::{two_joined, SERVER};
use corelay::rtc::media::stun_ufrag;
use corelay::rtc::room::Rooms;
use livekit_protocol as lk;

/// A real publisher offer, so that the demultiplexer has a ufrag to route to.
const OFFER: &str = include_str!("../../corpus/sdp/str0m-vp8-h264-vp9-av1.sdp");

pub fn stun(data: &[u8]) {
    let _ = stun_ufrag(data);
}

thread_local! {
    /// Built once: a session costs a DTLS certificate. Nothing a forged datagram does
    /// changes it (see `demux_tests`), which keeps runs repeatable.
    static ROOMS: RefCell<(Rooms, Instant)> = RefCell::new(publishing());
}

fn publishing() -> (Rooms, Instant) {
    let now = corelay::clock::mono();
    let mut rooms = two_joined(now);
    let offer = lk::SessionDescription {
        r#type: "offer".into(),
        sdp: OFFER.into(),
        id: 1,
        ..Default::default()
    };
    let request = lk::SignalRequest {
        message: Some(lk::signal_request::Message::Offer(offer)),
    };
    rooms.signal(1, request, now, &mut Vec::new());
    (rooms, now)
}

pub fn demux(data: &[u8]) {
    let from: SocketAddr = "10.9.0.1:40000".parse().expect("a socket address");
    let server: SocketAddr = SERVER.parse().expect("a socket address");
    ROOMS.with_borrow_mut(|(rooms, now)| {
        let (mut transmits, mut out) = (Vec::new(), Vec::new());
        rooms.handle_datagram(*now, from, server, data, &mut transmits, &mut out);
    });
}
