//! [`PeerSession`]: one `str0m::Rtc` in ICE-lite, RTP mode, plus what str0m does not keep
//! for us (offered msids, queued subscriber changes, channel labels).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::channel::ChannelId;
use str0m::media::Mid;
use str0m::net::Receive;
use str0m::{Candidate, Input, Rtc, RtcConfig};

use super::candidate::{pairable, parse_trickle, to_trickle_json, Trickled};
use super::codecs::EnabledCodecs;
use super::offer::{Channels, SendTrack};
use super::sdp_info::{first_mid, mark_rejected, offered_media, parse_offer};
use super::{LocalAddrs, TcpType, Transport};
use super::{OfferedMedia, PeerRole, SessionError, SrtpKeys};

/// How often str0m reports link figures (`SessionEvent::LinkStats`).
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One peer connection of a participant. See the module documentation for the drive loop.
pub struct PeerSession {
    pub(super) rtc: Rtc,
    pub(super) role: PeerRole,
    pub(super) local: Vec<Candidate>,
    /// Publisher: every audio/video m-line the client offered, by mid.
    pub(super) offered: HashMap<Mid, OfferedMedia>,
    /// Subscriber: tracks we send, queued or negotiated.
    pub(super) send_tracks: Vec<SendTrack>,
    /// Subscriber: mids to stop in the next offer (`in_flight` = in the outstanding one).
    pub(super) removals: Vec<(Mid, bool)>,
    /// Subscriber: the BUNDLE-tag m-line, made inactive rather than stopped when its
    /// track went, with that track's id: the line it returns on if subscribed again.
    pub(super) parked: Vec<(Mid, String)>,
    /// Single: the client's `recvonly` lines and the tracks we send on them.
    pub(super) slots: super::single_pc::SendSlots,
    /// Subscriber: LiveKit's data channels.
    pub(super) channels_state: Channels,
    /// Subscriber: an ICE restart queued or offered.
    pub(super) ice_restart: super::offer::IceRestart,
    pub(super) pending: Option<SdpPendingOffer>,
    /// The first m-line's mid, which trickled candidates name.
    pub(super) bundle_mid: Option<Mid>,
    pub(super) channels: Vec<(ChannelId, String)>,
    /// Reliable data channel messages waiting for room (`data_out`).
    pub(super) data_queue: super::data_out::DataQueue,
    pub(super) connected: bool,
    pub(super) closed: bool,
    /// ICE reported Disconnected and has not come back yet.
    pub(super) ice_lost: bool,
    /// Set when str0m panicked inside this session (see `guard`).
    pub(super) poisoned: Option<String>,
    pub(super) keyframe_asks: super::keyframe_asks::KeyframeAsks,
    /// Cached: str0m needs `&mut` to read it.
    pub(super) ufrag: String,
    /// The latest time we were given (for `accepts`, which takes none).
    pub(super) last_now: Instant,
    /// What the latest input from the client came over.
    pub(super) last_transport: Option<Transport>,
    /// Receiver-report loss of the streams we send since the last link report, each
    /// weighted by the packets it sent (`stream_stats::RrLoss`), and the latest
    /// receiver-report RTT: `LinkStats`' fallbacks where TWCC gives none.
    pub(super) rr_loss: super::stream_stats::RrLoss,
    pub(super) rr_rtt: Option<std::time::Duration>,
    /// Running NACK and packet totals of each stream, for the shard's counters.
    pub(super) stream_totals: super::stream_stats::StreamTotals,
    /// Forwarded packets' PTs and send streams, until the next negotiation.
    pub(super) tx_routes: super::tx_routes::TxRoutes,
    /// The SRTP master keys once DTLS is up (`srtp_tap`), for RTP we encrypt ourselves.
    pub(super) srtp_keys: super::srtp_tap::KeySlot,
    /// The media we seal and send ourselves to the client (`own_egress`).
    pub(super) own: super::own_egress::OwnEgress,
    /// Whether str0m was given anything since its output was last drained; while not,
    /// and its deadline is ahead, a turn that only wrote our own packets leaves it be.
    pub(super) str0m_touched: bool,
    /// The deadline str0m gave at the last drain.
    pub(super) str0m_deadline: Instant,
}

impl PeerSession {
    /// ICE-lite, RTP mode, Opus(+RED), VP8, VP9, H264, AV1; `local_candidates` are the
    /// shard's advertised UDP addresses. Subscriber PCs estimate bandwidth.
    pub fn new(
        role: PeerRole,
        local_candidates: &[SocketAddr],
        now: Instant,
    ) -> Result<Self, SessionError> {
        let addrs = LocalAddrs {
            udp: local_candidates.to_vec(),
            tcp: Vec::new(),
        };
        Self::configured(role, &addrs, EnabledCodecs::ALL, now)
    }

