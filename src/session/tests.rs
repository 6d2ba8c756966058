//! Media through the in-memory pair (see `harness.rs`): publisher, subscriber,
//! renegotiation, keyframe requests, and forwarding from one PC to the other.

use std::sync::Arc;
use std::time::Duration;

use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::Event;

use super::harness::*;
use super::{DataSent, PeerRole, RtpIn, SessionError, SessionEvent, MAX_QUEUED_BYTES};

#[test]
fn publisher_receives_media_and_data() {
    let (mut p, offered) = publisher();
    let tracks: Vec<_> = offered
        .iter()
        .map(|m| (m.mid, m.kind, m.msid_stream.clone(), m.msid_track.clone()))
        .collect();
    assert_eq!(
        tracks,
        vec![
            (
                p.audio,
                MediaKind::Audio,
                Some("stream-x".into()),
                Some("track-a".into())
            ),
            (
                p.video,
                MediaKind::Video,
                Some("stream-x".into()),
                Some("track-v".into())
            ),
        ]
    );
    assert!(offered
        .iter()
        .all(|m| m.direction == "sendonly" && m.rids.is_empty()));

    let opus = client_pt(&p.pair.client, p.audio, Codec::Opus);
    let vp8 = client_pt(&p.pair.client, p.video, Codec::Vp8);
    for i in 0..50 {
        let (a, v) = (opus_payload(i), vp8_payload(i));
        client_write(
            &mut p.pair,
            p.audio,
            opus,
            1000 + i as u64,
            960 * i as u32,
            a,
        );
        client_write(
            &mut p.pair,
            p.video,
            vp8,
            5000 + i as u64,
            3000 * i as u32,
            v,
        );
        p.pair.run_for(Duration::from_millis(20));
    }
    p.pair.run_for(Duration::from_millis(200));

    let rtp = server_rtp(&p.pair);
    let audio: Vec<_> = rtp.iter().filter(|r| r.mid == p.audio).collect();
    let video: Vec<_> = rtp.iter().filter(|r| r.mid == p.video).collect();
    assert_eq!(audio.len(), 50, "audio packets");
    assert_eq!(video.len(), 50, "video packets");
    for (i, r) in audio.iter().enumerate() {
        assert_eq!(&r.payload[..], &opus_payload(i)[..]);
        assert_eq!(
            (r.codec, r.seq, r.pt.pt),
            (Codec::Opus, 1000 + i as u64, *opus)
        );
        assert!(!r.is_keyframe && !r.pt.red);
    }
    for (i, r) in video.iter().enumerate() {
        assert_eq!(&r.payload[..], &vp8_payload(i)[..]);
        assert_eq!(
            (r.codec, r.seq, r.timestamp),
            (Codec::Vp8, 5000 + i as u64, 3000 * i as u32)
        );
        assert_eq!(r.is_keyframe, i == 0, "keyframe detection of packet {i}");
        assert!(r.rid.is_none());
    }
    let added: Vec<_> = p
        .pair
        .server_events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::MediaAdded { mid, track_id, .. } => Some((*mid, track_id.clone())),
            _ => None,
        })
        .collect();
    assert!(
        added.contains(&(p.video, Some("track-v".into()))),
        "{added:?}"
    );

    // The client's data channel: open, then a message.
    let id = p
        .pair
        .client_events
        .iter()
        .find_map(|e| match e {
            Event::ChannelOpen(id, label) if label == "_reliable" => Some(*id),
            _ => None,
        })
        .expect("client channel open");
    let ok = p
        .pair
        .client
        .channel(id)
        .expect("channel")
        .write(true, b"hello sfu");
    assert!(ok.expect("write"));
    p.pair.drain_client();
    p.pair.run_for(Duration::from_millis(200));
    let events = &p.pair.server_events;
    assert!(events
        .iter()
        .any(|e| matches!(e, SessionEvent::ChannelOpen { label } if label == "_reliable")));
    assert!(events.iter().any(|e| matches!(e,
        SessionEvent::ChannelData { label, binary: true, data }
            if label == "_reliable" && data == b"hello sfu")));
    assert!(
        p.pair.server_errors.is_empty(),
        "{:?}",
        p.pair.server_errors
    );
}

