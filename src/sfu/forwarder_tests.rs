use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Egress, FanOut, Skip};
use crate::session::{Codec, MediaKind, Mid, PayloadType, Rid, RtpIn};
use crate::sfu::downtrack::DownTrack;
use crate::sfu::layers::LayerState;

fn downtrack(kind: MediaKind, mid: &str, target: Option<&str>) -> DownTrack {
    let mut layers = LayerState::default();
    layers.order = ["q", "h", "f"].map(String::from).to_vec();
    let mut d = DownTrack::new(kind, layers, target.map(String::from));
    d.mid = Some(Mid::from(mid));
    d
}

fn packet(codec: Codec, seq: u64, rid: Option<&str>, keyframe: bool) -> RtpIn {
    RtpIn {
        mid: Mid::from("a"),
        rid: rid.map(Rid::from),
        ssrc: 1111,
        pt: PayloadType::default_for(codec).expect("str0m knows the codec"),
        codec,
        seq,
        timestamp: (seq * 3000) as u32,
        marker: seq.is_multiple_of(3),
        payload: vec![0x42; 200].into(),
        audio_level: None,
        is_keyframe: keyframe,
        vp9: None,
    }
}

/// Every downtrack's decision for one packet, the way the room walks them.
fn fan(
    f: &mut FanOut,
    downs: &mut [DownTrack],
    rtp: &RtpIn,
    now: Instant,
) -> Vec<Result<Egress, Skip>> {
    f.begin();
    downs
        .iter_mut()
        .map(|d| f.decide(d, rtp, now, |_| false))
        .collect()
}

#[test]
fn audio_reaches_every_downtrack_with_one_shared_payload_and_continuous_numbers() {
    let t0 = crate::clock::mono();
    let mut f = FanOut::default();
    let mut downs: Vec<_> = (0..3)
        .map(|i| downtrack(MediaKind::Audio, &i.to_string(), None))
        .collect();
    let mut last_seq = None;
    for seq in 500..510u64 {
        let rtp = packet(Codec::Opus, seq, None, false);
        let out = fan(&mut f, &mut downs, &rtp, t0 + Duration::from_millis(seq));
        let sent: Vec<Egress> = out.into_iter().map(|r| r.expect("forwarded")).collect();
        assert!(sent.iter().all(|e| Arc::ptr_eq(&e.payload, &rtp.payload)));
        assert!(sent
            .iter()
            .all(|e| e.marker == rtp.marker && e.pt == rtp.pt));
        assert_eq!(sent[2].mid, Mid::from("2"));
        if let Some(prev) = last_seq {
            assert_eq!(sent[0].seq, prev + 1, "one more per packet");
        }
        last_seq = Some(sent[0].seq);
        assert!(sent[0].seq < 65_536, "str0m wants a first seq below 2^16");
        assert!(f.keyframe_asks().is_empty());
    }
}

#[test]
fn padding_is_dropped_without_a_gap_in_the_numbers() {
    let t0 = crate::clock::mono();
    let mut f = FanOut::default();
    let mut downs = vec![downtrack(MediaKind::Audio, "0", None)];
    let mut sent = Vec::new();
    for seq in 700..712u64 {
        let mut rtp = packet(Codec::Opus, seq, None, false);
        if (703..709).contains(&seq) {
            rtp.payload = Arc::from(&[][..]);
        }
        match fan(&mut f, &mut downs, &rtp, t0).remove(0) {
            Ok(e) => sent.push(e.seq),
            Err(skip) => assert_eq!(skip, Skip::Padding, "{seq}"),
        }
    }
    assert_eq!(sent.len(), 6);
    assert!(sent.windows(2).all(|w| w[1] == w[0] + 1), "{sent:?}");
}

#[test]
fn no_mid_and_paused_downtracks_take_nothing() {
    let now = crate::clock::mono();
    let mut f = FanOut::default();
    let mut unnegotiated = downtrack(MediaKind::Audio, "0", None);
    unnegotiated.mid = None;
    let mut muted = downtrack(MediaKind::Audio, "1", None);
    muted.disabled = true;
    muted.refresh();
    let out = fan(
        &mut f,
        &mut [unnegotiated, muted],
        &packet(Codec::Opus, 1, None, false),
        now,
    );
    assert_eq!(out, vec![Err(Skip::NoMid), Err(Skip::Layer)]);
}

