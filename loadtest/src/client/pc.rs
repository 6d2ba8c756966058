//! One peer connection: a client-side (full ICE, RTP mode) str0m session on its own
//! UDP socket, with an optional shaper in front of its input (a constrained downlink),
//! and how a client pumps it: socket → (shaper →) str0m → events.

use std::io::ErrorKind as IoKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Instant;

use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use super::{Client, Ctx, Which};
use crate::shaper::Shaper;
use crate::signal::Failure;
use crate::stats::{Shared, Stamp};

pub(super) fn rtc_failure(kind: &'static str, e: impl std::fmt::Display) -> Failure {
    Failure::new(kind, e.to_string())
}

pub(super) struct Pc {
    pub rtc: Rtc,
    pub sock: UdpSocket,
    /// Names the socket to the worker's epoll set ([`crate::ready`]).
    pub sock_id: u64,
    pub local: SocketAddr,
    pub timeout: Instant,
    pub connected: bool,
    pub disconnected_reported: bool,
    /// Incoming datagrams pass through this before str0m sees them.
    pub shaper: Option<Shaper>,
}

impl Pc {
    pub fn new(local_ip: IpAddr, now: Instant) -> Result<Pc, Failure> {
        let sock = UdpSocket::bind((local_ip, 0))
            .map_err(|e| Failure::new("udp_error", format!("bind {local_ip}: {e}")))?;
        sock.set_nonblocking(true)
            .map_err(|e| Failure::new("udp_error", e.to_string()))?;
        crate::rx_stamp::enable(&sock)
            .map_err(|e| Failure::new("udp_error", format!("SO_TIMESTAMPNS: {e}")))?;
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
            sock_id: crate::ready::socket_id(),
            local,
            timeout: now,
            connected: false,
            disconnected_reported: false,
            shaper: None,
        })
    }

    /// Drain str0m after an input: send transmits, collect events, keep the deadline.
    pub fn drain(&mut self, events: &mut Vec<Event>, shared: &Shared) -> Result<(), Failure> {
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

    /// The next time this PC needs a turn: str0m's timer, or the shaper's next release.
    pub fn deadline(&self) -> Instant {
        match self.shaper.as_ref().and_then(Shaper::next_release) {
            Some(t) => t.min(self.timeout),
            None => self.timeout,
        }
    }

    /// The socket's fd and id.
    pub fn socket(&self) -> (i32, u64) {
        use std::os::fd::AsRawFd;
        (self.sock.as_raw_fd(), self.sock_id)
    }
}

impl Client {
    /// Reads the PC's socket and runs its timers.
    pub(super) fn pump(
        &mut self,
        which: Which,
        now: Instant,
        ctx: &mut Ctx,
    ) -> Result<(), Failure> {
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
        let mut buf = std::mem::take(&mut ctx.buf);
        let r = (|| {
            loop {
                match crate::rx_stamp::recv_from(&pc.sock, &mut buf) {
                    Ok((n, source, arrived)) => {
                        Shared::add(&ctx.shared.udp_bytes_in, n as u64);
                        match pc.shaper.as_mut() {
                            // a narrow downlink: str0m sees it when the link delivers it
                            Some(shaper) => {
                                shaper.push(now, source, &buf[..n]);
                            }
                            None => {
                                let at = Stamp::read_now(arrived);
                                self.receive(pc, which, source, &buf[..n], at, now, ctx)?
                            }
                        }
                    }
                    Err(e) if e.kind() == IoKind::WouldBlock => break,
                    // ICMP port unreachable from an earlier send: the server is gone or
                    // that candidate is dead; ICE/the signal tell the rest.
                    Err(e) if e.kind() == IoKind::ConnectionRefused => continue,
                    Err(e) => return Err(Failure::new("udp_error", e.to_string())),
                }
            }
            while let Some(d) = pc.shaper.as_mut().and_then(|s| s.pop(now)) {
                // a shaped link delivers a datagram when it leaves the shaper
                let at = Stamp::read_now(None);
                let r = self.receive(pc, which, d.source, &d.data, at, now, ctx);
                if let Some(s) = pc.shaper.as_mut() {
                    s.recycle(d);
                }
                r?;
            }
            if now >= pc.timeout {
                let mut events = std::mem::take(&mut ctx.events);
                let r = pc
                    .rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| rtc_failure("rtc_error", e))
                    .and_then(|()| pc.drain(&mut events, ctx.shared));
                self.on_events(pc, which, &mut events, Stamp::read_now(None), ctx);
                ctx.events = events;
                r?;
            }
            Ok(())
        })();
        ctx.buf = buf;
        r
    }

    /// Hands one datagram, which arrived and was read `at`, to str0m and handles what
    /// comes out.
    #[allow(clippy::too_many_arguments)]
    fn receive(
        &mut self,
        pc: &mut Pc,
        which: Which,
        source: SocketAddr,
        data: &[u8],
        at: Stamp,
        now: Instant,
        ctx: &mut Ctx,
    ) -> Result<(), Failure> {
        let Ok(rx) = Receive::new(Protocol::Udp, source, pc.local, data) else {
            return Ok(());
        };
        let mut events = std::mem::take(&mut ctx.events);
        let r = pc
            .rtc
            .handle_input(Input::Receive(now, rx))
            .map_err(|e| rtc_failure("rtc_error", e))
            .and_then(|()| pc.drain(&mut events, ctx.shared));
        self.on_events(pc, which, &mut events, at, ctx);
        ctx.events = events;
        r
    }

    fn on_events(
        &mut self,
        pc: &mut Pc,
        which: Which,
        events: &mut Vec<Event>,
        at: Stamp,
        ctx: &mut Ctx,
    ) {
        for e in events.drain(..) {
            match e {
                Event::Connected => {
                    pc.connected = true;
                    // v1: our line exists once the answer to its offer is in
                    // (`single_answered` starts the sender then).
                    if which == Which::Pub && !(self.single_pc && self.pub_pending.is_some()) {
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
                Event::KeyframeRequest(r) => self.on_keyframe_request(r.rid, ctx.shared),
                Event::RtpPacket(p) if which == Which::Sub || self.single_pc => {
                    self.on_rtp(pc, p, at, ctx);
                }
                _ => {}
            }
        }
    }
}
