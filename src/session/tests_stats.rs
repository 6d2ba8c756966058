//! NACK and loss counts out of str0m's media stats, through the in-memory pair: gaps in
//! the sequence numbers play lost packets.

use std::sync::Arc;
use std::time::Duration;

use str0m::format::Codec;

use super::harness::*;
use super::{Flow, MediaKind, SessionEvent, StreamCounts};

fn counts(events: &[SessionEvent], flow: Flow) -> (u64, u64) {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::StreamCounts(c) if c.flow == flow => Some(*c),
            _ => None,
        })
        .inspect(|c: &StreamCounts| assert_eq!(c.kind, Some(MediaKind::Video)))
        .fold((0, 0), |(n, l), c| (n + c.nacks, l + c.lost))
}

#[test]
fn publisher_gaps_are_nacked_and_counted_lost() {
    let (mut p, _) = publisher();
    let vp8 = client_pt(&p.pair.client, p.video, Codec::Vp8);
    // Every fifth packet never leaves the client.
    for i in (0..150u64).filter(|i| i % 5 != 4) {
        let payload = vp8_payload(i as usize);
        client_write(&mut p.pair, p.video, vp8, i, 3000 * i as u32, payload);
        p.pair.run_for(Duration::from_millis(20));
    }
    p.pair.run_for(Duration::from_secs(2));
    let (nacks, lost) = counts(&p.pair.server_events, Flow::Ingress);
    assert!(nacks > 0, "the server asked for the missing packets");
    // 30 are missing; the estimate from our reports' fractions comes close.
    assert!((20..=40).contains(&lost), "estimated lost: {lost}");
    assert_eq!(counts(&p.pair.server_events, Flow::Egress), (0, 0));
}

#[test]
fn subscriber_nacks_and_reported_loss_are_counted() {
    let (mut sub, _) = subscriber();
    let mid = sub.server.send_track_mid("TR_def").unwrap();
    let pt = sub.server.payload_type_for(Codec::Vp8).expect("vp8");
    for i in 0..150u64 {
        // Sequence numbers skip one after every four: the client sees those as lost.
        let seq = 1 + i + i / 4;
        let payload: Arc<[u8]> = vp8_payload(i as usize).into();
        let now = sub.now;
        (sub.server)
            .write_rtp(mid, pt, (seq, 3000 * i as u32, true), payload, now)
            .expect("write_rtp");
        sub.drain_server();
        sub.run_for(Duration::from_millis(20));
    }
    sub.run_for(Duration::from_secs(2));
    let (nacks, lost) = counts(&sub.server_events, Flow::Egress);
    assert!(nacks > 0, "the subscriber's NACKs were counted");
    assert_eq!(
        lost,
        149 / 4,
        "the subscriber's receiver reports count every gap"
    );
    assert_eq!(counts(&sub.server_events, Flow::Ingress), (0, 0));
}
