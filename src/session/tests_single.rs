//! A single peer connection (`/rtc/v1`): the client offers its own media, its data
//! channel and `recvonly` lines; the server answers, sends on those lines and writes
//! data on the client's channel.

use std::time::Duration;

use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::Event;

use super::harness::*;
use super::{PeerRole, SectionsWanted};

/// One offer/answer round started by the client: the answer SDP.
fn client_round(
    pair: &mut Pair,
    offer: SdpOffer,
    pending: str0m::change::SdpPendingOffer,
) -> String {
    pair.client_round(offer, pending).0
}

fn section(sdp: &str, mid: Mid) -> &str {
    let at = sdp.find(&format!("a=mid:{mid}\r\n")).expect("mid in sdp");
    let start = sdp[..at].rfind("m=").unwrap_or(0);
    let end = sdp[at..].find("m=").map_or(sdp.len(), |e| at + e);
    &sdp[start..end]
}

#[test]
fn subscribed_tracks_ride_on_the_clients_recvonly_lines() {
    let mut pair = Pair::new(PeerRole::Single);
    pair.server
        .add_send_track(MediaKind::Video, "PA_p|TR_v", "TR_v")
        .unwrap();
    pair.server
        .add_send_track(MediaKind::Video, "PA_p|TR_w", "TR_w")
        .unwrap();
    // One recvonly video line in the join offer: one track fits, one more is asked for.
    let mut api = pair.client.sdp_api();
    api.add_channel("_reliable".into());
    api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some("s".into()),
        Some("a".into()),
        None,
    );
    let first = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().expect("offer");
    let answer = client_round(&mut pair, offer, pending);
    assert_eq!(pair.server.send_track_mid("TR_v"), Some(first));
    assert!(
        section(&answer, first).contains("a=msid:PA_p|TR_v TR_v\r\n"),
        "{answer}"
    );
    assert!(section(&answer, first).contains("a=sendonly\r\n"));
    assert_eq!(
        pair.server.sections_wanted(),
        Some(SectionsWanted {
            audios: 0,
            videos: 1
        })
    );
    pair.trickle();
    pair.connect();

    // The client adds the asked-for line and offers again.
    let mut api = pair.client.sdp_api();
    let second = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().expect("second offer");
    let answer = client_round(&mut pair, offer, pending);
    assert_eq!(pair.server.send_track_mid("TR_w"), Some(second));
    assert!(section(&answer, second).contains("a=msid:PA_p|TR_w TR_w"));
    assert_eq!(pair.server.sections_wanted(), None);
    assert_eq!(pair.server.send_track_mids().len(), 2);

    // Media on the second line and data on the client's own channel reach the client.
    let written = server_write_video(&mut pair, second, 5, 10);
    let got: Vec<Vec<u8>> = client_rtp(&mut pair, second)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(got, written);
    let ok = pair.run_until(Duration::from_secs(2), |p| {
        p.server_events.iter().any(
            |e| matches!(e, super::SessionEvent::ChannelOpen { label } if label == "_reliable"),
        )
    });
    assert!(ok, "the client's channel opens on the server");
    let sent = pair
        .server
        .send_data("_reliable", true, b"to client")
        .unwrap();
    assert_eq!(sent, super::DataSent::Sent);
    pair.drain_server();
    pair.run_for(Duration::from_millis(200));
    assert!(pair
        .client_events
        .iter()
        .any(|e| matches!(e, Event::ChannelData(d) if d.data == b"to client")));

    // Unsubscribed: the line is answered inactive at the client's next offer.
    pair.server.remove_send_track("TR_v").unwrap();
    assert_eq!(
        pair.server.sections_wanted(),
        Some(SectionsWanted::default())
    );
    let mut api = pair.client.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().expect("third offer");
    let answer = client_round(&mut pair, offer, pending);
    assert!(
        section(&answer, first).contains("a=inactive\r\n"),
        "{answer}"
    );
    assert!(!section(&answer, first).contains("a=msid"));
    assert_eq!(pair.server.send_track_mid("TR_v"), None);
}
