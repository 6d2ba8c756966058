//! Connection quality for a room: every few seconds each participant's score is
//! recomputed, and changes go to everyone in the room as ConnectionQualityUpdate.

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::one_room::Room;
use super::room_ops::Outbound;
use super::spread::SpreadOut;
use crate::sfu::connection_quality::score;

/// LiveKit's cadence.
pub(super) const UPDATE_EVERY: Duration = Duration::from_secs(5);

impl Room {
    /// Scores the room's participants and tells everyone the changes; the other shards
    /// of a spread room hear of them through `to`.
    pub(super) fn tick_quality(
        &mut self,
        now: Instant,
        out: &mut Vec<Outbound>,
        to: &mut Vec<SpreadOut>,
    ) {
        let mut updates = Vec::new();
        for p in self.participants.values_mut() {
            // Not scored before its first report: a fresh joiner is not LOST.
            if p.media.quality.last_report.is_none() || p.hidden() {
                continue;
            }
            let (quality, score) = score(&p.media.quality, now);
            if p.media.sent_quality == Some(quality as i32) {
                continue;
            }
            p.media.sent_quality = Some(quality as i32);
            updates.push(lk::ConnectionQualityInfo {
                participant_sid: p.info.sid.clone(),
                quality: quality as i32,
                score,
            });
        }
        if updates.is_empty() {
            return;
        }
        self.spread_quality(&updates, to);
        self.send_to_all(
            Resp::ConnectionQuality(lk::ConnectionQualityUpdate { updates }),
            out,
        );
    }
}
