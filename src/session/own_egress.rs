//! Our own egress (issue 9): the media a PC sends to a subscriber is sealed and queued
//! here rather than written through str0m, whose per-packet path (a send queue, a
//! pacer, a copy and an allocation in SRTP, and a full `handle_timeout`/`poll_output`
//! per subscriber and turn) cost more than the encryption itself. What str0m did for
//! these streams is done here too:
//!
//! - **sealing**: AEAD-AES-GCM with the keys the handshake exported (`srtp_out`);
//!   the header is the plain 12 bytes, no extensions: the SSRC is in the SDP, and
//!   the transport-wide sequence number is left out so that no counter of ours can
//!   collide with str0m's (which still numbers its padding and probes, were they on);
//! - **resends**: the last second of video is kept (`resend_ring`); a NACK sends
//!   it again on the RTX stream the SDP pairs with the media SSRC (a resend on the
//!   media SSRC would repeat an SRTP index, which browsers drop as a replay);
//! - **sender reports**: str0m still sends them, on its SRTCP index (browsers keep
//!   one replay window per SSRC, so a second sender of SRTCP would be dropped), but
//!   it knows nothing of what we sent: each of its reports is opened, its RTP time
//!   and counts corrected for our streams, and sealed again at the same index;
//! - **receiver reports**: loss, cumulative loss and the round trip (against the
//!   sender reports we corrected), for the link figures str0m can no longer give (it
//!   reports only on streams it sent itself).
//!
//! The subscriber's SRTCP still goes to str0m too: keyframe requests come out of it as
//! before. Where packets go is where str0m sends its own (DTLS, SCTP, RTCP): the
//! pair ICE nominated, which its link figures also name once a second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid};

use super::own_stream::{OwnStream, BUDGET_MAX, BUDGET_PER_PACKET, BUDGET_PER_RESEND};
use super::packet_buffers;
use super::resend_ring::Kept;
use super::srtcp_in::{is_rtcp, next_packet, read_feedback, Feedback, RtcpPacket, SrtcpReceiver};
use super::srtcp_out::{SrtcpSender, PT_SR};
use super::srtp_out::{SrtpSender, TAG_LEN};
use super::{SrtpKeys, Transmit, Transport};

/// More streams than one PC sends to a client; past this a new one is refused.
const MAX_STREAMS: usize = 512;
/// Packets written and not yet drained: far more than a keyframe for every track a
/// subscriber takes; past this a session that is never drained refuses more.
const MAX_UNSEALED: usize = 8192;
const RTP_HEADER: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OwnEgressError {
    #[error("no keys or no path yet")]
    NotReady,
    #[error("too many streams")]
    TooManyStreams,
    #[error("too many packets wait to be sealed")]
    Backlog,
}

/// The transport and addresses media leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Path {
    pub transport: Transport,
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

/// Where one packet goes: its m-line and kind, SSRC, payload type, and the RTX stream
/// and payload type paired with them (where negotiated).
#[derive(Debug, Clone, Copy)]
pub(super) struct OwnRoute {
    pub mid: Mid,
    pub kind: MediaKind,
    pub ssrc: u32,
    pub pt: u8,
    pub rtx: Option<(u32, u8)>,
    pub clock_rate: u32,
}

/// What a receiver report said about one of our streams, with our running counts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StreamReport {
    pub mid: Mid,
    pub kind: MediaKind,
    pub fraction_lost: f32,
    /// Packets sent since the previous report on the stream.
    pub sent_since: u64,
    /// The report's 24-bit cumulative loss field as it came.
    pub cumulative_lost: u64,
    pub nack_items: u64,
    pub packets: u64,
    pub rtt: Option<Duration>,
}

struct Crypto {
    rtp: SrtpSender,
    /// Opens and seals again str0m's SRTCP (`correct_reports`).
    local_rtcp: (SrtcpReceiver, SrtcpSender),
    feedback: SrtcpReceiver,
}

/// A packet written and not yet sealed. Sealing waits for the drain, so that a shard
/// sending a keyframe to many subscribers in shares (`Rooms::drive_batch`) encrypts
/// each share just before it goes, not the whole burst before the first share.
struct Unsealed {
    header: [u8; RTP_HEADER],
    roc: u32,
    /// A resend on the RTX stream: the original sequence number goes before the payload.
    osn: Option<u16>,
    payload: Arc<[u8]>,
}

#[derive(Default)]
pub(super) struct OwnEgress {
    crypto: Option<Crypto>,
    path: Option<Path>,
    streams: Vec<OwnStream>,
    unsealed: Vec<Unsealed>,
    plain: Vec<u8>,
    rtx_body: Vec<u8>,
    feedback: Vec<Feedback>,
    reports: Vec<StreamReport>,
    bytes_sent: u64,
}

impl std::fmt::Debug for OwnEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnEgress")
            .field("ready", &self.crypto.is_some())
            .field("path", &self.path)
            .field("streams", &self.streams.len())
            .finish()
    }
}

