//! The publishing side of a client: the AddTrackRequest (with its simulcast layers),
//! the publisher offer (one sendonly m-line, with `a=rid`/`a=simulcast` for simulcast),
//! and the synthetic media: one RTP stream per layer, each with its own frames, probe
//! sequence and keyframes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};

use super::pc::Pc;
use super::{Client, Config, Ctx, Role, Which};
use crate::clock::wall_us;
use crate::media::{self, Packet, VideoSource, LAYER_SINGLE, RIDS};
use crate::pacer::Pacer;
use crate::signal::Failure;
use crate::stats::{layer_slot, Shared};

/// A publisher further behind its media schedule than this skips ahead.
const MAX_SEND_LAG: Duration = Duration::from_millis(200);

/// Simulcast as livekit-client sends three layers: quarter, half and full size...
const SCALE: [u32; 3] = [4, 2, 1];
/// ...at these shares of the full layer's bitrate.
const BITRATE_PERCENT: [u64; 3] = [15, 35, 100];
const QUALITIES: [lk::VideoQuality; 3] = [
    lk::VideoQuality::Low,
    lk::VideoQuality::Medium,
    lk::VideoQuality::High,
];

/// One video encoding a publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Index in [`RIDS`], or [`LAYER_SINGLE`] without simulcast.
    pub layer: u8,
    pub quality: lk::VideoQuality,
    pub width: u32,
    pub height: u32,
    pub kbps: u32,
}

impl Encoding {
    pub fn rid(&self) -> Option<&'static str> {
        RIDS.get(self.layer as usize).copied()
    }
}

/// The encodings of a camera track: one, or q/h/f for simulcast.
pub fn encodings(simulcast: bool, width: u32, height: u32, kbps: u32) -> Vec<Encoding> {
    if !simulcast {
        return vec![Encoding {
            layer: LAYER_SINGLE,
            quality: lk::VideoQuality::High,
            width,
            height,
            kbps,
        }];
    }
    (0..RIDS.len())
        .map(|i| Encoding {
            layer: i as u8,
            quality: QUALITIES[i],
            width: (width / SCALE[i]).max(1),
            height: (height / SCALE[i]).max(1),
            kbps: (kbps as u64 * BITRATE_PERCENT[i] / 100).max(1) as u32,
        })
        .collect()
}

/// The AddTrackRequest `layers` (and `simulcast_codecs[0].layers`) for simulcast.
fn video_layers(encs: &[Encoding]) -> Vec<lk::VideoLayer> {
    encs.iter()
        .filter_map(|e| {
            Some(lk::VideoLayer {
                quality: e.quality as i32,
                width: e.width,
                height: e.height,
                bitrate: e.kbps.saturating_mul(1000),
                rid: e.rid()?.to_string(),
                ..Default::default()
            })
        })
        .collect()
}

/// One RTP stream of the publisher (a simulcast layer, or the only one).
struct TxLayer {
    ssrc: Ssrc,
    rid: Option<Rid>,
    /// Probe-slot of the layer, for per-layer counters.
    slot: usize,
    rtp_seq: u64,
    probe_seq: u32,
    video: Option<VideoSource>,
}

pub(super) struct Sender {
    pt: Pt,
    audio: bool,
    /// Frames (or audio packets) so far.
    packets: u64,
    pub next_at: Instant,
    interval: Duration,
    streams: Vec<TxLayer>,
    /// `--pace`: video waits here for the pacer (audio is never paced, as in libwebrtc).
    pacer: Option<Pacer>,
    queue: VecDeque<Queued>,
}

/// A packet waiting for the pacer: its stream, its frame's RTP time, the packet.
struct Queued {
    stream: usize,
    ts: u32,
    packet: Packet,
}

impl Sender {
    /// When this sender next has something to send: its next frame, or the pacer's
    /// next release while packets wait.
    pub fn next_due(&self) -> Instant {
        match (&self.pacer, self.queue.is_empty()) {
            (Some(p), false) => self.next_at.min(p.next_send()),
            _ => self.next_at,
        }
    }
}

impl Client {
    pub(super) fn add_track_request(&self, cfg: &Config) -> lk::AddTrackRequest {
        if self.spec.role == Role::Audio {
            return lk::AddTrackRequest {
                cid: self.cid.clone(),
                name: "microphone".into(),
                r#type: lk::TrackType::Audio as i32,
                source: lk::TrackSource::Microphone as i32,
                ..Default::default()
            };
        }
        let mut req = lk::AddTrackRequest {
            cid: self.cid.clone(),
            name: "camera".into(),
            r#type: lk::TrackType::Video as i32,
            source: lk::TrackSource::Camera as i32,
            width: cfg.width,
            height: cfg.height,
            ..Default::default()
        };
        if cfg.simulcast {
            let layers = video_layers(&encodings(true, cfg.width, cfg.height, cfg.video_kbps));
            req.simulcast_codecs = vec![lk::SimulcastCodec {
                codec: "vp8".into(),
                cid: self.cid.clone(),
                layers: layers.clone(),
                ..Default::default()
            }];
            req.layers = layers;
        }
        req
    }

