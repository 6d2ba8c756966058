//! How long a video packet we send stays ready for a NACK (str0m's RTX cache). str0m
//! keeps up to 1000 packets or 3 s per stream, about 650 bytes each besides the shared
//! payload: at 2.5 Mbit/s that was 0.8 MB of a subscriber's memory, most of it for
//! packets no receiver asks for again (a NACK comes one round trip after the gap).
//! We keep 1 s, libwebrtc's own minimum for its send history, which serves NACKs
//! and their retries up to round trips of about 300 ms.

use std::time::Duration;

use str0m::media::MediaKind;

use super::PeerSession;

/// The most packets one video stream keeps for resends (str0m's default).
const RTX_PACKETS: usize = 1024;
/// How long a sent video packet can be resent.
const RTX_AGE: Duration = Duration::from_secs(1);
/// Queued resends are dropped above this share of resent bytes (str0m's default).
const RTX_RATIO_CAP: f32 = 0.15;

impl PeerSession {
    /// Gives each video stream we send, once, our resend window. Called after every
    /// negotiation step that can add a stream (before packets are written to it:
    /// sizing empties the cache).
    pub(super) fn size_rtx_caches(&mut self) {
        let video: Vec<_> = (self.send_track_mids().into_iter())
            .map(|(mid, _)| mid)
            .filter(|mid| {
                self.rtc
                    .media(*mid)
                    .is_some_and(|m| m.kind() == MediaKind::Video)
            })
            .collect();
        let mut api = self.rtc.direct_api();
        for mid in video {
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                continue;
            };
            let ssrc = tx.ssrc();
            if self.rtx_sized.contains(&ssrc) {
                continue;
            }
            tx.set_rtx_cache(RTX_PACKETS, RTX_AGE, Some(RTX_RATIO_CAP));
            self.rtx_sized.push(ssrc);
        }
    }
}