#[test]
fn video_waits_for_a_keyframe_and_the_ask_is_made_once_for_all_downtracks() {
    let t0 = crate::clock::mono();
    let mut f = FanOut::default();
    let mut downs: Vec<_> = (0..5)
        .map(|i| downtrack(MediaKind::Video, &i.to_string(), None))
        .collect();
    let out = fan(
        &mut f,
        &mut downs,
        &packet(Codec::H264, 10, None, false),
        t0,
    );
    assert!(out.iter().all(|r| *r == Err(Skip::Layer)));
    assert_eq!(f.keyframe_asks(), &[None], "one ask, not five");
    let key = packet(Codec::H264, 11, None, true);
    let out = fan(&mut f, &mut downs, &key, t0 + Duration::from_millis(33));
    assert!(out.iter().all(|r| r.is_ok()), "{out:?}");
    assert!(
        f.keyframe_asks().is_empty(),
        "begin() forgets the last packet's asks"
    );
}

#[test]
fn simulcast_downtracks_get_the_layer_they_aim_at() {
    let t0 = crate::clock::mono();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut f = FanOut::default();
    let mut downs = vec![
        downtrack(MediaKind::Video, "0", Some("q")),
        downtrack(MediaKind::Video, "1", Some("f")),
    ];
    // Both start on the first keyframe of any layer (f has not been seen yet).
    let out = fan(
        &mut f,
        &mut downs,
        &packet(Codec::H264, 1, Some("q"), true),
        ms(0),
    );
    assert!(out.iter().all(|r| r.is_ok()));
    // f flows now: its subscriber waits for f's keyframe and asks for it.
    let out = fan(
        &mut f,
        &mut downs,
        &packet(Codec::H264, 1, Some("f"), false),
        ms(1),
    );
    assert_eq!(out, vec![Err(Skip::Layer), Err(Skip::Layer)]);
    assert_eq!(f.keyframe_asks(), &[Some(Rid::from("f"))]);
    let out = fan(
        &mut f,
        &mut downs,
        &packet(Codec::H264, 2, Some("f"), true),
        ms(2),
    );
    assert_eq!(out[0], Err(Skip::Layer), "q's subscriber skips f");
    assert!(out[1].is_ok(), "f's subscriber switches on f's keyframe");
    let out = fan(
        &mut f,
        &mut downs,
        &packet(Codec::H264, 2, Some("q"), false),
        ms(33),
    );
    assert!(f.keyframe_asks().is_empty());
    assert!(out[0].is_ok());
    assert_eq!(out[1], Err(Skip::Layer));
    assert_eq!(downs[1].layers.current.as_deref(), Some("f"));
}

/// RFC 2198 with one redundant block of 3 bytes (Opus PT 111, 960 ticks old) and a
/// primary block of 4 bytes.
fn red_payload() -> Arc<[u8]> {
    vec![0x80 | 111, 0x0F, 0x00, 0x03, 111, 1, 2, 3, 9, 9, 9, 9].into()
}

#[test]
fn red_is_unwrapped_once_per_packet_for_subscribers_without_red() {
    let now = crate::clock::mono();
    let mut f = FanOut::default();
    let mut downs: Vec<_> = (0..3)
        .map(|i| downtrack(MediaKind::Audio, &i.to_string(), None))
        .collect();
    let mut rtp = packet(Codec::Opus, 7, None, false);
    rtp.pt = rtp.pt.with_red(true);
    rtp.payload = red_payload();
    f.begin();
    let with_red = f.decide(&mut downs[0], &rtp, now, |_| true).expect("sent");
    let plain: Vec<Egress> = downs[1..]
        .iter_mut()
        .map(|d| f.decide(d, &rtp, now, |_| false).expect("sent"))
        .collect();
    assert!(with_red.pt.red && Arc::ptr_eq(&with_red.payload, &rtp.payload));
    assert_eq!(&*plain[0].payload, &[9, 9, 9, 9]);
    assert!(!plain[0].pt.red);
    assert!(
        Arc::ptr_eq(&plain[0].payload, &plain[1].payload),
        "taken out once"
    );

    rtp.payload = vec![0x80 | 111, 0x0F].into();
    f.begin();
    assert_eq!(
        f.decide(&mut downs[1], &rtp, now, |_| false),
        Err(Skip::MalformedRed)
    );
    assert!(
        f.decide(&mut downs[0], &rtp, now, |_| true).is_ok(),
        "RED passes as is"
    );
}