    /// TrackPublishedResponse: create the publisher PC with one sendonly m-line whose msid
    /// track id is our cid (with q/h/f send rids for simulcast), and offer it.
    pub(super) fn start_publisher(&mut self, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        let mut pc = Pc::new(ctx.cfg.local_ip, now)?;
        let audio = self.spec.role == Role::Audio;
        let mut api = pc.rtc.sdp_api();
        let mid = send_line(
            &mut api,
            audio,
            ctx.cfg.simulcast,
            &self.spec.identity,
            &self.cid,
        );
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| Failure::new("publisher_sdp", "str0m produced no offer"))?;
        self.pub_mid = Some(mid);
        self.pub_pending = Some(pending);
        pc.timeout = now;
        self.publ = Some(pc);
        self.send(Req::Offer(lk::SessionDescription {
            r#type: "offer".into(),
            sdp: offer.to_sdp_string(),
            id: 1,
            ..Default::default()
        }))
    }

    /// The publisher PC is up: find the payload type and one send stream per layer.
    pub(super) fn start_sender(&mut self, pc: &mut Pc, ctx: &mut Ctx) {
        if self.sender.is_some() {
            return;
        }
        let Some(mid) = self.pub_mid else { return };
        let cfg = ctx.cfg;
        let audio = self.spec.role == Role::Audio;
        let codec = if audio { Codec::Opus } else { Codec::Vp8 };
        let remote: Vec<Pt> = pc
            .rtc
            .media(mid)
            .map(|m| m.remote_pts().to_vec())
            .unwrap_or_default();
        let pt = pc
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec && (remote.is_empty() || remote.contains(&p.pt())))
            .map(|p| p.pt());
        let Some(pt) = pt else {
            ctx.shared.error(
                "publisher_sdp",
                format!("{}: no {codec:?} payload type", self.cid),
            );
            return;
        };
        let plan: Vec<Option<Encoding>> = if audio {
            vec![None]
        } else {
            encodings(cfg.simulcast, cfg.width, cfg.height, cfg.video_kbps)
                .into_iter()
                .map(Some)
                .collect()
        };
        let paced_kbps: u64 = plan.iter().flatten().map(|e| e.kbps as u64).sum();
        let mut streams = Vec::new();
        for enc in plan {
            let rid = enc.and_then(|e| e.rid()).map(Rid::from);
            let Some(ssrc) = pc
                .rtc
                .direct_api()
                .stream_tx_by_mid(mid, rid)
                .map(|s| s.ssrc())
            else {
                ctx.shared.error(
                    "publisher_sdp",
                    format!("{}: no send stream for rid {rid:?}", self.cid),
                );
                return;
            };
            streams.push(TxLayer {
                ssrc,
                rid,
                slot: layer_slot(enc.map_or(LAYER_SINGLE, |e| e.layer)),
                rtp_seq: 1,
                probe_seq: 0,
                video: enc.map(|e| {
                    VideoSource::new(e.kbps, cfg.fps, cfg.gop, e.width, e.height, e.layer)
                }),
            });
        }
        self.sender = Some(Sender {
            pt,
            audio,
            packets: 0,
            next_at: crate::clock::now(),
            interval: if audio {
                Duration::from_millis(20)
            } else {
                Duration::from_secs_f64(1.0 / cfg.fps.max(1) as f64)
            },
            streams,
            pacer: (cfg.pace && !audio)
                .then(|| Pacer::for_bitrate(paced_kbps, crate::clock::now())),
            queue: VecDeque::new(),
        });
    }

    /// PLI/FIR from the SFU: the next frame of that layer (all layers when the request
    /// names none) is a keyframe.
    pub(super) fn on_keyframe_request(&mut self, rid: Option<Rid>, shared: &Shared) {
        Shared::add(&shared.keyframe_requests, 1);
        let Some(s) = self.sender.as_mut() else {
            return;
        };
        for l in s.streams.iter_mut() {
            if rid.is_none() || l.rid == rid {
                Shared::add(&shared.keyframe_requests_by_layer[l.slot], 1);
                if let Some(v) = l.video.as_mut() {
                    v.request_keyframe();
                }
            }
        }
    }

    /// Writes the frames (or audio packets) that are due, on every layer, then ticks the
    /// publisher PC so that they go out.
    pub(super) fn send_media(&mut self, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        if ctx
            .shared
            .stop_media
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        let (Some(s), Some(pc)) = (self.sender.as_mut(), self.publ.as_mut()) else {
            return Ok(());
        };
        if now < s.next_due() {
            return Ok(());
        }
        if now.duration_since(s.next_at) > MAX_SEND_LAG {
            s.next_at = now; // we fell behind (overloaded machine): skip, don't burst
        }
        let mut frame = std::mem::take(&mut ctx.frame);
        let mut written = 0u64;
        let mut bytes = 0u64;
        let fps = ctx.cfg.fps.max(1) as u64;
        while now >= s.next_at {
            let sent = wall_us();
            let ts = if s.audio {
                (s.packets * 960) as u32
            } else {
                (s.packets * 90_000 / fps) as u32
            };
            for (stream, l) in s.streams.iter_mut().enumerate() {
                frame.clear();
                if let Some(v) = l.video.as_mut() {
                    v.next_frame(&mut l.probe_seq, sent, &mut frame);
                } else {
                    frame.push(Packet {
                        payload: media::audio_packet(ctx.cfg.audio_kbps, l.probe_seq, sent),
                        marker: false,
                        probe_at: 0,
                    });
                    l.probe_seq = l.probe_seq.wrapping_add(1);
                }
                if s.pacer.is_some() {
                    s.queue
                        .extend(frame.drain(..).map(|packet| Queued { stream, ts, packet }));
                    continue;
                }
                for p in frame.drain(..) {
                    bytes += p.payload.len() as u64;
                    write(pc, s.pt, s.audio, l, ts, now, p)?;
                    written += 1;
                }
            }
            s.packets += 1;
            s.next_at += s.interval;
        }
        if let Some(pacer) = s.pacer.as_mut() {
            while let Some(q) = s.queue.front() {
                if !pacer.try_send(now, q.packet.payload.len()) {
                    break;
                }
                let Some(mut q) = s.queue.pop_front() else {
                    break;
                };
                media::restamp(&mut q.packet.payload, q.packet.probe_at, wall_us());
                bytes += q.packet.payload.len() as u64;
                let l = &mut s.streams[q.stream];
                write(pc, s.pt, s.audio, l, q.ts, now, q.packet)?;
                written += 1;
            }
        }
        ctx.frame = frame;
        Shared::add(&ctx.shared.packets_sent, written);
        Shared::add(&ctx.shared.payload_bytes_sent, bytes);
        pc.timeout = now; // write_rtp transmits on the next Timeout
        self.pump(Which::Pub, now, ctx)
    }
}

