//! Which PCs negotiate transport-wide congestion control (TWCC): those that carry the
//! client's media, so that the client gets our feedback for its own estimate; not
//! those that only carry media to the client (see `peer::negotiates_transport_cc`).

use str0m::media::{Direction, MediaKind};

use super::harness::*;
use super::PeerRole;

const TWCC_URI: &str = "transport-wide-cc";

fn client_offer_with_video(pair: &mut Pair, direction: Direction) -> String {
    let mut api = pair.client.sdp_api();
    api.add_channel("_reliable".into());
    let (stream, track) = match direction {
        Direction::SendOnly => (Some("s".into()), Some("v".into())),
        _ => (None, None),
    };
    api.add_media(MediaKind::Video, direction, stream, track, None);
    let (offer, pending) = api.apply().expect("offer");
    pair.client_round(offer, pending).0
}

#[test]
fn a_subscriber_pc_offers_no_twcc_and_media_still_flows() {
    let (mut pair, offer) = subscriber();
    assert!(!offer.contains(TWCC_URI), "{offer}");
    let mid = pair.server.send_track_mid("TR_def").expect("negotiated");
    let written = server_write_video(&mut pair, mid, 5, 100);
    let got = client_rtp(&mut pair, mid);
    assert_eq!(got.len(), written.len(), "every packet arrives");
}

#[test]
fn a_publisher_pc_answers_with_twcc() {
    let mut pair = Pair::new(PeerRole::Publisher);
    let answer = client_offer_with_video(&mut pair, Direction::SendOnly);
    assert!(answer.contains(TWCC_URI), "{answer}");
}

#[test]
fn a_single_pc_keeps_twcc_only_for_a_client_that_may_publish() {
    let mut publisher = Pair::with_publishing(PeerRole::Single, true);
    let answer = client_offer_with_video(&mut publisher, Direction::SendOnly);
    assert!(answer.contains(TWCC_URI), "{answer}");

    let mut viewer = Pair::with_publishing(PeerRole::Single, false);
    let answer = client_offer_with_video(&mut viewer, Direction::RecvOnly);
    assert!(!answer.contains(TWCC_URI), "{answer}");
}
