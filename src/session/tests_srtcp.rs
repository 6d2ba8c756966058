//! Reading the subscribers' RTCP ourselves (`srtcp_in`): what a str0m peer sends about
//! a stream we send opens with the keys from the handshake and reads as feedback.

use std::time::Duration;

use str0m::crypto::dtls::SrtpProfile;
use str0m::media::KeyframeRequestKind;

use super::harness::subscriber_with_video;
use super::srtcp_in::{is_rtcp, read_feedback, Feedback, SrtcpError, SrtcpReceiver};
use super::srtcp_out::{write_sender_report, SenderInfo, SrtcpOutError, SrtcpSender};
use super::srtp_out::KeyError;
use super::srtp_tap::SrtpKeys;

#[test]
fn a_peers_keyframe_request_and_reports_read_as_feedback() {
    let (mut pair, _, header) = subscriber_with_video(3);
    let ssrc = header.ssrc;
    let keys = pair.server.srtp_keys().expect("keys");
    let mut receiver = SrtcpReceiver::new(&keys).expect("a GCM profile");

    // The client asks for a keyframe; a few seconds later it has reported too.
    pair.seen_by_server = Some(Vec::new());
    (pair.client.direct_api())
        .stream_rx(&ssrc)
        .expect("client's stream")
        .request_keyframe(KeyframeRequestKind::Pli);
    pair.drain_client();
    pair.run_for(Duration::from_secs(6));
    let mut seen = Vec::new();
    let mut plain = Vec::new();
    let mut indexes = Vec::new();
    let mut last_rtcp = Vec::new();
    for datagram in pair.seen_by_server.take().unwrap_or_default() {
        if !is_rtcp(&datagram) {
            continue;
        }
        let index = receiver.unprotect(&datagram, &mut plain).expect("opens");
        indexes.push(index);
        read_feedback(&plain, |f| seen.push(f)).expect("well formed");
        last_rtcp = datagram;
    }
    let media = *ssrc;
    assert!(
        seen.contains(&Feedback::Keyframe { media_ssrc: media }),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|f| matches!(
            f,
            Feedback::Report { media_ssrc, cumulative_lost: 0, .. } if *media_ssrc == media
        )),
        "a receiver report on our stream, nothing lost: {seen:?}"
    );
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "indexes rise: {indexes:?}"
    );

    // Tampering fails authentication and leaves nothing behind.
    let sealed = last_rtcp;
    assert!(!sealed.is_empty(), "RTCP was sent");
    let mut bad = sealed.clone();
    bad[9] ^= 1;
    assert_eq!(receiver.unprotect(&bad, &mut plain), Err(SrtcpError::Auth));
    assert!(plain.is_empty());
    let mut clear = sealed.clone();
    let n = clear.len();
    clear[n - 4] &= 0x7f;
    assert_eq!(
        receiver.unprotect(&clear, &mut plain),
        Err(SrtcpError::Unencrypted)
    );
    assert_eq!(
        receiver.unprotect(&sealed[..20], &mut plain),
        Err(SrtcpError::Short(20))
    );
    assert!(receiver.unprotect(&sealed, &mut plain).is_ok());
}