/// Our one sendonly m-line, whose msid track id is the AddTrackRequest cid (with q/h/f
/// send rids for simulcast video).
pub(super) fn send_line(
    api: &mut str0m::change::SdpApi<'_>,
    audio: bool,
    simulcast: bool,
    identity: &str,
    cid: &str,
) -> Mid {
    let kind = if audio {
        MediaKind::Audio
    } else {
        MediaKind::Video
    };
    let layers = (!audio && simulcast).then(|| {
        let mut s = Simulcast::new();
        for rid in RIDS {
            s.add_send_layer(SimulcastLayer::new(rid));
        }
        s
    });
    api.add_media(
        kind,
        Direction::SendOnly,
        Some(identity.to_string()),
        Some(cid.to_string()),
        layers,
    )
}

/// Hands one packet of layer `l` to the publisher PC.
fn write(
    pc: &mut Pc,
    pt: Pt,
    audio: bool,
    l: &mut TxLayer,
    ts: u32,
    now: Instant,
    p: Packet,
) -> Result<(), Failure> {
    let mut api = pc.rtc.direct_api();
    let Some(tx) = api.stream_tx(&l.ssrc) else {
        return Err(Failure::new("rtc_error", "publisher send stream vanished"));
    };
    tx.write_rtp(
        RtpWrite::new(pt, SeqNo::from(l.rtp_seq), ts, now, p.payload)
            .marker(p.marker)
            .nackable(!audio),
    );
    l.rtp_seq += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulcast_encodings_are_quarter_half_full() {
        let e = encodings(true, 1280, 720, 1000);
        let got: Vec<_> = e
            .iter()
            .map(|e| (e.rid(), e.quality, e.width, e.height, e.kbps))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("q"), lk::VideoQuality::Low, 320, 180, 150),
                (Some("h"), lk::VideoQuality::Medium, 640, 360, 350),
                (Some("f"), lk::VideoQuality::High, 1280, 720, 1000),
            ]
        );
        let layers = video_layers(&e);
        assert_eq!(layers.len(), 3);
        assert_eq!(layers[0].rid, "q");
        assert_eq!(layers[0].bitrate, 150_000);
        assert_eq!(layers[2].quality, lk::VideoQuality::High as i32);

        let single = encodings(false, 640, 360, 800);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].rid(), None);
        assert_eq!(single[0].kbps, 800);
        assert!(video_layers(&single).is_empty());
        // tiny sizes stay valid
        assert_eq!(encodings(true, 2, 2, 1)[0].width, 1);
        assert_eq!(encodings(true, 2, 2, 1)[0].kbps, 1);
    }

    #[test]
    fn simulcast_offer_has_rids() {
        let now = crate::clock::now();
        let ip = "127.0.0.1".parse().unwrap();
        let mut pc = Pc::new(ip, now).unwrap();
        let mut s = Simulcast::new();
        for rid in RIDS {
            s.add_send_layer(SimulcastLayer::new(rid));
        }
        let mut api = pc.rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(s));
        let (offer, _) = api.apply().unwrap();
        let sdp = offer.to_sdp_string();
        for line in ["a=rid:q send", "a=rid:h send", "a=rid:f send"] {
            assert!(sdp.contains(line), "{line} missing in\n{sdp}");
        }
        assert!(sdp.contains("a=simulcast:send q;h;f"), "{sdp}");
    }
}
