//! Hot-path pieces of the media plane, each as ns per operation: demultiplexing a
//! datagram, rewriting a packet for one downtrack, fanning one packet out to N
//! downtracks (the forwarder's decisions alone, up to 1000 downtracks; then again
//! with each downtrack's str0m write, RTP packetization and SRTP encryption), and
//! decoding signal requests. A counting allocator reports heap allocations per
//! packet (`fan_out_forwarder_decide`) and per downtrack in the str0m path
//! (`fan_out_munge_srtp`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use livekit_protocol as lk;
use prost::Message;

use corelay::room::media::stun_ufrag;
use corelay::session::{Codec, MediaKind, Mid, PayloadType, RtpIn};
use corelay::sfu::downtrack::DownTrack;
use corelay::sfu::forwarder::FanOut;
use corelay::sfu::layers::LayerState;
use corelay::sfu::munger::Munger;
use corelay::sfu::vp8_munger::Vp8Munger;

#[path = "common/pair.rs"]
mod pair;

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

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

/// VP8 descriptor rewriting per packet per downtrack: free on the first layer, one
/// payload copy once a downtrack has switched layers.
fn vp8_munging(c: &mut Criterion) {
    let packet = |picture_id: u16| -> Vec<u8> {
        let mut p = vec![
            0x90,
            0xe0,
            0x80 | (picture_id >> 8) as u8,
            picture_id as u8,
            7,
        ];
        p.resize(1100, 0xaa);
        p
    };
    let mut group = c.benchmark_group("vp8_munge_1100B");
    for (name, switched) in [("first_layer", false), ("after_switch", true)] {
        let mut m = Vp8Munger::new();
        if switched {
            let _ = m.munge(1, &packet(20_000));
        }
        let p = packet(300);
        group.bench_function(name, |b| b.iter(|| black_box(m.munge(2, black_box(&p)))));
    }
    group.finish();
}

/// corelay's per-packet work of the fan-out, without str0m: the forwarder's decision
/// for every downtrack of the track (layer, munging, shared payload), for a
/// single-layer video track at 1, 10, 100 and 1000 downtracks. Prints ns per
/// downtrack and heap allocations per packet (`tests/forwarder_allocs.rs` asserts
/// the latter is 0).
fn fan_out(c: &mut Criterion) {
    let payload: Arc<[u8]> = vec![0u8; 1100].into();
    let pt = PayloadType::default_for(Codec::H264).expect("h264");
    // Made once: str0m's `Mid::from` allocates (a session gets its mids at setup).
    let mid = Mid::from("0");
    let mut group = c.benchmark_group("fan_out_forwarder_decide");
    for n in [1usize, 10, 100, 1000] {
        let mut downs: Vec<DownTrack> = (0..n)
            .map(|i| {
                let mut d = DownTrack::new(MediaKind::Video, LayerState::default(), None);
                d.mid = Some(Mid::from(i.to_string().as_str()));
                d
            })
            .collect();
        let mut fan = FanOut::default();
        let mut seq = 0u64;
        let t0 = corelay::clock::mono();
        let (mut meter, mut packets) = (Meter::default(), 0u64);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let before = meter.timed;
                meter.measure(|| {
                    for _ in 0..iters {
                        seq += 1;
                        let rtp = RtpIn {
                            mid,
                            rid: None,
                            ssrc: 1,
                            pt,
                            codec: Codec::H264,
                            seq,
                            timestamp: (seq * 3000) as u32,
                            marker: false,
                            payload: payload.clone(),
                            audio_level: None,
                            is_keyframe: seq == 1,
                            vp9: None,
                        };
                        let now = t0 + PACKET_SPACING * seq as u32;
                        fan.begin();
                        let mut sent = 0usize;
                        for d in downs.iter_mut() {
                            if let Ok(e) = fan.decide(d, &rtp, now, |_| false) {
                                sent += e.payload.len() + e.seq as usize;
                            }
                        }
                        black_box(sent);
                    }
                });
                packets += iters;
                meter.timed - before
            })
        });
        if packets > 0 {
            println!(
                "fan_out_forwarder_decide/{n}: {:.1} ns per downtrack, {:.3} heap allocations \
                 per packet (mean of {packets} packets)",
                meter.timed.as_nanos() as f64 / (packets * n as u64) as f64,
                meter.allocated as f64 / packets as f64
            );
        }
    }
    group.finish();
}

/// Wall time, to measure with (the clock rule in clippy.toml is for the code under test).
#[allow(clippy::disallowed_methods)]
fn wall() -> Instant {
    Instant::now()
}

