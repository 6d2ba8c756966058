//! A participant's peer connections, made when first needed: from the shard's
//! addresses and codecs, and registered with the demux under their ufrag.

use std::time::Instant;

use tracing::debug;

use super::ice_fallback::IcePreference;
use super::media::Side;
use super::members::Slot;
use super::one_room::Room;
use super::rooms::ShardParts;
use crate::session::{PeerRole, PeerSession};

impl Room {
    /// Creates the `side` session of the participant in `slot` if it has none (a single
    /// PC, `/rtc/v1`, is its publisher side either way). False when there is no such
    /// participant or the session cannot be made.
    pub(super) fn ensure_session(
        &mut self,
        slot: Slot,
        side: Side,
        now: Instant,
        parts: &mut ShardParts,
    ) -> bool {
        let Some(p) = self.participants.at_mut(slot) else {
            return false;
        };
        let side = if side == Side::Subscriber && p.media.single_pc {
            Side::Publisher
        } else {
            side
        };
        let key = (p.conn, side);
        let mut addrs = parts.local_candidates.clone();
        // Steered to ICE/TCP after failing over UDP: only the TCP candidates.
        if p.media.ice.preference == IcePreference::Tcp && !addrs.tcp.is_empty() {
            addrs.udp.clear();
        }
        let role = match side {
            Side::Publisher if p.media.single_pc => PeerRole::Single,
            side => side.role(),
        };
        let place = match side {
            Side::Publisher => &mut p.media.publisher,
            Side::Subscriber => &mut p.media.subscriber,
        };
        if place.is_some() {
            return true;
        }
        match PeerSession::configured(role, &addrs, parts.codecs, now) {
            Ok(session) => {
                debug!(conn = key.0, ?role, "peer connection created");
                p.media.ice.started(side as usize, now);
                let ufrag = session.local_ufrag();
                *place = Some(Box::new(session));
                parts.demux.add_ufrag(ufrag, key);
                true
            }
            Err(e) => {
                debug!(conn = key.0, error = %e, "cannot create peer connection");
                false
            }
        }
    }
}
