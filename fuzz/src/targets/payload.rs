//! RTP payload parsers of ours: the VP8 and VP9 descriptors as the downtrack rewriting
//! and layer selection read them, and RED's primary block.
//!
//! The input is a run of packets: a byte of flags (SSRC switch, keyframe, marker, and
//! a layer target), a length byte, then that many payload bytes.

use corelay::sfu::red;
use corelay::sfu::svc::{parse_vp9, SvcSelector};
use corelay::sfu::vp8_munger::Vp8Munger;

struct Packet<'a> {
    flags: u8,
    payload: &'a [u8],
}

fn packets(mut data: &[u8]) -> impl Iterator<Item = Packet<'_>> {
    std::iter::from_fn(move || {
        let (&flags, rest) = data.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let len = usize::from(len).min(rest.len());
        let (payload, rest) = rest.split_at(len);
        data = rest;
        Some(Packet { flags, payload })
    })
}

pub fn vp8(data: &[u8]) {
    let mut munger = Vp8Munger::new();
    for p in packets(data) {
        let ssrc = u32::from(p.flags & 0x01);
        munger.set_temporal_target(p.flags >> 5);
        if munger.admit(ssrc, p.payload, p.flags & 0x02 != 0) {
            let _ = munger.munge(ssrc, p.payload);
        }
    }
}

pub fn vp9(data: &[u8]) {
    let mut selector = SvcSelector::new(2);
    for p in packets(data) {
        selector.set_target(p.flags & 0x07);
        selector.set_temporal_target(p.flags >> 5);
        if let Some(layer) = parse_vp9(p.payload) {
            let _ = layer.starts_keyframe();
            let _ = selector.admit(layer, p.flags & 0x08 != 0);
            let _ = selector.needs_keyframe();
        }
    }
}

pub fn red(data: &[u8]) {
    let _ = red::primary(data);
}