    /// As `new`, with passive ICE/TCP candidates beside the UDP ones, negotiating only
    /// `codecs` (`room.enabled_codecs`).
    pub fn configured(
        role: PeerRole,
        addrs: &LocalAddrs,
        codecs: EnabledCodecs,
        now: Instant,
    ) -> Result<Self, SessionError> {
        // RED on both sides: publishers that offer it send Opus with redundancy, which
        // goes on as RED to subscribers that took it and unwrapped to the others
        // (`write_rtp`).
        let config = RtcConfig::new()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(codecs.opus, codecs.opus && codecs.red)
            .enable_vp8(codecs.vp8)
            .enable_vp9(codecs.vp9)
            .enable_h264(codecs.h264)
            .enable_av1(codecs.av1)
            // Link figures once a second for the stream allocator and connection quality.
            .set_stats_interval(Some(STATS_INTERVAL));
        // No str0m BWE: it pads every video-carrying PC (~50 kbps of RTX padding, also
        // on paused tracks, and ~370 wake-ups/s per session). The allocator estimates
        // from loss and RTT instead (`sfu::bandwidth`).
        // Panics only on a bad config, and this one is fixed.
        let (mut rtc, srtp_keys) = super::srtp_tap::build(config, now);
        let mut local = Vec::with_capacity(addrs.udp.len() + addrs.tcp.len());
        for addr in &addrs.udp {
            let c = Candidate::host(*addr, "udp")
                .map_err(|e| SessionError::Candidate(format!("{addr}: {e}")))?;
            if let Some(c) = rtc.add_local_candidate(c) {
                local.push(c.clone());
            }
        }
        // RFC 6544 passive candidates: the client connects, we never dial out. Their
        // type preference is below UDP's, so clients use them only when UDP fails.
        for addr in &addrs.tcp {
            let c = Candidate::builder()
                .tcp()
                .host(*addr)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| SessionError::Candidate(format!("{addr}/tcp: {e}")))?;
            if let Some(c) = rtc.add_local_candidate(c) {
                local.push(c.clone());
            }
        }
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        Ok(PeerSession {
            rtc,
            role,
            local,
            offered: HashMap::new(),
            send_tracks: Vec::new(),
            removals: Vec::new(),
            parked: Vec::new(),
            slots: Default::default(),
            channels_state: Channels::NotWanted,
            ice_restart: Default::default(),
            pending: None,
            bundle_mid: None,
            channels: Vec::new(),
            data_queue: Default::default(),
            connected: false,
            closed: false,
            ice_lost: false,
            poisoned: None,
            keyframe_asks: Default::default(),
            ufrag,
            last_now: now,
            last_transport: None,
            rr_loss: Default::default(),
            rr_rtt: None,
            stream_totals: Default::default(),
            tx_routes: Default::default(),
            srtp_keys,
            own: Default::default(),
            str0m_touched: true,
            str0m_deadline: now,
        })
    }

    pub fn role(&self) -> PeerRole {
        self.role
    }

    /// The SRTP keys this session's handshake exported; `None` before DTLS is up.
    pub fn srtp_keys(&self) -> Option<SrtpKeys> {
        super::srtp_tap::keys_in(&self.srtp_keys)
    }

    /// Our ICE ufrag, for the shard's STUN demux map. It changes when the client restarts
    /// ICE (`accept_offer`), so read it again after every negotiation.
    pub fn local_ufrag(&self) -> String {
        self.ufrag.clone()
    }

    pub fn is_connected(&self) -> bool {
        self.rtc.is_connected()
    }

    /// Publisher or single PC: the client's offer → our answer, plus its audio/video
    /// m-lines. On a single PC the answer also carries the tracks we send (`single_pc`).
    pub fn accept_offer(&mut self, sdp: &str) -> Result<(String, Vec<OfferedMedia>), SessionError> {
        self.guarded(|s| s.accept_offer_unguarded(sdp))
    }

    fn accept_offer_unguarded(
        &mut self,
        sdp: &str,
    ) -> Result<(String, Vec<OfferedMedia>), SessionError> {
        if self.role == PeerRole::Subscriber {
            return Err(SessionError::WrongRole(self.role));
        }
        let offer = parse_offer(sdp)?;
        let mut media = offered_media(&offer);
        self.tx_routes.forget();
        let bundle = first_mid(&offer);
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SessionError::Negotiation(e.to_string()))?;
        mark_rejected(&mut media, &self.rtc);
        self.bundle_mid = self.bundle_mid.or(bundle);
        self.ufrag = self.rtc.direct_api().local_ice_credentials().ufrag;
        for m in &media {
            self.offered.insert(m.mid, m.clone());
        }
        let mut answer = answer.to_sdp_string();
        if self.role == PeerRole::Single {
            self.slots.on_offer(&media);
            answer = self.slots.rewrite_answer(&answer);
            self.forget_gone_streams();
        }
        Ok((answer, media))
    }

    /// Our egress forgets the send streams a negotiation removed.
    pub(super) fn forget_gone_streams(&mut self) {
        let own = &mut self.own;
        let mut api = self.rtc.direct_api();
        own.retain(|ssrc| api.stream_tx(&ssrc.into()).is_some());
    }

    /// A trickled candidate from the client (`RTCIceCandidateInit` JSON or a bare
    /// `candidate:` line). mDNS `.local` hosts and end-of-candidates are ignored.
    pub fn add_remote_candidate(&mut self, init_json: &str) -> Result<(), SessionError> {
        if let Trickled::Candidate(c) = parse_trickle(init_json)? {
            if !pairable(&self.local, &c) {
                return Err(SessionError::Candidate(format!(
                    "{} candidate {} cannot pair with ours",
                    c.proto(),
                    c.addr()
                )));
            }
            self.guarded(|s| {
                s.rtc.add_remote_candidate(c);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Our candidates as trickle JSON: `sdpMid` is the first m-line's mid (a string; "0"
    /// before any negotiation) and `sdpMLineIndex` is 0.
    /// What the latest input from the client came over (`None` before any).
    pub fn last_transport(&self) -> Option<Transport> {
        self.last_transport
    }

    pub fn local_candidates_json(&self) -> Vec<String> {
        let mid = self.bundle_mid.map(|m| m.to_string());
        let mid = mid.as_deref().unwrap_or("0");
        self.local.iter().map(|c| to_trickle_json(c, mid)).collect()
    }

    /// Whether a UDP datagram belongs to this session (str0m's `accepts`).
    pub fn accepts(&self, source: SocketAddr, datagram: &[u8]) -> bool {
        self.accepts_via(Transport::Udp, source, datagram)
    }

    /// Whether a packet that came over `transport` belongs to this session.
    pub fn accepts_via(&self, transport: Transport, source: SocketAddr, datagram: &[u8]) -> bool {
        let protocol = transport.protocol();
        let destination = self
            .local
            .iter()
            .find(|c| c.proto() == protocol)
            .map(|c| c.addr())
            .unwrap_or(source);
        match Receive::new(protocol, source, destination, datagram) {
            Ok(r) => self.rtc.accepts(&Input::Receive(self.last_now, r)),
            Err(_) => false,
        }
    }

    /// One datagram from the network. `destination` must be the advertised address it
    /// was sent to (str0m silently drops STUN for any other). Drain afterwards.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), SessionError> {
        self.handle_receive_via(Transport::Udp, now, source, destination, datagram)
    }

    /// As `handle_receive`, for a packet that came over `transport` (a TCP frame without
    /// its length prefix).
    pub fn handle_receive_via(
        &mut self,
        transport: Transport,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), SessionError> {
        self.guarded(|s| {
            let r = Receive::new(transport.protocol(), source, destination, datagram)
                .map_err(|e| SessionError::Datagram(e.to_string()))?;
            s.last_now = s.last_now.max(now);
            s.last_transport = Some(transport);
            s.own.on_datagram(datagram, now);
            s.rtc.handle_input(Input::Receive(now, r))?;
            Ok(())
        })
    }

    /// Timers. Drain afterwards. str0m is left be while it was given nothing and its
    /// deadline is ahead (a turn that only wrote media, which `own_egress` sends).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.str0m_idle(now) {
            self.last_now = self.last_now.max(now);
            return Ok(());
        }
        self.guarded(|s| {
            s.last_now = s.last_now.max(now);
            s.rtc.handle_input(Input::Timeout(now))?;
            Ok(())
        })
    }

    /// Whether str0m has nothing to do at `now`: given nothing since its last drain,
    /// its deadline ahead, no data message waiting for it.
    pub(super) fn str0m_idle(&self, now: Instant) -> bool {
        !self.str0m_touched
            && now < self.str0m_deadline
            && self.data_queue.is_empty()
            && self.poisoned.is_none()
    }
}
