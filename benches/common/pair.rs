//! Connected subscriber peer connections in memory, for benches: corelay's
//! [`PeerSession`] (the SFU side, ICE-lite) against a plain str0m `Rtc` playing the
//! client, joined by moving datagrams between them. The same idea as the unit tests'
//! `src/session/harness.rs`, which is `cfg(test)` and so not visible here; this copy
//! uses only public API.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corelay::session::{
    Codec, MediaKind, Mid, PayloadType, PeerRole, PeerSession, SessionEvent, Transmit, Transport,
};
use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const CLIENT: &str = "10.0.0.1:5000";
const SERVER: &str = "10.0.0.2:7882";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("bench address")
}

/// One subscriber PC with one sendonly VP8 track, connected (ICE, DTLS, SRTP keys).
pub struct Downtrack {
    pub server: PeerSession,
    pub client: Rtc,
    pub mid: Mid,
    pub pt: PayloadType,
    /// Server datagrams not yet delivered to the client.
    pub to_client: Vec<Transmit>,
    events: Vec<SessionEvent>,
    /// RTP packets the client decrypted.
    pub client_rtp: usize,
}

impl Downtrack {
    pub fn connect(now: &mut Instant) -> Downtrack {
        let mut client = Rtc::builder().set_rtp_mode(true).build(*now);
        client.add_local_candidate(Candidate::host(addr(CLIENT), "udp").expect("host"));
        let mut server =
            PeerSession::new(PeerRole::Subscriber, &[addr(SERVER)], *now).expect("session");
        server
            .add_send_track(MediaKind::Video, "PA_bench|TR_bench", "TR_bench")
            .expect("send track");
        let offer = server.create_offer().expect("offer").expect("a change");
        let offer = SdpOffer::from_sdp_string(&offer).expect("our offer parses");
        let answer = client
            .sdp_api()
            .accept_offer(offer)
            .expect("client answers");
        server
            .accept_answer(&answer.to_sdp_string())
            .expect("answer accepted");
        for json in server.local_candidates_json() {
            let v: serde_json::Value = serde_json::from_str(&json).expect("json");
            let line = v["candidate"].as_str().expect("candidate");
            client.add_remote_candidate(Candidate::from_sdp_string(line).expect("candidate"));
        }
        let ours = Candidate::host(addr(CLIENT), "udp").expect("host");
        let init = serde_json::json!({ "candidate": ours.to_sdp_string(), "sdpMid": "0" });
        server
            .add_remote_candidate(&init.to_string())
            .expect("client candidate");
        let mid = server
            .send_track_mid("TR_bench")
            .expect("mid after the offer");
        let pt = server.payload_type_for(Codec::Vp8).expect("vp8 negotiated");
        let mut d = Downtrack {
            server,
            client,
            mid,
            pt,
            to_client: Vec::new(),
            events: Vec::new(),
            client_rtp: 0,
        };
        let end = *now + Duration::from_secs(10);
        while !(d.client.is_connected() && d.server.is_connected()) {
            assert!(*now < end, "no connection in 10 s of synthetic time");
            *now += Duration::from_millis(5);
            d.pump(*now);
        }
        d
    }

    /// Runs both sides' timers at `now` and moves datagrams until neither has any.
    /// Each side is drained after every input, as str0m requires.
    pub fn pump(&mut self, now: Instant) {
        let mut to_server = Vec::new();
        self.client
            .handle_input(Input::Timeout(now))
            .expect("client timeout");
        self.drain_client(&mut to_server);
        self.server.handle_timeout(now).expect("server timeout");
        self.drain_server();
        while !(self.to_client.is_empty() && to_server.is_empty()) {
            for t in std::mem::take(&mut to_server) {
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
                self.drain_client(&mut to_server);
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

    fn drain_client(&mut self, to_server: &mut Vec<Transmit>) {
        loop {
            match self.client.poll_output().expect("client poll") {
                Output::Timeout(_) => return,
                Output::Transmit(t) => to_server.push(Transmit {
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
