//! Synthetic media: VP8-shaped video frames and Opus-sized audio packets, each RTP
//! payload carrying a 17-byte probe (magic, publisher-local sequence, send time,
//! simulcast layer) that subscribers read back to measure latency, loss, jitter and
//! reordering, and to tell which layer the SFU forwards them.

/// "LTpr": marks a probe.
pub const PROBE_MAGIC: u32 = 0x4c54_7072;
pub const PROBE_LEN: usize = 17;

/// Simulcast rids (LiveKit's names), lowest quality first; a probe's layer byte is the
/// index in this list.
pub const RIDS: [&str; 3] = ["q", "h", "f"];
/// The layer byte of a track published without simulcast (and of audio).
pub const LAYER_SINGLE: u8 = 0xff;

/// Largest RTP payload we send (before SRTP/RTP headers), like browsers' ~1200 B MTU.
pub const MAX_PAYLOAD: usize = 1100;

/// VP8 payload descriptor we write: X=1, I=1 with a 15-bit picture id (M=1), as Chrome does.
const DESCRIPTOR_LEN: usize = 4;
/// VP8 frame tag (3 bytes), plus start code and dimensions (7 bytes) on keyframes.
const FRAME_TAG_LEN: usize = 3;
const KEY_HEADER_LEN: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub seq: u32,
    pub sent_us: u64,
    /// Index in [`RIDS`], or [`LAYER_SINGLE`].
    pub layer: u8,
}

fn put_probe(buf: &mut Vec<u8>, seq: u32, sent_us: u64, layer: u8) {
    buf.extend_from_slice(&PROBE_MAGIC.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&sent_us.to_be_bytes());
    buf.push(layer);
}

fn get_probe(b: &[u8]) -> Option<Probe> {
    let b = b.get(..PROBE_LEN)?;
    if u32::from_be_bytes(b[0..4].try_into().ok()?) != PROBE_MAGIC {
        return None;
    }
    Some(Probe {
        seq: u32::from_be_bytes(b[4..8].try_into().ok()?),
        sent_us: u64::from_be_bytes(b[8..16].try_into().ok()?),
        layer: b[16],
    })
}

/// What a subscriber found in one received payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub probe: Probe,
    /// First packet of a VP8 keyframe.
    pub keyframe: bool,
}

/// Audio payload: the probe at offset 0.
pub fn parse_audio(payload: &[u8]) -> Option<Parsed> {
    Some(Parsed {
        probe: get_probe(payload)?,
        keyframe: false,
    })
}

/// VP8 payload: skip the payload descriptor (RFC 7741 §4.2, any form), then on the first
/// packet of a frame the frame tag (and a keyframe's start code and size); the probe follows.
pub fn parse_vp8(payload: &[u8]) -> Option<Parsed> {
    let b0 = *payload.first()?;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let ext = *payload.get(i)?;
        i += 1;
        if ext & 0x80 != 0 {
            // picture id: 7 or 15 bits
            i += if *payload.get(i)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            i += 1; // TID / KEYIDX
        }
    }
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut keyframe = false;
    if start {
        let tag = *payload.get(i)?;
        keyframe = tag & 0x01 == 0;
        i += FRAME_TAG_LEN;
        if keyframe {
            if payload.get(i..i + 3)? != [0x9d, 0x01, 0x2a] {
                return None;
            }
            i += KEY_HEADER_LEN;
        }
    }
    Some(Parsed {
        probe: get_probe(payload.get(i..)?)?,
        keyframe,
    })
}

/// One RTP payload of a frame.
pub struct Packet {
    pub payload: Vec<u8>,
    pub marker: bool,
    /// Where the probe starts in `payload` (see [`restamp`]).
    pub probe_at: usize,
}

/// Sets the send time of the probe at `probe_at` (a paced packet leaves after its
/// frame was made: its latency counts from when it leaves).
pub fn restamp(payload: &mut [u8], probe_at: usize, sent_us: u64) {
    if let Some(b) = payload.get_mut(probe_at + 8..probe_at + 16) {
        b.copy_from_slice(&sent_us.to_be_bytes());
    }
}

