//! The embedded TURN server's I/O: one thread owning the TURN listeners (UDP, and TLS or
//! plain TCP streams) and one UDP socket per allocation (ports from
//! `turn.relay_range_start..=end`), driving the sans-IO `turn-server-proto` server, one
//! per listening address. It shares nothing with the shards: relayed media reaches them
//! as ordinary datagrams from the relay address.

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};
use turn_server_proto::api::{SocketAllocateError, TurnServerApi, TurnServerPollRet};
use turn_server_proto::server::TurnServer;
use turn_server_proto::types::stun::attribute::Username;
use turn_server_proto::types::stun::message::Message;
use turn_server_proto::types::{AddressFamily, Instant, TransportType};

use super::credentials::{password_for, Invalid, REALM};
use super::forbid::forbidden_reply;
use super::peers::PeerPolicy;
use super::stats::{Refusal, TurnStats};
use super::tls::StreamConn;
use crate::auth::KeyStore;

/// Usernames the server learned; past this, new ones are refused (each join adds one
/// and turn-server-proto has no way to forget them).
const MAX_USERS: usize = 100_000;
/// The longest the thread sleeps without looking at the timers.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Stream connections (TLS/TCP) one listener holds at once.
const MAX_STREAMS: usize = 4096;

pub struct Settings {
    /// Where to listen for TURN/UDP, each a concrete address (`port` 0 for any).
    pub listen: Vec<SocketAddr>,
    /// Where to listen for TURN over streams: TLS with `tls` set, else plain TCP
    /// (`turn.external_tls`: TLS ends at a load balancer).
    pub streams: Vec<SocketAddr>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub relay_range: (u16, u16),
    pub keys: KeyStore,
    pub policy: PeerPolicy,
    /// Allocations one username may hold at once (0: no limit).
    pub per_user_limit: u32,
    pub stats: Arc<TurnStats>,
}

/// A running TURN server: the addresses it listens on, for `JoinResponse.ice_servers`.
#[derive(Debug, Clone)]
pub struct TurnHandle {
    pub addrs: Vec<SocketAddr>,
    pub stream_addrs: Vec<SocketAddr>,
}

pub fn start(settings: Settings) -> std::io::Result<TurnHandle> {
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for addr in &settings.listen {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let server = TurnServer::new(TransportType::Udp, local, REALM.to_string());
        addrs.push(local);
        servers.push(Listener {
            io: Io::Udp(socket),
            server,
        });
    }
    let mut stream_addrs = Vec::new();
    for addr in &settings.streams {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let server = TurnServer::new(TransportType::Tcp, local, REALM.to_string());
        stream_addrs.push(local);
        servers.push(Listener {
            io: Io::Stream {
                listener,
                conns: HashMap::new(),
                tls: settings.tls.clone(),
            },
            server,
        });
    }
    let mut relay = Relay {
        listeners: servers,
        relays: HashMap::new(),
        users: HashSet::new(),
        keys: settings.keys,
        policy: settings.policy,
        range: settings.relay_range,
        next_port: settings.relay_range.0,
        buf: vec![0; 65_536],
        per_user_limit: settings.per_user_limit,
        user_of: HashMap::new(),
        held: HashMap::new(),
        stats: settings.stats,
    };
    std::thread::Builder::new()
        .name("turn".into())
        .spawn(move || relay.run())?;
    info!(udp = ?addrs, streams = ?stream_addrs, "TURN listening");
    Ok(TurnHandle {
        addrs,
        stream_addrs,
    })
}

struct Listener {
    io: Io,
    server: TurnServer,
}

enum Io {
    Udp(UdpSocket),
    Stream {
        listener: TcpListener,
        conns: HashMap<SocketAddr, StreamConn>,
        tls: Option<Arc<rustls::ServerConfig>>,
    },
}

struct RelaySocket {
    socket: UdpSocket,
    /// The listener whose allocation this is.
    listener: usize,
    /// The username that allocated it, for the per-user limit.
    user: Option<String>,
}

