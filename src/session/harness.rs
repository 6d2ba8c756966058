//! In-memory pair for tests: a plain full-ICE str0m `Rtc` playing the browser, and a
//! [`PeerSession`] playing the SFU, at made-up addresses. Transmits are shuttled between
//! them with no delay and time jumps to the earliest deadline: no sockets, no sleeps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::{OfferedMedia, PeerRole, PeerSession, RtpIn, SessionEvent, Transmit, Transport};

pub const CLIENT: &str = "10.0.0.1:5000";
pub const SERVER: &str = "10.0.0.2:7882";

/// Longest time jump of one step, so that tests see time move in small increments.
const MAX_JUMP: Duration = Duration::from_millis(50);

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

pub struct Pair {
    pub now: Instant,
    pub client: Rtc,
    pub server: PeerSession,
    client_deadline: Instant,
    server_deadline: Instant,
    to_client: Vec<Transmit>,
    to_server: Vec<Transmit>,
    pub client_events: Vec<Event>,
    pub server_events: Vec<SessionEvent>,
    /// Errors `handle_receive` returned (tests with hostile input look at these).
    pub server_errors: Vec<String>,
    /// While set, what the client sends is lost on the way.
    pub lose_to_server: bool,
    /// While set, a copy of every datagram the server is handed.
    pub seen_by_server: Option<Vec<Vec<u8>>>,
    /// While set, a copy of every datagram the client is handed.
    pub seen_by_client: Option<Vec<Vec<u8>>>,
}

impl Pair {
    pub fn new(role: PeerRole) -> Pair {
        let now = crate::clock::now().mono;
        let mut client = Rtc::builder().set_rtp_mode(true).build(now);
        client.add_local_candidate(Candidate::host(addr(CLIENT), "udp").expect("host"));
        let server = PeerSession::new(role, &[addr(SERVER)], now).expect("session");
        Pair {
            now,
            client,
            server,
            client_deadline: now,
            server_deadline: now,
            to_client: Vec::new(),
            to_server: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            server_errors: Vec::new(),
            lose_to_server: false,
            seen_by_server: None,
            seen_by_client: None,
        }
    }

    /// Publisher PC: the client's offer → server answer → client. Returns what the server
    /// read from the offer.
    pub fn client_offer(
        &mut self,
        offer: SdpOffer,
        pending: str0m::change::SdpPendingOffer,
    ) -> Vec<super::OfferedMedia> {
        self.client_round(offer, pending).1
    }

    /// As `client_offer`, returning the server's answer SDP too.
    pub fn client_round(
        &mut self,
        offer: SdpOffer,
        pending: str0m::change::SdpPendingOffer,
    ) -> (String, Vec<super::OfferedMedia>) {
        let (answer_sdp, offered) = self
            .server
            .accept_offer(&offer.to_sdp_string())
            .expect("server accepts the offer");
        let answer = SdpAnswer::from_sdp_string(&answer_sdp).expect("server answer parses");
        self.client
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("client accepts the answer");
        self.drain_client();
        self.drain_server();
        (answer_sdp, offered)
    }

    /// Subscriber PC: the server's queued changes → offer → client answer → server.
    /// Returns the offer SDP.
    pub fn server_offer(&mut self) -> String {
        let sdp = self
            .server
            .create_offer()
            .expect("create_offer")
            .expect("something to offer");
        let offer = SdpOffer::from_sdp_string(&sdp).expect("server offer parses");
        let answer = self
            .client
            .sdp_api()
            .accept_offer(offer)
            .expect("client accepts the offer");
        self.server
            .accept_answer(&answer.to_sdp_string())
            .expect("server accepts the answer");
        self.drain_client();
        self.drain_server();
        sdp
    }

    /// Trickles candidates both ways through the JSON the SDKs use.
    pub fn trickle(&mut self) {
        for json in self.server.local_candidates_json() {
            let v: serde_json::Value = serde_json::from_str(&json).expect("json");
            let line = v["candidate"].as_str().expect("candidate string");
            let c = Candidate::from_sdp_string(line).expect("our candidate parses");
            self.client.add_remote_candidate(c);
        }
        let client_json = serde_json::json!({
            "candidate": Candidate::host(addr(CLIENT), "udp").expect("host").to_sdp_string(),
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        });
        self.server
            .add_remote_candidate(&client_json.to_string())
            .expect("client candidate accepted");
        self.drain_client();
        self.drain_server();
    }

