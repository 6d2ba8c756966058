//! The stream allocator at work in rooms: each subscriber PC's link report updates its
//! estimate, the allocator shares it among the subscriber's tracks, and the
//! downtracks follow (layer caps, bandwidth pauses). StreamStateUpdate tells the
//! client which tracks are paused for bandwidth.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use tracing::debug;

use super::media::Side;
use super::members::Slot;
use super::one_room::Room;
use super::participant::DownTrack;
use super::room_ops::{reply, Outbound};
use crate::session::{LinkStats, MediaKind};
use crate::sfu::allocator::{allocate, desired_bps, Demand, Grant};
use crate::sfu::bandwidth::LinkReport;
use crate::sfu::layers::{rid_for, track_layers};

/// What an audio track is budgeted at (Opus voice with RED, plus headers).
const AUDIO_BPS: u64 = 40_000;
/// Fallback rate of a video layer whose bitrate nobody announced: ~2 bits per pixel
/// and second at 30 fps puts 720p near 1.8 Mbit/s and 180p near 120 kbit/s.
const BITS_PER_PIXEL: u64 = 2;
const DEFAULT_VIDEO_BPS: u64 = 1_000_000;

/// What the allocator needs of a track, known room-wide.
struct TrackFacts {
    publisher_sid: String,
    info: lk::TrackInfo,
    /// Screen share, then the active speaker's video.
    priority: u8,
}

impl Room {
    /// A PC's once-a-second link figures for the participant in `slot`: connection
    /// quality inputs, and for subscriber PCs a new estimate and allocation. Returns how
    /// many of its downtracks were paused for bandwidth.
    pub(super) fn on_link_stats(
        &mut self,
        (slot, side): (Slot, Side),
        stats: LinkStats,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) -> u64 {
        let Some(p) = self.participants.at_mut(slot) else {
            return 0;
        };
        // A single PC (`/rtc/v1`) carries both directions.
        let single = p.media.single_pc;
        let q = &mut p.media.quality;
        q.last_report = Some(now);
        if side == Side::Publisher {
            q.upstream_loss = stats.ingress_loss;
        }
        if side == Side::Subscriber || single {
            q.downstream_loss = stats.egress_loss;
            q.rtt = stats.rtt.or(q.rtt);
        } else {
            return 0;
        }
        let report = LinkReport {
            loss: stats.egress_loss,
            rtt: stats.rtt,
            bytes_sent: stats.bytes_sent,
        };
        self.reallocate(slot, Some(report), now, out)
    }

    /// Runs the allocator for one subscriber (after feeding `report`, if any); returns
    /// how many downtracks it paused.
    pub(super) fn reallocate(
        &mut self,
        slot: Slot,
        report: Option<LinkReport>,
        now: Instant,
        out: &mut Vec<Outbound>,
    ) -> u64 {
        let facts = self.track_facts(slot);
        let Some(p) = self.participants.at_mut(slot) else {
            return 0;
        };
        let conn = p.conn;
        let mut sids: Vec<&String> = p.media.downtracks.keys().collect();
        sids.sort();
        let sids: Vec<String> = sids.into_iter().cloned().collect();
        let demands: Vec<Demand> = sids
            .iter()
            .map(|sid| demand(&p.media.downtracks[sid], facts.get(sid)))
            .collect();
        if let Some(report) = report {
            let before = p.media.link.estimate();
            let after = p.media.link.on_report(now, report, desired_bps(&demands));
            if before != after {
                debug!(
                    conn,
                    loss = ?report.loss,
                    rtt = ?report.rtt,
                    sent_bps = p.media.link.sent_bps(),
                    estimate = ?after,
                    "downlink estimate"
                );
            }
        }
        let grants = allocate(p.media.link.estimate(), &demands);
        let mut changed = Vec::new();
        for ((sid, grant), want) in sids.iter().zip(grants).zip(&demands) {
            let Some(down) = p.media.downtracks.get_mut(sid) else {
                continue;
            };
            let was_paused = down.bw_paused;
            apply(down, grant, want);
            if down.bw_paused != was_paused {
                if let Some(f) = facts.get(sid) {
                    let state = if down.bw_paused {
                        lk::StreamState::Paused
                    } else {
                        lk::StreamState::Active
                    };
                    changed.push(lk::StreamStateInfo {
                        participant_sid: f.publisher_sid.clone(),
                        track_sid: sid.clone(),
                        state: state as i32,
                    });
                }
            }
        }
        let paused = (changed.iter())
            .filter(|c| c.state == lk::StreamState::Paused as i32)
            .count() as u64;
        if !changed.is_empty() {
            reply(
                out,
                conn,
                Resp::StreamStateUpdate(lk::StreamStateUpdate {
                    stream_states: changed,
                }),
            );
        }
        paused
    }

