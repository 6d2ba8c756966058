//! One peer connection, sans-IO: a wrapper around a `str0m::Rtc` acting as the SFU side of
//! LiveKit's dual-PC (v0) model. The publisher PC answers the client's offers and yields
//! the RTP it receives; the subscriber PC offers sendonly tracks and LiveKit's data channels
//! and writes forwarded RTP. No sockets, threads or clock reads: time is always an argument.
//!
//! Drive it like `str0m`: after every `handle_receive`, `handle_timeout`, `write_rtp`,
//! `send_data` or negotiation, call [`PeerSession::drain`] and hand the transmits to the
//! socket and the deadline to the timer. A `write_rtp` only transmits after the next
//! `handle_timeout` (the drain returns a past deadline to ask for it).

mod candidate;
pub mod codec_order;
mod codecs;
mod data_out;
mod guard;
mod keyframe_asks;
mod media_io;
mod offer;
mod own_egress;
mod own_stream;
pub mod packet_buffers;
mod peer;
mod resend_ring;
mod sdp_info;
mod single_pc;
mod srtcp_in;
mod srtcp_out;
mod srtp_out;
mod srtp_tap;
mod stream_stats;
mod tx_routes;
pub mod vp9_descriptor;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_guard;
#[cfg(test)]
mod tests_input;
#[cfg(test)]
mod tests_own_egress;
#[cfg(test)]
mod tests_restart;
#[cfg(test)]
mod tests_routes;
#[cfg(test)]
mod tests_rtx;
#[cfg(test)]
mod tests_single;
#[cfg(test)]
mod tests_srtcp;
#[cfg(test)]
mod tests_srtp;
#[cfg(test)]
mod tests_stats;

use std::net::SocketAddr;
use std::sync::Arc;

pub use codecs::EnabledCodecs;
pub use data_out::{DataSent, MAX_QUEUED_BYTES};
pub use guard::{enable_test_panic_hook, PANIC_MARKER};
pub use peer::PeerSession;
pub use sdp_info::OfferedMedia;
pub use single_pc::SectionsWanted;
pub use srtcp_in::{read_feedback, Feedback, SrtcpError, SrtcpReceiver};
pub use srtcp_out::{write_sender_report, SenderInfo, SrtcpOutError, SrtcpSender};
pub use srtp_out::{KeyError as SrtpKeyError, SrtpOutError, SrtpSender, TAG_LEN as SRTP_TAG_LEN};
pub use srtp_tap::SrtpKeys;
pub use str0m::crypto::dtls::SrtpProfile;
pub use str0m::format::Codec;
pub use str0m::media::{MediaKind, Mid, Rid};
pub use str0m::net::TcpType;
pub use stream_stats::{Flow, Loss, StreamCounts};

/// The text parsers a client's SDP and trickled candidates go through, for the fuzz
/// targets (`fuzz/`); corelay itself reaches them through [`PeerSession`].
#[doc(hidden)]
pub mod parsers {
    pub use super::candidate::{pairable, parse_trickle, Trickled};
    pub use super::sdp_info::{first_mid, first_mid_in, normalize, offered_media, parse_offer};
    pub use str0m::Candidate;
}

/// Which of a participant's two peer connections this is (LiveKit v0, dual PC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// The client offers, we answer and receive its media and data.
    Publisher,
    /// We offer sendonly tracks plus `_reliable`/`_lossy`, the client answers.
    Subscriber,
    /// LiveKit `/rtc/v1`: one PC both ways. The client offers (its tracks, its data
    /// channels and `recvonly` lines for ours), we only answer (`single_pc`).
    Single,
}

/// How a packet travels: a UDP datagram, or a frame on an ICE/TCP connection
/// (RFC 4571) that the client opened to our passive TCP candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn protocol(self) -> str0m::net::Protocol {
        match self {
            Transport::Udp => str0m::net::Protocol::Udp,
            Transport::Tcp => str0m::net::Protocol::Tcp,
        }
    }

    /// What str0m's protocol travels over: UDP, or an ICE/TCP stream (plain TCP; we
    /// make no TLS candidates).
    fn of(protocol: str0m::net::Protocol) -> Transport {
        if protocol == str0m::net::Protocol::Udp {
            Transport::Udp
        } else {
            Transport::Tcp
        }
    }
}

/// Our advertised addresses: one host candidate each, UDP and (passive) TCP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalAddrs {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
}

/// One datagram to send, moved out of str0m without a copy.
#[derive(Debug)]
pub struct Transmit {
    pub transport: Transport,
    /// One of the advertised local addresses: the socket to send from.
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// A packet's payload type together with the codec parameters it was negotiated for.
///
/// Payload type numbers are per peer connection, so a forwarded packet cannot keep its
/// number: [`PeerSession::write_rtp`] maps these parameters to the PT the receiving
/// session negotiated for the same codec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PayloadType {
    /// The number on the wire where the packet came from.
    pub pt: u8,
    /// The packet is RED (RFC 2198) wrapping `params`' codec, not the codec itself.
    pub red: bool,
    params: str0m::format::PayloadParams,
}

