//! Our own egress (`own_egress`) against a str0m peer: the video a subscriber PC sends
//! arrives, str0m is left alone while only our packets go, and the peer's feedback
//! (receiver reports on our sender reports) comes back as link figures.

use std::sync::Arc;
use std::time::Duration;

use str0m::crypto::dtls::SrtpProfile;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid};

use super::harness::*;
use super::own_egress::{OwnEgress, OwnRoute};
use super::srtcp_in::{is_rtcp, SrtcpReceiver};
use super::srtcp_out::SrtcpSender;
use super::{SessionEvent, SrtpKeys, Transmit, Transport};

#[test]
fn video_is_sealed_by_us_and_str0m_is_left_alone() {
    let (mut pair, mid, header) = subscriber_with_video(3);
    assert_eq!(client_payloads(&mut pair, mid).len(), 3, "the first three");
    let pt = pair.server.payload_type_for(Codec::Vp8).expect("vp8");
    let now = pair.now;
    assert!(pair.server.str0m_deadline > now, "str0m has nothing due");
    let payload: Arc<[u8]> = vp8_payload(7).into();
    (pair.server)
        .write_rtp(mid, pt, (103, 9000, true), payload.clone(), now)
        .expect("write_rtp");
    pair.server.handle_timeout(now).expect("timeout");
    let (mut out, mut events) = (Vec::new(), Vec::new());
    pair.server.drain(&mut out, &mut events).expect("drain");
    assert!(!pair.server.str0m_touched, "str0m was not driven");
    assert_eq!(out.len(), 1, "just our packet");
    let packet = &out[0].contents;
    assert_eq!(packet[0], 0x80, "a plain header: no extension");
    assert_eq!(
        packet[8..12],
        header.ssrc.to_be_bytes(),
        "the stream's SSRC"
    );
    assert_eq!(packet.len(), 12 + payload.len() + 16);
    pair.deliver_to_client(packet);
    let got = client_payloads(&mut pair, mid);
    assert_eq!(got.last().map(|p| &p[..]), Some(&payload[..]));

    // A datagram from the client wakes str0m again.
    pair.run_for(Duration::from_secs(2));
    assert!(pair.server.str0m_touched || pair.server.str0m_deadline >= pair.now);
}

#[test]
fn the_peers_reports_on_our_sender_reports_give_loss_and_round_trips() {
    let (mut pair, mid, _) = subscriber_with_video(3);
    server_write_video(&mut pair, mid, 80, 103);
    let links: Vec<_> = (pair.server_events.iter())
        .filter_map(|e| match e {
            SessionEvent::LinkStats(l) => Some(*l),
            _ => None,
        })
        .collect();
    let rtt = links.iter().rev().find_map(|l| l.rtt);
    assert!(
        rtt.is_some_and(|r| r < Duration::from_millis(200)),
        "a round trip from the peer's report on our sender report: {links:?}"
    );
    assert!(
        links.iter().any(|l| l.egress_loss == Some(0.0)),
        "receiver-report loss: {links:?}"
    );
    let last = links.last().expect("link figures");
    assert!(
        last.bytes_sent >= 80 * 100,
        "our bytes count: {}",
        last.bytes_sent
    );
}

fn keys(dtls_client: bool) -> SrtpKeys {
    SrtpKeys::new(
        (0..56).collect(),
        SrtpProfile::AEAD_AES_128_GCM,
        dtls_client,
    )
}

const RTX_SSRC: u32 = 0x5151_5151;

fn route() -> OwnRoute {
    OwnRoute {
        mid: Mid::from("1"),
        kind: MediaKind::Video,
        ssrc: 0xAAAA_0001,
        pt: 96,
        rtx: Some((RTX_SSRC, 97)),
        clock_rate: 90_000,
    }
}

