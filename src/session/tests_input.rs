//! Hostile and odd input: SDP, answers out of turn, trickle JSON, random datagrams.

use std::time::Duration;

use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind};
use str0m::Rtc;

use super::harness::*;
use super::{PeerRole, PeerSession, SessionError};

fn session(role: PeerRole) -> PeerSession {
    PeerSession::new(role, &[addr("10.0.0.2:7882")], crate::clock::now().mono).unwrap()
}

/// A real browser-like offer from a str0m client, as a string.
fn client_offer_sdp() -> String {
    let now = crate::clock::now().mono;
    let mut client = Rtc::builder().set_rtp_mode(true).build(now);
    let mut api = client.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    api.apply().unwrap().0.to_sdp_string()
}

#[test]
fn bad_sdp_is_an_error() {
    let mut s = session(PeerRole::Publisher);
    for bad in [
        "",
        "garbage",
        "v=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio x\r\n",
    ] {
        assert!(s.accept_offer(bad).is_err(), "{bad:?}");
    }
    let huge = "v=0\r\n".to_string() + &"a=x\r\n".repeat(100_000);
    assert!(matches!(s.accept_offer(&huge), Err(SessionError::Sdp(_))));
    // Roles are enforced.
    assert!(matches!(s.create_offer(), Err(SessionError::WrongRole(_))));
    assert!(matches!(
        s.add_send_track(MediaKind::Audio, "a", "b"),
        Err(SessionError::WrongRole(_))
    ));
    let mut sub = session(PeerRole::Subscriber);
    assert!(matches!(
        sub.accept_offer(&client_offer_sdp()),
        Err(SessionError::WrongRole(_))
    ));
}

/// `sdp` with its video m-line offering only a codec no server has.
fn with_unknown_video_codec(sdp: &str) -> String {
    let mut out = String::new();
    let (mut in_video, mut replaced) = (false, false);
    for line in sdp.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
            if in_video {
                out.push_str("m=video 9 UDP/TLS/RTP/SAVPF 120\r\n");
                continue;
            }
        }
        let codec_line = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]
            .iter()
            .any(|p| line.starts_with(p));
        if in_video && codec_line {
            if !replaced {
                out.push_str("a=rtpmap:120 FOOCODEC/90000\r\n");
                replaced = true;
            }
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    assert!(replaced, "{sdp}");
    out
}

#[test]
fn m_line_without_a_known_codec_is_rejected_and_disabled() {
    let sdp = with_unknown_video_codec(&client_offer_sdp());
    let mut s = session(PeerRole::Publisher);
    let (answer, media) = s.accept_offer(&sdp).expect("the rest is still answered");
    let of_kind = |kind| media.iter().find(|m| m.kind == kind).expect("m-line");
    // Nothing could receive it, so nothing may be published for it.
    assert!(of_kind(MediaKind::Video).disabled);
    assert!(!of_kind(MediaKind::Audio).disabled);
    assert!(answer.contains("m=video 0 "), "{answer}");
    assert!(answer.contains("m=audio 9 "), "{answer}");
}

#[test]
fn blank_lines_and_lf_endings_keep_every_m_line() {
    let sdp = client_offer_sdp();
    // A blank line before the second m-line: str0m alone would drop the video.
    let i = sdp.find("m=video").unwrap();
    let blank = format!("{}\r\n{}", &sdp[..i], &sdp[i..]);
    let mut s = session(PeerRole::Publisher);
    let (_, media) = s.accept_offer(&blank).expect("blank line tolerated");
    assert_eq!(media.len(), 2, "{media:?}");
    let lf = sdp.replace("\r\n", "\n");
    let mut s = session(PeerRole::Publisher);
    let (answer, media) = s.accept_offer(&lf).expect("LF endings");
    assert_eq!(media.len(), 2);
    assert!(answer.contains("a=ice-lite"));
    assert!(answer.contains("a=setup:passive"), "we are the DTLS server");
}

