//! Connected peer connections in memory, for benches: corelay's [`PeerSession`] (the
//! SFU side, ICE-lite) against a plain str0m `Rtc` playing the client, joined by
//! moving datagrams between them. A [`Downtrack`] is a subscriber PC (the server
//! sends), an [`Uplink`] a publisher PC (the client sends). The same idea as the unit
//! tests' `src/session/harness.rs`, which is `cfg(test)` and so not visible here;
//! this copy uses only public API.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corelay::session::{
    Codec, MediaKind, Mid, PayloadType, PeerRole, PeerSession, SessionEvent, Transmit, Transport,
};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec as ClientCodec;
use str0m::media::{Direction, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

const CLIENT: &str = "10.0.0.1:5000";
const SERVER: &str = "10.0.0.2:7882";

/// A VP8 keyframe's first packet (payload descriptor, then a key frame header).
pub const VP8_KEYFRAME: [u8; 12] = [
    0x10, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 1, 2, 3,
];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("bench address")
}

/// Both ends of one peer connection and the datagrams between them.
pub struct Wire {
    pub server: PeerSession,
    pub client: Rtc,
    /// Server datagrams not yet delivered to the client.
    pub to_client: Vec<Transmit>,
    to_server: Vec<Transmit>,
    events: Vec<SessionEvent>,
    /// RTP packets the client decrypted.
    pub client_rtp: usize,
}

impl Wire {
    fn new(role: PeerRole, now: Instant) -> Wire {
        let mut client = Rtc::builder().set_rtp_mode(true).build(now);
        client.add_local_candidate(Candidate::host(addr(CLIENT), "udp").expect("host"));
        Wire {
            server: PeerSession::new(role, &[addr(SERVER)], now).expect("session"),
            client,
            to_client: Vec::new(),
            to_server: Vec::new(),
            events: Vec::new(),
            client_rtp: 0,
        }
    }

    /// After the offer/answer: each side learns the other's host candidate, then
    /// datagrams move until ICE and DTLS are up on both.
    fn connect(&mut self, now: &mut Instant) {
        for json in self.server.local_candidates_json() {
            let v: serde_json::Value = serde_json::from_str(&json).expect("json");
            let line = v["candidate"].as_str().expect("candidate");
            self.client
                .add_remote_candidate(Candidate::from_sdp_string(line).expect("candidate"));
        }
        let ours = Candidate::host(addr(CLIENT), "udp").expect("host");
        let init = serde_json::json!({ "candidate": ours.to_sdp_string(), "sdpMid": "0" });
        self.server
            .add_remote_candidate(&init.to_string())
            .expect("client candidate");
        let end = *now + Duration::from_secs(10);
        while !(self.client.is_connected() && self.server.is_connected()) {
            assert!(*now < end, "no connection in 10 s of synthetic time");
            *now += Duration::from_millis(5);
            self.pump(*now);
        }
    }

    /// Runs both sides' timers at `now` and moves datagrams until neither has any.
    /// Each side is drained after every input, as str0m requires.
    pub fn pump(&mut self, now: Instant) {
        self.client
            .handle_input(Input::Timeout(now))
            .expect("client timeout");
        self.drain_client();
        self.server.handle_timeout(now).expect("server timeout");
        self.drain_server();
        while !(self.to_client.is_empty() && self.to_server.is_empty()) {
            for t in std::mem::take(&mut self.to_server) {
                // Errors are the server's business (the unit tests look at them).
                let _ = self
                    .server
                    .handle_receive(now, t.source, t.destination, &t.contents);
                self.drain_server();
            }
            for t in std::mem::take(&mut self.to_client) {
                let r = Receive::new(Protocol::Udp, t.source, t.destination, &t.contents)
                    .expect("server datagram parses");
                self.client
                    .handle_input(Input::Receive(now, r))
                    .expect("client receive");
                self.drain_client();
                // As the shard does once a datagram is sent.
                corelay::session::packet_buffers::give_back(t.contents);
            }
        }
    }

