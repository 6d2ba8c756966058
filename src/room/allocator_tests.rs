//! The stream allocator driven through `Rooms`: a subscriber of a simulcast track
//! whose link reports turn lossy and then clean again sees its layer capped, the
//! track paused for bandwidth (StreamStateUpdate PAUSED), then resumed and raised.

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;

use super::media::Side;
use super::negotiation_tests::{join, messages_for, publish, request, rooms};
use super::rooms::Rooms;
use crate::session::LinkStats;

fn layer(q: lk::VideoQuality, w: u32, h: u32, bitrate: u32) -> lk::VideoLayer {
    lk::VideoLayer {
        quality: q as i32,
        width: w,
        height: h,
        bitrate,
        ..Default::default()
    }
}

/// A room where participant 1 subscribes to participant 2's three-layer camera.
fn room_with_simulcast_camera(t0: Instant) -> (Rooms, String) {
    let mut rooms = rooms();
    let mut out = Vec::new();
    rooms.join(1, &join("sub"), t0, 0, &mut out).unwrap();
    rooms.join(2, &join("pub"), t0, 0, &mut out).unwrap();
    let add = lk::AddTrackRequest {
        cid: "cam-1".into(),
        r#type: lk::TrackType::Video as i32,
        source: lk::TrackSource::Camera as i32,
        width: 1280,
        height: 720,
        layers: vec![
            layer(lk::VideoQuality::Low, 320, 180, 150_000),
            layer(lk::VideoQuality::Medium, 640, 360, 500_000),
            layer(lk::VideoQuality::High, 1280, 720, 1_700_000),
        ],
        ..Default::default()
    };
    publish(&mut rooms, 2, add, t0, &mut out);
    let sid = rooms
        .participant_by_conn(1)
        .and_then(|p| p.media.downtracks.keys().next().cloned())
        .expect("the subscriber has a downtrack");
    (rooms, sid)
}

#[test]
fn a_falling_and_recovering_link_caps_pauses_and_restores_the_layer() {
    let t0 = crate::clock::now().mono;
    let (mut rooms, sid) = room_with_simulcast_camera(t0);
    // (loss, kbit/s sent over the second before) -> cap, paused
    let script: &[(f32, u64, Option<&str>, bool)] = &[
        (0.0, 1900, None, false),
        (0.0, 1900, None, false),
        // congested at 1.9 Mbit/s: 1.33 Mbit/s left, f no longer fits
        (0.6, 1900, Some("h"), false),
        // worse: 120 kbit/s fits not even q; paused (the cap stays as it was)
        (0.8, 200, Some("h"), true),
        // clean again: the estimate grows 8 % + 20 kbit/s a second
        (0.0, 40, Some("h"), true),
        (0.0, 40, Some("q"), false),
        (0.0, 40, Some("q"), false),
    ];
    let mut bytes = 0u64;
    let mut states = Vec::new();
    for (i, (loss, kbps, cap, paused)) in script.iter().enumerate() {
        bytes += kbps * 1000 / 8;
        let now = t0 + Duration::from_secs(i as u64);
        let mut out = Vec::new();
        let stats = LinkStats {
            egress_loss: Some(*loss),
            ingress_loss: None,
            rtt: Some(Duration::from_millis(30)),
            bytes_sent: bytes,
        };
        rooms.on_link_stats((1, Side::Subscriber), stats, now, &mut out);
        for m in messages_for(&out, 1) {
            if let Resp::StreamStateUpdate(u) = m {
                states.extend(u.stream_states.into_iter().map(|s| (i, s.state)));
            }
        }
        let p = rooms.participant_by_conn(1).unwrap();
        let down = &p.media.downtracks[&sid];
        assert_eq!(
            (down.cap.as_deref(), down.bw_paused, down.layers.paused),
            (*cap, *paused, *paused),
            "step {i}: estimate {:?}",
            p.media.link.estimate()
        );
    }
    let paused = lk::StreamState::Paused as i32;
    let active = lk::StreamState::Active as i32;
    assert_eq!(states, vec![(3, paused), (5, active)]);
}

#[test]
fn a_disabled_track_costs_nothing_and_stays_disabled() {
    let t0 = crate::clock::now().mono;
    let (mut rooms, sid) = room_with_simulcast_camera(t0);
    let mut out = Vec::new();
    let settings = lk::UpdateTrackSettings {
        track_sids: vec![sid.clone()],
        disabled: true,
        ..Default::default()
    };
    rooms.signal(1, request(Req::TrackSetting(settings)), t0, &mut out);
    for (i, loss) in [0.0, 0.9, 0.0].into_iter().enumerate() {
        let stats = LinkStats {
            egress_loss: Some(loss),
            ingress_loss: None,
            rtt: None,
            bytes_sent: 10_000 * i as u64,
        };
        let now = t0 + Duration::from_secs(i as u64);
        rooms.on_link_stats((1, Side::Subscriber), stats, now, &mut out);
    }
    let down = &rooms.participant_by_conn(1).unwrap().media.downtracks[&sid];
    assert!(down.layers.paused && down.disabled && !down.bw_paused);
    assert!(!messages_for(&out, 1)
        .iter()
        .any(|m| matches!(m, Resp::StreamStateUpdate(_))));
}