impl OwnEgress {
    /// Makes the ciphers once the handshake has exported keys; whether packets can go.
    pub fn ready(&mut self, keys: impl FnOnce() -> Option<SrtpKeys>) -> bool {
        if self.crypto.is_none() {
            let Some(keys) = keys() else {
                return false;
            };
            let made = SrtpSender::new(&keys).ok().and_then(|rtp| {
                Some(Crypto {
                    rtp,
                    local_rtcp: (
                        SrtcpReceiver::of_local(&keys).ok()?,
                        SrtcpSender::new(&keys, 0).ok()?,
                    ),
                    feedback: SrtcpReceiver::new(&keys).ok()?,
                })
            });
            match made {
                Some(c) => self.crypto = Some(c),
                None => return false,
            }
        }
        self.path.is_some()
    }

    /// One of str0m's own datagrams: anything but STUN (DTLS, SRTP, SRTCP) goes on the
    /// path ICE chose, which ours follow.
    pub fn learn_path(&mut self, t: &Transmit) {
        if t.contents.first().is_some_and(|b| *b > 3) {
            self.follow(Path {
                transport: t.transport,
                source: t.source,
                destination: t.destination,
            });
        }
    }

    /// Media goes by `path` from now on (the pair ICE nominated, as str0m's link
    /// figures name it once a second, or as learnt above).
    pub fn follow(&mut self, path: Path) {
        if self.path != Some(path) {
            tracing::debug!(?path, "media path");
            self.path = Some(path);
        }
    }

    /// Queues one forwarded packet (sealed and sent at the next drain).
    pub fn write(
        &mut self,
        route: OwnRoute,
        (seq, timestamp, marker): (u64, u32, bool),
        payload: Arc<[u8]>,
        now: Instant,
    ) -> Result<(), OwnEgressError> {
        if self.crypto.is_none() || self.path.is_none() {
            return Err(OwnEgressError::NotReady);
        }
        if self.unsealed.len() >= MAX_UNSEALED {
            return Err(OwnEgressError::Backlog);
        }
        let at = match self.streams.iter().position(|s| s.ssrc == route.ssrc) {
            Some(at) => at,
            None => {
                if self.streams.len() >= MAX_STREAMS {
                    return Err(OwnEgressError::TooManyStreams);
                }
                self.streams.push(OwnStream::new(&route));
                self.streams.len() - 1
            }
        };
        let stream = &mut self.streams[at];
        stream.rtx_ssrc = route.rtx.map(|(ssrc, _)| ssrc);
        let seq = stream.continue_numbers(seq);
        stream.packets += 1;
        stream.octets += payload.len() as u64;
        stream.last = Some((timestamp, now));
        stream.budget = (stream.budget + BUDGET_PER_PACKET).min(BUDGET_MAX);
        if route.kind == MediaKind::Video {
            // Audio is not resent: a late Opus frame is worth less than concealment.
            let pts = (route.pt, route.rtx.map(|(_, pt)| pt));
            let kept = Kept::new(seq, timestamp, marker, pts, payload.clone(), now);
            stream.ring.keep(kept);
        }
        self.unsealed.push(Unsealed {
            header: rtp_header(route.pt, marker, seq as u16, timestamp, route.ssrc),
            roc: (seq >> 16) as u32,
            osn: None,
            payload,
        });
        Ok(())
    }

