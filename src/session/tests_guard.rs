//! A panic inside str0m ends only its own session. The pattern here is one a lossy,
//! flooding publisher produces on a starved shard: a backlog of ~2000 packets, half of
//! them lost in bursts, read at one instant so that one TWCC feedback report must
//! cover them all. str0m 0.25's `TwccRecvRegister::build_report` then runs out of
//! report space in the middle of a vector chunk and trips
//! `assert!(interims.is_empty())` (twcc.rs:451).

use std::time::Duration;

use str0m::format::Codec;

use super::harness::{client_pt, publisher, vp8_payload};
use super::{SessionError, SessionEvent};

/// The loss pattern: before each packet a burst of 1..=16 lost packets starts with
/// probability 10 %, drawn from xorshift64 with this seed (found by replaying
/// str0m's report chunking over seeds until one overflows a report in the middle of
/// a vector chunk; about half of all packets are lost).
const SEED: u64 = 1730;
const PACKETS: u64 = 2000;
const BURST_PER_MILLE: u64 = 100;
const MAX_BURST: u64 = 16;

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn a_panic_in_str0m_poisons_only_that_session() {
    let (mut p, _) = publisher();
    let (mut other, _) = publisher();
    let vp8 = client_pt(&p.pair.client, p.video, Codec::Vp8);
    let now = p.pair.now;
    {
        let mut api = p.pair.client.direct_api();
        let tx = api
            .stream_tx_by_mid(p.video, None)
            .expect("client stream_tx");
        for i in 0..PACKETS {
            let payload = vp8_payload(1 + i as usize % 7);
            tx.write_rtp(
                str0m::rtp::RtpWrite::new(vp8, (100 + i).into(), 3000 * i as u32, now, payload)
                    .marker(true),
            );
        }
    }
    // The client releases its queue over several polls.
    let mut rtp = Vec::new();
    for _ in 0..10_000 {
        p.pair
            .client
            .handle_input(str0m::Input::Timeout(now))
            .expect("client timeout");
        p.pair.drain_client();
        let got = p.pair.take_to_server();
        if got.is_empty() && rtp.len() >= PACKETS as usize {
            break;
        }
        // Only RTP (not STUN, DTLS or RTCP, PT 200..=207) carries a transport-wide
        // sequence number.
        rtp.extend(got.into_iter().filter(|t| {
            (128..=191).contains(&t.contents[0]) && !(200..=207).contains(&t.contents[1])
        }));
    }
    assert_eq!(rtp.len(), PACKETS as usize);
    // A starved shard reads a backlog the kernel already thinned out (bursts of loss)
    // in one go: every packet gets the same receive time, so one feedback report has
    // to cover them all.
    let at = now + Duration::from_millis(100);
    let mut rng = SEED;
    let mut lose = 0;
    for t in &rtp {
        if lose == 0 && next(&mut rng) % 1000 < BURST_PER_MILLE {
            lose = 1 + next(&mut rng) % MAX_BURST;
        }
        if lose > 0 {
            lose -= 1;
            continue;
        }
        let _ = p
            .pair
            .server
            .handle_receive(at, t.source, t.destination, &t.contents);
    }
    let mut panicked = None;
    let mut out = Vec::new();
    let mut events = Vec::new();
    for ms in (0..2000).step_by(10) {
        let when = at + Duration::from_millis(ms);
        let r = p
            .pair
            .server
            .handle_timeout(when)
            .and_then(|_| p.pair.server.drain(&mut out, &mut events));
        if let Err(e) = r {
            panicked = Some(e);
            break;
        }
    }
    // str0m 0.25 panics on this pattern (if an upgrade fixes that, this test should
    // keep its containment half with an injected panic instead).
    let Some(SessionError::Panicked(why)) = panicked else {
        panic!("expected str0m's TWCC assertion, got {panicked:?}");
    };
    assert!(why.contains("interims.is_empty()"), "{why}");
    assert!(p.pair.server.is_poisoned());
    // Every later call fails the same way instead of touching str0m again.
    let later = at + Duration::from_secs(3);
    assert!(matches!(
        p.pair.server.handle_timeout(later),
        Err(SessionError::Panicked(w)) if w == why
    ));
    assert!(matches!(
        p.pair.server.drain(&mut out, &mut events),
        Err(SessionError::Panicked(_))
    ));
    // The other session on the same thread goes on.
    other.pair.run_for(Duration::from_secs(1));
    assert!(other.pair.server.is_connected());
    assert!(!other
        .pair
        .server_events
        .iter()
        .any(|e| matches!(e, SessionEvent::Disconnected)));
}
