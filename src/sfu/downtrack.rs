//! One subscribed track as its subscriber's PC sends it: which layer flows, the
//! subscriber's wishes and the allocator's limits, and the rewriting state (sequence
//! numbers, timestamps, VP8 picture ids, VP9 layers) that keeps its stream continuous.

use crate::session::{MediaKind, Mid};
use crate::sfu::layers::LayerState;
use crate::sfu::munger::Munger;
use crate::sfu::svc::{temporal_for_fps, SvcSelector};
use crate::sfu::vp8_munger::Vp8Munger;

/// The frame rate publishers capture at, as far as temporal layers are concerned
/// (TrackInfo does not carry it; the SDKs' camera presets use 30).
const FULL_FPS: u32 = 30;

/// One subscribed track on a subscriber's PC.
pub struct DownTrack {
    /// Known once an offer carried the track.
    pub mid: Option<Mid>,
    pub kind: MediaKind,
    pub munger: Munger,
    /// VP8 picture numbering kept continuous across simulcast switches.
    pub vp8: Vp8Munger,
    /// Which simulcast layer flows, and whether the track is paused.
    pub layers: LayerState,
    /// The layer the subscriber asked for (`None`: whatever flows).
    pub requested: Option<String>,
    /// The subscriber disabled the track (UpdateTrackSettings).
    pub disabled: bool,
    /// The allocator's cap on the layer (`None`: no cap) and its bandwidth pause.
    pub cap: Option<String>,
    pub bw_paused: bool,
    /// VP9 SVC: the spatial layers to forward of the one stream (`layers.order`
    /// ranks map to spatial layers); `None` for simulcast and single-layer tracks.
    pub svc: Option<SvcSelector>,
    /// The frame rate the subscriber asked for (0: full), for SVC temporal layers.
    pub fps: u32,
}

impl DownTrack {
    pub fn new(kind: MediaKind, layers: LayerState, requested: Option<String>) -> Self {
        let mut d = DownTrack {
            mid: None,
            kind,
            munger: Munger::new(),
            vp8: Vp8Munger::new(),
            layers,
            requested,
            disabled: false,
            cap: None,
            bw_paused: false,
            svc: None,
            fps: 0,
        };
        d.refresh();
        d
    }

    /// Applies the subscriber's wishes and the allocator's limits to the forwarding
    /// state: paused if either pauses, the requested layer unless the cap is lower.
    pub fn refresh(&mut self) {
        if self.disabled || self.bw_paused {
            self.layers.pause();
        } else {
            self.layers.resume();
        }
        let rank = |r: &Option<String>| {
            r.as_ref()
                .and_then(|r| self.layers.order.iter().position(|o| o == r))
        };
        let target = match (rank(&self.requested), rank(&self.cap)) {
            (Some(want), Some(cap)) if cap < want => self.cap.clone(),
            _ => self.requested.clone(),
        };
        match self.svc.as_mut() {
            Some(svc) => {
                // One stream: the layer choice is the selector's, not a rid switch.
                let top = self.layers.order.len().saturating_sub(1);
                let spatial = rank(&target).unwrap_or(top).min(7) as u8;
                svc.set_target(spatial);
                svc.set_temporal_target(temporal_for_fps(self.fps, FULL_FPS));
                self.layers.set_target(None);
            }
            None => {
                self.layers.set_target(target);
                self.vp8
                    .set_temporal_target(temporal_for_fps(self.fps, FULL_FPS));
            }
        }
    }
}
