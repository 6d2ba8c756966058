//! The subscribing side of a client: answering the server's offers, asking for a
//! simulcast quality (`--sub-quality`), and accounting what arrives: per track and
//! per layer, from the probes.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use str0m::change::SdpOffer;
use str0m::media::MediaKind;

use super::pc::{rtc_failure, Pc};
use super::{Client, Ctx};
use crate::media;
use crate::shaper::Shaper;
use crate::signal::Failure;
use crate::stats::{RxTrack, Shared, Stamp};

/// The m-lines of an SDP: (mid, video?, msid track id).
pub(super) fn sections(sdp: &str) -> Vec<(Option<String>, bool, Option<String>)> {
    let mut out: Vec<(Option<String>, bool, Option<String>)> = Vec::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            out.push((None, m.starts_with("video"), None));
        } else if let Some(cur) = out.last_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                cur.0 = Some(mid.trim().to_owned());
            } else if let Some(ms) = line.strip_prefix("a=msid:") {
                cur.2 = ms.split_whitespace().nth(1).map(str::to_owned);
            }
        }
    }
    out
}

/// The UpdateTrackSettings that asks for `quality` of a `width`×`height` publication: the
/// quality, and the size of that layer (what the server picks the layer by).
pub fn quality_settings(
    track_sids: Vec<String>,
    quality: lk::VideoQuality,
    width: u32,
    height: u32,
) -> lk::UpdateTrackSettings {
    let scale = match quality {
        lk::VideoQuality::Low => 4,
        lk::VideoQuality::Medium => 2,
        _ => 1,
    };
    lk::UpdateTrackSettings {
        track_sids,
        disabled: false,
        quality: quality as i32,
        width: (width / scale).max(1),
        height: (height / scale).max(1),
        ..Default::default()
    }
}