    /// A datagram from the subscriber. SRTCP that opens with its keys is read for
    /// NACKs (answered at once) and receiver reports; anything else is str0m's alone.
    pub fn on_datagram(&mut self, datagram: &[u8], now: Instant) {
        let Some(crypto) = self.crypto.as_mut() else {
            return;
        };
        if !is_rtcp(datagram)
            || crypto
                .feedback
                .unprotect(datagram, &mut self.plain)
                .is_err()
        {
            return;
        }
        self.feedback.clear();
        let feedback = &mut self.feedback;
        // What came before a malformed part is still acted on.
        let _ = read_feedback(&self.plain, |f| feedback.push(f));
        let feedback = std::mem::take(&mut self.feedback);
        for f in &feedback {
            match *f {
                Feedback::Nack {
                    media_ssrc,
                    pid,
                    blp,
                } => self.resend(media_ssrc, pid, blp, now),
                Feedback::Report {
                    media_ssrc,
                    fraction_lost,
                    cumulative_lost,
                    last_sr,
                    delay_since_last_sr,
                    ..
                } => {
                    if let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == media_ssrc) {
                        let rtt = s.round_trip(now, last_sr, delay_since_last_sr);
                        self.reports.push(StreamReport {
                            mid: s.mid,
                            kind: s.kind,
                            fraction_lost: f32::from(fraction_lost) / 256.0,
                            sent_since: s.packets - s.packets_at_report,
                            cumulative_lost: (cumulative_lost as u32 & 0xff_ffff).into(),
                            nack_items: s.nack_items,
                            packets: s.packets,
                            rtt,
                        });
                        s.packets_at_report = s.packets;
                    }
                }
                _ => {}
            }
        }
        self.feedback = feedback;
    }

    /// Resends what one NACK item names that is still kept, on the RTX stream.
    fn resend(&mut self, media_ssrc: u32, pid: u16, blp: u16, now: Instant) {
        let Some(stream) = self.streams.iter_mut().find(|s| s.ssrc == media_ssrc) else {
            return;
        };
        stream.nack_items += 1;
        let lost = (0..17u16)
            .filter(|i| *i == 0 || blp & (1 << (i - 1)) != 0)
            .map(|i| pid.wrapping_add(i));
        for seq16 in lost {
            if stream.budget < BUDGET_PER_RESEND {
                return;
            }
            let Some(k) = stream.ring.take_for_resend(seq16, now) else {
                continue;
            };
            stream.budget -= BUDGET_PER_RESEND;
            let resend = match (stream.rtx_ssrc, k.rtx_pt) {
                (Some(rtx_ssrc), Some(rtx_pt)) => {
                    // RFC 4588: on the RTX stream, with its own numbers.
                    stream.rtx_seq += 1;
                    let seq = stream.rtx_seq;
                    Unsealed {
                        header: rtp_header(rtx_pt, k.marker, seq as u16, k.timestamp, rtx_ssrc),
                        roc: (seq >> 16) as u32,
                        osn: Some(k.seq as u16),
                        payload: k.payload.clone(),
                    }
                }
                _ => Unsealed {
                    header: rtp_header(k.pt, k.marker, k.seq as u16, k.timestamp, media_ssrc),
                    roc: (k.seq >> 16) as u32,
                    osn: None,
                    payload: k.payload.clone(),
                },
            };
            self.unsealed.push(resend);
        }
    }

    /// One of str0m's datagrams on its way out: a sender report on a stream of ours
    /// gets our RTP time and counts (str0m saw none of its packets), and the compound
    /// is sealed again at str0m's index. Anything else passes as it is.
    pub fn correct_reports(&mut self, t: &mut Transmit, now: Instant) {
        if !is_rtcp(&t.contents) || self.streams.is_empty() {
            return;
        }
        let Some(crypto) = self.crypto.as_mut() else {
            return;
        };
        let (opener, sealer) = &mut crypto.local_rtcp;
        let Ok(index) = opener.unprotect(&t.contents, &mut self.plain) else {
            return;
        };
        let mut corrected = false;
        let mut at = 0;
        while let Ok(Some(RtcpPacket { pt, len, .. })) = next_packet(&self.plain, at) {
            let packet = &mut self.plain[at..at + len];
            if pt == PT_SR && len >= 28 {
                let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
                if let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == ssrc) {
                    corrected |= s.correct_report(packet, now);
                }
            }
            at += len;
        }
        if !corrected {
            return;
        }
        let mut contents = packet_buffers::take(t.contents.len());
        if sealer.protect_at(&self.plain, index, &mut contents).is_ok() {
            t.contents = contents;
        }
    }

    /// Seals the packets written since the last drain into `out`.
    pub fn drain(&mut self, out: &mut Vec<Transmit>) {
        let (Some(crypto), Some(path)) = (self.crypto.as_mut(), self.path) else {
            return;
        };
        for u in self.unsealed.drain(..) {
            let extra = u.osn.map_or(0, |_| 2);
            let mut contents = packet_buffers::take(RTP_HEADER + extra + u.payload.len() + TAG_LEN);
            let payload = match u.osn {
                Some(osn) => {
                    self.rtx_body.clear();
                    self.rtx_body.extend_from_slice(&osn.to_be_bytes());
                    self.rtx_body.extend_from_slice(&u.payload);
                    &self.rtx_body[..]
                }
                None => &u.payload[..],
            };
            if crypto
                .rtp
                .protect(&u.header, payload, u.roc, &mut contents)
                .is_ok()
            {
                self.bytes_sent += contents.len() as u64;
                out.push(path.transmit(contents));
            }
        }
    }

    /// The oldest receiver report read and not yet taken.
    pub fn take_report(&mut self) -> Option<StreamReport> {
        (!self.reports.is_empty()).then(|| self.reports.remove(0))
    }

    /// Every datagram we sealed, in bytes.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Forgets the streams a negotiation removed.
    pub fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        self.streams.retain(|s| keep(s.ssrc));
    }
}

impl Path {
    fn transmit(&self, contents: Vec<u8>) -> Transmit {
        Transmit {
            transport: self.transport,
            source: self.source,
            destination: self.destination,
            contents,
        }
    }
}

/// A 12-byte RTP header: version 2, no padding, extension or CSRCs.
fn rtp_header(pt: u8, marker: bool, seq: u16, timestamp: u32, ssrc: u32) -> [u8; RTP_HEADER] {
    let mut h = [0u8; RTP_HEADER];
    h[0] = 0x80;
    h[1] = (u8::from(marker) << 7) | (pt & 0x7f);
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&timestamp.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}
