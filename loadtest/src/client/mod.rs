//! One simulated participant: the signal WebSocket, a subscriber peer connection (the
//! server offers), and for publishers a publisher peer connection (we offer) that sends
//! synthetic media. Everything is non-blocking; a worker calls [`Client::poll`] in a loop.

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind as IoKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::clock::wall_us;
use crate::media::{self, Packet, VideoSource};
use crate::signal::{Endpoint, Failure, Recv, Signal};
use crate::stats::{RxTrack, Shared};

const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// From JoinResponse to every peer connection up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A publisher further behind its media schedule than this skips ahead.
const MAX_SEND_LAG: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Video,
    Audio,
    Sub,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub room: String,
    pub identity: String,
    pub role: Role,
}

/// Fixed for the run.
pub struct Config {
    pub endpoint: Result<Endpoint, Failure>,
    /// The address our UDP sockets bind to and advertise (the interface that reaches the
    /// server), never 0.0.0.0: str0m needs a concrete host candidate.
    pub local_ip: IpAddr,
    pub api_key: String,
    pub api_secret: String,
    pub token_ttl: u64,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
    pub fps: u32,
    pub gop: u32,
    pub audio_kbps: u32,
}

/// Worker-owned scratch and results the clients write into.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub shared: &'a Shared,
    /// One-way latency, µs.
    pub latency: &'a mut Histogram<u64>,
    pub buf: Vec<u8>,
    events: Vec<Event>,
    frame: Vec<Packet>,
}

impl<'a> Ctx<'a> {
    pub fn new(cfg: &'a Config, shared: &'a Shared, latency: &'a mut Histogram<u64>) -> Self {
        Ctx {
            cfg,
            shared,
            latency,
            buf: vec![0; 2048],
            events: Vec::new(),
            frame: Vec::new(),
        }
    }
}

fn rtc_failure(kind: &'static str, e: impl std::fmt::Display) -> Failure {
    Failure::new(kind, e.to_string())
}

/// One peer connection: a client-side (full ICE, RTP mode) str0m session on its own
/// UDP socket.
struct Pc {
    rtc: Rtc,
    sock: UdpSocket,
    local: SocketAddr,
    timeout: Instant,
    connected: bool,
    disconnected_reported: bool,
}

impl Pc {
    fn new(local_ip: IpAddr, now: Instant) -> Result<Pc, Failure> {
        let sock = UdpSocket::bind((local_ip, 0))
            .map_err(|e| Failure::new("udp_error", format!("bind {local_ip}: {e}")))?;
        sock.set_nonblocking(true)
            .map_err(|e| Failure::new("udp_error", e.to_string()))?;
        let local = sock
            .local_addr()
            .map_err(|e| Failure::new("udp_error", e.to_string()))?;
        let mut rtc = RtcConfig::new()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_vp8(true)
            .enable_opus(true, false)
            .build(now);
        let cand = Candidate::host(local, "udp").map_err(|e| rtc_failure("rtc_error", e))?;
        rtc.add_local_candidate(cand);
        Ok(Pc {
            rtc,
            sock,
            local,
            timeout: now,
            connected: false,
            disconnected_reported: false,
        })
    }

    /// Drain str0m after an input: send transmits, collect events, keep the deadline.
    fn drain(&mut self, events: &mut Vec<Event>, shared: &Shared) -> Result<(), Failure> {
        loop {
            match self
                .rtc
                .poll_output()
                .map_err(|e| rtc_failure("rtc_error", e))?
            {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return Ok(());
                }
                Output::Transmit(t) => match self.sock.send_to(&t.contents, t.destination) {
                    Ok(n) => Shared::add(&shared.udp_bytes_out, n as u64),
                    Err(e) if e.kind() == IoKind::WouldBlock => {
                        shared.error("udp_send_dropped", "UDP send buffer full");
                    }
                    Err(e) => shared.error("udp_send_error", format!("{}: {e}", t.destination)),
                },
                Output::Event(e) => events.push(e),
            }
        }
    }

    fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }
}

