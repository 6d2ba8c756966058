//! Signal ordering for publishing, driven through `Rooms` with a real str0m client
//! offer: the subscriber learns about a track (ParticipantUpdate) before the offer
//! that carries it, and the offer maps its mid to the track sid.

use std::net::SocketAddr;

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, RtcConfig};

use super::participant::JoinParams;
use super::room_ops::Outbound;
use super::rooms::Rooms;

pub(super) fn rooms() -> Rooms {
    super::fuzzing::rooms()
}

pub(super) fn join(identity: &str) -> JoinParams {
    super::fuzzing::join_params(identity)
}

/// Rooms with "alice" (conn 1) and "bob" (conn 2) joined to room "r", their join
/// messages cleared.
pub(super) fn alice_and_bob(now: std::time::Instant) -> Rooms {
    super::fuzzing::two_joined(now)
}

pub(super) fn request(message: Req) -> lk::SignalRequest {
    lk::SignalRequest {
        message: Some(message),
    }
}

/// What a browser would offer for one camera track whose MediaStreamTrack id is `cid`.
pub(super) fn client_offer(cid: &str) -> String {
    let now = crate::clock::now().mono;
    let mut client = RtcConfig::new().set_rtp_mode(true).build(now);
    let local: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    client
        .add_local_candidate(Candidate::host(local, "udp").unwrap())
        .unwrap();
    let mut api = client.sdp_api();
    api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some("stream".into()),
        Some(cid.into()),
        None,
    );
    let (offer, _pending) = api.apply().unwrap();
    offer.to_sdp_string()
}

/// `conn` announces `add` and offers its m-line (offer id 1), as a publishing SDK does.
pub(super) fn publish(
    rooms: &mut Rooms,
    conn: u64,
    add: lk::AddTrackRequest,
    now: std::time::Instant,
    out: &mut Vec<Outbound>,
) {
    let sdp = client_offer(&add.cid);
    rooms.signal(conn, request(Req::AddTrack(add)), now, out);
    let offer = lk::SessionDescription {
        r#type: "offer".into(),
        sdp,
        id: 1,
        ..Default::default()
    };
    rooms.signal(conn, request(Req::Offer(offer)), now, out);
}

pub(super) fn messages_for(out: &[Outbound], conn: u64) -> Vec<Resp> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Signal { conn: c, response } if *c == conn => response.message.clone(),
            _ => None,
        })
        .collect()
}

