//! The resend window of the video we send (`resend_ring`): a packet lost on the way to
//! the subscriber comes again when its NACK arrives within the window.

use std::sync::Arc;
use std::time::Duration;

use str0m::format::Codec;

use super::harness::*;

/// Sends a packet every 20 ms, the 10th lost on the way; the subscriber's NACKs are
/// lost too for `deaf` after the loss, and the packets go on for a second after that.
/// Whether the lost packet arrived in the end.
fn lost_packet_arrives(deaf: Duration) -> bool {
    let (mut sub, _) = subscriber();
    let mid = sub.server.send_track_mid("TR_def").expect("mid");
    let pt = sub.server.payload_type_for(Codec::Vp8).expect("vp8");
    let gap = Duration::from_millis(20);
    let packets = 10 + (deaf + Duration::from_secs(1)).as_millis() as u64 / 20;
    let mut deaf_until = None;
    for i in 0..packets {
        let payload: Arc<[u8]> = vp8_payload(i as usize).into();
        let now = sub.now;
        (sub.server)
            .write_rtp(mid, pt, (100 + i, 3000 * i as u32, true), payload, now)
            .expect("write_rtp");
        // A written packet leaves at the session's next timeout.
        sub.server.handle_timeout(now).expect("timeout");
        sub.drain_server();
        if i == 10 {
            sub.lose_to_client();
            deaf_until = Some(sub.now + deaf);
        }
        sub.lose_to_server = deaf_until.is_some_and(|t| sub.now < t);
        sub.run_for(gap);
    }
    let lost = (100 + 10) as u16;
    client_rtp(&mut sub, mid)
        .iter()
        .any(|(seq, _)| *seq == lost)
}

#[test]
fn a_nack_within_the_window_gets_the_packet_again() {
    assert!(lost_packet_arrives(Duration::ZERO));
    // str0m's receiver (the client here) stops asking after about half a second, so
    // what the window holds beyond that is not seen here; libwebrtc asks for up to
    // ten round trips.
    assert!(lost_packet_arrives(Duration::from_millis(400)));
}