#[test]
fn subscriber_sends_media_and_data() {
    let (mut pair, offer) = subscriber();
    assert!(offer.contains("a=msid:PA_abc|TR_def TR_def"), "{offer}");
    assert!(offer.contains("a=msid:PA_abc|TR_aud TR_aud"), "{offer}");
    assert!(offer.contains("a=sendonly"));
    assert!(offer.contains("m=application"));
    let mid = pair
        .server
        .send_track_mid("TR_def")
        .expect("mid after offer");
    let mids: Vec<_> = pair.server.send_track_mids();
    assert_eq!(mids.len(), 2);
    assert!(mids.contains(&(mid, "TR_def")));
    let client_media = pair.client.media(mid).expect("client has the mid");
    assert_eq!(client_media.track_id(), "TR_def");
    assert_eq!(client_media.stream_id(), "PA_abc|TR_def");

    let written = server_write_video(&mut pair, mid, 50, 100);
    let got = client_rtp(&mut pair, mid);
    assert_eq!(got.len(), 50, "client got every packet");
    for (i, (seq, payload)) in got.iter().enumerate() {
        assert_eq!(*seq, 100 + i as u16);
        assert_eq!(payload, &written[i]);
    }

    // Our own channels opened (DCEP), then a message on `_reliable`.
    pair.wait_server_channels();
    assert_eq!(
        pair.server
            .send_data("_reliable", true, b"to client")
            .unwrap(),
        DataSent::Sent
    );
    assert!(matches!(
        pair.server.send_data("_nope", true, b"x"),
        Err(SessionError::NoChannel(_))
    ));
    pair.drain_server();
    pair.run_for(Duration::from_millis(200));
    let labels: Vec<_> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelOpen(id, label) => Some((*id, label.clone())),
            _ => None,
        })
        .collect();
    let reliable = labels
        .iter()
        .find(|(_, l)| l == "_reliable")
        .expect("client sees _reliable")
        .0;
    let lossy = labels
        .iter()
        .find(|(_, l)| l == "_lossy")
        .expect("client sees _lossy")
        .0;
    let config = pair.client.channel(lossy).expect("lossy").config().cloned();
    assert!(!config.expect("lossy config").ordered);
    assert!(pair.client_events.iter().any(|e| matches!(e,
        Event::ChannelData(d) if d.id == reliable && d.data == b"to client")));
    assert!(pair.server_errors.is_empty(), "{:?}", pair.server_errors);
}

#[test]
fn renegotiation_adds_a_track_after_connect() {
    let (mut pair, _) = subscriber();
    let first = pair.server.send_track_mid("TR_def").unwrap();
    pair.server
        .add_send_track(MediaKind::Video, "PA_abc|TR_two", "TR_two")
        .unwrap();
    assert!(pair.server.has_queued_changes());
    let offer = pair.server_offer();
    assert!(offer.contains("a=msid:PA_abc|TR_two TR_two"));
    assert_eq!(
        pair.server.create_offer().unwrap(),
        None,
        "nothing left to offer"
    );
    let second = pair.server.send_track_mid("TR_two").unwrap();
    assert_ne!(first, second);
    assert_eq!(
        pair.server.send_track_mid("TR_def"),
        Some(first),
        "mid kept"
    );

    let a = server_write_video(&mut pair, first, 20, 10);
    let b = server_write_video(&mut pair, second, 20, 500);
    let got_a = client_payloads(&mut pair, first);
    let got_b = client_payloads(&mut pair, second);
    assert_eq!(got_a, a);
    assert_eq!(got_b, b);

    // Removing a track stops its m-line in the next offer.
    pair.server.remove_send_track("TR_two").unwrap();
    let offer = pair.server_offer();
    assert!(offer.contains("m=video 0 "), "{offer}");
    assert!(matches!(
        pair.server.remove_send_track("TR_two"),
        Err(SessionError::UnknownTrack(_))
    ));
}

