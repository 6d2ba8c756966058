//! VP9 SVC forwarding, sans-IO: one RTP stream carries every spatial layer (Chrome's
//! L3T3_KEY from livekit-client with `videoCodec: 'vp9'`), and each downtrack forwards
//! only the spatial layers up to the one its subscriber gets. Layer indices come from
//! the VP9 payload descriptor (RFC 9628 §4.2), which Chrome always sends; the
//! dependency descriptor extension is not negotiated by str0m, so AV1 SVC is not
//! selected here.
//!
//! In KEY mode upper spatial layers depend on lower ones only in keyframes, so a
//! downtrack can drop to a lower layer at any picture start, but can climb only at a
//! keyframe. The marker bit must end each picture as the subscriber sees it: on the
//! last packet of the highest layer forwarded.
//!
//! Temporal layers (the frame rate, UpdateTrackSettings.fps) drop at any picture and
//! climb at a base-layer (TL0) picture: in the T3 patterns every frame references a
//! frame of its own or a lower temporal layer since the last TL0.

pub use crate::session::vp9_descriptor::{parse_vp9, Vp9Layer};

/// What to do with one packet on a downtrack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvcDecision {
    pub forward: bool,
    /// The marker bit to send (ends the picture as this subscriber sees it).
    pub marker: bool,
}

/// The spatial layer a downtrack forwards and the one it should.
#[derive(Debug, Clone, Default)]
pub struct SvcSelector {
    target: u8,
    current: Option<u8>,
    target_temporal: u8,
    current_temporal: u8,
}

/// Every temporal layer (the descriptor's TID has 3 bits).
pub const ALL_TEMPORAL: u8 = 7;

/// The temporal layers to forward for a requested frame rate, out of `full_fps`
/// (T3: each layer below the top halves the rate); 0 asks for the full rate.
pub fn temporal_for_fps(fps: u32, full_fps: u32) -> u8 {
    if fps == 0 || full_fps == 0 || fps * 2 > full_fps {
        ALL_TEMPORAL
    } else if fps * 4 > full_fps {
        1
    } else {
        0
    }
}

impl SvcSelector {
    pub fn new(target: u8) -> Self {
        SvcSelector {
            target,
            current: None,
            target_temporal: ALL_TEMPORAL,
            current_temporal: ALL_TEMPORAL,
        }
    }

    pub fn set_target(&mut self, spatial: u8) {
        self.target = spatial;
    }

    pub fn set_temporal_target(&mut self, temporal: u8) {
        self.target_temporal = temporal;
    }

    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// A climb waits for a keyframe: the caller should ask the publisher for one.
    pub fn needs_keyframe(&self) -> bool {
        self.current.is_none_or(|c| c < self.target)
    }