struct Relay {
    listeners: Vec<Listener>,
    relays: HashMap<SocketAddr, RelaySocket>,
    users: HashSet<String>,
    keys: KeyStore,
    policy: PeerPolicy,
    range: (u16, u16),
    next_port: u16,
    buf: Vec<u8>,
    per_user_limit: u32,
    /// The username each client address last authenticated with.
    user_of: HashMap<SocketAddr, String>,
    /// Allocations held per username.
    held: HashMap<String, u32>,
    stats: Arc<TurnStats>,
}

fn now() -> Instant {
    Instant::from_std(crate::clock::mono())
}

impl Relay {
    fn run(&mut self) {
        loop {
            let wait = self.drive(now());
            let ready = self.wait(wait);
            self.read_all(&ready);
        }
    }

    /// Runs every server's timers and queued work; returns how long it may sleep.
    fn drive(&mut self, now: Instant) -> Duration {
        let mut wait = MAX_WAIT;
        for i in 0..self.listeners.len() {
            loop {
                match self.listeners[i].server.poll(now) {
                    TurnServerPollRet::WaitUntil(at) => {
                        wait = wait.min(at.saturating_duration_since(now));
                        break;
                    }
                    TurnServerPollRet::AllocateSocket {
                        transport,
                        listen_addr,
                        client_addr,
                        allocation_transport,
                        family,
                    } => {
                        let bound = match allocation_transport {
                            TransportType::Udp => {
                                self.bind_relay(i, client_addr, listen_addr.ip(), family)
                            }
                            // RFC 6062 TCP allocations are not offered.
                            TransportType::Tcp => Err(SocketAllocateError::InsufficientCapacity),
                        };
                        debug!(%client_addr, relay = ?bound, "TURN allocation");
                        let server = &mut self.listeners[i].server;
                        server.allocated_socket(
                            transport,
                            listen_addr,
                            client_addr,
                            allocation_transport,
                            family,
                            bound,
                            now,
                        );
                    }
                    TurnServerPollRet::SocketClose { listen_addr, .. } => {
                        self.close_relay(listen_addr);
                    }
                    TurnServerPollRet::TcpConnect { .. } | TurnServerPollRet::TcpClose { .. } => {}
                }
            }
            while let Some(t) = self.listeners[i].server.poll_transmit(now) {
                self.send(t.from, t.to, &t.data);
            }
        }
        wait
    }

