//! Connection quality for rooms: every few seconds each participant's score is
//! recomputed, and changes go to everyone in its room as ConnectionQualityUpdate.

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::room_ops::Outbound;
use super::rooms::Rooms;
use crate::sfu::connection_quality::score;

/// LiveKit's cadence.
const UPDATE_EVERY: Duration = Duration::from_secs(5);

impl Rooms {
    pub fn tick_quality(&mut self, now: Instant, out: &mut Vec<Outbound>) {
        if self.next_quality_tick.is_some_and(|at| now < at) {
            return;
        }
        self.next_quality_tick = Some(now + UPDATE_EVERY);
        let mut spread = Vec::new();
        for (name, r) in self.rooms.iter_mut() {
            let mut updates = Vec::new();
            for p in r.participants.values_mut() {
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
                continue;
            }
            if !r.spread.peers.is_empty() {
                spread.push((name.clone(), updates.clone()));
            }
            let msg = Resp::ConnectionQuality(lk::ConnectionQualityUpdate { updates });
            for p in r.participants.values() {
                out.push(Outbound::Signal {
                    conn: p.conn,
                    response: Box::new(lk::SignalResponse {
                        message: Some(msg.clone()),
                    }),
                });
            }
        }
        for (room, updates) in spread {
            self.spread_quality(&room, &updates);
        }
    }
}
