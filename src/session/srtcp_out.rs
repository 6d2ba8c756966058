//! RTCP we send ourselves about streams an own egress sends (issue 9): sender reports
//! (RFC 3550 §6.4.1), so receivers can map RTP time to wall time and measure the round
//! trip, sealed as SRTCP with this side's keys (RFC 7714 §9, AEAD-AES-GCM).

use super::srtp_out::{session_cipher, Direction, Gcm, KeyError, SALT_LEN, TAG_LEN};
use super::srtp_tap::SrtpKeys;

/// RFC 3711 key derivation labels for SRTCP.
pub(super) const LABEL_RTCP_KEY: u8 = 3;
pub(super) const LABEL_RTCP_SALT: u8 = 5;
/// RTCP packet type of a sender report (RFC 3550 §6.4.1).
pub(super) const PT_SR: u8 = 200;
/// RTCP header and sender SSRC, sent in the clear.
pub(super) const CLEAR: usize = 8;
/// The E flag and SRTCP index after the tag.
pub(super) const INDEX_LEN: usize = 4;
/// The SRTCP index is 31 bits.
pub(super) const INDEX_MASK: u32 = 0x7fff_ffff;

#[derive(Debug, thiserror::Error)]
pub enum SrtcpOutError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("an RTCP packet is at least 8 bytes, not {0}")]
    Short(usize),
    #[error("AES-GCM: {0}")]
    Seal(String),
}

/// Seals this side's RTCP on one session; keeps the SRTCP index.
pub struct SrtcpSender {
    salt: [u8; SALT_LEN],
    sealer: Gcm,
    index: u32,
}

impl std::fmt::Debug for SrtcpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtcpSender")
            .field("index", &self.index)
            .finish()
    }
}

impl SrtcpSender {
    /// `first_index`: where this sender's SRTCP index starts. str0m numbers its own
    /// SRTCP on the same session from 0 and the receiver keeps one replay window per
    /// sender SSRC, so an own egress reports from SSRCs str0m does not send RTCP from.
    pub fn new(keys: &SrtpKeys, first_index: u32) -> Result<SrtcpSender, SrtcpOutError> {
        let (sealer, salt) =
            session_cipher(keys, Direction::Local, LABEL_RTCP_KEY, LABEL_RTCP_SALT)?;
        Ok(SrtcpSender {
            salt,
            sealer,
            index: first_index & INDEX_MASK,
        })
    }

    /// Appends the SRTCP form of the compound RTCP `packet` (its first 8 bytes, header
    /// and sender SSRC, stay in the clear) to `out`. On error `out` is as it was.
    pub fn protect(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtcpOutError> {
        let index = self.index;
        self.index = (self.index + 1) & INDEX_MASK;
        self.protect_at(packet, index, out)
    }

    /// As `protect`, at a given SRTCP `index`, leaving this sender's own as it is: for
    /// a packet str0m sealed at that index and we opened and corrected. Only the
    /// corrected packet is sent, so no IV seals two texts that both go out.
    pub fn protect_at(
        &mut self,
        packet: &[u8],
        index: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), SrtcpOutError> {
        if packet.len() < CLEAR {
            return Err(SrtcpOutError::Short(packet.len()));
        }
        let e_index = 0x8000_0000 | (index & INDEX_MASK);
        let (iv, aad) = iv_and_aad(&self.salt, packet, e_index);
        let start = out.len();
        let body = &packet[CLEAR..];
        out.extend_from_slice(&packet[..CLEAR]);
        out.resize(start + CLEAR + body.len() + TAG_LEN, 0);
        match (self.sealer).seal(&iv, &aad, body, &mut out[start + CLEAR..]) {
            Ok(()) => {
                out.extend_from_slice(&e_index.to_be_bytes());
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(SrtcpOutError::Seal(e))
            }
        }
    }
}

/// RFC 7714 §9.1, for sealing and opening alike: the IV (the salt XOR (0, 0, sender
/// SSRC, 0, 0, index)) and the associated data (the clear header and sender SSRC, then
/// the E flag with the index) of the SRTCP packet that starts with `clear` (at least
/// [`CLEAR`] bytes) and carries `e_index`.
pub(super) fn iv_and_aad(
    salt: &[u8; SALT_LEN],
    clear: &[u8],
    e_index: u32,
) -> ([u8; SALT_LEN], [u8; CLEAR + INDEX_LEN]) {
    let mut iv = *salt;
    for (b, x) in iv[2..6].iter_mut().zip(&clear[4..CLEAR]) {
        *b ^= x;
    }
    for (b, x) in iv[8..]
        .iter_mut()
        .zip(&(e_index & INDEX_MASK).to_be_bytes())
    {
        *b ^= x;
    }
    let mut aad = [0u8; CLEAR + INDEX_LEN];
    aad[..CLEAR].copy_from_slice(&clear[..CLEAR]);
    aad[CLEAR..].copy_from_slice(&e_index.to_be_bytes());
    (iv, aad)
}

/// What a sender report says about one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ssrc: u32,
    /// Wall time of `rtp_time`, as a 64-bit NTP timestamp (seconds since 1900 << 32).
    pub ntp: u64,
    pub rtp_time: u32,
    pub packets: u32,
    pub octets: u32,
}

/// Appends a sender report without report blocks (RFC 3550 §6.4.1) to `out`.
pub fn write_sender_report(info: &SenderInfo, out: &mut Vec<u8>) {
    // V=2, no padding, no report blocks; 28 bytes = 6 words after the first.
    out.extend_from_slice(&[0x80, PT_SR, 0, 6]);
    out.extend_from_slice(&info.ssrc.to_be_bytes());
    out.extend_from_slice(&info.ntp.to_be_bytes());
    out.extend_from_slice(&info.rtp_time.to_be_bytes());
    out.extend_from_slice(&info.packets.to_be_bytes());
    out.extend_from_slice(&info.octets.to_be_bytes());
}