/// The timed part of a bench sample, and the heap allocations made in it.
#[derive(Default)]
struct Meter {
    timed: Duration,
    allocated: u64,
}

impl Meter {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let (start, before) = (wall(), allocations());
        let r = f();
        self.timed += wall() - start;
        self.allocated += allocations() - before;
        r
    }
}

/// Moves every pair's pending datagrams (untimed): ICE consent, RTCP, the media.
fn pump_all<T>(downtracks: &mut [(pair::Downtrack, T)], now: Instant) {
    for (d, _) in downtracks.iter_mut() {
        d.wire.pump(now);
    }
}

/// Packets between two untimed pumps of every pair (ICE consent, RTCP), and the
/// synthetic time one packet takes (a 1 Mbps video track sends ~100 packets/s).
const PUMP_EVERY: u64 = 64;
const PACKET_SPACING: Duration = Duration::from_millis(10);

/// One published packet to N connected subscriber PCs, as `forward_rtp` does it: share
/// the payload, munge seq/ts, `write_rtp`, then tick and drain each session, which is
/// where str0m builds the RTP packet and SRTP-encrypts it. Only that is timed; pumping
/// datagrams to the in-memory clients (and their decryption) happens between samples.
fn fan_out_srtp(c: &mut Criterion) {
    let payload: Arc<[u8]> = vec![0x10; 1100].into();
    let mut group = c.benchmark_group("fan_out_munge_srtp");
    for n in [1usize, 10, 100] {
        let mut now = corelay::clock::now().mono;
        let mut downtracks: Vec<(pair::Downtrack, Munger)> = (0..n)
            .map(|_| (pair::Downtrack::connect(&mut now), Munger::new()))
            .collect();
        let mut seq = 0u64;
        let mut send_one = |downtracks: &mut Vec<(pair::Downtrack, Munger)>, now: Instant| {
            seq += 1;
            for (d, munger) in downtracks.iter_mut() {
                let Some(m) = munger.munge(seq, (seq * 3000) as u32) else {
                    continue;
                };
                d.wire
                    .server
                    .write_rtp(
                        d.mid,
                        d.pt,
                        (m.seq, m.timestamp, true),
                        payload.clone(),
                        now,
                    )
                    .expect("write_rtp");
                d.wire.server.handle_timeout(now).expect("timeout");
                d.wire.drain_server();
            }
        };
        // Every downtrack's client decrypts what it got: the SRTP is real.
        now += PACKET_SPACING;
        send_one(&mut downtracks, now);
        for (d, _) in downtracks.iter_mut() {
            d.wire.pump(now);
            assert_eq!(d.wire.client_rtp, 1, "the client received the packet");
        }
        let (mut meter, mut packets) = (Meter::default(), 0u64);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let before = meter.timed;
                for i in 0..iters {
                    now += PACKET_SPACING;
                    meter.measure(|| send_one(&mut downtracks, now));
                    if i % PUMP_EVERY == PUMP_EVERY - 1 {
                        pump_all(&mut downtracks, now);
                    }
                }
                pump_all(&mut downtracks, now);
                packets += iters;
                meter.timed - before
            })
        });
        let sent: usize = downtracks.iter().map(|(d, _)| d.wire.client_rtp).sum();
        assert!(
            sent as u64 >= packets * n as u64,
            "every packet reached every client ({sent} of {})",
            packets * n as u64
        );
        if packets > 0 {
            let per = (packets * n as u64) as f64;
            println!(
                "fan_out_munge_srtp/{n}: {:.0} ns and {:.2} heap allocations per downtrack \
                 (write_rtp, tick, drain; mean of {packets} packets)",
                meter.timed.as_nanos() as f64 / per,
                meter.allocated as f64 / per
            );
        }
    }
    group.finish();
}

