//! A subscriber PC's ICE restart (a v0 resume): the offer brings a new ufrag, which the
//! session takes once the answer is in, and media flows again after it.

use std::time::Duration;

use super::harness::*;

#[test]
fn an_ice_restart_offers_a_new_ufrag_and_keeps_media_flowing() {
    let (mut pair, _) = subscriber();
    let before = pair.server.local_ufrag();
    pair.server.restart_ice();
    assert!(pair.server.has_queued_changes());
    let offer = pair.server_offer();
    // server_offer accepted the client's answer: the new ufrag is the session's now.
    let after = pair.server.local_ufrag();
    assert_ne!(before, after, "a restart renews the credentials");
    assert!(offer.contains(&format!("a=ice-ufrag:{after}")), "{offer}");
    assert_eq!(pair.server.restart_ufrag(), None, "settled with the answer");
    pair.trickle();
    let ok = pair.run_until(Duration::from_secs(10), |p| p.client.is_connected());
    assert!(ok, "reconnected after the restart");
    let mid = pair.server.send_track_mid("TR_def").expect("video mid");
    let written = server_write_video(&mut pair, mid, 5, 500);
    let got: Vec<Vec<u8>> = client_rtp(&mut pair, mid)
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| written.contains(p))
        .collect();
    assert_eq!(got.len(), written.len(), "media after the restart");
}
