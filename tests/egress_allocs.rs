//! A forwarded packet leaves a connected subscriber PC without a heap allocation once
//! warm: our own egress seals it into a buffer the shard gave back after its last send
//! (`session::packet_buffers`), keeps it for resends in a ring that has reached its
//! size, and str0m is not driven while it has nothing due. Counted by a global
//! allocator in this test binary, over the packets written while str0m was idle; what
//! str0m allocates when its own timers come round is printed by `cargo bench --bench
//! media`.

use std::sync::Arc;
use std::time::Duration;

use corelay::session::packet_buffers;

#[path = "../benches/common/counting.rs"]
mod counting;
#[path = "../benches/common/pair.rs"]
#[allow(dead_code)]
mod pair;

#[test]
fn own_egress_allocates_nothing_per_packet_once_warm() {
    let mut now = corelay::clock::now().mono;
    let mut down = pair::Downtrack::connect(&mut now);
    let payload: Arc<[u8]> = vec![0x10; 1100].into();
    let (mut out, mut events) = (Vec::with_capacity(64), Vec::with_capacity(64));
    let mut str0m_due = now;
    let (mut counted, mut allocated) = (0u64, 0u64);
    for seq in 1..=4000u64 {
        now += Duration::from_millis(1);
        // Warm: the resend ring holds its second of packets and the free list is full.
        let steady = seq > 2000 && now < str0m_due;
        let before = counting::thread_allocations();
        let server = &mut down.wire.server;
        let packet = (seq, (seq * 90) as u32, seq.is_multiple_of(4));
        server
            .write_rtp(down.mid, down.pt, packet, payload.clone(), now)
            .expect("write_rtp");
        server.handle_timeout(now).expect("timeout");
        str0m_due = server.drain(&mut out, &mut events).expect("drain");
        if steady {
            allocated += counting::thread_allocations() - before;
            counted += 1;
        }
        assert!(
            out.iter().any(|t| t.contents.len() > 1100),
            "the packet went"
        );
        // As the shard does once the datagrams are sent.
        for t in out.drain(..) {
            packet_buffers::give_back(t.contents);
        }
        events.clear();
    }
    assert!(counted > 1000, "most packets found str0m idle: {counted}");
    assert_eq!(allocated, 0, "allocations over {counted} packets");
}