#[test]
fn answer_without_offer_is_an_error() {
    let mut s = session(PeerRole::Subscriber);
    assert!(matches!(
        s.accept_answer(&client_offer_sdp()),
        Err(SessionError::NoPendingOffer)
    ));
    assert_eq!(s.create_offer().unwrap(), None, "nothing queued");
    s.add_send_track(MediaKind::Video, "PA_a|TR_b", "TR_b")
        .unwrap();
    let offer = s.create_offer().unwrap().expect("offer");
    assert!(offer.contains("a=ice-lite"));
    assert!(matches!(
        s.create_offer(),
        Err(SessionError::OfferOutstanding)
    ));
    let first = s.send_track_mid("TR_b").unwrap();
    // A garbage answer fails and re-queues the track; a new offer picks a new mid.
    assert!(s.accept_answer("nonsense").is_err());
    assert!(s.send_track_mid("TR_b").is_none());
    assert!(matches!(
        s.accept_answer("nonsense"),
        Err(SessionError::NoPendingOffer)
    ));
    assert!(s.create_offer().unwrap().is_some());
    assert!(s.send_track_mid("TR_b").is_some_and(|m| m != first));
}

#[test]
fn trickle_json_shapes() {
    let mut s = session(PeerRole::Publisher);
    let host = "candidate:1 1 udp 2113937151 192.168.1.7 54400 typ host";
    let ok = [
        format!(r#"{{"candidate":"{host}","sdpMid":"0","sdpMLineIndex":0}}"#),
        format!(r#"{{"candidate":"{host}","sdpMid":null,"sdpMLineIndex":null}}"#),
        format!(r#"{{"candidate":"{host}"}}"#),
        format!(r#"{{"candidate":"{host}","usernameFragment":"abcd"}}"#),
        host.to_string(),
        format!("a={host}"),
        r#"{"candidate":"","sdpMid":"0","sdpMLineIndex":0}"#.to_string(),
        r#"{"candidate":"candidate:1 1 udp 2113937151 4f1c9a2e-1b7d.local 54400 typ host","sdpMid":"0"}"#.to_string(),
    ];
    for input in &ok {
        assert!(s.add_remote_candidate(input).is_ok(), "{input}");
    }
    let bad = [
        r#"{"candidate":null,"sdpMid":"0"}"#,
        r#"{"sdpMid":"0","sdpMLineIndex":0}"#,
        r#"{"candidate":5}"#,
        r#"{"candidate":"candidate:garbage"}"#,
        r#"{"candidate":"#,
        "candidate:1 1 udp",
        "hello",
        "{}",
    ];
    for input in bad {
        assert!(s.add_remote_candidate(input).is_err(), "{input}");
    }

    let json = s.local_candidates_json();
    assert_eq!(json.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(v["sdpMid"], "0", "a string, never null");
    assert_eq!(v["sdpMLineIndex"], 0);
    let line = v["candidate"].as_str().unwrap();
    assert!(
        line.starts_with("candidate:") && line.contains("10.0.0.2 7882 typ host"),
        "{line}"
    );
}

#[test]
fn random_datagrams_never_panic() {
    let (mut p, _) = publisher();
    let now = p.pair.now;
    let from = addr(CLIENT);
    let to = addr("10.0.0.2:7882");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..400usize {
        let mut buf = vec![0u8; len % 300];
        for b in &mut buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        // Every datagram class: STUN (0..2), DTLS (20..64), RTP/RTCP (128..192).
        if let Some(b) = buf.first_mut() {
            *b = [0u8, 1, 22, 23, 0x80, 0x81, 0x90, 200][len % 8];
        }
        let _ = p.pair.server.handle_receive(now, from, to, &buf);
        let _ = p.pair.server.accepts(from, &buf);
        let mut out = Vec::new();
        let mut events = Vec::new();
        let _ = p.pair.server.drain(&mut out, &mut events);
    }
    assert!(p.pair.server.handle_receive(now, from, to, &[]).is_err());
    // Still connected and working afterwards.
    p.pair.server_events.clear();
    let opus = client_pt(&p.pair.client, p.audio, Codec::Opus);
    client_write(&mut p.pair, p.audio, opus, 7, 0, opus_payload(7));
    p.pair.run_for(Duration::from_millis(100));
    assert_eq!(server_rtp(&p.pair).len(), 1);
}

#[test]
fn str0m_offer_round_trips_through_sdp_offer() {
    // The offer we make is parseable by str0m itself (what a str0m client would see).
    let mut s = session(PeerRole::Subscriber);
    s.open_data_channels().unwrap();
    let sdp = s.create_offer().unwrap().unwrap();
    assert!(SdpOffer::from_sdp_string(&sdp).is_ok());
    let v: serde_json::Value = serde_json::from_str(&s.local_candidates_json()[0]).unwrap();
    assert_ne!(v["sdpMid"], "0", "names our first m-line once we offered");
}
