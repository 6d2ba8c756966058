//! Hot-path pieces of the media plane, each as ns per operation: demultiplexing a
//! datagram, rewriting a packet for one downtrack, fanning one packet out to N
//! downtracks (payload shared, header state per downtrack), and decoding signal
//! requests.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use livekit_protocol as lk;
use prost::Message;

use corelay::rtc::media::stun_ufrag;
use corelay::rtc::munger::Munger;

fn stun_request(username: &[u8]) -> Vec<u8> {
    let padded = username.len().div_ceil(4) * 4;
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&((4 + padded + 24) as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&0x0006u16.to_be_bytes());
    m.extend_from_slice(&(username.len() as u16).to_be_bytes());
    m.extend_from_slice(username);
    m.resize(20 + 4 + padded, 0);
    // a MESSAGE-INTEGRITY-sized attribute after USERNAME, as browsers send
    m.extend_from_slice(&0x0008u16.to_be_bytes());
    m.extend_from_slice(&20u16.to_be_bytes());
    m.extend_from_slice(&[0xab; 20]);
    m
}

fn demux(c: &mut Criterion) {
    let mut by_addr: HashMap<SocketAddr, u64> = HashMap::new();
    for i in 0..1000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        by_addr.insert(
            SocketAddr::new(ip, 40_000 + (i % 1000) as u16),
            u64::from(i),
        );
    }
    let known = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 500)), 40_500);
    c.bench_function("demux_known_5tuple_1000_flows", |b| {
        b.iter(|| by_addr.get(black_box(&known)).copied())
    });
    let stun = stun_request(b"abcdefghijklmnop:remoteufrag");
    c.bench_function("demux_stun_username_parse", |b| {
        b.iter(|| stun_ufrag(black_box(&stun)))
    });
}

fn munging(c: &mut Criterion) {
    let mut m = Munger::new();
    let mut seq = 10_000u64;
    let mut ts = 0u32;
    c.bench_function("munge_one_packet", |b| {
        b.iter(|| {
            seq += 1;
            ts = ts.wrapping_add(3000);
            m.munge(black_box(seq), black_box(ts))
        })
    });
}

/// The SFU-side work per packet per downtrack that is ours rather than str0m's: share
/// the payload and rewrite seq/ts. (Encryption and the socket cost are str0m's and
/// the kernel's; the loadtest measures the whole.)
fn fan_out(c: &mut Criterion) {
    let payload: Arc<[u8]> = vec![0u8; 1100].into();
    let mut group = c.benchmark_group("fan_out_share_and_munge");
    for n in [1usize, 10, 100] {
        let mut downtracks: Vec<Munger> = (0..n).map(|_| Munger::new()).collect();
        let mut seq = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                seq += 1;
                let mut sent = 0usize;
                for d in downtracks.iter_mut() {
                    let shared = payload.clone();
                    if let Some(m) = d.munge(seq, seq as u32 * 3000) {
                        sent += shared.len() + m.seq as usize;
                    }
                }
                black_box(sent)
            })
        });
    }
    group.finish();
}

fn signal_decode(c: &mut Criterion) {
    let trickle = lk::SignalRequest {
        message: Some(lk::signal_request::Message::Trickle(lk::TrickleRequest {
            candidate_init: r#"{"candidate":"candidate:1 1 udp 2122260223 192.168.1.10 54321 typ host generation 0","sdpMid":"0","sdpMLineIndex":0}"#.into(),
            target: 0,
            r#final: false,
        })),
    }
    .encode_to_vec();
    let ping = lk::SignalRequest {
        message: Some(lk::signal_request::Message::PingReq(lk::Ping {
            timestamp: 1_700_000_000_000,
            rtt: 12,
        })),
    }
    .encode_to_vec();
    c.bench_function("signal_decode_trickle", |b| {
        b.iter(|| lk::SignalRequest::decode(black_box(trickle.as_slice())))
    });
    c.bench_function("signal_decode_ping", |b| {
        b.iter(|| lk::SignalRequest::decode(black_box(ping.as_slice())))
    });
}

criterion_group!(benches, demux, munging, fan_out, signal_decode);
criterion_main!(benches);