#[test]
fn removing_the_bundle_tag_track_keeps_it_in_the_bundle() {
    // TR_def is the subscriber offer's first m-line: the BUNDLE tag. Rejecting it
    // would make libwebrtc rebuild the bundle transport and abort SCTP.
    let (mut pair, _) = subscriber();
    let first = pair.server.send_track_mid("TR_def").unwrap();
    pair.server.remove_send_track("TR_def").unwrap();
    let offer = pair.server_offer();
    let group = offer
        .lines()
        .find(|l| l.starts_with("a=group:BUNDLE"))
        .expect("a BUNDLE group");
    assert_eq!(group.split_whitespace().nth(1), Some(&*first.to_string()));
    assert!(!offer.contains(" 0 UDP/TLS"), "no m-line rejected: {offer}");
    assert!(offer.contains("a=inactive"), "{offer}");
    pair.run_for(Duration::from_secs(1));
    assert!(pair.server.is_connected());
    assert!(
        !pair
            .server_events
            .iter()
            .any(|e| matches!(e, SessionEvent::Disconnected)),
        "{:?}",
        pair.server_events
    );

    // Subscribed again, the track returns on its parked line: one msid line for it
    // (libwebrtc refuses an offer with two), and media flows on it.
    pair.server
        .add_send_track(MediaKind::Video, "PA_abc|TR_def", "TR_def")
        .unwrap();
    assert_eq!(pair.server.send_track_mid("TR_def"), Some(first));
    let again = pair.server_offer();
    let msids = again
        .lines()
        .filter(|l| *l == "a=msid:PA_abc|TR_def TR_def")
        .count();
    assert_eq!(msids, 1, "{again}");
    let sent = server_write_video(&mut pair, first, 10, 2000);
    let got = client_payloads(&mut pair, first);
    assert!(got.ends_with(&sent), "media flows on the reactivated line");
}

#[test]
fn keyframe_requests_flow_both_ways() {
    // Subscriber side: the receiving client sends a PLI, the server sees it.
    let (mut sub, _) = subscriber();
    let mid = sub.server.send_track_mid("TR_def").unwrap();
    server_write_video(&mut sub, mid, 5, 1);
    sub.client
        .direct_api()
        .stream_rx_by_mid(mid, None)
        .expect("client stream_rx")
        .request_keyframe(KeyframeRequestKind::Pli);
    sub.drain_client();
    let ok = sub.run_until(Duration::from_secs(2), |p| {
        p.server_events
            .iter()
            .any(|e| matches!(e, SessionEvent::KeyframeRequest { mid: m, rid: None } if *m == mid))
    });
    assert!(ok, "server got the subscriber's PLI");

    // Publisher side: the server asks the sending client for a keyframe.
    let (mut p, _) = publisher();
    let vp8 = client_pt(&p.pair.client, p.video, Codec::Vp8);
    for i in 0..5 {
        client_write(
            &mut p.pair,
            p.video,
            vp8,
            i,
            3000 * i as u32,
            vp8_payload(i as usize),
        );
        p.pair.run_for(Duration::from_millis(30));
    }
    let now = p.pair.now;
    assert_eq!(
        p.pair.server.request_keyframe(p.video, None, now).unwrap(),
        Some(false)
    );
    assert_eq!(
        p.pair.server.request_keyframe(p.video, None, now).unwrap(),
        None,
        "rate limited"
    );
    assert!(
        matches!(
            p.pair.server.request_keyframe(p.video, Some("f"), now),
            Err(SessionError::UnknownLayer { .. })
        ),
        "a layer the client does not send"
    );
    p.pair.drain_server();
    let video = p.video;
    let ok = p.pair.run_until(Duration::from_secs(2), |p| {
        p.client_events
            .iter()
            .any(|e| matches!(e, Event::KeyframeRequest(r) if r.mid == video))
    });
    assert!(ok, "publishing client got the PLI");
    let unknown = Mid::from("zz");
    assert!(p
        .pair
        .server
        .request_keyframe(unknown, None, now + Duration::from_secs(1))
        .is_err());
}

