//! One simulated participant: the signal WebSocket, a subscriber peer connection (the
//! server offers), and for publishers a publisher peer connection (we offer) that sends
//! synthetic media; with `--signal v1` one peer connection both ways (`single`). Everything is non-blocking; a worker calls [`Client::poll`] in a loop.
//! The peer connection is in `pc`, the sending side in `publisher`, the receiving side
//! in `subscriber`.

mod pc;
mod publisher;
mod single;
mod subscriber;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::Mid;
use str0m::{Candidate, Event};

use crate::clock::wall_us;
use crate::media::Packet;
use crate::shaper::ShaperStats;
use crate::signal::{Endpoint, Failure, Recv, Signal};
use crate::stats::{Latencies, RxTrack, Shared};
use pc::{rtc_failure, Pc};
use publisher::Sender;

const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// From JoinResponse to every peer connection up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const PING_INTERVAL: Duration = Duration::from_secs(5);

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
    /// Receives through a narrow downlink (`--constrained-subs`).
    pub constrained: bool,
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
    /// Publish video as three simulcast layers (q/h/f).
    pub simulcast: bool,
    /// Ask for this quality of every subscribed video track.
    pub sub_quality: Option<lk::VideoQuality>,
    /// The constrained subscribers' downlink: rate and queue.
    pub constrain_kbps: u32,
    pub constrain_queue_ms: u32,
    /// `/rtc/v1`: one PC per participant (`single`).
    pub single_pc: bool,
    /// Subscribers' tokens cannot publish (`--viewers`).
    pub viewers: bool,
    /// Publishers pace video as libwebrtc does (`--pace`).
    pub pace: bool,
}

/// Worker-owned scratch and results the clients write into.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub shared: &'a Shared,
    /// One-way latency, µs.
    pub latency: &'a mut Latencies,
    pub buf: Vec<u8>,
    events: Vec<Event>,
    frame: Vec<Packet>,
}

impl<'a> Ctx<'a> {
    pub fn new(cfg: &'a Config, shared: &'a Shared, latency: &'a mut Latencies) -> Self {
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
    /// Video tracks we sent UpdateTrackSettings for (`--sub-quality`).
    quality_requested: HashSet<String>,
    /// Wall clock (µs) of the first and latest new media packet received.
    pub first_media_us: Option<u64>,
    pub last_media_us: Option<u64>,
    /// The subscriber PC's shaper, when constrained (kept when the PC goes).
    pub shaper_stats: Option<ShaperStats>,
    next_ping: Instant,
    /// `--signal v1`: the one PC is `publ`; changes waiting for the next offer.
    single_pc: bool,
    single: single::Pending,
    single_dirty: bool,
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
            quality_requested: HashSet::new(),
            first_media_us: None,
            last_media_us: None,
            shaper_stats: None,
            next_ping: now + PING_INTERVAL,
            single_pc: cfg.single_pc,
            single: Default::default(),
            single_dirty: false,
        };
        let join_request = if cfg.single_pc {
            match c.single_join(cfg, now) {
                Ok(j) => Some(j),
                Err(f) => {
                    c.fail(f, shared);
                    return c;
                }
            }
        } else {
            None
        };
        let connect = cfg.endpoint.clone().and_then(|ep| {
            let token = crate::token::join_token(
                &cfg.api_key,
                &cfg.api_secret,
                &c.spec.room,
                &c.spec.identity,
                cfg.token_ttl,
                !(cfg.viewers && c.spec.role == Role::Sub),
            )
            .map_err(|e| Failure::new("token", e))?;
            Signal::connect(&ep, &token, join_request.as_deref())
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

    /// Its open sockets, to wait on: (fd, socket id).
    pub fn sockets(&self, out: &mut Vec<(i32, u64)>) {
        if self.done {
            return;
        }
        if let Some(s) = self.signal.as_ref().and_then(|s| s.socket()) {
            out.push(s);
        }
        for pc in [&self.sub, &self.publ].into_iter().flatten() {
            out.push(pc.socket());
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
            next = next.min(pc.deadline());
        }
        if let Some(s) = &self.sender {
            if !ctx.shared.stop_media.load(Relaxed) {
                next = next.min(s.next_due());
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
        if self.single_pc {
            let f = match &self.publ {
                Some(p) if !p.connected => Failure::new(
                    "ice_timeout",
                    format!("peer connection not connected after {READY_TIMEOUT:?}"),
                ),
                _ if publisher && self.pub_mid.is_none() => Failure::new(
                    "publish_timeout",
                    format!("no TrackPublishedResponse for {}", self.cid),
                ),
                _ => return Ok(()),
            };
            return Err(f);
        }
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
        let pub_up = self.spec.role == Role::Sub || self.publ.as_ref().is_some_and(|p| p.connected);
        let sub_up = match self.single_pc {
            true => self.publ.as_ref().is_some_and(|p| p.connected),
            false => self.sub.as_ref().is_some_and(|p| p.connected),
        };
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
                    let req = self.add_track_request(ctx.cfg);
                    self.send(Req::AddTrack(req))?;
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
                if self.single_pc {
                    self.single_answered(&sd, now, ctx)?;
                }
            }
            Resp::TrackPublished(t)
                if t.cid == self.cid && self.single_pc && self.pub_mid.is_none() =>
            {
                self.single_publish(now, ctx)?;
            }
            Resp::TrackPublished(t) if t.cid == self.cid && self.publ.is_none() => {
                self.start_publisher(now, ctx)?;
            }
            Resp::MediaSectionsRequirement(r) if self.single_pc => {
                self.on_sections_requirement(r, now, ctx)?;
            }
            Resp::Trickle(t) => {
                let pc = if self.single_pc || t.target == lk::SignalTarget::Publisher as i32 {
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
            Resp::SubscribedQualityUpdate(_) => {
                // dynacast: counted, not acted on (every layer keeps being sent)
                Shared::add(&ctx.shared.quality_updates, 1);
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
        let receiving = if self.single_pc {
            &self.publ
        } else {
            &self.sub
        };
        if let Some(sh) = receiving.as_ref().and_then(|pc| pc.shaper.as_ref()) {
            self.shaper_stats = Some(sh.stats);
        }
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
