//! The subscribers' RTCP read by us, for streams an own egress would send itself (issue
//! 9): SRTCP opened with the peer's keys (RFC 7714 §9, AEAD-AES-GCM) and the feedback
//! an SFU acts on picked out of the compound packet: keyframe requests, NACKs, receiver
//! reports, transport-wide feedback. str0m reads the same datagram for its own streams.
//! No replay window here: whoever acts on it keeps one per sender. Every length comes
//! from the packet, so everything is bounds-checked and malformed input is an error.

use super::srtcp_out::{
    iv_and_aad, CLEAR, INDEX_LEN, INDEX_MASK, LABEL_RTCP_KEY, LABEL_RTCP_SALT, PT_SR,
};
use super::srtp_out::{session_cipher, Direction, Gcm, KeyError, SALT_LEN, TAG_LEN};
use super::srtp_tap::SrtpKeys;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SrtcpError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{0} bytes is too short for SRTCP")]
    Short(usize),
    #[error("not encrypted (E flag clear)")]
    Unencrypted,
    #[error("authentication failed")]
    Auth,
    #[error("malformed RTCP at byte {0}")]
    Malformed(usize),
}

/// Opens the peer's SRTCP on one session.
pub struct SrtcpReceiver {
    salt: [u8; SALT_LEN],
    opener: Gcm,
}

impl std::fmt::Debug for SrtcpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtcpReceiver")
    }
}

impl SrtcpReceiver {
    pub fn new(keys: &SrtpKeys) -> Result<SrtcpReceiver, SrtcpError> {
        Self::for_direction(keys, Direction::Remote)
    }

    /// Opens what this side sealed: str0m's sender reports, which `own_egress`
    /// corrects for the streams it sends.
    pub fn of_local(keys: &SrtpKeys) -> Result<SrtcpReceiver, SrtcpError> {
        Self::for_direction(keys, Direction::Local)
    }

    fn for_direction(keys: &SrtpKeys, d: Direction) -> Result<SrtcpReceiver, SrtcpError> {
        let (opener, salt) = session_cipher(keys, d, LABEL_RTCP_KEY, LABEL_RTCP_SALT)?;
        Ok(SrtcpReceiver { salt, opener })
    }

    /// Opens one SRTCP packet into `out` (cleared first): the plain compound RTCP.
    /// Returns the SRTCP index, for a replay window.
    pub fn unprotect(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<u32, SrtcpError> {
        out.clear();
        if packet.len() < CLEAR + TAG_LEN + INDEX_LEN {
            return Err(SrtcpError::Short(packet.len()));
        }
        let (sealed, index) = packet.split_at(packet.len() - INDEX_LEN);
        let index = u32::from_be_bytes([index[0], index[1], index[2], index[3]]);
        if index & INDEX_MASK == index {
            return Err(SrtcpError::Unencrypted);
        }
        let (iv, aad) = iv_and_aad(&self.salt, sealed, index);
        let body = &sealed[CLEAR..];
        out.extend_from_slice(&sealed[..CLEAR]);
        out.resize(CLEAR + body.len(), 0);
        match (self.opener).open(&iv, &aad, body, &mut out[CLEAR..]) {
            Some(n) => {
                out.truncate(CLEAR + n);
                Ok(index & INDEX_MASK)
            }
            None => {
                out.clear();
                Err(SrtcpError::Auth)
            }
        }
    }
}

/// What a subscriber says about a stream we send (by its SSRC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Picture loss indication (RFC 4585 §6.3.1) or a full intra request (RFC 5104):
    /// send a keyframe.
    Keyframe { media_ssrc: u32 },
    /// Generic NACK (RFC 4585 §6.2.1): `pid` is lost, and each set bit `i` of `blp`
    /// says `pid + i + 1` is too.
    Nack { media_ssrc: u32, pid: u16, blp: u16 },
    /// One receiver report block (RFC 3550 §6.4.1).
    Report {
        media_ssrc: u32,
        fraction_lost: u8,
        /// 24-bit, signed.
        cumulative_lost: i32,
        highest_seq: u32,
        jitter: u32,
        last_sr: u32,
        delay_since_last_sr: u32,
    },
    /// Transport-wide feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01),
    /// its base sequence number and packet count; the chunks are for an estimator.
    TransportWide { base_seq: u16, count: u16 },
}