struct Sender {
    ssrc: Ssrc,
    pt: Pt,
    audio: bool,
    rtp_seq: u64,
    probe_seq: u32,
    packets: u64,
    next_at: Instant,
    interval: Duration,
    video: Option<VideoSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Sub,
    Pub,
}

pub struct Client {
    pub spec: Spec,
    started: Instant,
    signal: Option<Signal>,
    done: bool,
    joined_at: Option<Instant>,
    ready: bool,
    leaving: bool,
    cid: String,
    sub: Option<Pc>,
    publ: Option<Pc>,
    pub_mid: Option<Mid>,
    pub_pending: Option<SdpPendingOffer>,
    add_track_sent: bool,
    sender: Option<Sender>,
    /// mid → track SID, from the subscriber offers.
    mid_tracks: HashMap<String, String>,
    /// Track SIDs offered to us on the subscriber PC.
    pub offered: HashSet<String>,
    /// Received tracks by SSRC.
    pub rx: HashMap<u32, RxTrack>,
    next_ping: Instant,
}

impl Client {
    /// Connects the signal socket (a blocking TCP connect of 3 s at most; the WebSocket
    /// handshake goes on without blocking in `poll`).
    pub fn start(spec: Spec, cfg: &Config, shared: &Shared, now: Instant) -> Client {
        Shared::add(&shared.started, 1);
        let cid = format!(
            "{}-{}",
            spec.identity,
            if spec.role == Role::Audio {
                "mic"
            } else {
                "cam"
            }
        );
        let mut c = Client {
            spec,
            started: now,
            signal: None,
            done: false,
            joined_at: None,
            ready: false,
            leaving: false,
            cid,
            sub: None,
            publ: None,
            pub_mid: None,
            pub_pending: None,
            add_track_sent: false,
            sender: None,
            mid_tracks: HashMap::new(),
            offered: HashSet::new(),
            rx: HashMap::new(),
            next_ping: now + PING_INTERVAL,
        };
        let connect = cfg.endpoint.clone().and_then(|ep| {
            let token = crate::token::join_token(
                &cfg.api_key,
                &cfg.api_secret,
                &c.spec.room,
                &c.spec.identity,
                cfg.token_ttl,
            )
            .map_err(|e| Failure::new("token", e))?;
            Signal::connect(&ep, &token)
        });
        match connect {
            Ok(s) => c.signal = Some(s),
            Err(f) => c.fail(f, shared),
        }
        c
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// File descriptors to wait on.
    pub fn fds(&self, out: &mut Vec<i32>) {
        if self.done {
            return;
        }
        if let Some(fd) = self.signal.as_ref().and_then(|s| s.fd()) {
            out.push(fd);
        }
        for pc in [&self.sub, &self.publ].into_iter().flatten() {
            out.push(pc.fd());
        }
    }

    /// Does all due work; returns the next deadline.
    pub fn poll(&mut self, now: Instant, ctx: &mut Ctx) -> Instant {
        let far = now + Duration::from_secs(1);
        if self.done {
            return far;
        }
        if ctx.shared.leave.load(Relaxed) {
            self.leave(ctx.shared);
            return far;
        }
        if let Err(f) = self.step(now, ctx) {
            self.fail(f, ctx.shared);
            return far;
        }
        let mut next = far.min(self.next_ping);
        for pc in [&self.sub, &self.publ].into_iter().flatten() {
            next = next.min(pc.timeout);
        }
        if let Some(s) = &self.sender {
            if !ctx.shared.stop_media.load(Relaxed) {
                next = next.min(s.next_at);
            }
        }
        next
    }

    fn step(&mut self, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        loop {
            let signal = self
                .signal
                .as_mut()
                .ok_or_else(|| Failure::new("signal_closed", "no signal connection"))?;
            match signal.recv()? {
                Recv::Msg(m) => self.on_signal(*m, now, ctx)?,
                Recv::Empty | Recv::Pending => break,
            }
        }
        self.check_timeouts(now)?;
        self.pump(Which::Sub, now, ctx)?;
        self.pump(Which::Pub, now, ctx)?;
        self.send_media(now, ctx)?;
        if self.joined_at.is_some() && now >= self.next_ping {
            self.next_ping = now + PING_INTERVAL;
            let ms = (wall_us() / 1000) as i64;
            self.send(Req::PingReq(lk::Ping {
                timestamp: ms,
                rtt: 0,
            }))?;
        }
        if let Some(s) = self.signal.as_mut() {
            s.flush()?;
        }
        self.check_ready(now, ctx.shared);
        Ok(())
    }

    fn send(&mut self, m: Req) -> Result<(), Failure> {
        self.signal
            .as_mut()
            .ok_or_else(|| Failure::new("signal_closed", "no signal connection"))?
            .send(m)
    }

    fn check_timeouts(&self, now: Instant) -> Result<(), Failure> {
        let Some(joined) = self.joined_at else {
            if now.duration_since(self.started) > JOIN_TIMEOUT {
                let what = match self.signal.as_ref() {
                    Some(s) if s.is_open() => "no JoinResponse",
                    _ => "WebSocket upgrade not completed",
                };
                return Err(Failure::new(
                    "join_timeout",
                    format!("{what} within {JOIN_TIMEOUT:?}"),
                ));
            }
            return Ok(());
        };
        if self.ready || now.duration_since(joined) <= READY_TIMEOUT {
            return Ok(());
        }
        let publisher = self.spec.role != Role::Sub;
        let f = match (&self.sub, &self.publ) {
            (None, _) => Failure::new("no_subscriber_offer", "the server sent no offer"),
            (Some(s), _) if !s.connected => Failure::new(
                "subscriber_ice_timeout",
                format!("subscriber PC not connected after {READY_TIMEOUT:?}"),
            ),
            (_, None) if publisher => Failure::new(
                "publish_timeout",
                format!("no TrackPublishedResponse for {}", self.cid),
            ),
            (_, Some(_)) if publisher && self.pub_pending.is_some() => Failure::new(
                "publish_timeout",
                format!("no answer to the publisher offer {}", self.cid),
            ),
            (_, Some(p)) if publisher && !p.connected => Failure::new(
                "publisher_ice_timeout",
                format!("publisher PC not connected after {READY_TIMEOUT:?}"),
            ),
            _ => return Ok(()),
        };
        Err(f)
    }

    fn check_ready(&mut self, now: Instant, shared: &Shared) {
        if self.ready || self.joined_at.is_none() {
            return;
        }
        let sub_up = self.sub.as_ref().is_some_and(|p| p.connected);
        let pub_up = self.spec.role == Role::Sub || self.publ.as_ref().is_some_and(|p| p.connected);
        if sub_up && pub_up {
            self.ready = true;
            Shared::add(&shared.connected, 1);
            shared.record_ready(now.duration_since(self.started).as_micros() as u64);
        }
    }

    fn on_signal(&mut self, m: Resp, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        match m {
            Resp::Join(_) => {
                if self.joined_at.is_none() {
                    self.joined_at = Some(now);
                    Shared::add(&ctx.shared.joined, 1);
                    ctx.shared
                        .record_join(now.duration_since(self.started).as_micros() as u64);
                }
                if self.spec.role != Role::Sub && !self.add_track_sent {
                    self.add_track_sent = true;
                    let audio = self.spec.role == Role::Audio;
                    let (w, h) = if audio {
                        (0, 0)
                    } else {
                        (ctx.cfg.width, ctx.cfg.height)
                    };
                    self.send(Req::AddTrack(lk::AddTrackRequest {
                        cid: self.cid.clone(),
                        name: if audio { "microphone" } else { "camera" }.into(),
                        r#type: if audio {
                            lk::TrackType::Audio
                        } else {
                            lk::TrackType::Video
                        } as i32,
                        source: if audio {
                            lk::TrackSource::Microphone
                        } else {
                            lk::TrackSource::Camera
                        } as i32,
                        width: w,
                        height: h,
                        ..Default::default()
                    }))?;
                }
            }
            Resp::Offer(sd) => self.on_offer(sd, now, ctx)?,
            Resp::Answer(sd) => {
                let (Some(pc), Some(pending)) = (self.publ.as_mut(), self.pub_pending.take())
                else {
                    ctx.shared.error(
                        "unexpected_answer",
                        format!("answer id {} with no offer", sd.id),
                    );
                    return Ok(());
                };
                let answer = SdpAnswer::from_sdp_string(&sd.sdp)
                    .map_err(|e| rtc_failure("publisher_sdp", e))?;
                pc.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| rtc_failure("publisher_sdp", e))?;
                pc.timeout = now;
            }
            Resp::TrackPublished(t) if t.cid == self.cid && self.publ.is_none() => {
                self.start_publisher(now, ctx)?;
            }
            Resp::Trickle(t) => {
                let pc = if t.target == lk::SignalTarget::Publisher as i32 {
                    self.publ.as_mut()
                } else {
                    self.sub.as_mut()
                };
                if let Some(pc) = pc {
                    let v: serde_json::Value =
                        serde_json::from_str(&t.candidate_init).unwrap_or_default();
                    if let Some(c) = v["candidate"]
                        .as_str()
                        .and_then(|s| Candidate::from_sdp_string(s).ok())
                    {
                        pc.rtc.add_remote_candidate(c);
                        pc.timeout = now;
                    }
                }
            }
            Resp::Leave(l) if !self.leaving => {
                return Err(Failure::new(
                    "server_leave",
                    format!("server sent leave: reason {} action {}", l.reason, l.action),
                ));
            }
            Resp::RequestResponse(r) if r.reason != 0 => {
                ctx.shared.error(
                    "request_refused",
                    format!(
                        "request {}: reason {} {}",
                        r.request_id, r.reason, r.message
                    ),
                );
            }
            Resp::SubscriptionResponse(s) => {
                ctx.shared.error(
                    "subscription_error",
                    format!("track {}: error {}", s.track_sid, s.err),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// The server offers the subscriber PC (first right after join, then as tracks come and go).
    fn on_offer(
        &mut self,
        sd: lk::SessionDescription,
        now: Instant,
        ctx: &mut Ctx,
    ) -> Result<(), Failure> {
        if self.sub.is_none() {
            self.sub = Some(Pc::new(ctx.cfg.local_ip, now)?);
        }
        // mid → track: the msid lines, then mid_to_track_id (which wins)
        let mut mid: Option<&str> = None;
        for line in sd.sdp.lines() {
            if line.starts_with("m=") {
                mid = None;
            } else if let Some(m) = line.strip_prefix("a=mid:") {
                mid = Some(m.trim());
            } else if let Some(ms) = line.strip_prefix("a=msid:") {
                if let (Some(m), Some(track)) = (mid, ms.split_whitespace().nth(1)) {
                    self.mid_tracks.insert(m.to_owned(), track.to_owned());
                }
            }
        }
        for (m, t) in &sd.mid_to_track_id {
            self.mid_tracks.insert(m.clone(), t.clone());
        }
        for line in sd.sdp.lines() {
            if let Some(ms) = line.strip_prefix("a=msid:") {
                if let Some(t) = ms.split_whitespace().nth(1) {
                    self.offered.insert(t.to_owned());
                }
            }
        }
        let offer =
            SdpOffer::from_sdp_string(&sd.sdp).map_err(|e| rtc_failure("subscriber_sdp", e))?;
        let pc = self.sub.as_mut().expect("created above");
        let answer = pc
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| rtc_failure("subscriber_sdp", e))?;
        pc.timeout = now;
        self.send(Req::Answer(lk::SessionDescription {
            r#type: "answer".into(),
            sdp: answer.to_sdp_string(),
            id: sd.id,
            ..Default::default()
        }))
    }

    /// TrackPublishedResponse: create the publisher PC with one sendonly m-line whose msid
    /// track id is our cid, and offer it.
    fn start_publisher(&mut self, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        let mut pc = Pc::new(ctx.cfg.local_ip, now)?;
        let kind = if self.spec.role == Role::Audio {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        let mut api = pc.rtc.sdp_api();
        let mid = api.add_media(
            kind,
            Direction::SendOnly,
            Some(self.spec.identity.clone()),
            Some(self.cid.clone()),
            None,
        );
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| Failure::new("publisher_sdp", "str0m produced no offer"))?;
        self.pub_mid = Some(mid);
        self.pub_pending = Some(pending);
        pc.timeout = now;
        self.publ = Some(pc);
        self.send(Req::Offer(lk::SessionDescription {
            r#type: "offer".into(),
            sdp: offer.to_sdp_string(),
            id: 1,
            ..Default::default()
        }))
    }

    /// Reads the PC's socket and runs its timers.
    fn pump(&mut self, which: Which, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        let slot = match which {
            Which::Sub => &mut self.sub,
            Which::Pub => &mut self.publ,
        };
        let Some(mut pc) = slot.take() else {
            return Ok(());
        };
        let r = self.pump_pc(&mut pc, which, now, ctx);
        match which {
            Which::Sub => self.sub = Some(pc),
            Which::Pub => self.publ = Some(pc),
        }
        r
    }

    fn pump_pc(
        &mut self,
        pc: &mut Pc,
        which: Which,
        now: Instant,
        ctx: &mut Ctx,
    ) -> Result<(), Failure> {
        let mut events = std::mem::take(&mut ctx.events);
        let mut buf = std::mem::take(&mut ctx.buf);
        let r = (|| {
            loop {
                match pc.sock.recv_from(&mut buf) {
                    Ok((n, source)) => {
                        Shared::add(&ctx.shared.udp_bytes_in, n as u64);
                        let wall = wall_us();
                        let Ok(rx) = Receive::new(Protocol::Udp, source, pc.local, &buf[..n])
                        else {
                            continue;
                        };
                        pc.rtc
                            .handle_input(Input::Receive(now, rx))
                            .map_err(|e| rtc_failure("rtc_error", e))?;
                        pc.drain(&mut events, ctx.shared)?;
                        self.on_events(pc, which, &mut events, wall, ctx);
                    }
                    Err(e) if e.kind() == IoKind::WouldBlock => break,
                    // ICMP port unreachable from an earlier send: the server is gone or
                    // that candidate is dead; ICE/the signal tell the rest.
                    Err(e) if e.kind() == IoKind::ConnectionRefused => continue,
                    Err(e) => return Err(Failure::new("udp_error", e.to_string())),
                }
            }
            if now >= pc.timeout {
                pc.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| rtc_failure("rtc_error", e))?;
                pc.drain(&mut events, ctx.shared)?;
                self.on_events(pc, which, &mut events, wall_us(), ctx);
            }
            Ok(())
        })();
        ctx.events = events;
        ctx.buf = buf;
        r
    }

    fn on_events(
        &mut self,
        pc: &mut Pc,
        which: Which,
        events: &mut Vec<Event>,
        wall: u64,
        ctx: &mut Ctx,
    ) {
        for e in events.drain(..) {
            match e {
                Event::Connected => {
                    pc.connected = true;
                    if which == Which::Pub {
                        self.start_sender(pc, ctx);
                    }
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                    if !self.leaving && !pc.disconnected_reported =>
                {
                    pc.disconnected_reported = true;
                    ctx.shared.error(
                        "ice_disconnected",
                        format!("{}: {which:?} PC ICE disconnected", self.spec.identity),
                    );
                }
                Event::KeyframeRequest(_) => {
                    Shared::add(&ctx.shared.keyframe_requests, 1);
                    if let Some(v) = self.sender.as_mut().and_then(|s| s.video.as_mut()) {
                        v.request_keyframe();
                    }
                }
                Event::RtpPacket(p) if which == Which::Sub => {
                    self.on_rtp(pc, p, wall, ctx);
                }
                _ => {}
            }
        }
    }

    fn on_rtp(&mut self, pc: &mut Pc, p: str0m::rtp::RtpPacket, wall: u64, ctx: &mut Ctx) {
        if p.payload.is_empty() {
            return; // padding (bandwidth probes)
        }
        let ssrc = *p.header.ssrc;
        if !self.rx.contains_key(&ssrc) {
            let mid = pc
                .rtc
                .direct_api()
                .stream_rx(&p.header.ssrc)
                .map(|s| s.mid());
            let audio = mid
                .and_then(|m| pc.rtc.media(m))
                .is_some_and(|m| m.kind() == MediaKind::Audio);
            let track = mid
                .and_then(|m| self.mid_tracks.get(&m.to_string()).cloned())
                .unwrap_or_else(|| format!("ssrc:{ssrc}"));
            self.rx.insert(ssrc, RxTrack::new(track, audio));
        }
        let t = self.rx.get_mut(&ssrc).expect("inserted above");
        let parsed = if t.audio {
            media::parse_audio(&p.payload)
        } else {
            media::parse_vp8(&p.payload)
        };
        let Some(parsed) = parsed else {
            let head: Vec<String> = p
                .payload
                .iter()
                .take(24)
                .map(|b| format!("{b:02x}"))
                .collect();
            ctx.shared.error(
                "bad_payload",
                format!(
                    "no probe in a {} B payload on {} (pt {}): {}",
                    p.payload.len(),
                    t.track,
                    *p.header.payload_type,
                    head.join("")
                ),
            );
            return;
        };
        let transit = wall as i64 - parsed.probe.sent_us as i64;
        let lat = transit.max(1) as u64;
        ctx.latency.saturating_record(lat);
        ctx.shared.interval_max_latency_us.fetch_max(lat, Relaxed);
        if lat > crate::stats::LATE_US {
            Shared::add(&ctx.shared.interval_late, 1);
        }
        let (grow, new) = t.on_packet(parsed.probe.seq, transit);
        if parsed.keyframe {
            t.keyframes += 1;
        }
        Shared::add(&ctx.shared.packets_expected, grow);
        if new {
            Shared::add(&ctx.shared.packets_received, 1);
            Shared::add(&ctx.shared.payload_bytes_received, p.payload.len() as u64);
        }
    }

    fn start_sender(&mut self, pc: &mut Pc, ctx: &mut Ctx) {
        if self.sender.is_some() {
            return;
        }
        let Some(mid) = self.pub_mid else { return };
        let audio = self.spec.role == Role::Audio;
        let codec = if audio { Codec::Opus } else { Codec::Vp8 };
        let remote: Vec<Pt> = pc
            .rtc
            .media(mid)
            .map(|m| m.remote_pts().to_vec())
            .unwrap_or_default();
        let pt = pc
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec && (remote.is_empty() || remote.contains(&p.pt())))
            .map(|p| p.pt());
        let ssrc = pc
            .rtc
            .direct_api()
            .stream_tx_by_mid(mid, None)
            .map(|s| s.ssrc());
        let (Some(pt), Some(ssrc)) = (pt, ssrc) else {
            ctx.shared.error(
                "publisher_sdp",
                format!("{}: no {codec:?} payload type or send stream", self.cid),
            );
            return;
        };
        let cfg = ctx.cfg;
        self.sender = Some(Sender {
            ssrc,
            pt,
            audio,
            rtp_seq: 1,
            probe_seq: 0,
            packets: 0,
            next_at: crate::clock::now(),
            interval: if audio {
                Duration::from_millis(20)
            } else {
                Duration::from_secs_f64(1.0 / cfg.fps.max(1) as f64)
            },
            video: (!audio)
                .then(|| VideoSource::new(cfg.video_kbps, cfg.fps, cfg.gop, cfg.width, cfg.height)),
        });
    }

    /// Writes the frames (or audio packets) that are due, then ticks the publisher PC so
    /// that they go out.
    fn send_media(&mut self, now: Instant, ctx: &mut Ctx) -> Result<(), Failure> {
        if ctx.shared.stop_media.load(Relaxed) {
            return Ok(());
        }
        let (Some(s), Some(pc)) = (self.sender.as_mut(), self.publ.as_mut()) else {
            return Ok(());
        };
        if now < s.next_at {
            return Ok(());
        }
        if now.duration_since(s.next_at) > MAX_SEND_LAG {
            s.next_at = now; // we fell behind (overloaded machine): skip, don't burst
        }
        let mut frame = std::mem::take(&mut ctx.frame);
        let mut written = 0u64;
        let mut bytes = 0u64;
        while now >= s.next_at {
            let sent = wall_us();
            frame.clear();
            let ts = if let Some(v) = s.video.as_mut() {
                let ts = (v.frame_no() * 90_000 / ctx.cfg.fps.max(1) as u64) as u32;
                v.next_frame(&mut s.probe_seq, sent, &mut frame);
                ts
            } else {
                let ts = (s.packets * 960) as u32;
                frame.push(Packet {
                    payload: media::audio_packet(ctx.cfg.audio_kbps, s.probe_seq, sent),
                    marker: false,
                });
                s.probe_seq = s.probe_seq.wrapping_add(1);
                ts
            };
            let mut api = pc.rtc.direct_api();
            let Some(tx) = api.stream_tx(&s.ssrc) else {
                return Err(Failure::new("rtc_error", "publisher send stream vanished"));
            };
            for p in frame.drain(..) {
                bytes += p.payload.len() as u64;
                tx.write_rtp(
                    RtpWrite::new(s.pt, SeqNo::from(s.rtp_seq), ts, now, p.payload)
                        .marker(p.marker)
                        .nackable(!s.audio),
                );
                s.rtp_seq += 1;
                written += 1;
            }
            s.packets += 1;
            s.next_at += s.interval;
        }
        ctx.frame = frame;
        Shared::add(&ctx.shared.packets_sent, written);
        Shared::add(&ctx.shared.payload_bytes_sent, bytes);
        pc.timeout = now; // write_rtp transmits on the next Timeout
        self.pump(Which::Pub, now, ctx)
    }

    fn leave(&mut self, shared: &Shared) {
        if self.done {
            return;
        }
        self.leaving = true;
        if let Some(s) = self.signal.as_mut() {
            if s.is_open() {
                let _ = s.send(Req::Leave(lk::LeaveRequest {
                    reason: lk::DisconnectReason::ClientInitiated as i32,
                    ..Default::default()
                }));
                let _ = s.flush();
            }
            s.close();
        }
        self.finish(shared);
    }

    fn fail(&mut self, f: Failure, shared: &Shared) {
        if self.done {
            return;
        }
        shared.error(f.kind, format!("{}: {}", self.spec.identity, f.message));
        Shared::add(&shared.failed, 1);
        if let Some(s) = self.signal.as_mut() {
            s.close();
        }
        self.finish(shared);
    }

    fn finish(&mut self, shared: &Shared) {
        self.done = true;
        self.sub = None;
        self.publ = None;
        self.sender = None;
        Shared::add(&shared.finished, 1);
        if self.ready {
            shared.connected.fetch_sub(1, Relaxed);
        }
    }

    pub fn was_ready(&self) -> bool {
        self.ready
    }
}
