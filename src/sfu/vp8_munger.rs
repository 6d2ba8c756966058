//! VP8 payload descriptor rewriting for a downtrack (RFC 7741 §4.2): across a simulcast
//! switch the picture ID, TL0PICIDX and KEYIDX continue from where the previous layer
//! left off. Each layer's encoder numbers its pictures on its own, and a browser's VP8
//! reference finder takes a picture ID that jumps backwards for an old picture: after
//! such a switch the subscriber receives every packet and decodes nothing.
//!
//! It also selects temporal layers (L1T3 simulcast layers, for a subscriber's `fps`):
//! pictures above the wanted TID are dropped whole, and the picture IDs after them
//! close the gap, so the subscriber never waits for a picture that will not come.

use std::sync::Arc;

use super::svc::ALL_TEMPORAL;

/// Picture IDs are 15 bits wide on the wire (or 7 with the short form).
const PICTURE_ID_MOD: u16 = 1 << 15;
const KEYIDX_MOD: u8 = 1 << 5;

/// Where a packet's descriptor fields sit, and their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    /// S=1 and partition 0: the first packet of a picture.
    starts_picture: bool,
    /// The temporal layer, when the sender marks it (T=1).
    tid: Option<u8>,
    /// (offset, value, 15-bit form)
    picture_id: Option<(usize, u16, bool)>,
    tl0picidx: Option<(usize, u8)>,
    keyidx: Option<(usize, u8)>,
}

/// Parses the descriptor; `None` when the payload is too short for what it announces.
fn parse(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let mut d = Descriptor {
        starts_picture: first & 0x10 != 0 && first & 0x07 == 0,
        tid: None,
        picture_id: None,
        tl0picidx: None,
        keyidx: None,
    };
    if first & 0x80 == 0 {
        return Some(d);
    }
    let ext = *payload.get(1)?;
    let mut at = 2;
    if ext & 0x80 != 0 {
        let b = *payload.get(at)?;
        if b & 0x80 != 0 {
            let lo = *payload.get(at + 1)?;
            d.picture_id = Some((at, (u16::from(b & 0x7f) << 8) | u16::from(lo), true));
            at += 2;
        } else {
            d.picture_id = Some((at, u16::from(b), false));
            at += 1;
        }
    }
    if ext & 0x40 != 0 {
        d.tl0picidx = Some((at, *payload.get(at)?));
        at += 1;
    }
    if ext & 0x30 != 0 {
        let b = *payload.get(at)?;
        if ext & 0x20 != 0 {
            d.tid = Some(b >> 6);
        }
        if ext & 0x10 != 0 {
            d.keyidx = Some((at, b & 0x1f));
        }
    }
    Some(d)
}

/// The rewriting state of one downtrack.
#[derive(Debug, Clone)]
pub struct Vp8Munger {
    /// The SSRC the offsets were anchored on; another one starts a new anchor.
    source: Option<u32>,
    picture_offset: u16,
    tl0_offset: u8,
    keyidx_offset: u8,
    /// The last values written, to continue from at the next switch.
    last_picture_id: Option<u16>,
    last_tl0: Option<u8>,
    last_keyidx: Option<u8>,
    /// The temporal layers wanted, and those forwarded now (changed at picture starts).
    target_temporal: u8,
    current_temporal: u8,
    /// The picture whose packets arrive now is being dropped.
    dropping: bool,
}

impl Default for Vp8Munger {
    fn default() -> Self {
        Vp8Munger {
            source: None,
            picture_offset: 0,
            tl0_offset: 0,
            keyidx_offset: 0,
            last_picture_id: None,
            last_tl0: None,
            last_keyidx: None,
            target_temporal: ALL_TEMPORAL,
            current_temporal: ALL_TEMPORAL,
            dropping: false,
        }
    }
}

impl Vp8Munger {
    pub fn new() -> Self {
        Vp8Munger::default()
    }

    /// The highest temporal layer to forward ([`ALL_TEMPORAL`] for every one).
    pub fn set_temporal_target(&mut self, temporal: u8) {
        self.target_temporal = temporal;
    }

