//! `/rtc/v1` (`--signal v1`): one peer connection per client, which the client always
//! offers, as current SDKs do. The join carries the first offer (a data channel); the
//! server asks for receiving m-lines with MediaSectionsRequirement and names the track
//! on each in the answer's `mid_to_track_id`. A publisher adds its sendonly line to the
//! same PC. str0m allows one outstanding offer, so changes wait for the answer.

use std::time::Instant;

use base64::Engine as _;
use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use prost::Message as _;
use str0m::media::{Direction, MediaKind};

use super::pc::{rtc_failure, Pc};
use super::publisher::send_line;
use super::subscriber::sections;
use super::{Client, Config, Ctx, Role};
use crate::shaper::Shaper;
use crate::signal::Failure;

/// Changes waiting for the next offer.
#[derive(Debug, Default)]
pub(super) struct Pending {
    publish: bool,
    audios: u32,
    videos: u32,
}

impl Client {
    /// The PC and the `join_request` that carries its first offer.
    pub(super) fn single_join(&mut self, cfg: &Config, now: Instant) -> Result<String, Failure> {
        let mut pc = Pc::new(cfg.local_ip, now)?;
        if self.spec.constrained {
            pc.shaper = Some(Shaper::new(
                cfg.constrain_kbps,
                std::time::Duration::from_millis(cfg.constrain_queue_ms as u64),
                now,
            ));
        }
        let mut api = pc.rtc.sdp_api();
        api.add_channel("_reliable".into());
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| Failure::new("publisher_sdp", "str0m produced no offer"))?;
        self.pub_pending = Some(pending);
        self.publ = Some(pc);
        let join = lk::JoinRequest {
            client_info: Some(lk::ClientInfo {
                sdk: lk::client_info::Sdk::Go as i32,
                version: "loadtest".into(),
                protocol: 16,
                ..Default::default()
            }),
            connection_settings: Some(lk::ConnectionSettings {
                auto_subscribe: true,
                ..Default::default()
            }),
            publisher_offer: Some(lk::SessionDescription {
                r#type: "offer".into(),
                sdp: offer.to_sdp_string(),
                id: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let wrapped = lk::WrappedJoinRequest {
            compression: lk::wrapped_join_request::Compression::None as i32,
            join_request: join.encode_to_vec(),
        };
        Ok(base64::engine::general_purpose::URL_SAFE.encode(wrapped.encode_to_vec()))
    }

    /// TrackPublishedResponse: our sendonly line goes into the next offer.
    pub(super) fn single_publish(&mut self, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        self.single.publish = true;
        self.single_offer(now, ctx)
    }

    pub(super) fn on_sections_requirement(
        &mut self,
        r: lk::MediaSectionsRequirement,
        now: Instant,
        ctx: &mut Ctx,
    ) -> Result<(), Failure> {
        self.single.audios += r.num_audios;
        self.single.videos += r.num_videos;
        // Even with nothing to add, the server wants a new offer (a line went inactive).
        self.single_dirty = true;
        self.single_offer(now, ctx)
    }

    /// The server's answer to our offer was taken: learn the tracks on our lines, start
    /// sending once our own line is up, and offer what waited.
    pub(super) fn single_answered(
        &mut self,
        sd: &lk::SessionDescription,
        now: Instant,
        ctx: &mut Ctx,
    ) -> Result<(), Failure> {
        for (mid, track) in &sd.mid_to_track_id {
            self.mid_tracks.insert(mid.clone(), track.clone());
            self.offered.insert(track.clone());
        }
        let video: Vec<String> = sections(&sd.sdp)
            .into_iter()
            .filter(|(_, video, _)| *video)
            .filter_map(|(mid, _, _)| sd.mid_to_track_id.get(mid.as_ref()?).cloned())
            .collect();
        self.request_quality(video, ctx)?;
        if let Some(mut pc) = self.publ.take() {
            if pc.connected {
                self.start_sender(&mut pc, ctx);
            }
            self.publ = Some(pc);
        }
        self.single_offer(now, ctx)
    }

    /// Offers what waits, unless an offer is outstanding (str0m allows one).
    fn single_offer(&mut self, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        let waiting = self.single.publish
            || self.single.audios > 0
            || self.single.videos > 0
            || self.single_dirty;
        if self.pub_pending.is_some() || !waiting {
            return Ok(());
        }
        let publish = std::mem::take(&mut self.single.publish);
        let (audios, videos) = (
            std::mem::take(&mut self.single.audios),
            std::mem::take(&mut self.single.videos),
        );
        self.single_dirty = false;
        let audio = self.spec.role == Role::Audio;
        let cid = self.cid.clone();
        let identity = self.spec.identity.clone();
        let simulcast = ctx.cfg.simulcast;
        let pc = self
            .publ
            .as_mut()
            .ok_or_else(|| Failure::new("rtc_error", "no peer connection"))?;
        let mut api = pc.rtc.sdp_api();
        if publish {
            self.pub_mid = Some(send_line(&mut api, audio, simulcast, &identity, &cid));
        }
        for (kind, n) in [(MediaKind::Audio, audios), (MediaKind::Video, videos)] {
            for _ in 0..n {
                api.add_media(kind, Direction::RecvOnly, None, None, None);
            }
        }
        let (offer, pending) = match api.apply() {
            Some(o) => o,
            // Nothing changed for str0m (no lines to add): offer the current state.
            None => {
                let mut api = pc.rtc.sdp_api();
                api.ice_restart(false);
                api.apply()
                    .ok_or_else(|| rtc_failure("publisher_sdp", "str0m produced no offer"))?
            }
        };
        self.pub_pending = Some(pending);
        pc.timeout = now;
        self.send(Req::Offer(lk::SessionDescription {
            r#type: "offer".into(),
            sdp: offer.to_sdp_string(),
            id: 0,
            ..Default::default()
        }))
    }
}
