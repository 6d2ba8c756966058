//! The routes of forwarded packets (`tx_routes`), kept per m-line and codec until the
//! next negotiation: each m-line's packets reach its own stream across
//! renegotiations, and a codec an m-line did not negotiate stays refused without
//! spoiling the route of one it did.

use std::sync::Arc;

use str0m::format::Codec;
use str0m::media::MediaKind;

use super::harness::*;
use super::SessionError;

#[test]
fn routes_follow_renegotiation() {
    let (mut pair, _) = subscriber();
    let first = pair.server.send_track_mid("TR_def").unwrap();
    // The first track's route is found and kept.
    let a = server_write_video(&mut pair, first, 5, 10);
    assert_eq!(client_rtp(&mut pair, first).len(), a.len());

    // A second track comes with a renegotiation; both routes work after it.
    pair.server
        .add_send_track(MediaKind::Video, "PA_abc|TR_two", "TR_two")
        .unwrap();
    pair.server_offer();
    let second = pair.server.send_track_mid("TR_two").unwrap();
    let b = server_write_video(&mut pair, second, 5, 500);
    let a2 = server_write_video(&mut pair, first, 5, 15);
    let got_b = client_payloads(&mut pair, second);
    assert_eq!(got_b, b);
    let got_a = client_payloads(&mut pair, first);
    assert_eq!(got_a, [a, a2].concat());

    // The first track goes and comes back on its parked line (the BUNDLE tag is made
    // inactive, not stopped): media written after that still reaches the client.
    pair.server.remove_send_track("TR_def").unwrap();
    pair.server_offer();
    pair.server
        .add_send_track(MediaKind::Video, "PA_abc|TR_def", "TR_def")
        .unwrap();
    pair.server_offer();
    assert_eq!(pair.server.send_track_mid("TR_def"), Some(first));
    let a3 = server_write_video(&mut pair, first, 5, 2000);
    let got_a = client_payloads(&mut pair, first);
    assert!(got_a.ends_with(&a3), "media flows on the reactivated line");
}

#[test]
fn a_refused_codec_does_not_spoil_the_route() {
    let (mut pair, _) = subscriber();
    let video = pair.server.send_track_mid("TR_def").unwrap();
    // VP8's route on the video line is found and kept ...
    let before = server_write_video(&mut pair, video, 4, 30);
    // ... and Opus on the same line is still refused (routes are per codec), every
    // time (a refusal is not kept) ...
    let opus = pair.server.payload_type_for(Codec::Opus).unwrap();
    let now = pair.now;
    for _ in 0..2 {
        let e = (pair.server).write_rtp(video, opus, (1, 0, false), Arc::from(&[1u8][..]), now);
        assert!(
            matches!(e, Err(SessionError::CodecNotNegotiated { .. })),
            "{e:?}"
        );
    }
    assert!(
        !pair.server.takes_red(video, opus),
        "no RED on a video line"
    );
    // ... without spoiling VP8's.
    let after = server_write_video(&mut pair, video, 4, 34);
    let got = client_payloads(&mut pair, video);
    assert_eq!(got, [before, after].concat());
}

#[test]
fn routes_stay_few_whatever_the_publishers_send() {
    // Publishers that renegotiate again and again bring ever new payload type numbers
    // for the same codec; the subscriber's routes are bounded all the same.
    let (mut pair, _) = subscriber();
    let video = pair.server.send_track_mid("TR_def").unwrap();
    let vp8 = pair.server.payload_type_for(Codec::Vp8).unwrap();
    let now = pair.now;
    for (i, number) in (0..200u64).zip((0u8..=127).cycle()) {
        let mut pt = vp8;
        pt.pt = number;
        let _ = (pair.server).write_rtp(video, pt, (i, 0, true), vp8_payload(0).into(), now);
        assert!(pair.server.tx_routes.len() <= 64);
    }
    // And packets still go out.
    let written = server_write_video(&mut pair, video, 3, 1000);
    let got = client_payloads(&mut pair, video);
    assert!(got.ends_with(&written));
}
