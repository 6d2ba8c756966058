//! A room spread over two shards, sans-IO: two `Rooms` (shard 0 the home, shard 1 a
//! copy) and a stand-in for the control thread that passes their spread news the way
//! `control::spread` routes it. Participants of either shard see each other, subscribe
//! across, get relayed packets, ask for keyframes and dynacast layers across, and leave.

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::negotiation_tests::{join, messages_for, publish};
use super::room_ops::{Outbound, RoomEvent};
use super::rooms::Rooms;
use super::spread::{is_proxy, proxy_conn, SpreadMsg, SpreadTo};
use crate::session::{Codec, Mid, PayloadType, RtpIn};

/// Shard 0 is home to room "r" with alice (conn 1); shard 1 has a copy with bob
/// (conn 2). Conn ids are node-wide, as the control thread hands them out.
struct TwoShards {
    shards: [Rooms; 2],
    /// Where each real connection is.
    hosts: Vec<(u64, usize)>,
    /// What each shard said to its participants.
    out: [Vec<Outbound>; 2],
}

impl TwoShards {
    fn new(now: Instant) -> Self {
        let mut shards = [super::fuzzing::rooms(), super::fuzzing::rooms()];
        let mut out: [Vec<Outbound>; 2] = Default::default();
        shards[0]
            .join(1, &join("alice"), now, 0, &mut out[0])
            .unwrap();
        let seed = shards[0].seed("r").unwrap();
        shards[1].set_peers("r", vec![0], false, Some(seed), now);
        shards[0].set_peers("r", vec![1], true, None, now);
        let mut two = TwoShards {
            shards,
            hosts: vec![(1, 0)],
            out,
        };
        two.pump(now);
        let joined = two.shards[1].join(2, &join("bob"), now, 0, &mut two.out[1]);
        let others = joined.unwrap().other_participants;
        assert_eq!(
            others
                .iter()
                .map(|p| p.identity.as_str())
                .collect::<Vec<_>>(),
            ["alice"],
            "a joiner on the copy sees the home's participants"
        );
        two.hosts.push((2, 1));
        two.pump(now);
        two
    }