    fn close_relay(&mut self, addr: SocketAddr) {
        let Some(relay) = self.relays.remove(&addr) else {
            return;
        };
        self.stats
            .allocations
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(user) = relay.user {
            if let Some(n) = self.held.get_mut(&user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.held.remove(&user);
                }
            }
        }
    }

    fn bind_relay(
        &mut self,
        listener: usize,
        client: SocketAddr,
        ip: IpAddr,
        family: AddressFamily,
    ) -> Result<SocketAddr, SocketAllocateError> {
        let user = self.user_of.get(&client).cloned();
        if let Some(u) = &user {
            let held = self.held.get(u).copied().unwrap_or(0);
            if self.per_user_limit > 0 && held >= self.per_user_limit {
                self.stats.refuse(Refusal::Quota);
                return Err(SocketAllocateError::InsufficientCapacity);
            }
        }
        let of_family = |ip: &IpAddr| {
            matches!(
                (family, ip),
                (AddressFamily::IPV4, IpAddr::V4(_)) | (AddressFamily::IPV6, IpAddr::V6(_))
            )
        };
        // The relayed address has the family asked for (IPv4 by default), also when
        // the client reached us over the other one.
        let ip = if of_family(&ip) {
            ip
        } else {
            self.listeners
                .iter()
                .map(|l| l.server.listen_address().ip())
                .find(of_family)
                .ok_or(SocketAllocateError::AddressFamilyNotSupported)?
        };
        let (start, end) = self.range;
        let span = u32::from(end - start) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port >= end { start } else { port + 1 };
            let Ok(socket) = UdpSocket::bind((ip, port)) else {
                continue;
            };
            let (Ok(()), Ok(addr)) = (socket.set_nonblocking(true), socket.local_addr()) else {
                continue;
            };
            if let Some(u) = &user {
                *self.held.entry(u.clone()).or_insert(0) += 1;
            }
            TurnStats::add(&self.stats.allocations, 1);
            let relay = RelaySocket {
                socket,
                listener,
                user,
            };
            self.relays.insert(addr, relay);
            return Ok(addr);
        }
        warn!(start, end, "TURN relay port range exhausted");
        self.stats.refuse(Refusal::Quota);
        Err(SocketAllocateError::InsufficientCapacity)
    }

    /// Sleeps until a socket is readable (or writable, for a stream with queued output)
    /// or `timeout`; returns the descriptors that are.
    fn wait(&self, timeout: Duration) -> HashSet<RawFd> {
        let poll = |fd, events| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let mut fds: Vec<libc::pollfd> = Vec::new();
        for l in &self.listeners {
            match &l.io {
                Io::Udp(socket) => fds.push(poll(socket.as_raw_fd(), libc::POLLIN)),
                Io::Stream {
                    listener, conns, ..
                } => {
                    fds.push(poll(listener.as_raw_fd(), libc::POLLIN));
                    for c in conns.values() {
                        let out = if c.wants_write() { libc::POLLOUT } else { 0 };
                        fds.push(poll(c.stream.as_raw_fd(), libc::POLLIN | out));
                    }
                }
            }
        }
        fds.extend(
            self.relays
                .values()
                .map(|r| poll(r.socket.as_raw_fd(), libc::POLLIN)),
        );
        let ms = timeout.as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        fds.iter()
            .filter(|f| f.revents != 0)
            .map(|f| f.fd)
            .collect()
    }

    /// Reads every ready socket until it has nothing more.
    fn read_all(&mut self, ready: &HashSet<RawFd>) {
        let mut buf = std::mem::take(&mut self.buf);
        for i in 0..self.listeners.len() {
            match &self.listeners[i].io {
                Io::Stream { .. } => {
                    self.read_streams(i, ready);
                    continue;
                }
                Io::Udp(socket) if !ready.contains(&socket.as_raw_fd()) => continue,
                Io::Udp(_) => {}
            }
            while let Io::Udp(socket) = &self.listeners[i].io {
                let (n, from) = match socket.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // An ICMP error from an earlier send: the next datagram may be fine.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                    Err(_) => break,
                };
                let to = self.listeners[i].server.listen_address();
                if !self.screen(to, from, &buf[..n]) {
                    self.receive(i, TransportType::Udp, from, to, &buf[..n]);
                }
            }
        }
        let relays: Vec<SocketAddr> = (self.relays.iter())
            .filter(|(_, r)| ready.contains(&r.socket.as_raw_fd()))
            .map(|(a, _)| *a)
            .collect();
        for addr in relays {
            while let Some(r) = self.relays.get(&addr) {
                let listener = r.listener;
                let (n, peer) = match r.socket.recv_from(&mut buf) {
                    Ok(r) => r,
                    // An ICMP error from an earlier send: the next datagram may be fine.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                    Err(_) => break,
                };
                if !self.policy.allows(peer.ip()) {
                    self.stats.refuse(Refusal::DeniedPeer);
                    continue;
                }
                TurnStats::add(&self.stats.to_client, 1);
                self.receive(listener, TransportType::Udp, peer, addr, &buf[..n]);
            }
        }
        self.buf = buf;
    }

    /// Accepts new stream clients and feeds what each sent to the listener's server.
    fn read_streams(&mut self, i: usize, ready: &HashSet<RawFd>) {
        let listen_addr = self.listeners[i].server.listen_address();
        let mut chunks: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        if let Io::Stream {
            listener,
            conns,
            tls,
        } = &mut self.listeners[i].io
        {
            while let Ok((stream, peer)) = listener.accept() {
                if conns.len() >= MAX_STREAMS {
                    self.stats.refuse(Refusal::Quota);
                    continue;
                }
                match StreamConn::new(stream, peer, tls.as_ref()) {
                    Ok(conn) => {
                        conns.insert(peer, conn);
                    }
                    Err(e) => debug!(%peer, error = %e, "TURN stream refused"),
                }
            }
            for conn in conns.values_mut() {
                if !ready.contains(&conn.stream.as_raw_fd()) {
                    continue;
                }
                for frame in conn.frames() {
                    chunks.push((conn.peer, frame));
                }
                conn.flush();
                if conn.refused {
                    self.stats.refuse(Refusal::BadStream);
                }
            }
            conns.retain(|_, c| !c.closed);
        }
        // One whole frame per call: the library reads one message per input and would
        // keep the rest (and ChannelData padding, which it does not expect) buffered.
        for (peer, frame) in chunks {
            if frame[0] >> 6 == 0 && self.screen(listen_addr, peer, &frame) {
                continue;
            }
            self.receive(i, TransportType::Tcp, peer, listen_addr, &frame);
        }
    }

    /// Feeds one input to listener `listener`'s server and sends its reply; whether
    /// there was one.
    fn receive(
        &mut self,
        listener: usize,
        transport: TransportType,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
    ) -> bool {
        let transmit = turn_server_proto::api::Transmit::new(data, transport, from, to);
        let Some(out) = self.listeners[listener].server.recv(transmit, now()) else {
            return false;
        };
        let t = out.build();
        self.send(t.from, t.to, &t.data);
        true
    }

    /// A STUN message before the library sees it, parsed once: its user is learned
    /// (`learn_user`) and a permission towards a denied peer is answered 403 here
    /// (`forbid`). Whether it was answered here.
    fn screen(&mut self, listen: SocketAddr, from: SocketAddr, data: &[u8]) -> bool {
        let Ok(msg) = Message::from_bytes(data) else {
            return false;
        };
        self.learn_user(from, &msg);
        let now_unix = crate::clock::unix_secs();
        let Some(reply) = forbidden_reply(&msg, &self.policy, &self.keys, now_unix) else {
            return false;
        };
        debug!(%from, "TURN permission towards a denied peer refused");
        self.stats.refuse(Refusal::DeniedPeer);
        self.send(listen, from, &reply);
        true
    }

    /// A STUN request naming a user the server does not know yet: if its credentials
    /// verify (`credentials`), the server learns them before it sees the request.
    /// Requests with credentials that do not verify are counted (the server answers
    /// them 401).
    fn learn_user(&mut self, from: SocketAddr, msg: &Message) {
        let Ok(user) = msg.attribute::<Username>() else {
            return;
        };
        let name = user.username();
        if self.users.contains(name) {
            self.remember(from, name);
            return;
        }
        if self.users.len() >= MAX_USERS {
            self.stats.refuse(Refusal::Quota);
            return;
        }
        let password = match password_for(name, &self.keys, crate::clock::unix_secs()) {
            Ok(p) => p,
            Err(why) => {
                self.stats.refuse(match why {
                    Invalid::Expired => Refusal::Expired,
                    Invalid::Unknown => Refusal::BadCredentials,
                });
                debug!(%from, ?why, "TURN credentials refused");
                return;
            }
        };
        self.users.insert(name.to_string());
        self.remember(from, name);
        for l in &mut self.listeners {
            l.server.add_user(name.to_string(), password.clone());
        }
    }

    /// Which username `client` authenticates with, for the per-user limit.
    fn remember(&mut self, client: SocketAddr, name: &str) {
        if self.user_of.get(&client).map(String::as_str) == Some(name) {
            return;
        }
        if self.user_of.len() >= MAX_USERS {
            self.user_of.clear();
        }
        self.user_of.insert(client, name.to_string());
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        if let Some(r) = self.relays.get(&from) {
            if !self.policy.allows(to.ip()) {
                self.stats.refuse(Refusal::DeniedPeer);
                return;
            }
            TurnStats::add(&self.stats.to_peer, 1);
            let _ = r.socket.send_to(data, to);
            return;
        }
        let Some(l) = self
            .listeners
            .iter_mut()
            .find(|l| l.server.listen_address() == from)
        else {
            return;
        };
        match &mut l.io {
            Io::Udp(socket) => {
                let _ = socket.send_to(data, to);
            }
            Io::Stream { conns, .. } => {
                if let Some(conn) = conns.get_mut(&to) {
                    conn.write(data);
                }
            }
        }
    }
}
