//! The VP9 payload descriptor's layer fields (RFC 9628 §4.2), read
//! as packets arrive so that what decides per packet (`sfu::svc`) gets them with the
//! packet.

/// The layer fields of one packet's VP9 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Layer {
    pub spatial: u8,
    pub temporal: u8,
    /// First packet of a layer frame (B).
    pub begin: bool,
    /// Last packet of a layer frame (E).
    pub end: bool,
    /// Predicted from an earlier picture (P): false in keyframes.
    pub inter_picture: bool,
}

impl Vp9Layer {
    /// The packet starts a new picture (its lowest layer's first packet).
    pub fn starts_picture(&self) -> bool {
        self.begin && self.spatial == 0
    }

    /// The packet starts a keyframe picture.
    pub fn starts_keyframe(&self) -> bool {
        self.starts_picture() && !self.inter_picture
    }
}

/// Reads the descriptor at the start of a VP9 RTP payload; `None` if it is too short.
/// Without layer indices (L=0) the packet is spatial and temporal layer 0.
pub fn parse_vp9(payload: &[u8]) -> Option<Vp9Layer> {
    let first = *payload.first()?;
    let has_picture_id = first & 0x80 != 0;
    let has_layers = first & 0x20 != 0;
    let mut at = 1;
    if has_picture_id {
        let pid = *payload.get(at)?;
        at += if pid & 0x80 != 0 { 2 } else { 1 };
    }
    let (spatial, temporal) = if has_layers {
        let l = *payload.get(at)?;
        ((l >> 1) & 0x07, l >> 5)
    } else {
        (0, 0)
    };
    Some(Vp9Layer {
        spatial,
        temporal,
        begin: first & 0x08 != 0,
        end: first & 0x04 != 0,
        inter_picture: first & 0x40 != 0,
    })
}