/// One whole turn of a shard for one incoming packet, without the room lookups:
/// the publisher's SRTP datagram is received and decrypted by its session, the
/// forwarder decides for each of N downtracks, each subscriber session writes,
/// ticks and drains (RTP packetization, SRTP), and the datagrams go out in
/// `sendmmsg` batches from a loopback socket to a sink that never reads. Prints ns
/// and heap allocations per forwarded packet (corelay's own share is 0:
/// `tests/forwarder_allocs.rs`; the rest is str0m's).
fn whole_turn(c: &mut Criterion) {
    const SEND_CHUNK: usize = 64;
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("sink");
    let to = sink.local_addr().expect("sink address");
    let out = std::net::UdpSocket::bind("127.0.0.1:0").expect("sender");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&out);
    let gso = corelay::net::batch::gso_supported(fd);
    let mut interframe = vec![0x10, 0x01, 0x02];
    interframe.resize(1100, 0x33);
    let mut group = c.benchmark_group("whole_turn_receive_forward_send");
    for n in [1usize, 10, 100] {
        let mut now = corelay::clock::now().mono;
        let mut uplink = pair::Uplink::connect(&mut now);
        let mut downtracks: Vec<(pair::Downtrack, DownTrack)> = (0..n)
            .map(|_| {
                let d = pair::Downtrack::connect(&mut now);
                let mut down = DownTrack::new(MediaKind::Video, LayerState::default(), None);
                down.mid = Some(d.mid);
                (d, down)
            })
            .collect();
        let mut fan = FanOut::default();
        let (mut events, mut transmits) = (Vec::new(), Vec::new());
        let mut seq = 0u64;
        let mut turn = |uplink: &mut pair::Uplink,
                        downtracks: &mut Vec<(pair::Downtrack, DownTrack)>,
                        datagram: &corelay::session::Transmit,
                        now: Instant|
         -> usize {
            let _ = uplink.wire.server.handle_receive(
                now,
                datagram.source,
                datagram.destination,
                &datagram.contents,
            );
            events.clear();
            let mut ignored = Vec::new();
            uplink
                .wire
                .server
                .drain(&mut ignored, &mut events)
                .expect("publisher drain");
            let mut forwarded = 0;
            for e in events.drain(..) {
                let corelay::session::SessionEvent::Rtp(rtp) = e else {
                    continue;
                };
                fan.begin();
                for (d, down) in downtracks.iter_mut() {
                    let Ok(w) = fan.decide(down, &rtp, now, |_| false) else {
                        continue;
                    };
                    d.wire
                        .server
                        .write_rtp(w.mid, w.pt, (w.seq, w.timestamp, w.marker), w.payload, now)
                        .expect("write_rtp");
                    d.wire.server.handle_timeout(now).expect("timeout");
                    d.wire
                        .server
                        .drain(&mut transmits, &mut Vec::new())
                        .expect("subscriber drain");
                    forwarded += 1;
                }
            }
            // In chunks on the stack, so that the bench adds no allocation of its own.
            for chunk in transmits.chunks(SEND_CHUNK) {
                let mut packets = [(to, &[][..]); SEND_CHUNK];
                for (slot, t) in packets.iter_mut().zip(chunk) {
                    *slot = (to, t.contents.as_slice());
                }
                let packets = &packets[..chunk.len()];
                let mut at = 0;
                while at < packets.len() {
                    match corelay::net::batch::send_batch_from(fd, &packets[at..], gso, &[]) {
                        Ok(sent) => at += sent.max(1),
                        Err(_) => at += 1,
                    }
                }
            }
            // As the shard does once they are sent.
            for t in transmits.drain(..) {
                corelay::session::packet_buffers::give_back(t.contents);
            }
            forwarded
        };
        // The first packet is a keyframe: every downtrack starts on it.
        now += PACKET_SPACING;
        let key = uplink.packet(now, 1, &pair::VP8_KEYFRAME);
        assert_eq!(
            turn(&mut uplink, &mut downtracks, &key, now),
            n,
            "keyframe fanned out"
        );
        let (mut meter, mut forwarded) = (Meter::default(), 0u64);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let before = meter.timed;
                for i in 0..iters {
                    now += PACKET_SPACING;
                    seq += 1;
                    let datagram = uplink.packet(now, 1 + seq, &interframe);
                    forwarded +=
                        meter.measure(|| turn(&mut uplink, &mut downtracks, &datagram, now)) as u64;
                    if i % PUMP_EVERY == PUMP_EVERY - 1 {
                        uplink.wire.pump(now);
                        pump_all(&mut downtracks, now);
                    }
                }
                meter.timed - before
            })
        });
        if forwarded > 0 {
            println!(
                "whole_turn_receive_forward_send/{n}: {:.0} ns and {:.2} heap allocations per \
                 forwarded packet ({forwarded} forwarded, GSO {gso})",
                meter.timed.as_nanos() as f64 / forwarded as f64,
                meter.allocated as f64 / forwarded as f64
            );
        }
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

criterion_group!(
    benches,
    demux,
    munging,
    vp8_munging,
    fan_out,
    fan_out_srtp,
    whole_turn,
    signal_decode
);
criterion_main!(benches);