    /// Passes spread news until none is left (the control thread's `route_spread`).
    fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            for from in 0..2 {
                for news in self.shards[from].take_spread() {
                    let to = match news.to {
                        SpreadTo::Peers => 1 - from,
                        SpreadTo::Shard(s) => s,
                        SpreadTo::HostOf(conn) => (self.hosts.iter().find(|(c, _)| *c == conn))
                            .map(|(_, s)| *s)
                            .expect("a known connection"),
                    };
                    assert_ne!(to, from, "nothing is sent to itself");
                    let (room, msg) = (news.room, news.msg);
                    self.shards[to].on_spread(&room, from, msg, now, &mut self.out[to]);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn take_out(&mut self, shard: usize) -> Vec<Outbound> {
        std::mem::take(&mut self.out[shard])
    }
}

fn camera(layers: Vec<lk::VideoLayer>) -> lk::AddTrackRequest {
    lk::AddTrackRequest {
        cid: "cam-1".into(),
        r#type: lk::TrackType::Video as i32,
        source: lk::TrackSource::Camera as i32,
        width: 1280,
        height: 720,
        layers,
        ..Default::default()
    }
}

fn video_packet(mid: Mid, seq: u64, keyframe: bool) -> RtpIn {
    RtpIn {
        mid,
        rid: None,
        ssrc: 1111,
        pt: PayloadType::default_for(Codec::Vp8).expect("str0m knows VP8"),
        codec: Codec::Vp8,
        seq,
        timestamp: (seq * 3000) as u32,
        marker: true,
        payload: vec![0x10; 100].into(),
        audio_level: None,
        is_keyframe: keyframe,
        vp9: None,
    }
}

fn updates_about(out: &[Outbound], conn: u64, identity: &str) -> Vec<lk::ParticipantInfo> {
    messages_for(out, conn)
        .into_iter()
        .filter_map(|m| match m {
            Resp::Update(u) => Some(u.participants),
            _ => None,
        })
        .flatten()
        .filter(|p| p.identity == identity)
        .collect()
}

/// alice publishes a camera on shard 0; returns its mid there and its sid.
fn alice_publishes(
    two: &mut TwoShards,
    layers: Vec<lk::VideoLayer>,
    now: Instant,
) -> (Mid, String) {
    publish(&mut two.shards[0], 1, camera(layers), now, &mut two.out[0]);
    two.pump(now);
    let alice = two.shards[0].participant_by_conn(1).unwrap();
    let (mid, sid) = alice.media.published.iter().next().unwrap();
    (*mid, sid.to_string())
}

#[test]
fn participants_on_two_shards_see_each_other_and_subscribe_across() {
    let t0 = crate::clock::now().mono;
    let mut two = TwoShards::new(t0);
    // alice (home) heard of bob through his proxy there.
    let out0 = two.take_out(0);
    assert_eq!(updates_about(&out0, 1, "bob").len(), 1);
    assert!(out0
        .iter()
        .all(|o| !is_proxy(o.conn()) || o.conn() == proxy_conn(2)));
    assert_eq!(
        two.shards[0].participant_count(),
        1,
        "proxies are not counted"
    );
    assert_eq!(two.shards[1].participant_count(), 1);
    assert_eq!(
        (two.shards[0].len(), two.shards[1].len()),
        (1, 0),
        "one room"
    );

    let (_, sid) = alice_publishes(&mut two, Vec::new(), t0);
    // bob auto-subscribes to the proxy's track on his own shard, and hears of it.
    let bob = two.shards[1].participant_by_conn(2).unwrap();
    assert!(bob.media.downtracks.contains_key(&sid), "bob subscribed");
    let out1 = two.take_out(1);
    let seen = updates_about(&out1, 2, "alice");
    assert!(seen.iter().any(|p| p.tracks.iter().any(|t| t.sid == sid)));

    // Webhooks come from each participant's own shard, room ones from the home.
    let events0 = two.shards[0].take_events();
    let events1 = two.shards[1].take_events();
    assert!(events0
        .iter()
        .all(|e| !matches!(e, RoomEvent::ParticipantJoined(_, p) if p.identity == "bob")));
    assert!(events1
        .iter()
        .any(|e| matches!(e, RoomEvent::ParticipantJoined(_, p) if p.identity == "bob")));
    assert!(!events1
        .iter()
        .any(|e| matches!(e, RoomEvent::RoomStarted(_) | RoomEvent::TrackPublished(..))));
}

#[test]
fn packets_relay_once_per_shard_and_keyframe_asks_travel_back() {
    let t0 = crate::clock::now().mono;
    let mut two = TwoShards::new(t0);
    let (mid, sid) = alice_publishes(&mut two, Vec::new(), t0);
    // bob's downtrack as negotiated (its mid on his subscriber PC).
    let down_mid = Mid::from("9");
    two.shards[1]
        .participant_by_conn(2)
        .and_then(|p| p.media.downtracks.get_mut(&sid))
        .unwrap()
        .mid = Some(down_mid);

    let mut touched = Vec::new();
    two.shards[0].forward_rtp(1, video_packet(mid, 1, false), t0, &mut touched);
    let mut relays: Vec<_> = two.shards[0].relays().drain(..).collect();
    assert_eq!(relays.len(), 1, "one copy for the one other shard");
    let relayed = relays.pop().unwrap();
    assert_eq!((relayed.shard, relayed.publisher), (1, 1));

    // On shard 1 bob waits for a keyframe: the ask goes to alice's shard, once per
    // interval however many packets come.
    let forward = |two: &mut TwoShards, seq, at| {
        two.shards[1].begin_batch();
        two.shards[1].forward_relayed(1, video_packet(mid, seq, false), at);
        two.shards[1].end_batch(at, &mut Vec::new(), &mut Vec::new());
    };
    forward(&mut two, 1, t0);
    forward(&mut two, 2, t0 + Duration::from_millis(10));
    let news = two.shards[1].take_spread();
    let asks: Vec<_> = news
        .iter()
        .filter(|n| matches!(n.msg, SpreadMsg::Keyframe { .. }))
        .collect();
    assert_eq!(asks.len(), 1, "{news:?}");
    assert_eq!(asks[0].to, SpreadTo::HostOf(1));
    match &asks[0].msg {
        SpreadMsg::Keyframe {
            publisher, mid: m, ..
        } => assert_eq!((*publisher, *m), (1, mid)),
        other => panic!("{other:?}"),
    }
    forward(&mut two, 3, t0 + Duration::from_millis(400));
    let again = two.shards[1].take_spread();
    assert_eq!(again.len(), 1, "asked again after the interval: {again:?}");

    // The home asks alice's publisher PC (its session refuses before ICE: counted).
    let before = two.shards[0].counters;
    let ask = again.into_iter().next().unwrap();
    two.shards[0].on_spread("r", 1, ask.msg, t0, &mut Vec::new());
    let after = two.shards[0].counters;
    assert!(
        after.keyframe_requests + after.keyframe_request_failures
            > before.keyframe_requests + before.keyframe_request_failures
    );
    // Relayed packets are never relayed again.
    assert!(two.shards[1].relays().is_empty());
}

#[test]
fn dynacast_counts_subscribers_on_the_other_shard() {
    let t0 = crate::clock::now().mono;
    let mut two = TwoShards::new(t0);
    let layer = |q: lk::VideoQuality, w, h| lk::VideoLayer {
        quality: q as i32,
        width: w,
        height: h,
        ..Default::default()
    };
    let layers = vec![
        layer(lk::VideoQuality::Low, 320, 180),
        layer(lk::VideoQuality::Medium, 640, 360),
        layer(lk::VideoQuality::High, 1280, 720),
    ];
    let (_, sid) = alice_publishes(&mut two, layers, t0);
    let enabled = |out: &[Outbound]| -> Option<Vec<i32>> {
        messages_for(out, 1)
            .into_iter()
            .filter_map(|m| match m {
                Resp::SubscribedQualityUpdate(u) if u.track_sid == sid => Some(
                    (u.subscribed_codecs[0].qualities.iter())
                        .filter(|q| q.enabled)
                        .map(|q| q.quality)
                        .collect(),
                ),
                _ => None,
            })
            .next_back()
    };
    // alice has no subscriber on her shard; bob's on the other asks for HIGH.
    let out0 = two.take_out(0);
    assert_eq!(
        enabled(&out0),
        Some(vec![lk::VideoQuality::High as i32]),
        "the layer bob wants stays on"
    );
    // bob leaves: nobody on any shard wants a layer any more.
    two.shards[1].disconnect(2, t0, &mut Vec::new());
    two.pump(t0);
    let out0 = two.take_out(0);
    assert_eq!(enabled(&out0), Some(vec![]));
    let gone = updates_about(&out0, 1, "bob");
    assert_eq!(
        gone.last().map(|p| p.state),
        Some(lk::participant_info::State::Disconnected as i32)
    );
    assert!(two.shards[0].participant_by_conn(proxy_conn(2)).is_none());
}

#[test]
fn data_crosses_shards_and_copies_close_quietly() {
    let t0 = crate::clock::now().mono;
    let mut two = TwoShards::new(t0);
    let packet = lk::DataPacket {
        value: Some(lk::data_packet::Value::User(lk::UserPacket {
            payload: b"hi".to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let before = two.shards[1].counters.data_packets;
    super::fuzzing::relay_data(
        &mut two.shards[0],
        1,
        "_reliable",
        &prost::Message::encode_to_vec(&packet),
    );
    two.pump(t0);
    assert_eq!(two.shards[1].counters.data_packets, before + 1);

    // bob leaves; the copy closes without room webhooks once its departure is due,
    // while the home keeps the room for alice.
    two.shards[1].disconnect(2, t0, &mut Vec::new());
    two.pump(t0);
    let later = t0 + Duration::from_secs(60);
    assert_eq!(two.shards[1].expire(later), ["r"]);
    assert!(two.shards[0].expire(later).is_empty());
    let events = two.shards[1].take_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, RoomEvent::RoomFinished(_))),
        "{events:?}"
    );
}

#[test]
fn a_shard_without_subscribers_of_a_track_stops_getting_its_packets() {
    let t0 = crate::clock::now().mono;
    let mut two = TwoShards::new(t0);
    let (mid, sid) = alice_publishes(&mut two, Vec::new(), t0);
    let relayed = |two: &mut TwoShards, seq| {
        let mut touched = Vec::new();
        two.shards[0].forward_rtp(1, video_packet(mid, seq, false), t0, &mut touched);
        two.shards[0].relays().drain(..).count()
    };
    assert_eq!(relayed(&mut two, 1), 1);
    // bob unsubscribes: the next relayed packet finds nobody on shard 1, which says so.
    let unsubscribe = lk::UpdateSubscription {
        track_sids: vec![sid.clone()],
        subscribe: false,
        ..Default::default()
    };
    let req =
        super::negotiation_tests::request(lk::signal_request::Message::Subscription(unsubscribe));
    two.shards[1].signal(2, req, t0, &mut Vec::new());
    two.shards[1].begin_batch();
    two.shards[1].forward_relayed(1, video_packet(mid, 2, false), t0);
    two.shards[1].end_batch(t0, &mut Vec::new(), &mut Vec::new());
    two.pump(t0);
    assert_eq!(relayed(&mut two, 3), 0, "not sent where nobody subscribes");
    // He subscribes again: shard 1 wants the track again.
    let subscribe = lk::UpdateSubscription {
        track_sids: vec![sid],
        subscribe: true,
        ..Default::default()
    };
    let req =
        super::negotiation_tests::request(lk::signal_request::Message::Subscription(subscribe));
    two.shards[1].signal(2, req, t0, &mut Vec::new());
    two.pump(t0);
    assert_eq!(relayed(&mut two, 4), 1);
}

#[test]
fn deleting_a_spread_room_closes_each_participant_once_and_finishes_once() {
    let t0 = crate::clock::now().mono;
    let mut two = TwoShards::new(t0);
    two.shards[0].take_events();
    two.shards[1].take_events();
    // RoomService DeleteRoom reaches every shard hosting the room.
    let mut closes = Vec::new();
    for shard in &mut two.shards {
        let op = super::RoomOp::Delete { room: "r".into() };
        shard.apply(op, t0, 0, &mut closes).unwrap();
    }
    let mut left = Vec::new();
    let mut finished = 0;
    for shard in &mut two.shards {
        for e in shard.take_events() {
            match e {
                RoomEvent::ParticipantLeft(_, p) => left.push(p.identity),
                RoomEvent::RoomFinished(_) => finished += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    left.sort();
    assert_eq!(left, ["alice", "bob"]);
    assert_eq!(finished, 1);
    let mut closed: Vec<u64> = closes.iter().map(|o| o.conn()).collect();
    closed.sort();
    assert_eq!(closed, [1, 2], "each real connection closed once, no proxy");
}

#[test]
fn a_copy_made_home_after_everyone_left_does_not_finish_the_room_again() {
    let t0 = crate::clock::now().mono;
    let mut two = TwoShards::new(t0);
    two.shards[0].disconnect(1, t0, &mut Vec::new());
    two.shards[1].disconnect(2, t0, &mut Vec::new());
    two.pump(t0);
    let later = t0 + Duration::from_secs(60);
    let finished = |rooms: &mut Rooms| {
        (rooms.take_events().iter())
            .filter(|e| matches!(e, RoomEvent::RoomFinished(_)))
            .count()
    };
    // The home closes first and finishes the room; the control thread then makes the
    // copy, still waiting for its own close, the home (`Directory::remove`).
    assert_eq!(two.shards[0].expire(later), ["r"]);
    assert_eq!(finished(&mut two.shards[0]), 1);
    two.shards[1].set_peers("r", vec![], true, None, later);
    assert_eq!(two.shards[1].expire(later), ["r"]);
    assert_eq!(
        finished(&mut two.shards[1]),
        0,
        "the room finished once, at its home"
    );
}

#[test]
fn a_copy_made_home_with_participants_carries_the_room_on() {
    let t0 = crate::clock::now().mono;
    let mut two = TwoShards::new(t0);
    two.shards[0].disconnect(1, t0, &mut Vec::new());
    two.pump(t0);
    // bob (on the copy) stays; were the home to go, the copy would become the home and
    // finish the room itself once bob is gone too.
    two.shards[1].set_peers("r", vec![], true, None, t0);
    let later = t0 + Duration::from_secs(60);
    assert!(two.shards[1].expire(later).is_empty(), "bob is still there");
    two.shards[1].disconnect(2, later, &mut Vec::new());
    let much_later = later + Duration::from_secs(60);
    assert_eq!(two.shards[1].expire(much_later), ["r"]);
    let events = two.shards[1].take_events();
    let finished = events
        .iter()
        .filter(|e| matches!(e, RoomEvent::RoomFinished(_)));
    assert_eq!(finished.count(), 1);
}