#[test]
fn feedback_is_read_from_hand_made_compounds_and_bad_lengths_are_errors() {
    let mut rr = vec![0x81, 201, 0, 7];
    rr.extend_from_slice(&1u32.to_be_bytes()); // sender
    rr.extend_from_slice(&0xAABB_CCDDu32.to_be_bytes());
    rr.extend_from_slice(&[64, 0xff, 0xff, 0xfe]); // 25 %, cumulative -2
    rr.extend_from_slice(&70_000u32.to_be_bytes());
    rr.extend_from_slice(&9u32.to_be_bytes());
    rr.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    rr.extend_from_slice(&655u32.to_be_bytes());
    let mut nack = vec![0x81, 205, 0, 3];
    nack.extend_from_slice(&1u32.to_be_bytes());
    nack.extend_from_slice(&0xAABB_CCDDu32.to_be_bytes());
    nack.extend_from_slice(&[0x01, 0x00, 0b0000_0000, 0b0000_0101]);
    let mut fir = vec![0x84, 206, 0, 4];
    fir.extend_from_slice(&1u32.to_be_bytes());
    fir.extend_from_slice(&0u32.to_be_bytes());
    fir.extend_from_slice(&0xAABB_CCDDu32.to_be_bytes());
    fir.extend_from_slice(&[3, 0, 0, 0]);
    let mut twcc = vec![0x8f, 205, 0, 4];
    twcc.extend_from_slice(&1u32.to_be_bytes());
    twcc.extend_from_slice(&0xAABB_CCDDu32.to_be_bytes());
    twcc.extend_from_slice(&[0x10, 0x00, 0x00, 0x05, 0, 0, 0, 1]);
    let sdes = [0x81, 202, 0, 1, 0, 0, 0, 1];
    let compound = [rr, nack, sdes.to_vec(), fir, twcc].concat();
    let mut got = Vec::new();
    read_feedback(&compound, |f| got.push(f)).expect("well formed");
    let media_ssrc = 0xAABB_CCDD;
    assert_eq!(
        got,
        [
            Feedback::Report {
                media_ssrc,
                fraction_lost: 64,
                cumulative_lost: -2,
                highest_seq: 70_000,
                jitter: 9,
                last_sr: 0x1234_5678,
                delay_since_last_sr: 655,
            },
            Feedback::Nack {
                media_ssrc,
                pid: 256,
                blp: 5
            },
            Feedback::Keyframe { media_ssrc },
            Feedback::TransportWide {
                base_seq: 0x1000,
                count: 5
            },
        ]
    );

    // A length that runs past the end, a wrong version, a truncated header.
    let mut long = compound.clone();
    long[3] = 200;
    let mut before = 0;
    let r = read_feedback(&long, |_| before += 1);
    assert_eq!(r, Err(SrtcpError::Malformed(0)));
    assert_eq!(before, 0);
    let mut v1 = compound.clone();
    v1[0] = 0x41;
    assert_eq!(read_feedback(&v1, |_| {}), Err(SrtcpError::Malformed(0)));
    assert_eq!(
        read_feedback(&compound[..compound.len() - 1], |_| {}),
        Err(SrtcpError::Malformed(76))
    );
    assert_eq!(
        read_feedback(&[0x80, 201], |_| {}),
        Err(SrtcpError::Malformed(0))
    );
    // Short bodies are skipped, not read past.
    assert_eq!(read_feedback(&[0x81, 206, 0, 0], |_| {}), Ok(()));
    assert_eq!(
        read_feedback(&[0x8f, 205, 0, 1, 0, 0, 0, 1], |_| {}),
        Ok(())
    );
}

#[test]
fn other_profiles_and_wrong_material_are_errors() {
    let cm = SrtpKeys::new(vec![0; 60], SrtpProfile::AES128_CM_SHA1_80, false);
    assert!(matches!(
        SrtcpReceiver::new(&cm),
        Err(SrtcpError::Keys(KeyError::Unsupported(_)))
    ));
    let short = SrtpKeys::new(vec![0; 50], SrtpProfile::AEAD_AES_128_GCM, false);
    assert!(matches!(
        SrtcpReceiver::new(&short),
        Err(SrtcpError::Keys(KeyError::Material(_)))
    ));
}

#[test]
fn a_peer_reports_on_a_sender_report_we_sealed_ourselves() {
    let (mut pair, _, header) = subscriber_with_video(3);
    let keys = pair.server.srtp_keys().expect("keys");
    let mut sender = SrtcpSender::new(&keys, 1 << 20).expect("a GCM profile");
    let mut receiver = SrtcpReceiver::new(&keys).expect("a GCM profile");
    // 2000-01-01 in NTP seconds, so that its middle bits are not str0m's own.
    let ntp: u64 = (3_155_673_600u64 << 32) | 0x8000_0000;
    let lsr = (ntp >> 16) as u32;
    pair.seen_by_server = Some(Vec::new());
    for i in 0..40u32 {
        let mut sr = Vec::new();
        let info = SenderInfo {
            ssrc: *header.ssrc,
            ntp,
            rtp_time: header.timestamp,
            packets: 3 + i,
            octets: 3000,
        };
        write_sender_report(&info, &mut sr);
        assert_eq!(sr.len(), 28);
        let mut sealed = vec![0xEE];
        sender.protect(&sr, &mut sealed).expect("sealed");
        assert_eq!(
            sealed.len(),
            1 + 28 + 16 + 4,
            "appended: header, body, tag, index"
        );
        assert_eq!(
            &sealed[1..9],
            &sr[..8],
            "header and sender SSRC in the clear"
        );
        pair.deliver_to_client(&sealed[1..]);
        pair.run_for(Duration::from_millis(100));
    }
    let mut plain = Vec::new();
    let mut reports = Vec::new();
    for datagram in pair.seen_by_server.take().unwrap_or_default() {
        if is_rtcp(&datagram) && receiver.unprotect(&datagram, &mut plain).is_ok() {
            read_feedback(&plain, |f| {
                if let Feedback::Report {
                    media_ssrc,
                    last_sr,
                    ..
                } = f
                {
                    if media_ssrc == *header.ssrc {
                        reports.push(last_sr);
                    }
                }
            })
            .expect("well formed");
        }
    }
    assert!(
        reports.contains(&lsr),
        "the peer's receiver reports echo our sender report: {reports:x?}, ours {lsr:x}"
    );
    assert!(matches!(
        sender.protect(&[0x80, 200, 0], &mut plain),
        Err(SrtcpOutError::Short(3))
    ));
}
