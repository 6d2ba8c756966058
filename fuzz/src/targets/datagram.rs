//! UDP datagrams on the shard's socket: the STUN USERNAME reader that routes new flows,
//! the demultiplexer as a whole (`Rooms::handle_datagram`) with one live session, and
//! ICE/TCP streams through the RFC 4571 deframer into the same demultiplexer.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Instant;

use corelay::net::framing::Deframer;
use corelay::room::fuzzing::{two_joined, SERVER};
use corelay::room::media::stun_ufrag;
use corelay::room::rooms::Rooms;
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

/// An ICE/TCP byte stream: the first byte sets the read size, the rest arrives in reads
/// of that size through the RFC 4571 deframer, and every whole frame goes through the
/// demultiplexer as a TCP packet, as `shard::tcp_io` does until a frame is refused.
pub fn tcp_stream(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let from: SocketAddr = "10.9.0.1:40001".parse().expect("a socket address");
    let server: SocketAddr = SERVER.parse().expect("a socket address");
    let mut deframer = Deframer::default();
    ROOMS.with_borrow_mut(|(rooms, now)| {
        for piece in stream.chunks(chunk) {
            let space = deframer.space();
            let n = piece.len().min(space.len());
            space[..n].copy_from_slice(&piece[..n]);
            deframer.filled(n);
            loop {
                match deframer.next_frame() {
                    Ok(Some(frame)) => {
                        let (mut transmits, mut out) = (Vec::new(), Vec::new());
                        if !rooms.handle_tcp_frame(
                            *now,
                            from,
                            server,
                            frame,
                            &mut transmits,
                            &mut out,
                        ) {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
        }
    });
}

/// The embedded TURN server's own decoding: a TLS/TCP stream cut into TURN frames, and
/// a username checked as credentials (base64 of `key|sid|expiry`).
pub fn turn(data: &[u8]) {
    let mut at = 0;
    while let Ok(Some((len, consumed))) = corelay::turn::next_frame(&data[at..]) {
        assert!(len <= consumed && at + consumed <= data.len());
        at += consumed;
    }
    let keys = corelay::auth::KeyStore::new([("devkey".to_string(), "secret".to_string())]);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = corelay::turn::credentials::password_for(text, &keys, 1_000);
    }
}

thread_local! {
    /// Made-up AES-256-GCM keys: a forged packet fails authentication, but every length
    /// check before it runs on the input.
    static SRTCP: RefCell<corelay::session::SrtcpReceiver> = RefCell::new(
        corelay::session::SrtcpReceiver::new(&corelay::session::SrtpKeys::new(
            vec![7; 88],
            corelay::session::SrtpProfile::AEAD_AES_256_GCM,
            false,
        ))
        .expect("AES-256-GCM"),
    );
}

/// A subscriber's SRTCP as our own egress would read it: opened, then its feedback.
pub fn rtcp(data: &[u8]) {
    let mut plain = Vec::new();
    SRTCP.with(|r| {
        let _ = r.borrow_mut().unprotect(data, &mut plain);
    });
    let _ = corelay::session::read_feedback(data, |_| {});
}