impl PayloadType {
    pub fn codec(&self) -> Codec {
        self.params.spec().codec
    }

    /// The same codec, RED-wrapped or not.
    pub fn with_red(self, red: bool) -> Self {
        PayloadType { red, ..self }
    }

    /// str0m's default parameters for `codec`, for packets made outside a session
    /// (tests and benches of the forwarder).
    pub fn default_for(codec: Codec) -> Option<PayloadType> {
        let config = str0m::format::CodecConfig::new_with_defaults();
        let params = *config.find(|p| p.spec().codec == codec)?;
        Some(PayloadType {
            pt: *params.pt(),
            red: false,
            params,
        })
    }
}

/// One RTP packet received on a publisher PC.
#[derive(Debug, Clone)]
pub struct RtpIn {
    pub mid: Mid,
    /// Simulcast layer (`q`/`h`/`f` from LiveKit JS), if the m-line has rids.
    pub rid: Option<Rid>,
    pub ssrc: u32,
    pub pt: PayloadType,
    /// The codec the PT maps to (the wrapped codec for RED).
    pub codec: Codec,
    /// Extended (rollover-free) sequence number.
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Arc<[u8]>,
    /// Audio level extension, -dBov (0 loudest, -127 silence).
    pub audio_level: Option<i8>,
    /// Whether this packet starts a video keyframe (false for audio and RED).
    pub is_keyframe: bool,
    /// VP9: the spatial/temporal layer fields of its payload descriptor.
    pub vp9: Option<vp9_descriptor::Vp9Layer>,
}

/// What happened on a peer connection, drained by [`PeerSession::drain`].
#[derive(Debug)]
pub enum SessionEvent {
    /// ICE and DTLS are up; media and data can flow.
    Connected,
    /// The peer closed the connection, or the session failed. Emitted once.
    Disconnected,
    /// ICE lost the peer (no usable pair, consent lost). It may come back (an ICE
    /// restart, the network returning): then `IceRestored` follows.
    IceLost,
    /// ICE found the peer again after `IceLost`.
    IceRestored,
    /// str0m panicked inside this session (contained: see `guard`); `Disconnected`
    /// follows.
    Panicked(String),
    /// The remote added a media line (publisher PC; after DTLS is up).
    MediaAdded {
        mid: Mid,
        kind: MediaKind,
        track_id: Option<String>,
    },
    Rtp(RtpIn),
    /// The subscriber asked for a keyframe (PLI/FIR) on one of our sendonly tracks.
    KeyframeRequest {
        mid: Mid,
        rid: Option<String>,
    },
    ChannelOpen {
        label: String,
    },
    ChannelData {
        label: String,
        binary: bool,
        data: Vec<u8>,
    },
    ChannelClose {
        label: String,
    },
    /// Once a second: how the link behaves.
    LinkStats(LinkStats),
    /// Once a second per RTP stream that saw NACKs or loss since its last report.
    StreamCounts(StreamCounts),
}

/// Link figures of one PC over the last stats interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkStats {
    /// Loss of what we sent, as the client's feedback reports it.
    pub egress_loss: Option<f32>,
    /// Loss of what the client sends us.
    pub ingress_loss: Option<f32>,
    pub rtt: Option<std::time::Duration>,
    /// Bytes sent on this PC so far.
    pub bytes_sent: u64,
}

/// Errors of a peer connection. Client input never panics; it ends up here.
#[derive(thiserror::Error, Debug)]
pub enum SessionError {
    #[error("invalid SDP: {0}")]
    Sdp(String),
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    #[error("no offer of ours is waiting for an answer")]
    NoPendingOffer,
    #[error("an offer is already waiting for its answer")]
    OfferOutstanding,
    #[error("not possible on a {0:?} peer connection")]
    WrongRole(PeerRole),
    #[error("invalid ICE candidate: {0}")]
    Candidate(String),
    #[error("invalid datagram: {0}")]
    Datagram(String),
    #[error("no such media: {0}")]
    UnknownMid(Mid),
    #[error("mid {mid} receives no layer {rid:?}")]
    UnknownLayer { mid: Mid, rid: Option<String> },
    #[error("no send track {0:?}")]
    UnknownTrack(String),
    #[error("codec {codec:?} is not negotiated on mid {mid}")]
    CodecNotNegotiated { mid: Mid, codec: Codec },
    #[error("no open data channel {0:?}")]
    NoChannel(String),
    #[error("rtc: {0}")]
    Rtc(String),
    #[error("session panicked: {0}")]
    Panicked(String),
    #[error("the receiver is too slow: {0} bytes of reliable data already wait")]
    DataOverflow(usize),
    #[error("own egress: {0}")]
    OwnEgress(#[from] own_egress::OwnEgressError),
}

impl From<str0m::RtcError> for SessionError {
    fn from(e: str0m::RtcError) -> Self {
        SessionError::Rtc(e.to_string())
    }
}
