//! The least user-space work a forwarded packet could cost per downtrack if corelay
//! did its own egress instead of str0m's `write_rtp` + tick + drain: the RTP header
//! with the two extensions a subscriber negotiates for congestion control
//! (transport-wide sequence number, abs-send-time), the payload's reference kept for
//! resends in a ring, and AES-256-GCM (RFC 7714, the profile browsers get) straight
//! into a batch buffer that a `sendmmsg`/GSO train would send, through corelay's own
//! SRTP (`session::SrtpSender`, the same aws-lc-rs cipher str0m uses). No allocations.
//!
//! This is a bound, not a design: a real egress also needs sender reports, NACK
//! handling and its own reading of the subscribers' feedback; the keys it would have
//! (`PeerSession::srtp_keys`). Compare with `media`'s `fan_out_munge_srtp`, the same job through str0m;
//! what the kernel adds per packet is measured by `loadtest` (its kernel/user split).

use std::sync::Arc;
use std::time::{Duration, Instant};

use corelay::session::{SrtpKeys, SrtpProfile, SrtpSender};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

/// RTP header (12) + one-byte extension block (4 + 8: TWCC 1+2, abs-send-time 1+3, pad).
const HEADER: usize = 24;
const TAG: usize = 16;
/// Resend history per downtrack (str0m keeps 1024 for video).
const HISTORY: usize = 1024;
const PAYLOAD: usize = 1100;

/// One subscriber's video stream, as an own egress would keep it.
struct Downtrack {
    ssrc: u32,
    seq: u16,
    roc: u32,
    twcc: u16,
    srtp: SrtpSender,
    history: Vec<Option<Arc<[u8]>>>,
}

/// Made-up DTLS-SRTP keying material for AES-256-GCM (two keys, two salts).
fn material(i: u32) -> Vec<u8> {
    let mut m = vec![i as u8; 2 * (32 + 12)];
    m[..4].copy_from_slice(&i.to_be_bytes());
    m
}

impl Downtrack {
    fn new(i: u32) -> Downtrack {
        let keys = SrtpKeys::new(material(i), SrtpProfile::AEAD_AES_256_GCM, false);
        Downtrack {
            ssrc: 0x1000_0000 + i,
            seq: (i as u16).wrapping_mul(997),
            roc: 0,
            twcc: 0,
            srtp: SrtpSender::new(&keys).expect("AES-256-GCM"),
            history: vec![None; HISTORY],
        }
    }

    /// Appends one SRTP packet for `payload` to `out`.
    fn send(&mut self, payload: &Arc<[u8]>, timestamp: u32, abs_send: u32, out: &mut Vec<u8>) {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.roc = self.roc.wrapping_add(1);
        }
        self.twcc = self.twcc.wrapping_add(1);
        self.history[self.seq as usize % HISTORY] = Some(payload.clone());

        let mut header = [0u8; HEADER];
        header[0] = 0x90; // V=2, X=1
        header[1] = 0x80 | 96; // marker, PT 96
        header[2..4].copy_from_slice(&self.seq.to_be_bytes());
        header[4..8].copy_from_slice(&timestamp.to_be_bytes());
        header[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        header[12..14].copy_from_slice(&[0xBE, 0xDE]);
        header[14..16].copy_from_slice(&2u16.to_be_bytes());
        header[16] = (3 << 4) | 1; // transport-wide seq, 2 bytes
        header[17..19].copy_from_slice(&self.twcc.to_be_bytes());
        header[19] = (2 << 4) | 2; // abs-send-time, 3 bytes
        header[20..23].copy_from_slice(&abs_send.to_be_bytes()[1..]);
        header[23] = 0;
        self.srtp
            .protect(&header, payload, self.roc, out)
            .expect("AES-GCM seal");
    }
}

/// Wall time, to measure with (the clock rule in clippy.toml is for the code under test).
#[allow(clippy::disallowed_methods)]
fn wall() -> Instant {
    Instant::now()
}

fn egress_lean(c: &mut Criterion) {
    let payload: Arc<[u8]> = vec![0x10; PAYLOAD].into();
    let mut group = c.benchmark_group("egress_lean_srtp");
    for n in [1usize, 10, 100] {
        let mut downtracks: Vec<Downtrack> = (0..n as u32).map(Downtrack::new).collect();
        let mut out: Vec<u8> = Vec::with_capacity(n * (HEADER + PAYLOAD + TAG));
        let mut timestamp = 0u32;
        // A str0m peer accepting these packets is `session::tests_srtp`'s business.
        downtracks[0].send(&payload, timestamp, 0, &mut out);
        assert_eq!(out.len(), HEADER + PAYLOAD + TAG);
        let (mut timed, mut allocated, mut packets) = (Duration::ZERO, 0u64, 0u64);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let start = wall();
                let before = allocations();
                for _ in 0..iters {
                    timestamp = timestamp.wrapping_add(3000);
                    out.clear();
                    for d in downtracks.iter_mut() {
                        d.send(&payload, timestamp, timestamp >> 4, &mut out);
                    }
                    black_box(&out);
                }
                let took = start.elapsed();
                timed += took;
                allocated += allocations() - before;
                packets += iters;
                took
            })
        });
        assert_eq!(out.len(), n * (HEADER + PAYLOAD + TAG));
        if packets > 0 {
            let per = (packets * n as u64) as f64;
            println!(
                "egress_lean_srtp/{n}: {:.0} ns and {:.2} heap allocations per downtrack \
                 (header, resend ring, AES-256-GCM into a batch buffer; mean of {packets} packets)",
                timed.as_nanos() as f64 / per,
                allocated as f64 / per
            );
        }
    }
    group.finish();
}

criterion_group!(benches, egress_lean);
criterion_main!(benches);