    /// The tracks the participant in `slot` subscribes to, with their publishers and
    /// priorities.
    fn track_facts(&self, slot: Slot) -> HashMap<String, TrackFacts> {
        let Some(me) = self.participants.at(slot) else {
            return HashMap::new();
        };
        let (conn, subscribed) = (me.conn, &me.media.downtracks);
        let speaking: HashSet<String> = (self.speakers.as_ref())
            .map(|d| d.active().into_iter().map(|s| s.sid).collect())
            .unwrap_or_default();
        let mut facts = HashMap::new();
        for p in self.participants.values().filter(|p| p.conn != conn) {
            for t in p
                .info
                .tracks
                .iter()
                .filter(|t| subscribed.contains_key(&t.sid))
            {
                let priority = if t.source == lk::TrackSource::ScreenShare as i32 {
                    2
                } else if speaking.contains(&p.info.sid) {
                    1
                } else {
                    0
                };
                facts.insert(
                    t.sid.clone(),
                    TrackFacts {
                        publisher_sid: p.info.sid.clone(),
                        info: t.clone(),
                        priority,
                    },
                );
            }
        }
        facts
    }
}

/// A downtrack's demand: nothing when the subscriber disabled it; audio at its budget;
/// video with one rate per layer up to the one requested.
fn demand(down: &DownTrack, facts: Option<&TrackFacts>) -> Demand {
    let video = down.kind == MediaKind::Video;
    if down.disabled {
        return Demand {
            video,
            priority: 0,
            layer_bps: Vec::new(),
        };
    }
    if !video {
        return Demand {
            video,
            priority: 0,
            layer_bps: vec![AUDIO_BPS],
        };
    }
    let priority = facts.map_or(0, |f| f.priority);
    let announced = facts.map(|f| track_layers(&f.info)).unwrap_or_default();
    let layer_bps = if down.layers.order.is_empty() {
        let single = facts.map_or(DEFAULT_VIDEO_BPS, |f| {
            let (w, h) = (f.info.width as u64, f.info.height as u64);
            announced
                .iter()
                .map(|l| l.bitrate as u64)
                .max()
                .filter(|b| *b > 0)
                .unwrap_or(if w * h > 0 {
                    w * h * BITS_PER_PIXEL
                } else {
                    DEFAULT_VIDEO_BPS
                })
        });
        vec![single]
    } else {
        let top = down
            .requested
            .as_ref()
            .and_then(|r| down.layers.order.iter().position(|o| o == r))
            .unwrap_or(down.layers.order.len() - 1);
        down.layers.order[..=top]
            .iter()
            .enumerate()
            .map(|(i, rid)| layer_bps(announced, rid, i))
            .collect()
    };
    Demand {
        video,
        priority,
        layer_bps,
    }
}

/// The announced bitrate of layer `rid`, else one from its size, else a default by rank.
fn layer_bps(announced: &[lk::VideoLayer], rid: &str, rank: usize) -> u64 {
    let layer = announced.iter().find(|l| {
        l.rid == rid
            || (l.rid.is_empty()
                && lk::VideoQuality::try_from(l.quality).is_ok_and(|q| rid_for(q) == rid))
    });
    match layer {
        Some(l) if l.bitrate > 0 => l.bitrate as u64,
        Some(l) if l.width as u64 * l.height as u64 > 0 => {
            l.width as u64 * l.height as u64 * BITS_PER_PIXEL
        }
        _ => [150_000, 500_000, 1_700_000][rank.min(2)],
    }
}

/// Applies a grant: a cap only where bandwidth is what limits the layer.
fn apply(down: &mut DownTrack, grant: Grant, want: &Demand) {
    match grant {
        Grant::Full => {
            down.cap = None;
            down.bw_paused = false;
        }
        Grant::Layer(at) => {
            down.bw_paused = false;
            down.cap = if at + 1 >= want.layer_bps.len() {
                None
            } else {
                down.layers.order.get(at).cloned()
            };
        }
        Grant::Paused => {
            down.bw_paused = true;
        }
    }
    down.refresh();
}
