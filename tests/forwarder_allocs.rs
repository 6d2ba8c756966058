//! The forwarder's per-packet decisions allocate nothing on the steady path: one
//! packet to 200 downtracks (audio, single-layer video, simulcast video on its
//! layer, RED unwrapped for subscribers without RED aside), counted by a global
//! allocator in this test binary. What a packet's str0m write and SRTP cost in
//! allocations is printed by `cargo bench --bench media` (`fan_out_munge_srtp`).

use std::sync::Arc;
use std::time::Duration;

use corelay::session::{Codec, MediaKind, Mid, PayloadType, Rid, RtpIn};
use corelay::sfu::downtrack::DownTrack;
use corelay::sfu::forwarder::FanOut;
use corelay::sfu::layers::LayerState;

#[path = "../benches/common/counting.rs"]
mod counting;

fn downtracks(kind: MediaKind, n: usize, target: Option<&str>) -> Vec<DownTrack> {
    (0..n)
        .map(|i| {
            let mut layers = LayerState::default();
            layers.order = ["q", "h", "f"].map(String::from).to_vec();
            let mut d = DownTrack::new(kind, layers, target.map(String::from));
            d.mid = Some(Mid::from(i.to_string().as_str()));
            d
        })
        .collect()
}

fn packet(codec: Codec, seq: u64, rid: Option<&str>, payload: &Arc<[u8]>) -> RtpIn {
    RtpIn {
        mid: Mid::from("0"),
        rid: rid.map(Rid::from),
        ssrc: 4242,
        pt: PayloadType::default_for(codec).expect("str0m knows the codec"),
        codec,
        seq,
        timestamp: (seq * 3000) as u32,
        marker: seq.is_multiple_of(4),
        payload: payload.clone(),
        audio_level: Some(-30),
        // Every 50th packet starts a keyframe, as a 1.7 s GOP at 30 fps would.
        is_keyframe: seq.is_multiple_of(50),
        vp9: None,
    }
}

/// Fans `packets` out to `downs` and returns (allocations, packets written).
fn run(
    fan: &mut FanOut,
    downs: &mut [DownTrack],
    packets: &[RtpIn],
    t0: std::time::Instant,
    subscribers_take_red: bool,
) -> (u64, usize) {
    let mut written = 0;
    let before = counting::thread_allocations();
    for rtp in packets {
        let now = t0 + Duration::from_millis(rtp.seq * 3);
        fan.begin();
        for d in downs.iter_mut() {
            if fan.decide(d, rtp, now, |_| subscribers_take_red).is_ok() {
                written += 1;
            }
        }
    }
    (counting::thread_allocations() - before, written)
}

#[test]
fn fanning_a_packet_out_allocates_nothing_on_the_steady_path() {
    let t0 = corelay::clock::mono();
    let payload: Arc<[u8]> = vec![0x55; 1100].into();
    let mut fan = FanOut::default();
    let cases: [(MediaKind, Codec, Option<&str>, Option<&str>); 3] = [
        (MediaKind::Audio, Codec::Opus, None, None),
        (MediaKind::Video, Codec::H264, None, None),
        (MediaKind::Video, Codec::H264, Some("h"), Some("h")),
    ];
    for (kind, codec, rid, target) in cases {
        let mut downs = downtracks(kind, 200, target);
        // Warm-up: the downtracks start on a keyframe, learn the layers they see and
        // size the reused buffers.
        let warm: Vec<RtpIn> = (0..=100)
            .map(|seq| packet(codec, seq, rid, &payload))
            .collect();
        let (_, warm_written) = run(&mut fan, &mut downs, &warm, t0, true);
        assert!(
            warm_written > 0,
            "{kind:?} {codec:?}: something was written"
        );
        let steady: Vec<RtpIn> = (101..=1100)
            .map(|seq| packet(codec, seq, rid, &payload))
            .collect();
        let (allocated, written) = run(&mut fan, &mut downs, &steady, t0, true);
        assert_eq!(
            written,
            1000 * 200,
            "{kind:?} {codec:?} {rid:?}: every packet written"
        );
        assert_eq!(
            allocated, 0,
            "{kind:?} {codec:?} {rid:?}: allocations for 1000 packets × 200 downtracks"
        );
    }
}

/// RED audio to subscribers without RED: the primary block is taken out of each
/// packet once (one allocation per packet) and shared by every downtrack.
#[test]
fn red_is_unwrapped_with_one_allocation_per_packet_whatever_the_fan_out() {
    let t0 = corelay::clock::mono();
    // One redundant block of 3 bytes, then a primary block of 100.
    let mut red = vec![0x80 | 111, 0x0F, 0x00, 0x03, 111, 1, 2, 3];
    red.extend([7u8; 100]);
    let payload: Arc<[u8]> = red.into();
    let packets: Vec<RtpIn> = (0..1000u64)
        .map(|seq| {
            let mut p = packet(Codec::Opus, seq, None, &payload);
            p.pt = p.pt.with_red(true);
            p
        })
        .collect();
    let mut fan = FanOut::default();
    let mut downs = downtracks(MediaKind::Audio, 200, None);
    run(&mut fan, &mut downs, &packets[..10], t0, false);
    let (allocated, written) = run(&mut fan, &mut downs, &packets[10..], t0, false);
    assert_eq!(written, 990 * 200);
    assert_eq!(allocated, 990, "one primary block per packet");
}