/// Our egress with keys and a path, and 200 packets written from `seq0`.
fn armed_with_200_packets(seq0: u64) -> (OwnEgress, Vec<Transmit>) {
    let mut own = OwnEgress::default();
    own.learn_path(&Transmit {
        transport: Transport::Udp,
        source: addr(SERVER),
        destination: addr(CLIENT),
        contents: vec![22, 254, 253],
    });
    assert!(own.ready(|| Some(keys(false))), "keys and a path");
    let route = route();
    let now = crate::clock::mono();
    for i in 0..200u64 {
        let payload: Arc<[u8]> = vec![i as u8; 300].into();
        let packet = (seq0 + i, 3000 * i as u32, true);
        own.write(route, packet, payload, now).expect("written");
    }
    let mut out = Vec::new();
    own.drain(&mut out);
    (own, out)
}

/// A NACK for `count` packets from `first` (pid plus a full bitmask per item),
/// sealed as the peer would.
fn nack(first: u16, count: u16, peer: &mut SrtcpSender) -> Vec<u8> {
    let items = count.div_ceil(17);
    let mut plain = vec![0x81, 205, 0, 2 + items as u8];
    plain.extend_from_slice(&1u32.to_be_bytes());
    plain.extend_from_slice(&0xAAAA_0001u32.to_be_bytes());
    for i in 0..items {
        plain.extend_from_slice(&first.wrapping_add(17 * i).to_be_bytes());
        plain.extend_from_slice(&[0xff, 0xff]);
    }
    let mut sealed = Vec::new();
    peer.protect(&plain, &mut sealed).expect("sealed");
    sealed
}

#[test]
fn nacks_are_answered_on_the_rtx_stream_within_a_budget() {
    // Numbers that wrap: 65 500 .. 65 699.
    let (mut own, sent) = armed_with_200_packets(65_500);
    assert_eq!(sent.len(), 200);
    assert_eq!(
        sent[199].contents[2..4],
        163u16.to_be_bytes(),
        "65 699 wraps to 163"
    );
    let mut peer = SrtcpSender::new(&keys(true), 0).expect("peer's sender");
    let now = crate::clock::mono() + Duration::from_millis(100);

    // Garbage and a NACK sealed with the wrong keys do nothing.
    own.on_datagram(&[0x81, 205, 0, 2, 1, 2, 3], now);
    let mut wrong = SrtcpSender::new(&keys(false), 0).expect("wrong keys");
    own.on_datagram(&nack(64, 3, &mut wrong), now);
    let mut out = Vec::new();
    own.drain(&mut out);
    assert!(out.is_empty(), "nothing resent");

    // Three packets across the wrap: resent on the RTX stream with its own numbers.
    own.on_datagram(&nack(65_534, 3, &mut peer), now);
    own.drain(&mut out);
    assert_eq!(out.len(), 17, "the item's packet and all 16 of its bitmask");
    for (i, t) in out.iter().enumerate() {
        assert_eq!(t.destination, addr(CLIENT));
        assert_eq!(t.contents[1] & 0x7f, 97, "the RTX payload type");
        assert_eq!(
            t.contents[2..4],
            (i as u16 + 1).to_be_bytes(),
            "RTX numbering"
        );
        assert_eq!(t.contents[8..12], RTX_SSRC.to_be_bytes());
        assert_eq!(t.contents.len(), 12 + 2 + 300 + 16, "OSN, payload, tag");
    }

    // A receiver asking for everything gets a quarter of the rate at most.
    out.clear();
    own.on_datagram(&nack(65_500, 200, &mut peer), now);
    own.drain(&mut out);
    assert!(
        (40..=64).contains(&out.len()),
        "resends within the budget: {}",
        out.len()
    );
    out.clear();
    own.on_datagram(&nack(65_500, 200, &mut peer), now);
    own.drain(&mut out);
    assert!(
        out.is_empty(),
        "budget spent, and just resent: {}",
        out.len()
    );
}

