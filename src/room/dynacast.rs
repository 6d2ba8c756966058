//! Dynacast: tell each publisher which simulcast qualities anyone receives, so layers
//! nobody watches stop being encoded. The aggregation is a pure function; the room
//! sends a SubscribedQualityUpdate when a track's set changes.

use std::collections::BTreeSet;

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::one_room::Room;
use super::participant::ConnId;
use super::room_ops::Outbound;
use super::spread::SpreadOut;
use crate::sfu::layers::{rid_for, track_layers};

/// The quality a layer rid stands for: as announced, else the SDKs' q/h/f.
fn quality_of_rid(layers: &[lk::VideoLayer], rid: &str) -> Option<lk::VideoQuality> {
    if let Some(l) = layers.iter().find(|l| l.rid == rid) {
        return lk::VideoQuality::try_from(l.quality).ok();
    }
    [
        lk::VideoQuality::Low,
        lk::VideoQuality::Medium,
        lk::VideoQuality::High,
    ]
    .into_iter()
    .find(|q| rid_for(*q) == rid)
}

/// Qualities wanted by the given downtracks (each its target or current rid; `None`
/// for a paused one).
pub fn wanted_qualities<'a>(
    layers: &[lk::VideoLayer],
    wanted_rids: impl Iterator<Item = Option<&'a str>>,
) -> BTreeSet<i32> {
    wanted_rids
        .flatten()
        .filter_map(|rid| quality_of_rid(layers, rid))
        .map(|q| q as i32)
        .collect()
}

/// The update for a track: every announced quality, enabled when wanted.
#[allow(deprecated)] // subscribed_qualities: SDKs without codec support read it
pub fn quality_update(
    track: &lk::TrackInfo,
    wanted: &BTreeSet<i32>,
) -> lk::SubscribedQualityUpdate {
    let qualities: Vec<lk::SubscribedQuality> = [
        lk::VideoQuality::Low,
        lk::VideoQuality::Medium,
        lk::VideoQuality::High,
    ]
    .into_iter()
    .map(|q| lk::SubscribedQuality {
        quality: q as i32,
        enabled: wanted.contains(&(q as i32)),
    })
    .collect();
    let codec = track
        .codecs
        .first()
        .map(|c| c.mime_type.clone())
        .unwrap_or_else(|| track.mime_type.clone());
    let codec = codec
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    lk::SubscribedQualityUpdate {
        track_sid: track.sid.clone(),
        subscribed_qualities: qualities.clone(),
        subscribed_codecs: vec![lk::SubscribedCodec { codec, qualities }],
    }
}

impl Room {
    /// Recomputes the wanted qualities of every simulcast track of the room and tells
    /// the publishers of the tracks whose set changed: local ones by signal, those on
    /// other shards through their shard (`to`).
    pub(super) fn update_dynacast(&mut self, out: &mut Vec<Outbound>, to: &mut Vec<SpreadOut>) {
        let mut updates: Vec<(ConnId, String, BTreeSet<i32>, lk::TrackInfo)> = Vec::new();
        for p in self.participants.values() {
            for track in &p.info.tracks {
                let layers = track_layers(track);
                if layers.len() < 2 {
                    continue;
                }
                let mut wanted = wanted_qualities(
                    layers,
                    self.participants
                        .values()
                        .filter_map(|s| s.media.downtracks.get(&track.sid))
                        .map(|d| {
                            if d.layers.paused {
                                None
                            } else {
                                d.layers.target.as_deref().or(d.layers.current.as_deref())
                            }
                        }),
                );
                // Subscribers on the other shards of a spread room count too.
                wanted.extend(self.spread.remote_wants(&track.sid));
                if p.media.sent_qualities.get(&track.sid) != Some(&wanted) {
                    updates.push((p.conn, track.sid.clone(), wanted, track.clone()));
                }
            }
        }
        for (conn, sid, wanted, track) in updates {
            let update = quality_update(&track, &wanted);
            if let Some(p) = self.participants.values_mut().find(|p| p.conn == conn) {
                p.media.sent_qualities.insert(sid.clone(), wanted.clone());
            }
            if super::spread::is_proxy(conn) {
                // Its publisher is on another shard, which adds these to its own.
                self.spread_wants(conn, &sid, wanted, to);
                continue;
            }
            out.push(Outbound::Signal {
                conn,
                response: Box::new(lk::SignalResponse {
                    message: Some(Resp::SubscribedQualityUpdate(update)),
                }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Vec<lk::VideoLayer> {
        [
            lk::VideoQuality::Low,
            lk::VideoQuality::Medium,
            lk::VideoQuality::High,
        ]
        .into_iter()
        .map(|q| lk::VideoLayer {
            quality: q as i32,
            ..Default::default()
        })
        .collect()
    }

    #[test]
    fn aggregation_table() {
        let low = lk::VideoQuality::Low as i32;
        let high = lk::VideoQuality::High as i32;
        let table: &[(&[Option<&str>], &[i32])] = &[
            (&[], &[]),
            (&[None], &[]),
            (&[Some("q")], &[low]),
            (&[Some("q"), Some("f"), Some("q")], &[low, high]),
            (&[Some("f"), None], &[high]),
            (&[Some("nonsense")], &[]),
        ];
        for (rids, want) in table {
            let got = wanted_qualities(&layers(), rids.iter().copied());
            assert_eq!(got.into_iter().collect::<Vec<_>>(), *want, "{rids:?}");
        }
    }

    #[test]
    fn announced_rids_win_over_the_convention() {
        let mut l = layers();
        l[0].rid = "f".into(); // an SDK that names its low layer "f"
        let got = wanted_qualities(&l, [Some("f")].into_iter());
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [lk::VideoQuality::Low as i32]
        );
    }

    #[test]
    #[allow(deprecated)]
    fn update_lists_every_quality_with_its_state() {
        let track = lk::TrackInfo {
            sid: "TR_x".into(),
            mime_type: "video/VP8".into(),
            ..Default::default()
        };
        let wanted: BTreeSet<i32> = [lk::VideoQuality::Medium as i32].into();
        let u = quality_update(&track, &wanted);
        let enabled: Vec<bool> = u.subscribed_qualities.iter().map(|q| q.enabled).collect();
        assert_eq!(enabled, [false, true, false]);
        assert_eq!(u.subscribed_codecs[0].codec, "vp8");
    }
}