const PT_RR: u8 = 201;
const PT_RTPFB: u8 = 205;
const PT_PSFB: u8 = 206;

/// Walks a compound RTCP packet and hands `f` each piece of feedback in it. Packets
/// of other kinds are skipped by their length; a length that overruns is an error
/// (what came before it has been handed on).
pub fn read_feedback(compound: &[u8], mut f: impl FnMut(Feedback)) -> Result<(), SrtcpError> {
    let mut at = 0;
    while let Some(RtcpPacket { pt, count, len }) = next_packet(compound, at)? {
        let body = &compound[at + 4..at + len];
        match pt {
            PT_SR => reports(body, 24, count, &mut f),
            PT_RR => reports(body, 4, count, &mut f),
            PT_PSFB if count == 1 || count == 4 => {
                // PLI: sender SSRC, media SSRC. FIR: its entries carry the SSRC.
                let at_ssrc = if count == 1 { 4 } else { 8 };
                if let Some(ssrc) = be32(body, at_ssrc) {
                    f(Feedback::Keyframe { media_ssrc: ssrc });
                }
            }
            PT_RTPFB if count == 1 => {
                if let Some(media_ssrc) = be32(body, 4) {
                    for item in body[8..].chunks_exact(4) {
                        f(Feedback::Nack {
                            media_ssrc,
                            pid: u16::from_be_bytes([item[0], item[1]]),
                            blp: u16::from_be_bytes([item[2], item[3]]),
                        });
                    }
                }
            }
            PT_RTPFB if count == 15 => {
                if let (Some(base), Some(n)) = (be16(body, 8), be16(body, 10)) {
                    f(Feedback::TransportWide {
                        base_seq: base,
                        count: n,
                    });
                }
            }
            _ => {}
        }
        at += len;
    }
    Ok(())
}

/// One RTCP packet of a compound: its type, its count field (report blocks, or the
/// feedback message type) and its length in bytes, header included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RtcpPacket {
    pub pt: u8,
    pub count: u8,
    pub len: usize,
}

/// The packet of `compound` that starts at byte `at`; `None` at the end. A header
/// that is cut, not version 2, or whose length overruns is an error.
pub(super) fn next_packet(compound: &[u8], at: usize) -> Result<Option<RtcpPacket>, SrtcpError> {
    if at >= compound.len() {
        return Ok(None);
    }
    let head = compound.get(at..at + 4).ok_or(SrtcpError::Malformed(at))?;
    if head[0] >> 6 != 2 {
        return Err(SrtcpError::Malformed(at));
    }
    let len = 4 * (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1);
    if compound.len() < at + len {
        return Err(SrtcpError::Malformed(at));
    }
    Ok(Some(RtcpPacket {
        pt: head[1],
        count: head[0] & 0x1f,
        len,
    }))
}

/// Whether a datagram is (S)RTCP: RFC 5761 §4, packet types 200–223 in the second
/// byte, after a version-2 first byte.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() > 1 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

/// The report blocks after `skip` bytes (the sender SSRC, and a sender report's info).
fn reports(body: &[u8], skip: usize, count: u8, f: &mut impl FnMut(Feedback)) {
    let Some(blocks) = body.get(skip..) else {
        return;
    };
    for b in blocks.chunks_exact(24).take(usize::from(count)) {
        let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
        // Sign-extend the 24-bit count.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        f(Feedback::Report {
            media_ssrc: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            fraction_lost: b[4],
            cumulative_lost,
            highest_seq: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            jitter: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            last_sr: u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            delay_since_last_sr: u32::from_be_bytes([b[20], b[21], b[22], b[23]]),
        });
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}
