//! Our own SRTP (`srtp_tap`, `srtp_out`): the keys come out of a real handshake, and a
//! str0m peer accepts what we encrypt with them as if str0m had sent it.

use str0m::crypto::dtls::SrtpProfile;

use super::harness::{client_rtp, subscriber, subscriber_with_video, Pair};
use super::srtp_out::{KeyError, SrtpOutError, SrtpSender, TAG_LEN};
use super::srtp_tap::SrtpKeys;
use super::PeerRole;

/// A plain RTP header (no extensions): V=2, marker, `pt`, `seq`, `ts`, `ssrc`.
fn header(pt: u8, seq: u16, ts: u32, ssrc: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = 0x80;
    h[1] = 0x80 | pt;
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&ts.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}

#[test]
fn keys_appear_once_dtls_is_up() {
    let before = Pair::new(PeerRole::Subscriber);
    assert!(before.server.srtp_keys().is_none(), "no handshake, no keys");
    let (pair, _) = subscriber();
    let keys = pair.server.srtp_keys().expect("keys after connecting");
    // str0m's dimpl prefers AES-256-GCM, and the (str0m) client offers it.
    assert_eq!(keys.profile, SrtpProfile::AEAD_AES_256_GCM);
    // Which half is ours follows the DTLS role (a str0m answerer takes the server's
    // part, a browser the client's); the next test shows the choice is the peer's.
    let (key, salt) = keys.local_master(32, 12).expect("AES-256-GCM material");
    assert_eq!((key.len(), salt.len()), (32, 12));
    assert!(
        keys.local_master(16, 12).is_none(),
        "wrong lengths are refused"
    );
    assert!(
        !format!("{keys:?}").contains(&format!("{:?}", &key[..4])),
        "Debug never shows key bytes"
    );
}

#[test]
fn a_str0m_peer_accepts_rtp_we_encrypt_ourselves() {
    // One packet through str0m first: the client learns the stream, we learn its SSRC,
    // payload type, sequence number and timestamp as the client saw them.
    let (mut pair, mid, seen) = subscriber_with_video(1);
    let keys = pair.server.srtp_keys().expect("keys");
    let mut sender = SrtpSender::new(&keys).expect("a GCM profile");

    let mut sent = Vec::new();
    for i in 1..=3u16 {
        let seq = seen.sequence_number.wrapping_add(i);
        let h = header(
            *seen.payload_type,
            seq,
            seen.timestamp + 3000 * u32::from(i),
            *seen.ssrc,
        );
        let payload = [0x10, 0x00, 0x00, i as u8, 0xAA, 0xBB];
        let mut datagram = Vec::new();
        sender
            .protect(&h, &payload, 0, &mut datagram)
            .expect("sealed");
        assert_eq!(datagram.len(), h.len() + payload.len() + TAG_LEN);
        assert_eq!(&datagram[..12], &h, "the header stays in the clear");
        assert_ne!(
            &datagram[12..12 + payload.len()],
            &payload,
            "the payload does not"
        );
        pair.deliver_to_client(&datagram);
        sent.push((seq, payload.to_vec()));
    }
    let got = client_rtp(&mut pair, mid);
    assert_eq!(got.len(), 4, "str0m's packet and our three: {got:?}");
    assert_eq!(
        &got[1..],
        &sent[..],
        "decrypted and authenticated by the peer"
    );

    // A packet sealed with the wrong rollover counter fails the peer's check.
    let seq = seen.sequence_number.wrapping_add(4);
    let h = header(*seen.payload_type, seq, seen.timestamp, *seen.ssrc);
    let mut bad = Vec::new();
    sender.protect(&h, &[1, 2, 3], 7, &mut bad).expect("sealed");
    pair.deliver_to_client(&bad);
    assert_eq!(client_rtp(&mut pair, mid).len(), 4, "not accepted");
}

#[test]
fn short_headers_and_other_profiles_are_errors() {
    let (pair, _) = subscriber();
    let keys = pair.server.srtp_keys().expect("keys");
    let mut sender = SrtpSender::new(&keys).expect("sender");
    let mut out = vec![9];
    let r = sender.protect(&[0x80; 11], &[1], 0, &mut out);
    assert!(matches!(r, Err(SrtpOutError::ShortHeader(11))), "{r:?}");
    assert_eq!(out, [9], "nothing appended");

    let cm = SrtpKeys::new(vec![0; 60], SrtpProfile::AES128_CM_SHA1_80, true);
    let r = SrtpSender::new(&cm);
    assert!(
        matches!(r, Err(SrtpOutError::Keys(KeyError::Unsupported(_)))),
        "{r:?}"
    );
    let short = SrtpKeys::new(vec![0; 87], SrtpProfile::AEAD_AES_256_GCM, true);
    let r = SrtpSender::new(&short);
    assert!(
        matches!(r, Err(SrtpOutError::Keys(KeyError::Material(_)))),
        "{r:?}"
    );
    let gcm128 = SrtpKeys::new(vec![7; 56], SrtpProfile::AEAD_AES_128_GCM, false);
    let mut sender = SrtpSender::new(&gcm128).expect("AES-128-GCM");
    let mut out = Vec::new();
    sender
        .protect(&[0x80; 12], &[1, 2], 0, &mut out)
        .expect("sealed");
    assert_eq!(out.len(), 12 + 2 + TAG_LEN);
}

#[test]
fn key_derivation_matches_rfc_3711_appendix_b3() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    };
    let master = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
    let provider = str0m::crypto::from_feature_flags().srtp_provider;
    let mut key = [0u8; 16];
    super::srtp_out::derive(provider, &master, &salt, 0, &mut key);
    assert_eq!(key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut session_salt = [0u8; 14];
    super::srtp_out::derive(provider, &master, &salt, 2, &mut session_salt);
    assert_eq!(session_salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 20];
    super::srtp_out::derive(provider, &master, &salt, 1, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}