/// 30 fps (or `fps`) VP8-shaped frames: a keyframe every `gop` frames, about 6× a delta
/// frame, sized so that the average matches the bitrate. One per simulcast layer.
pub struct VideoSource {
    layer: u8,
    key_bytes: usize,
    delta_bytes: usize,
    gop: u64,
    frame_no: u64,
    picture_id: u16,
    force_key: bool,
    width: u16,
    height: u16,
}

impl VideoSource {
    /// `layer`: written into every probe (index in [`RIDS`], or [`LAYER_SINGLE`]).
    pub fn new(bitrate_kbps: u32, fps: u32, gop: u32, width: u32, height: u32, layer: u8) -> Self {
        let gop = gop.max(1) as u64;
        let bytes_per_frame = bitrate_kbps as f64 * 125.0 / fps.max(1) as f64;
        let gop_bytes = bytes_per_frame * gop as f64;
        let (key, delta) = if gop == 1 {
            (bytes_per_frame, bytes_per_frame)
        } else {
            let delta = gop_bytes / (gop as f64 - 1.0 + 6.0);
            (delta * 6.0, delta)
        };
        let min = DESCRIPTOR_LEN + FRAME_TAG_LEN + KEY_HEADER_LEN + PROBE_LEN;
        VideoSource {
            layer,
            key_bytes: (key as usize).max(min),
            delta_bytes: (delta as usize).max(min),
            gop,
            frame_no: 0,
            picture_id: 0,
            force_key: false,
            width: width.min(0x3fff) as u16,
            height: height.min(0x3fff) as u16,
        }
    }

    /// A subscriber (through the SFU) asked for a keyframe: the next frame is one.
    pub fn request_keyframe(&mut self) {
        self.force_key = true;
    }

    /// The next frame's payloads; `seq` is the publisher-local probe sequence, advanced
    /// once per packet. Returns whether it is a keyframe.
    pub fn next_frame(&mut self, seq: &mut u32, sent_us: u64, out: &mut Vec<Packet>) -> bool {
        let key = self.force_key || self.frame_no.is_multiple_of(self.gop);
        self.force_key = false;
        let size = if key {
            self.key_bytes
        } else {
            self.delta_bytes
        };
        let n = size.div_ceil(MAX_PAYLOAD).max(1);
        let (per, extra) = (size / n, size % n);
        let pid = self.picture_id & 0x7fff;
        for k in 0..n {
            let first = k == 0;
            // the first `extra` packets take one byte more: all stay <= MAX_PAYLOAD
            let target = per + usize::from(k < extra);
            let mut p = Vec::with_capacity(target.max(64));
            // descriptor: X=1, S on the first packet, PID=0; I=1; M=1 + 15-bit picture id
            p.push(0x80 | if first { 0x10 } else { 0 });
            p.push(0x80);
            p.push(0x80 | (pid >> 8) as u8);
            p.push(pid as u8);
            if first {
                // frame tag: P (0 = key), version 0, show_frame 1, first partition size
                let part: u32 = (size as u32 / 4).min(0x7ffff);
                let tag = (part << 5) | (1 << 4) | u32::from(!key);
                p.extend_from_slice(&tag.to_le_bytes()[..3]);
                if key {
                    p.extend_from_slice(&[0x9d, 0x01, 0x2a]);
                    p.extend_from_slice(&self.width.to_le_bytes());
                    p.extend_from_slice(&self.height.to_le_bytes());
                }
            }
            let probe_at = p.len();
            put_probe(&mut p, *seq, sent_us, self.layer);
            *seq = seq.wrapping_add(1);
            if p.len() < target {
                p.resize(target, 0);
            }
            out.push(Packet {
                payload: p,
                marker: k == n - 1,
                probe_at,
            });
        }
        self.frame_no += 1;
        self.picture_id = self.picture_id.wrapping_add(1);
        key
    }
}