#[test]
fn track_update_reaches_subscriber_before_the_offer_that_carries_it() {
    let t0 = crate::clock::now().mono;
    let mut rooms = rooms();
    let mut out = Vec::new();
    rooms.join(1, &join("sub"), t0, 0, &mut out).unwrap();
    rooms.join(2, &join("pub"), t0, 0, &mut out).unwrap();
    // The subscriber has not answered its first offer (data channels) yet.
    out.clear();

    let add = lk::AddTrackRequest {
        cid: "cam-1".into(),
        name: "camera".into(),
        r#type: lk::TrackType::Video as i32,
        source: lk::TrackSource::Camera as i32,
        width: 640,
        height: 360,
        ..Default::default()
    };
    rooms.signal(2, request(Req::AddTrack(add)), t0, &mut out);
    let published = messages_for(&out, 2);
    let track = match &published[..] {
        [Resp::TrackPublished(r)] => r.track.clone().unwrap(),
        other => panic!("expected TrackPublished, got {other:?}"),
    };
    assert_eq!(published.len(), 1);
    assert!(track.sid.starts_with("TR_VC"), "{}", track.sid);

    out.clear();
    let offer = lk::SessionDescription {
        r#type: "offer".into(),
        sdp: client_offer("cam-1"),
        id: 7,
        ..Default::default()
    };
    rooms.signal(2, request(Req::Offer(offer)), t0, &mut out);
    match &messages_for(&out, 2)[..] {
        [Resp::Answer(a)] => assert_eq!(a.id, 7, "the answer echoes the offer id"),
        other => panic!("expected one Answer, got {other:?}"),
    }
    let to_sub = messages_for(&out, 1);
    let announced = to_sub.iter().any(|m| {
        matches!(m, Resp::Update(u)
            if u.participants.iter().any(|p| p.tracks.iter().any(|t| t.sid == track.sid)))
    });
    assert!(announced, "the subscriber hears about the track first");
    // The subscriber's first offer (data channels) is unanswered, so the track waits
    // for its answer; once answered, the next offer carries it.
    assert!(
        !to_sub.iter().any(|m| matches!(m, Resp::Offer(_))),
        "no second offer while one is outstanding"
    );
    out.clear();
    rooms.signal(
        1,
        request(Req::Answer(lk::SessionDescription {
            r#type: "answer".into(),
            sdp: "not an answer".into(),
            id: 1,
            ..Default::default()
        })),
        t0,
        &mut out,
    );
    let offers: Vec<lk::SessionDescription> = messages_for(&out, 1)
        .into_iter()
        .filter_map(|m| match m {
            Resp::Offer(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(
        offers.len(),
        1,
        "the queued track is offered after the answer"
    );
    let offer = &offers[0];
    assert_eq!(offer.id, 2);
    assert!(offer.mid_to_track_id.values().any(|sid| *sid == track.sid));
    let msid_line = offer
        .sdp
        .lines()
        .find(|l| l.starts_with("a=msid:"))
        .expect("msid line");
    assert!(
        msid_line.ends_with(&format!("|{0} {0}", track.sid)),
        "{msid_line}"
    );
}

/// A room where "pub" published a camera and "viewer" (no auto-subscribe) may or may
/// not subscribe; returns it with the track's sid.
fn published_room(viewer_can_subscribe: bool) -> (Rooms, String) {
    let t0 = crate::clock::now().mono;
    let mut rooms = rooms();
    let mut out = Vec::new();
    let mut viewer = join("viewer");
    viewer.auto_subscribe = false;
    viewer.permission.can_subscribe = viewer_can_subscribe;
    rooms.join(1, &viewer, t0, 0, &mut out).unwrap();
    rooms.join(2, &join("pub"), t0, 0, &mut out).unwrap();
    let add = lk::AddTrackRequest {
        cid: "cam-1".into(),
        r#type: lk::TrackType::Video as i32,
        source: lk::TrackSource::Camera as i32,
        ..Default::default()
    };
    publish(&mut rooms, 2, add, t0, &mut out);
    let sid = rooms.participant("r", "pub").unwrap().info.tracks[0]
        .sid
        .clone();
    (rooms, sid)
}

#[test]
fn update_subscription_needs_the_can_subscribe_grant() {
    let t0 = crate::clock::now().mono;
    for can_subscribe in [false, true] {
        let (mut rooms, sid) = published_room(can_subscribe);
        let mut out = Vec::new();
        let subscribe = lk::UpdateSubscription {
            track_sids: vec![sid],
            subscribe: true,
            ..Default::default()
        };
        rooms.signal(1, request(Req::Subscription(subscribe)), t0, &mut out);
        let viewer = rooms.participant("r", "viewer").unwrap();
        assert_eq!(
            !viewer.media.downtracks.is_empty(),
            can_subscribe,
            "a downtrack exactly when granted"
        );
        if !can_subscribe {
            assert!(viewer.media.subscriber.is_none(), "no subscriber PC");
            assert!(!messages_for(&out, 1)
                .iter()
                .any(|m| matches!(m, Resp::Offer(_))));
        }
    }
}

#[test]
fn an_offer_that_cannot_be_parsed_asks_for_a_full_reconnect() {
    let t0 = crate::clock::now().mono;
    let mut rooms = alice_and_bob(t0);
    let mut out = Vec::new();
    let garbage = lk::SessionDescription {
        r#type: "offer".into(),
        sdp: "v=0 but not an offer".into(),
        id: 1,
        ..Default::default()
    };
    rooms.signal(2, request(Req::Offer(garbage)), t0, &mut out);
    let leave = out.iter().find_map(|o| match o {
        Outbound::Close { conn: 2, leave } => Some(leave.clone()),
        _ => None,
    });
    let leave = leave.expect("bob is told to leave instead of waiting for an answer");
    assert_eq!(leave.action, lk::leave_request::Action::Reconnect as i32);
    assert_eq!(leave.reason, lk::DisconnectReason::StateMismatch as i32);
    assert!(
        !messages_for(&out, 2)
            .iter()
            .any(|m| matches!(m, Resp::Answer(_))),
        "no answer to garbage"
    );
    assert!(
        rooms.participant("r", "alice").is_ok(),
        "alice is untouched"
    );
    assert!(rooms.participant("r", "bob").is_err());
}
