//! Where a forwarded packet goes in str0m: the PT this session negotiated for the
//! packet's codec on an m-line, and the send stream of that m-line. Finding them asks
//! str0m three times (`Rtc::media`, `CodecConfig::match_params`, which scores every
//! codec we offer, and `stream_tx_by_mid`, a scan of the send streams): ~3 % of the
//! shard's CPU at the fan-out load when done for every packet and downtrack. They
//! change only when this session negotiates, so each is kept here until then.

use str0m::media::{MediaKind, Mid, Pt};
use str0m::rtp::Ssrc;

use super::{PayloadType, PeerSession, SessionError};

/// One m-line's route for one incoming payload type.
#[derive(Debug, Clone, Copy)]
pub(super) struct TxRoute {
    mid: Mid,
    /// The payload type as it came (number and codec parameters of the publisher's PC).
    from: PayloadType,
    pub(super) kind: MediaKind,
    pub(super) local_pt: Pt,
    /// The m-line's send stream, `None` when it has none (yet).
    pub(super) ssrc: Option<Ssrc>,
    /// The send stream's RTX SSRC and the RTX payload type of `local_pt`, as str0m
    /// pairs them for its own resends (for those we send ourselves, `own_egress`).
    pub(super) rtx: Option<(Ssrc, Pt)>,
    pub(super) clock_rate: u32,
}

/// Routes found since the last negotiation. A handful per m-line (a track's codec, its
/// RED form, a backup codec), so a scan beats hashing.
#[derive(Debug, Default)]
pub(super) struct TxRoutes {
    routes: Vec<TxRoute>,
}

/// The most routes kept: a publisher that renegotiates again and again with new
/// payload types would otherwise grow a subscriber's list between its own
/// negotiations. Past this the list starts again (routes are found again on demand).
const MAX_ROUTES: usize = 64;

impl TxRoutes {
    /// Every route may have changed: the session negotiated (m-lines, PTs and send
    /// streams come and go only then).
    pub(super) fn forget(&mut self) {
        self.routes.clear();
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.routes.len()
    }

    /// Keeps `route`, starting the list again once it holds `MAX_ROUTES`.
    fn keep(&mut self, route: TxRoute) {
        if self.routes.len() >= MAX_ROUTES {
            self.forget();
        }
        self.routes.push(route);
    }

    fn find(&self, mid: Mid, from: PayloadType) -> Option<TxRoute> {
        (self.routes.iter())
            .find(|r| r.mid == mid && r.from == from)
            .copied()
    }
}

impl PeerSession {
    /// The route of `pt` on `mid`: from the cache, or asked of str0m and kept. A codec
    /// the m-line did not negotiate is an error, and is asked again next time.
    pub(super) fn tx_route(&mut self, mid: Mid, pt: PayloadType) -> Result<TxRoute, SessionError> {
        if let Some(route) = self.tx_routes.find(mid, pt) {
            return Ok(route);
        }
        let (kind, local_pt) = self.local_pt(mid, pt)?;
        let (ssrc, rtx_ssrc) = (self.rtc.direct_api())
            .stream_tx_by_mid(mid, None)
            .map(|tx| (tx.ssrc(), tx.rtx()))
            .unzip();
        let local =
            (self.rtc.codec_config()).find(|p| p.pt() == local_pt || p.red() == Some(local_pt));
        let rtx_pt = local.and_then(|p| p.resend());
        let route = TxRoute {
            mid,
            from: pt,
            kind,
            local_pt,
            ssrc,
            rtx: rtx_ssrc.flatten().zip(rtx_pt),
            clock_rate: local.map_or(90_000, |p| p.spec().clock_rate.get()),
        };
        self.tx_routes.keep(route);
        Ok(route)
    }

    /// The media kind of `mid` and the PT it negotiated for `pt` (RED or plain).
    fn local_pt(&self, mid: Mid, pt: PayloadType) -> Result<(MediaKind, Pt), SessionError> {
        let not_negotiated = || SessionError::CodecNotNegotiated {
            mid,
            codec: pt.codec(),
        };
        let media = self.rtc.media(mid).ok_or(SessionError::UnknownMid(mid))?;
        let local = self
            .rtc
            .codec_config()
            .match_params(pt.params)
            .ok_or_else(not_negotiated)?;
        let local_pt = if pt.red {
            local.red()
        } else {
            Some(local.pt())
        };
        match local_pt {
            Some(p) if media.remote_pts().contains(&p) => Ok((media.kind(), p)),
            _ => Err(not_negotiated()),
        }
    }
}