    pub fn admit(&mut self, layer: Vp9Layer, marker: bool) -> SvcDecision {
        if layer.starts_keyframe() {
            self.current = Some(self.target);
            self.current_temporal = self.target_temporal;
        } else if layer.starts_picture() {
            if let Some(c) = self.current {
                self.current = Some(c.min(self.target));
            }
            if layer.temporal == 0 || self.target_temporal < self.current_temporal {
                self.current_temporal = self.target_temporal;
            }
        }
        if layer.temporal > self.current_temporal {
            return SvcDecision {
                forward: false,
                marker: false,
            };
        }
        match self.current {
            Some(c) if layer.spatial <= c => SvcDecision {
                forward: true,
                marker: marker || (layer.end && layer.spatial == c),
            },
            _ => SvcDecision {
                forward: false,
                marker: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor byte pair: flags (I=0, L=1, F=1) then TID|U|SID|D.
    fn pkt(spatial: u8, begin: bool, end: bool, inter: bool) -> Vec<u8> {
        let mut first = 0x20 | 0x10;
        if inter {
            first |= 0x40;
        }
        if begin {
            first |= 0x08;
        }
        if end {
            first |= 0x04;
        }
        vec![first, spatial << 1, 0xAA]
    }

    #[test]
    fn parses_descriptor_forms() {
        // I with a 15-bit picture id, L with TID 2, SID 1
        let l = parse_vp9(&[0x80 | 0x20 | 0x08, 0x81, 0x23, (2 << 5) | (1 << 1)]).unwrap();
        assert_eq!((l.spatial, l.temporal, l.begin, l.end), (1, 2, true, false));
        // 7-bit picture id, no layer indices
        let l = parse_vp9(&[0x80 | 0x04 | 0x40, 0x05]).unwrap();
        assert_eq!(
            (l.spatial, l.temporal, l.end, l.inter_picture),
            (0, 0, true, true)
        );
        assert!(parse_vp9(&[]).is_none());
        assert!(parse_vp9(&[0x80]).is_none(), "picture id missing");
        assert!(
            parse_vp9(&[0x80 | 0x20, 0x85]).is_none(),
            "long picture id cut"
        );
        assert!(parse_vp9(&[0x20]).is_none(), "layer byte missing");
    }

    /// One picture of three spatial layers, two packets each: (sid, begin, end).
    fn picture(inter: bool) -> Vec<(Vp9Layer, bool)> {
        let mut out = Vec::new();
        for sid in 0..3u8 {
            for (begin, end) in [(true, false), (false, true)] {
                let l = parse_vp9(&pkt(sid, begin, end, inter)).unwrap();
                let marker = sid == 2 && end;
                out.push((l, marker));
            }
        }
        out
    }

    /// Runs pictures through a selector: per picture, the sids forwarded and the
    /// sids whose packet carried the marker.
    fn run(s: &mut SvcSelector, inter: bool) -> (Vec<u8>, Vec<u8>) {
        let mut sent = Vec::new();
        let mut marked = Vec::new();
        for (l, m) in picture(inter) {
            let d = s.admit(l, m);
            if d.forward && !sent.contains(&l.spatial) {
                sent.push(l.spatial);
            }
            if d.forward && d.marker {
                marked.push(l.spatial);
            }
        }
        (sent, marked)
    }

    #[test]
    fn starts_on_a_keyframe_and_ends_pictures_at_its_layer() {
        let mut s = SvcSelector::new(0);
        assert!(s.needs_keyframe());
        assert_eq!(
            run(&mut s, true),
            (vec![], vec![]),
            "delta before any keyframe"
        );
        assert_eq!(run(&mut s, false), (vec![0], vec![0]));
        assert_eq!(run(&mut s, true), (vec![0], vec![0]));
        assert!(!s.needs_keyframe());
    }

    #[test]
    fn climbs_only_at_a_keyframe_and_drops_at_any_picture() {
        let mut s = SvcSelector::new(1);
        assert_eq!(run(&mut s, false), (vec![0, 1], vec![1]));
        s.set_target(2);
        assert!(s.needs_keyframe());
        assert_eq!(
            run(&mut s, true),
            (vec![0, 1], vec![1]),
            "no climb on a delta"
        );
        assert_eq!(run(&mut s, false), (vec![0, 1, 2], vec![2]));
        s.set_target(0);
        assert_eq!(run(&mut s, true), (vec![0], vec![0]), "drops at once");
        assert_eq!(s.current(), Some(0));
    }

    /// One single-spatial-layer picture of temporal layer `tid`: (forwarded).
    fn temporal_picture(s: &mut SvcSelector, tid: u8, key: bool) -> bool {
        let mut first = 0x20 | 0x10 | 0x08 | 0x04;
        if !key {
            first |= 0x40;
        }
        let l = parse_vp9(&[first, tid << 5]).unwrap();
        s.admit(l, true).forward
    }

    #[test]
    fn temporal_layers_drop_at_once_and_climb_at_a_base_picture() {
        let mut s = SvcSelector::new(0);
        // L1T3 pattern 0 2 1 2 | 0 2 1 2 ...
        let pattern = [0u8, 2, 1, 2];
        assert!(temporal_picture(&mut s, 0, true));
        for tid in &pattern[1..] {
            assert!(
                temporal_picture(&mut s, *tid, false),
                "all layers by default"
            );
        }
        s.set_temporal_target(0);
        let sent: Vec<bool> = pattern
            .iter()
            .map(|t| temporal_picture(&mut s, *t, false))
            .collect();
        assert_eq!(sent, [true, false, false, false], "quarter rate at once");
        s.set_temporal_target(1);
        // mid-cycle: the TL1 picture waits for the next base picture
        assert!(!temporal_picture(&mut s, 2, false));
        assert!(!temporal_picture(&mut s, 1, false));
        let sent: Vec<bool> = pattern
            .iter()
            .map(|t| temporal_picture(&mut s, *t, false))
            .collect();
        assert_eq!(
            sent,
            [true, false, true, false],
            "half rate from the base picture"
        );
    }

    #[test]
    fn fps_maps_to_temporal_layers() {
        let table = [
            (0, 30, ALL_TEMPORAL),
            (30, 30, ALL_TEMPORAL),
            (16, 30, ALL_TEMPORAL),
            (15, 30, 1),
            (8, 30, 1),
            (7, 30, 0),
            (1, 30, 0),
            (10, 0, ALL_TEMPORAL),
        ];
        for (fps, full, want) in table {
            assert_eq!(temporal_for_fps(fps, full), want, "{fps} of {full}");
        }
    }

    #[test]
    fn a_layer_the_publisher_stops_sending_keeps_its_marker() {
        // target 2 but the publisher sends only layers 0 and 1 (dynacast): the
        // original marker on layer 1 passes through.
        let mut s = SvcSelector::new(2);
        let l0 = parse_vp9(&pkt(0, true, true, false)).unwrap();
        let l1 = parse_vp9(&pkt(1, true, true, false)).unwrap();
        assert_eq!(
            s.admit(l0, false),
            SvcDecision {
                forward: true,
                marker: false
            }
        );
        assert_eq!(
            s.admit(l1, true),
            SvcDecision {
                forward: true,
                marker: true
            }
        );
    }
}