    /// Whether to forward this packet of `ssrc` for the temporal layers wanted. Fewer
    /// layers apply at once, more at a base-layer picture (or a keyframe), whose
    /// successors can all be decoded. A dropped picture's successors are renumbered to
    /// close its gap in picture IDs (the caller closes the gap in sequence numbers).
    pub fn admit(&mut self, ssrc: u32, payload: &[u8], keyframe: bool) -> bool {
        let Some(d) = parse(payload) else {
            return true;
        };
        let Some(tid) = d.tid else {
            return true;
        };
        if d.starts_picture {
            if keyframe || tid == 0 || self.target_temporal < self.current_temporal {
                self.current_temporal = self.target_temporal;
            }
            self.dropping = tid > self.current_temporal && !keyframe;
            if self.dropping && self.source == Some(ssrc) && d.picture_id.is_some() {
                self.picture_offset = (self.picture_offset + PICTURE_ID_MOD - 1) % PICTURE_ID_MOD;
            }
        }
        !self.dropping
    }

    /// Rewrites one forwarded packet from `ssrc` (a simulcast layer is its own SSRC; the
    /// layer logic only changes SSRC at a keyframe). Returns the payload to send instead,
    /// or `None` when it goes out unchanged (no switch yet, or no descriptor fields).
    pub fn munge(&mut self, ssrc: u32, payload: &[u8]) -> Option<Arc<[u8]>> {
        let d = parse(payload)?;
        if self.source != Some(ssrc) {
            self.anchor(&d);
            self.source = Some(ssrc);
        }
        let mut out: Option<Vec<u8>> = None;
        if let Some((at, value, wide)) = d.picture_id {
            let id = value.wrapping_add(self.picture_offset) % PICTURE_ID_MOD;
            let id = if wide { id } else { id & 0x7f };
            self.last_picture_id = Some(id);
            if id != value {
                let buf = out.get_or_insert_with(|| payload.to_vec());
                if wide {
                    buf[at] = 0x80 | (id >> 8) as u8;
                    buf[at + 1] = id as u8;
                } else {
                    buf[at] = id as u8;
                }
            }
        }
        if let Some((at, value)) = d.tl0picidx {
            let tl0 = value.wrapping_add(self.tl0_offset);
            self.last_tl0 = Some(tl0);
            if tl0 != value {
                out.get_or_insert_with(|| payload.to_vec())[at] = tl0;
            }
        }
        if let Some((at, value)) = d.keyidx {
            let key = value.wrapping_add(self.keyidx_offset) % KEYIDX_MOD;
            self.last_keyidx = Some(key);
            if key != value {
                let buf = out.get_or_insert_with(|| payload.to_vec());
                buf[at] = (buf[at] & !0x1f) | key;
            }
        }
        out.map(Arc::from)
    }