    pub fn drain_client(&mut self) {
        loop {
            match self.client.poll_output().expect("client poll") {
                Output::Timeout(t) => {
                    self.client_deadline = t;
                    break;
                }
                Output::Transmit(t) => self.to_server.push(Transmit {
                    transport: Transport::Udp,
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Output::Event(e) => self.client_events.push(e),
            }
        }
    }

    /// Hands the client a datagram as if the server had sent it from its candidate.
    pub fn deliver_to_client(&mut self, contents: &[u8]) {
        let r = Receive::new(Protocol::Udp, addr(SERVER), addr(CLIENT), contents)
            .expect("a datagram for the client");
        (self.client)
            .handle_input(Input::Receive(self.now, r))
            .expect("client receive");
        self.drain_client();
    }

    pub fn drain_server(&mut self) {
        let mut out = Vec::new();
        self.server_deadline = self
            .server
            .drain(&mut out, &mut self.server_events)
            .expect("server drain");
        for t in &out {
            assert_eq!(t.source, addr(SERVER), "server sends from its candidate");
        }
        self.to_client.extend(out);
    }

    /// One round: deliver what is in flight, or else jump to the earliest deadline.
    pub fn step(&mut self) {
        if self.to_client.is_empty() && self.to_server.is_empty() {
            let next = self.client_deadline.min(self.server_deadline);
            self.now = if next > self.now {
                next.min(self.now + MAX_JUMP)
            } else {
                self.now + Duration::from_millis(1)
            };
        }
        let now = self.now;
        if self.client_deadline <= now {
            self.client
                .handle_input(Input::Timeout(now))
                .expect("client timeout");
            self.drain_client();
        }
        if self.server_deadline <= now {
            self.server.handle_timeout(now).expect("server timeout");
            self.drain_server();
        }
        if self.lose_to_server {
            self.to_server.clear();
        }
        for t in std::mem::take(&mut self.to_server) {
            if let Some(seen) = self.seen_by_server.as_mut() {
                seen.push(t.contents.clone());
            }
            if let Err(e) = self
                .server
                .handle_receive(now, t.source, t.destination, &t.contents)
            {
                self.server_errors.push(e.to_string());
            }
            self.drain_server();
        }
        for t in std::mem::take(&mut self.to_client) {
            if let Some(seen) = self.seen_by_client.as_mut() {
                seen.push(t.contents.clone());
            }
            let r = Receive::new(Protocol::Udp, t.source, t.destination, &t.contents)
                .expect("server datagram parses");
            self.client
                .handle_input(Input::Receive(now, r))
                .expect("client receive");
            self.drain_client();
        }
    }

    /// Loses the server's datagrams in flight.
    pub fn lose_to_client(&mut self) {
        self.to_client.clear();
    }

    /// Takes the client's datagrams in flight, for a test to deliver (or lose) itself.
    pub fn take_to_server(&mut self) -> Vec<Transmit> {
        std::mem::take(&mut self.to_server)
    }

    /// Steps until `done` holds or `limit` of synthetic time has passed.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Runs for `d` of synthetic time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Steps until the server reports its `_reliable` and `_lossy` channels open.
    pub fn wait_server_channels(&mut self) {
        let ok = self.run_until(Duration::from_secs(2), |p| {
            ["_reliable", "_lossy"].iter().all(|l| {
                p.server_events
                    .iter()
                    .any(|e| matches!(e, SessionEvent::ChannelOpen { label } if label == l))
            })
        });
        assert!(ok, "server channels open");
    }

    /// Steps until both sides report a connection.
    pub fn connect(&mut self) {
        let ok = self.run_until(Duration::from_secs(10), |p| {
            p.client.is_connected()
                && p.server_events
                    .iter()
                    .any(|e| matches!(e, SessionEvent::Connected))
        });
        assert!(ok, "no connection; server errors: {:?}", self.server_errors);
    }
}

// Media helpers shared by the tests.

pub const VP8_KEYFRAME: [u8; 12] = [
    0x10, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 1, 2, 3,
];

/// A VP8 payload: the first is a keyframe start, the rest interframes, each one distinct.
pub fn vp8_payload(i: usize) -> Vec<u8> {
    if i == 0 {
        return VP8_KEYFRAME.to_vec();
    }
    let mut p = vec![0x10, 0x01, 0x02];
    p.extend_from_slice(&(i as u32).to_be_bytes());
    p.extend(std::iter::repeat_n(i as u8, 100));
    p
}

pub fn opus_payload(i: usize) -> Vec<u8> {
    let mut p = vec![0xfc, 0xff, 0xfe];
    p.extend_from_slice(&(i as u32).to_be_bytes());
    p
}

/// The PT the client negotiated for `codec` on `mid`.
pub fn client_pt(client: &Rtc, mid: Mid, codec: Codec) -> Pt {
    let media = client.media(mid).expect("client media");
    let pt = client
        .codec_config()
        .find(|p| p.spec().codec == codec && media.remote_pts().contains(&p.pt()))
        .expect("codec negotiated")
        .pt();
    pt
}

pub fn server_rtp(pair: &Pair) -> Vec<&RtpIn> {
    pair.server_events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Rtp(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// The payloads the (RTP-mode) client received on `mid`, in order.
pub fn client_payloads(pair: &mut Pair, mid: Mid) -> Vec<Vec<u8>> {
    client_rtp(pair, mid).into_iter().map(|(_, p)| p).collect()
}

/// Packets the (RTP-mode) client received on `mid`, as (seq, payload).
pub fn client_rtp(pair: &mut Pair, mid: Mid) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    for e in &pair.client_events {
        if let Event::RtpPacket(p) = e {
            let on_mid = pair
                .client
                .direct_api()
                .stream_rx(&p.header.ssrc)
                .map(|rx| rx.mid());
            if on_mid == Some(mid) {
                out.push((p.header.sequence_number, p.payload.to_vec()));
            }
        }
    }
    out
}

pub struct Publisher {
    pub pair: Pair,
    pub audio: Mid,
    pub video: Mid,
}

/// A connected publisher PC: client sendonly Opus + VP8 with msid, plus `_reliable`.
pub fn publisher() -> (Publisher, Vec<OfferedMedia>) {
    let mut pair = Pair::new(PeerRole::Publisher);
    let mut api = pair.client.sdp_api();
    let audio = api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some("stream-x".into()),
        Some("track-a".into()),
        None,
    );
    let video = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some("stream-x".into()),
        Some("track-v".into()),
        None,
    );
    api.add_channel("_reliable".into());
    let (offer, pending) = api.apply().expect("offer");
    let offered = pair.client_offer(offer, pending);
    pair.trickle();
    pair.connect();
    (Publisher { pair, audio, video }, offered)
}

pub fn client_write(pair: &mut Pair, mid: Mid, pt: Pt, seq: u64, ts: u32, payload: Vec<u8>) {
    let now = pair.now;
    let mut api = pair.client.direct_api();
    let tx = api.stream_tx_by_mid(mid, None).expect("client stream_tx");
    tx.write_rtp(RtpWrite::new(pt, seq.into(), ts, now, payload).marker(true));
    pair.drain_client();
}

/// A connected subscriber PC with data channels and one video + one audio track.
pub fn subscriber() -> (Pair, String) {
    let mut pair = Pair::new(PeerRole::Subscriber);
    pair.server.open_data_channels().unwrap();
    pair.server
        .add_send_track(MediaKind::Video, "PA_abc|TR_def", "TR_def")
        .unwrap();
    pair.server
        .add_send_track(MediaKind::Audio, "PA_abc|TR_aud", "TR_aud")
        .unwrap();
    assert!(
        pair.server.send_track_mid("TR_def").is_none(),
        "mids come with the offer"
    );
    let offer = pair.server_offer();
    pair.trickle();
    pair.connect();
    (pair, offer)
}

/// A connected subscriber that received `n` video packets through str0m, and the RTP
/// header of the first as the client saw it (its SSRC, payload type, numbering).
pub fn subscriber_with_video(n: usize) -> (Pair, Mid, str0m::rtp::RtpHeader) {
    let (mut pair, _) = subscriber();
    let mid = pair.server.send_track_mid("TR_def").expect("video mid");
    server_write_video(&mut pair, mid, n, 100);
    let header = (pair.client_events.iter())
        .find_map(|e| match e {
            Event::RtpPacket(p) => Some(p.header.clone()),
            _ => None,
        })
        .expect("str0m's own packet arrived");
    (pair, mid, header)
}

/// Writes `n` VP8 packets (keyframe first) on `mid` and returns what was written.
pub fn server_write_video(pair: &mut Pair, mid: Mid, n: usize, seq0: u64) -> Vec<Vec<u8>> {
    let pt = pair.server.payload_type_for(Codec::Vp8).expect("vp8");
    let mut written = Vec::new();
    for i in 0..n {
        let payload: Arc<[u8]> = vp8_payload(i).into();
        let (seq, ts, now) = (seq0 + i as u64, 3000 * i as u32, pair.now);
        pair.server
            .write_rtp(mid, pt, (seq, ts, true), payload.clone(), now)
            .expect("write_rtp");
        pair.drain_server();
        written.push(payload.to_vec());
        pair.run_for(Duration::from_millis(30));
    }
    pair.run_for(Duration::from_millis(300));
    written
}