/// Opus-sized 20 ms packets: bitrate / 50 bytes, probe first.
pub fn audio_packet(bitrate_kbps: u32, seq: u32, sent_us: u64) -> Vec<u8> {
    let size = ((bitrate_kbps as usize * 125) / 50).clamp(PROBE_LEN, MAX_PAYLOAD);
    let mut p = Vec::with_capacity(size);
    put_probe(&mut p, seq, sent_us, LAYER_SINGLE);
    p.resize(size, 0);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip_and_keyframes_are_detectable() {
        let mut v = VideoSource::new(800, 30, 60, 640, 360, 2);
        let mut seq = 7;
        let mut total = 0usize;
        let mut key_size = 0;
        let mut delta_size = 0;
        for f in 0..60 {
            let mut out = Vec::new();
            let key = v.next_frame(&mut seq, 1_000 + f, &mut out);
            assert_eq!(key, f == 0);
            let size: usize = out.iter().map(|p| p.payload.len()).sum();
            if key {
                key_size = size;
            } else {
                delta_size = size;
            }
            total += size;
            assert!(out.iter().all(|p| p.payload.len() <= MAX_PAYLOAD));
            assert!(out.last().unwrap().marker);
            assert_eq!(out.iter().filter(|p| p.marker).count(), 1);
            for (k, p) in out.iter_mut().enumerate() {
                let parsed = parse_vp8(&p.payload).expect("probe");
                assert_eq!(parsed.probe.sent_us, 1_000 + f);
                restamp(&mut p.payload, p.probe_at, 5_000 + f);
                let restamped = parse_vp8(&p.payload).expect("probe");
                assert_eq!(restamped.probe.sent_us, 5_000 + f, "a paced packet's time");
                assert_eq!(restamped.probe.seq, parsed.probe.seq);
                assert_eq!(parsed.probe.layer, 2);
                assert_eq!(parsed.keyframe, key && k == 0);
                assert_eq!(
                    str0m::format::detect_vp8_keyframe(&p.payload),
                    key && k == 0,
                    "str0m agrees on keyframes"
                );
            }
        }
        // one probe sequence number per packet
        let packets = key_size.div_ceil(MAX_PAYLOAD) + 59 * delta_size.div_ceil(MAX_PAYLOAD);
        assert_eq!(seq as usize, 7 + packets);
        // two seconds at 800 kbps = 200 kB
        assert!((total as i64 - 200_000).abs() < 2_000, "{total}");
        assert!(key_size > 5 * delta_size && key_size < 7 * delta_size);
    }

    #[test]
    fn forced_keyframe_and_audio() {
        let mut v = VideoSource::new(300, 30, 60, 320, 180, LAYER_SINGLE);
        let mut seq = 0;
        let mut out = Vec::new();
        v.next_frame(&mut seq, 0, &mut out);
        out.clear();
        assert!(!v.next_frame(&mut seq, 0, &mut out));
        v.request_keyframe();
        out.clear();
        assert!(v.next_frame(&mut seq, 0, &mut out));
        let a = audio_packet(32, 9, 42);
        assert_eq!(a.len(), 80);
        assert_eq!(
            parse_audio(&a).unwrap().probe,
            Probe {
                seq: 9,
                sent_us: 42,
                layer: LAYER_SINGLE,
            }
        );
        assert!(parse_vp8(&[0x10, 1, 2]).is_none());
        assert!(parse_audio(&[0; 17]).is_none());
    }

    #[test]
    fn parses_other_descriptor_forms() {
        // no extension, S=1, delta frame
        let mut p = vec![0x10, 0x01, 0, 0];
        put_probe(&mut p, 5, 6, 0);
        assert_eq!(parse_vp8(&p).unwrap().probe.seq, 5);
        assert_eq!(parse_vp8(&p).unwrap().probe.layer, 0);
        // X with I (7-bit), L, T; continuation packet
        let mut p = vec![0x80, 0xe0, 0x05, 0x01, 0x40];
        put_probe(&mut p, 8, 9, 1);
        assert_eq!(parse_vp8(&p).unwrap().probe.seq, 8);
    }
}