    /// The first packet of a new source: its fields continue from the last ones sent.
    fn anchor(&mut self, d: &Descriptor) {
        if let (Some((_, value, _)), Some(last)) = (d.picture_id, self.last_picture_id) {
            let next = (last + 1) % PICTURE_ID_MOD;
            self.picture_offset = (next + PICTURE_ID_MOD - value) % PICTURE_ID_MOD;
        }
        if let (Some((_, value)), Some(last)) = (d.tl0picidx, self.last_tl0) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(value);
        }
        if let (Some((_, value)), Some(last)) = (d.keyidx, self.last_keyidx) {
            let next = (last + 1) % KEYIDX_MOD;
            self.keyidx_offset = (next + KEYIDX_MOD - value) % KEYIDX_MOD;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X=1, S=1, I=1 (15-bit picture ID), L=1, T=1, K=1; then one payload byte.
    fn packet(picture_id: u16, tl0: u8, tid: u8, keyidx: u8) -> Vec<u8> {
        vec![
            0x90,
            0xf0,
            0x80 | (picture_id >> 8) as u8,
            picture_id as u8,
            tl0,
            (tid << 6) | keyidx,
            0xaa,
        ]
    }

    fn fields(p: &[u8]) -> (u16, u8, u8, u8) {
        let d = parse(p).expect("descriptor");
        (
            d.picture_id.unwrap().1,
            d.tl0picidx.unwrap().1,
            p[5] >> 6,
            d.keyidx.unwrap().1,
        )
    }

    fn send(m: &mut Vp8Munger, ssrc: u32, p: Vec<u8>) -> Vec<u8> {
        m.munge(ssrc, &p).map(|a| a.to_vec()).unwrap_or(p)
    }

    #[test]
    fn the_first_layer_goes_out_untouched() {
        let mut m = Vp8Munger::new();
        for i in 0..5 {
            assert_eq!(m.munge(1, &packet(100 + i, 7, 0, 3)), None);
        }
    }

    #[test]
    fn a_switch_continues_every_field_even_when_the_new_layer_counts_lower() {
        let mut m = Vp8Munger::new();
        send(&mut m, 1, packet(20_000, 200, 0, 3));
        send(&mut m, 1, packet(20_001, 201, 0, 3));
        // The new layer's encoder is far behind in picture IDs, and at TL0 5 / key 30.
        let first = send(&mut m, 2, packet(300, 5, 0, 30));
        assert_eq!(fields(&first), (20_002, 202, 0, 4));
        let next = send(&mut m, 2, packet(301, 5, 2, 30));
        assert_eq!(
            fields(&next),
            (20_003, 202, 2, 4),
            "offsets hold, TID untouched"
        );
        // Back to the first layer: again from where the output is.
        let back = send(&mut m, 1, packet(20_050, 230, 0, 3));
        assert_eq!(fields(&back), (20_004, 203, 0, 5));
    }

    #[test]
    fn fields_wrap_in_their_own_widths() {
        let mut m = Vp8Munger::new();
        send(&mut m, 1, packet(PICTURE_ID_MOD - 1, 255, 0, 31));
        let p = send(&mut m, 2, packet(10, 10, 0, 10));
        assert_eq!(fields(&p), (0, 0, 0, 0));
        // The short (7-bit) picture ID form stays short.
        let mut m = Vp8Munger::new();
        send(&mut m, 1, vec![0x90, 0x80, 0x7f, 0xaa]);
        let p = send(&mut m, 2, vec![0x90, 0x80, 0x10, 0xaa]);
        assert_eq!(p, vec![0x90, 0x80, 0x00, 0xaa]);
    }

    /// An L1T3 stream from picture 100: TIDs 0 2 1 2 0 2 1 2 ..., two packets a picture
    /// (the second without S). Returns what `m` forwards: (picture ID out, TID).
    fn l1t3(m: &mut Vp8Munger, pictures: std::ops::Range<u16>, keyframe_at: u16) -> Vec<(u16, u8)> {
        let mut out = Vec::new();
        for pic in pictures {
            let i = pic - 100;
            let tid = [0, 2, 1, 2][usize::from(i % 4)];
            for first in [true, false] {
                let mut p = packet(pic, (i / 4) as u8, tid, 0);
                if !first {
                    p[0] &= !0x10;
                }
                if m.admit(1, &p, first && pic == keyframe_at) {
                    let sent = send(m, 1, p);
                    if first {
                        let (id, _, tid, _) = fields(&sent);
                        out.push((id, tid));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn temporal_layers_drop_whole_pictures_and_close_the_picture_id_gaps() {
        let mut m = Vp8Munger::new();
        m.set_temporal_target(0);
        assert_eq!(
            l1t3(&mut m, 100..112, 100),
            vec![(100, 0), (101, 0), (102, 0)]
        );
        // Two layers: from the next base-layer picture on, TIDs 0 and 1.
        m.set_temporal_target(1);
        assert_eq!(
            l1t3(&mut m, 112..120, 0),
            vec![(103, 0), (104, 1), (105, 0), (106, 1)]
        );
    }

    #[test]
    fn more_temporal_layers_wait_for_a_base_picture_fewer_apply_at_once() {
        let mut m = Vp8Munger::new();
        m.set_temporal_target(0);
        assert_eq!(l1t3(&mut m, 100..102, 100), vec![(100, 0)]);
        // Asking for all at picture 102 (TID 1): it and 103 are not decodable yet.
        m.set_temporal_target(ALL_TEMPORAL);
        assert_eq!(l1t3(&mut m, 102..106, 0), vec![(101, 0), (102, 2)]);
        // Back to the base layer at 106 (TID 1): dropped at once.
        m.set_temporal_target(0);
        assert_eq!(l1t3(&mut m, 106..109, 0), vec![(103, 0)]);
    }

    #[test]
    fn bad_descriptors_are_left_alone() {
        let mut m = Vp8Munger::new();
        for bad in [
            &[][..],
            &[0x90],
            &[0x90, 0x80],
            &[0x90, 0x80, 0x80],
            &[0x90, 0x40],
        ] {
            assert_eq!(m.munge(1, bad), None, "{bad:?}");
            assert_eq!(m.munge(2, bad), None, "{bad:?}");
        }
        // Without the extension byte there is nothing to rewrite.
        send(&mut m, 1, packet(5, 5, 0, 5));
        assert_eq!(m.munge(3, &[0x10, 0xaa]), None);
    }
}