#[test]
fn forwards_publisher_rtp_to_subscriber() {
    let (mut p, _) = publisher();
    let (mut sub, _) = subscriber();
    let down = sub.server.send_track_mid("TR_def").unwrap();
    let vp8 = client_pt(&p.pair.client, p.video, Codec::Vp8);
    for i in 0..10 {
        client_write(
            &mut p.pair,
            p.video,
            vp8,
            40_000 + i,
            9000 * i as u32,
            vp8_payload(i as usize),
        );
        p.pair.run_for(Duration::from_millis(20));
    }
    let incoming: Vec<RtpIn> = server_rtp(&p.pair).into_iter().cloned().collect();
    assert_eq!(incoming.len(), 10);
    for (i, r) in incoming.iter().enumerate() {
        let now = sub.now;
        sub.server
            .write_rtp(
                down,
                r.pt,
                (i as u64, r.timestamp, r.marker),
                r.payload.clone(),
                now,
            )
            .expect("forward");
        sub.drain_server();
        sub.run_for(Duration::from_millis(20));
    }
    sub.run_for(Duration::from_millis(200));
    let got = client_payloads(&mut sub, down);
    let sent: Vec<_> = incoming.iter().map(|r| r.payload.to_vec()).collect();
    assert_eq!(got, sent);
    // Audio parameters on a video m-line are refused.
    let opus = sub.server.payload_type_for(Codec::Opus).unwrap();
    let now = sub.now;
    let e = sub
        .server
        .write_rtp(down, opus, (99, 0, false), Arc::from(&[1u8][..]), now);
    assert!(
        matches!(e, Err(SessionError::CodecNotNegotiated { .. })),
        "{e:?}"
    );
}

/// A reliable burst far beyond str0m's 128 KiB SCTP buffer: what does not fit waits
/// and arrives later, whole and in order; lossy messages that do not fit are dropped;
/// past MAX_QUEUED_BYTES the caller is told.
#[test]
fn a_reliable_burst_beyond_the_sctp_buffer_arrives_whole_and_in_order() {
    let (mut pair, _offer) = subscriber();
    pair.wait_server_channels();
    let message = |i: u32| {
        let mut m = vec![(i % 251) as u8; 15_000];
        m[..4].copy_from_slice(&i.to_be_bytes());
        m
    };
    let mut sent = Vec::new();
    for i in 0..40 {
        sent.push(
            pair.server
                .send_data("_reliable", true, &message(i))
                .unwrap(),
        );
    }
    assert!(
        sent.contains(&DataSent::Queued),
        "600 kB cannot all fit: {sent:?}"
    );
    assert!(pair.server.queued_data_bytes() > 0);
    assert_eq!(
        pair.server
            .send_data("_lossy", false, &message(99))
            .unwrap(),
        DataSent::Dropped,
        "lossy data does not wait"
    );
    pair.drain_server();
    pair.run_for(Duration::from_secs(3));
    assert_eq!(pair.server.queued_data_bytes(), 0, "everything went out");
    let got: Vec<u32> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelData(d) if d.data.len() == 15_000 => {
                Some(u32::from_be_bytes(d.data[..4].try_into().unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(got, (0..40).collect::<Vec<_>>(), "whole and in order");

    // A receiver that never acknowledges: past the bound, the caller is told.
    let mut outcome = Ok(DataSent::Sent);
    for i in 0..200 {
        outcome = pair.server.send_data("_reliable", true, &message(i));
        if outcome.is_err() {
            break;
        }
    }
    assert!(matches!(outcome, Err(SessionError::DataOverflow(n)) if n <= MAX_QUEUED_BYTES));
}

/// A client whose first trickled candidate cannot be paired (Chromium's `…:9/tcp`, an
/// IPv6 address we have no socket for) and whose UDP candidate comes 2 s later still
/// connects: the unpairable one never reaches str0m's agent, which would otherwise
/// declare "no possible pairs" and end the session.
#[test]
fn an_unpairable_first_candidate_does_not_end_the_session() {
    let mut pair = Pair::new(PeerRole::Publisher);
    let mut api = pair.client.sdp_api();
    api.add_channel("_reliable".into());
    let (offer, pending) = api.apply().expect("offer");
    pair.client_offer(offer, pending);
    for line in [
        "candidate:1 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active",
        "candidate:2 1 udp 2122265343 fd00::2 34288 typ host",
    ] {
        let json = serde_json::json!({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0});
        assert!(matches!(
            pair.server.add_remote_candidate(&json.to_string()),
            Err(SessionError::Candidate(_))
        ));
    }
    pair.run_for(Duration::from_secs(2));
    assert!(
        !pair
            .server_events
            .iter()
            .any(|e| matches!(e, SessionEvent::Disconnected)),
        "the session survived the unpairable candidates"
    );
    pair.trickle();
    pair.connect();
}