    /// Collects the server's transmits (this is where str0m builds and encrypts them).
    pub fn drain_server(&mut self) {
        self.server
            .drain(&mut self.to_client, &mut self.events)
            .expect("server drain");
        self.events.clear();
    }

    fn drain_client(&mut self) {
        loop {
            match self.client.poll_output().expect("client poll") {
                Output::Timeout(_) => return,
                Output::Transmit(t) => self.to_server.push(Transmit {
                    transport: Transport::Udp,
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Output::Event(Event::RtpPacket(_)) => self.client_rtp += 1,
                Output::Event(_) => {}
            }
        }
    }
}

/// One subscriber PC with one sendonly VP8 track, connected (ICE, DTLS, SRTP keys).
pub struct Downtrack {
    pub wire: Wire,
    pub mid: Mid,
    pub pt: PayloadType,
}

impl Downtrack {
    pub fn connect(now: &mut Instant) -> Downtrack {
        let mut wire = Wire::new(PeerRole::Subscriber, *now);
        wire.server
            .add_send_track(MediaKind::Video, "PA_bench|TR_bench", "TR_bench")
            .expect("send track");
        let offer = wire
            .server
            .create_offer()
            .expect("offer")
            .expect("a change");
        let offer = SdpOffer::from_sdp_string(&offer).expect("our offer parses");
        let answer = wire
            .client
            .sdp_api()
            .accept_offer(offer)
            .expect("client answers");
        wire.server
            .accept_answer(&answer.to_sdp_string())
            .expect("answer accepted");
        let mid = wire
            .server
            .send_track_mid("TR_bench")
            .expect("mid after the offer");
        let pt = wire
            .server
            .payload_type_for(Codec::Vp8)
            .expect("vp8 negotiated");
        wire.connect(now);
        Downtrack { wire, mid, pt }
    }
}

/// One publisher PC with one sendonly VP8 track, connected: the client makes SRTP
/// packets, corelay's session (publisher role) receives them.
pub struct Uplink {
    pub wire: Wire,
    mid: Mid,
    pt: Pt,
}

impl Uplink {
    pub fn connect(now: &mut Instant) -> Uplink {
        let mut wire = Wire::new(PeerRole::Publisher, *now);
        let mut api = wire.client.sdp_api();
        let mid = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some("PA_pub".into()),
            Some("TR_pub".into()),
            None,
        );
        let (offer, pending) = api.apply().expect("client offer");
        let (answer, _) = wire
            .server
            .accept_offer(&offer.to_sdp_string())
            .expect("server answers");
        wire.client
            .sdp_api()
            .accept_answer(
                pending,
                SdpAnswer::from_sdp_string(&answer).expect("answer"),
            )
            .expect("client takes the answer");
        let media = wire.client.media(mid).expect("client media");
        let pt = wire
            .client
            .codec_config()
            .find(|p| p.spec().codec == ClientCodec::Vp8 && media.remote_pts().contains(&p.pt()))
            .expect("vp8 negotiated")
            .pt();
        wire.connect(now);
        Uplink { wire, mid, pt }
    }

    /// The SRTP datagram the client sends for one VP8 packet, not yet delivered.
    pub fn packet(&mut self, now: Instant, seq: u64, payload: &[u8]) -> Transmit {
        let ts = (seq * 3000) as u32;
        let mut api = self.wire.client.direct_api();
        let tx = api
            .stream_tx_by_mid(self.mid, None)
            .expect("client stream_tx");
        tx.write_rtp(RtpWrite::new(self.pt, seq.into(), ts, now, payload.to_vec()).marker(true));
        self.wire
            .client
            .handle_input(Input::Timeout(now))
            .expect("client timeout");
        self.wire.drain_client();
        let at = self
            .wire
            .to_server
            .iter()
            .position(|t| t.contents.first().is_some_and(|b| (128..192).contains(b)))
            .expect("an RTP datagram");
        self.wire.to_server.remove(at)
    }
}