#[test]
fn str0m_sender_reports_carry_our_counts() {
    let (mut pair, mid, header) = subscriber_with_video(3);
    pair.seen_by_client = Some(Vec::new());
    server_write_video(&mut pair, mid, 60, 103);
    let keys = pair.server.srtp_keys().expect("keys");
    let mut opener = SrtcpReceiver::of_local(&keys).expect("a GCM profile");
    let mut plain = Vec::new();
    let mut counts = Vec::new();
    for datagram in pair.seen_by_client.take().unwrap_or_default() {
        if !is_rtcp(&datagram) {
            continue;
        }
        opener.unprotect(&datagram, &mut plain).expect("opens");
        let mut at = 0;
        while at + 28 <= plain.len() {
            let len = 4 * (usize::from(u16::from_be_bytes([plain[at + 2], plain[at + 3]])) + 1);
            let sr = &plain[at..(at + len).min(plain.len())];
            if sr[1] == 200 && sr[4..8] == header.ssrc.to_be_bytes() {
                let packets = u32::from_be_bytes([sr[20], sr[21], sr[22], sr[23]]);
                let octets = u32::from_be_bytes([sr[24], sr[25], sr[26], sr[27]]);
                counts.push((packets, octets));
            }
            at += len;
        }
    }
    assert!(
        !counts.is_empty(),
        "str0m sent sender reports on our stream"
    );
    assert!(
        counts.iter().all(|(p, o)| *p > 3 && *o > 50 * *p),
        "our packet and octet counts, not str0m's nothing: {counts:?}"
    );
}

#[test]
fn media_goes_where_str0m_sends_its_own_packets_not_its_stun_answers() {
    let (mut own, _) = armed_with_200_packets(1);
    let elsewhere = addr("10.0.0.9:6000");
    let now = crate::clock::mono();
    let sent_to = |own: &mut OwnEgress, seq| {
        let payload: Arc<[u8]> = vec![1u8; 100].into();
        own.write(route(), (seq, 0, false), payload, now)
            .expect("written");
        let mut out = Vec::new();
        own.drain(&mut out);
        out[0].destination
    };
    let str0m_sends = |first: u8| Transmit {
        transport: Transport::Udp,
        source: addr(SERVER),
        destination: elsewhere,
        contents: vec![first, 1, 0, 0],
    };
    // A binding response to another candidate's check is no nomination.
    own.learn_path(&str0m_sends(0x01));
    assert_eq!(sent_to(&mut own, 300), addr(CLIENT));
    // str0m's own SRTCP goes where ICE says: ours follows.
    own.learn_path(&str0m_sends(0x80));
    assert_eq!(sent_to(&mut own, 301), elsewhere);
}

#[test]
fn a_session_never_drained_stops_taking_packets() {
    use super::own_egress::OwnEgressError;
    let (mut own, _) = armed_with_200_packets(1);
    let now = crate::clock::mono();
    let payload: Arc<[u8]> = vec![1u8; 10].into();
    let mut refused = None;
    for seq in 1000..20_000u64 {
        if let Err(e) = own.write(route(), (seq, 0, false), payload.clone(), now) {
            refused = Some((seq, e));
            break;
        }
    }
    assert_eq!(refused, Some((1000 + 8192, OwnEgressError::Backlog)));
    let mut out = Vec::new();
    own.drain(&mut out);
    assert_eq!(out.len(), 8192);
    assert!(own.write(route(), (30_000, 0, false), payload, now).is_ok());
}

#[test]
fn numbers_that_start_over_on_a_stream_go_on_from_the_highest_sent() {
    // A downtrack made again on the same m-line starts at the munger's first number.
    let (mut own, sent) = armed_with_200_packets(2000);
    let seq_of = |t: &Transmit| u16::from_be_bytes([t.contents[2], t.contents[3]]);
    assert_eq!(seq_of(&sent[199]), 2199);
    let now = crate::clock::mono();
    let payload: Arc<[u8]> = vec![1u8; 10].into();
    // A late packet from the publisher keeps its (lower) number.
    own.write(route(), (2150, 0, false), payload.clone(), now)
        .expect("written");
    for seq in 1000..1010u64 {
        own.write(route(), (seq, 0, false), payload.clone(), now)
            .expect("written");
    }
    let mut out = Vec::new();
    own.drain(&mut out);
    let numbers: Vec<u16> = out.iter().map(seq_of).collect();
    assert_eq!(numbers[0], 2150);
    assert_eq!(numbers[1..], (2200..2210).collect::<Vec<u16>>()[..]);
}