impl Client {
    /// The server offers the subscriber PC (first right after join, then as tracks come
    /// and go).
    pub(super) fn on_offer(
        &mut self,
        sd: lk::SessionDescription,
        now: Instant,
        ctx: &mut Ctx,
    ) -> Result<(), Failure> {
        if self.sub.is_none() {
            let mut pc = Pc::new(ctx.cfg.local_ip, now)?;
            if self.spec.constrained {
                pc.shaper = Some(Shaper::new(
                    ctx.cfg.constrain_kbps,
                    Duration::from_millis(ctx.cfg.constrain_queue_ms as u64),
                    now,
                ));
            }
            self.sub = Some(pc);
        }
        // mid → track: the msid lines, then mid_to_track_id (which wins)
        let sections = sections(&sd.sdp);
        for (mid, _, track) in &sections {
            if let (Some(m), Some(t)) = (mid, track) {
                self.mid_tracks.insert(m.clone(), t.clone());
            }
            if let Some(t) = track {
                self.offered.insert(t.clone());
            }
        }
        for (m, t) in &sd.mid_to_track_id {
            self.mid_tracks.insert(m.clone(), t.clone());
        }
        let offer =
            SdpOffer::from_sdp_string(&sd.sdp).map_err(|e| rtc_failure("subscriber_sdp", e))?;
        let pc = self
            .sub
            .as_mut()
            .ok_or_else(|| Failure::new("rtc_error", "no subscriber PC"))?;
        let answer = pc
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| rtc_failure("subscriber_sdp", e))?;
        pc.timeout = now;
        self.send(Req::Answer(lk::SessionDescription {
            r#type: "answer".into(),
            sdp: answer.to_sdp_string(),
            id: sd.id,
            ..Default::default()
        }))?;
        // --sub-quality: ask once for every video track newly offered
        let video: Vec<String> = sections
            .iter()
            .filter(|(_, video, _)| *video)
            .filter_map(|(mid, _, msid)| {
                mid.as_ref()
                    .and_then(|m| self.mid_tracks.get(m))
                    .or(msid.as_ref())
                    .cloned()
            })
            .collect();
        self.request_quality(video, ctx)
    }

    /// `--sub-quality`: asks once for that quality of each video track not asked yet.
    pub(super) fn request_quality(
        &mut self,
        video: Vec<String>,
        ctx: &mut Ctx,
    ) -> Result<(), Failure> {
        let Some(quality) = ctx.cfg.sub_quality else {
            return Ok(());
        };
        let fresh: Vec<String> = video
            .into_iter()
            .filter(|t| !self.quality_requested.contains(t))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        self.quality_requested.extend(fresh.iter().cloned());
        let settings = quality_settings(fresh, quality, ctx.cfg.width, ctx.cfg.height);
        self.send(Req::TrackSetting(settings))
    }

    pub(super) fn on_rtp(
        &mut self,
        pc: &mut Pc,
        p: str0m::rtp::RtpPacket,
        at: Stamp,
        ctx: &mut Ctx,
    ) {
        if p.payload.is_empty() {
            return; // padding (bandwidth probes)
        }
        let ssrc = *p.header.ssrc;
        let t = self.rx.entry(ssrc).or_insert_with(|| {
            let mid = pc
                .rtc
                .direct_api()
                .stream_rx(&p.header.ssrc)
                .map(|s| s.mid());
            let audio = mid
                .and_then(|m| pc.rtc.media(m))
                .is_some_and(|m| m.kind() == MediaKind::Audio);
            let track = mid
                .and_then(|m| self.mid_tracks.get(&m.to_string()).cloned())
                .unwrap_or_else(|| format!("ssrc:{ssrc}"));
            RxTrack::new(track, audio)
        });
        let parsed = if t.audio {
            media::parse_audio(&p.payload)
        } else {
            media::parse_vp8(&p.payload)
        };
        let Some(parsed) = parsed else {
            let head: Vec<String> = p
                .payload
                .iter()
                .take(24)
                .map(|b| format!("{b:02x}"))
                .collect();
            ctx.shared.error(
                "bad_payload",
                format!(
                    "no probe in a {} B payload on {} (pt {}): {}",
                    p.payload.len(),
                    t.track,
                    *p.header.payload_type,
                    head.join("")
                ),
            );
            return;
        };
        let wall = at.arrived_us;
        let since_sent = |us: u64| us as i64 - parsed.probe.sent_us as i64;
        let transit = since_sent(wall);
        let lat = transit.max(1) as u64;
        ctx.latency.arrival.saturating_record(lat);
        let read = since_sent(at.read_us).max(1) as u64;
        ctx.latency.read.saturating_record(read);
        ctx.shared.interval_max_latency_us.fetch_max(lat, Relaxed);
        if lat > crate::stats::LATE_US {
            Shared::add(&ctx.shared.interval_late, 1);
        }
        let (grow, new) = t.on_packet(parsed.probe.seq, transit, parsed.probe.layer);
        t.note_layer(wall);
        if parsed.keyframe {
            t.keyframes += 1;
        }
        Shared::add(&ctx.shared.packets_expected, grow);
        if new {
            t.bytes += p.payload.len() as u64;
            Shared::add(&ctx.shared.packets_received, 1);
            Shared::add(&ctx.shared.payload_bytes_received, p.payload.len() as u64);
            if self.first_media_us.is_none() {
                self.first_media_us = Some(wall);
                let since = crate::clock::now().duration_since(self.started);
                ctx.shared.record_first_media(since.as_micros() as u64);
            }
            self.last_media_us = Some(wall);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_quality_settings() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=msid:s TR_a\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=msid:s TR_v\r\n";
        let s = sections(sdp);
        assert_eq!(
            s,
            vec![
                (Some("0".into()), false, Some("TR_a".into())),
                (Some("1".into()), true, Some("TR_v".into())),
            ]
        );
        let u = quality_settings(vec!["TR_v".into()], lk::VideoQuality::Low, 640, 360);
        assert_eq!((u.width, u.height), (160, 90));
        assert_eq!(u.quality, lk::VideoQuality::Low as i32);
        let u = quality_settings(vec![], lk::VideoQuality::High, 640, 360);
        assert_eq!((u.width, u.height), (640, 360));
    }
}
