//! The forwarder's decision for one incoming packet and each downtrack of its track:
//! whether the downtrack takes it (layer, pause, VP8 temporal layer, VP9 spatial
//! layer), and with what sequence number, timestamp, marker, payload type and payload
//! it leaves. What all downtracks share is worked out once per packet: RED's primary
//! block, and the keyframes some downtrack waits for.
//!
//! Sans-IO and allocation-free on the steady path: the caller walks the track's
//! downtracks (`room::members` keeps the list), hands each to [`FanOut::decide`], and
//! writes what comes out to that subscriber's session. The payload is shared
//! (`Arc<[u8]>`); only a VP8 downtrack that has switched layers gets its own copy.

use std::sync::Arc;
use std::time::Instant;

use crate::session::{Codec, MediaKind, Mid, PayloadType, Rid, RtpIn};
use crate::sfu::downtrack::DownTrack;
use crate::sfu::layers::Admit;
use crate::sfu::red;

/// What one downtrack writes for the packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Egress {
    pub mid: Mid,
    pub pt: PayloadType,
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Arc<[u8]>,
}

/// Why a downtrack does not take the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not negotiated on the subscriber's PC yet (no m-line).
    NoMid,
    /// Another layer, paused, or waiting for a keyframe.
    Layer,
    /// The subscriber does not take RED and the packet's RED payload is malformed.
    MalformedRed,
    /// Padding only (a sender's bandwidth probe): nothing to play.
    Padding,
}

/// The state one incoming packet's fan-out shares across its downtracks.
#[derive(Debug, Default)]
pub struct FanOut {
    /// Layers some downtrack waits for a keyframe of (`None`: no simulcast). Kept
    /// between packets so that its buffer is reused.
    keyframe_asks: Vec<Option<Rid>>,
    /// RED's primary block, taken out once for every subscriber without RED:
    /// `None` until needed, then `Some(None)` when the payload is malformed.
    primary: Option<Option<Arc<[u8]>>>,
}

impl FanOut {
    /// Starts the fan-out of a new packet.
    pub fn begin(&mut self) {
        self.keyframe_asks.clear();
        self.primary = None;
    }

    /// The layers to ask the publisher for a keyframe of, once the packet has gone
    /// to every downtrack.
    pub fn keyframe_asks(&self) -> &[Option<Rid>] {
        &self.keyframe_asks
    }

    /// Decides what `down` sends for `rtp`. `takes_red(mid)` says whether the
    /// subscriber's PC negotiated RED for the packet's codec on that m-line; it is
    /// asked only for RED packets.
    pub fn decide(
        &mut self,
        down: &mut DownTrack,
        rtp: &RtpIn,
        now: Instant,
        takes_red: impl FnOnce(Mid) -> bool,
    ) -> Result<Egress, Skip> {
        let mid = down.mid.ok_or(Skip::NoMid)?;
        if rtp.payload.is_empty() {
            // libwebrtc pads on the media SSRC where it has no RTX (Opus): dropped with
            // its number closed up, or the subscriber counts it lost.
            down.munger.skip(rtp.seq);
            return Err(Skip::Padding);
        }
        if down.kind == MediaKind::Video {
            let decision =
                down.layers
                    .admit(rtp.rid.as_deref(), rtp.is_keyframe, now, &mut down.munger);
            if decision == Admit::NeedKeyframe || down.layers.switch_pending() {
                let rid = down.layers.aim().map(Rid::from).or(rtp.rid);
                self.ask_keyframe(rid);
                // Before the first start any layer's keyframe will do: ask the one at
                // hand too, which certainly flows (the aim may not, yet).
                if down.layers.current.is_none() && !down.layers.started {
                    self.ask_keyframe(rtp.rid);
                }
            }
            if decision != Admit::Forward {
                return Err(Skip::Layer);
            }
            if rtp.codec == Codec::Vp8 && !down.vp8.admit(rtp.ssrc, &rtp.payload, rtp.is_keyframe) {
                down.munger.skip(rtp.seq);
                return Err(Skip::Layer);
            }
        } else if down.layers.paused {
            return Err(Skip::Layer);
        }
        let mut marker = rtp.marker;
        if let (Some(svc), Some(layer)) = (down.svc.as_mut(), rtp.vp9) {
            let d = svc.admit(layer, rtp.marker);
            if svc.needs_keyframe() {
                self.ask_keyframe(None);
            }
            if !d.forward {
                down.munger.skip(rtp.seq);
                return Err(Skip::Layer);
            }
            marker = d.marker;
        }
        let (pt, payload) = if rtp.pt.red && !takes_red(mid) {
            let block = self
                .primary
                .get_or_insert_with(|| red::primary(&rtp.payload).map(Arc::from))
                .clone()
                .ok_or(Skip::MalformedRed)?;
            (rtp.pt.with_red(false), block)
        } else {
            (rtp.pt, rtp.payload.clone())
        };
        let munged = down
            .munger
            .munge(rtp.seq, rtp.timestamp)
            .ok_or(Skip::Layer)?;
        // Only a downtrack that has switched layers gets its own copy.
        let payload = match rtp.codec {
            Codec::Vp8 => down.vp8.munge(rtp.ssrc, &payload).unwrap_or(payload),
            _ => payload,
        };
        Ok(Egress {
            mid,
            pt,
            seq: munged.seq,
            timestamp: munged.timestamp,
            marker,
            payload,
        })
    }

    fn ask_keyframe(&mut self, rid: Option<Rid>) {
        if !self.keyframe_asks.contains(&rid) {
            self.keyframe_asks.push(rid);
        }
    }
}

#[cfg(test)]
#[path = "forwarder_tests.rs"]
mod tests;
