//! A shard's UDP sockets on its runtime: receive a datagram, hand it to the
//! rooms, send what they produced. One socket per advertised address.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::{debug, warn};

use crate::net::batch::{gso_supported, send_batch_from, MAX_PACKETS};
use crate::net::recv_batch::RecvBatch;
use crate::session::Transmit;
use std::cell::{Cell, RefCell};

/// Remote addresses a wildcard socket remembers the local address of.
const MAX_REPLY_ROUTES: usize = 65_536;

/// Datagrams bigger than this are not WebRTC (MTU-sized packets, ~1200 bytes).
pub const MAX_DATAGRAM: usize = 2048;

/// How long a send that found the socket buffer full waits before it tries again.
const FULL_SEND_RETRY: Duration = Duration::from_millis(1);
/// Waits one flush may spend on a full socket buffer; once they are spent, what still
/// does not fit is dropped, so a turn never stalls the shard for more than ~20 ms.
const FULL_SEND_WAITS: u32 = 20;

/// A socket's descriptor as the runtime's epoll sees it; the socket itself stays in
/// `Sockets::sockets`, so dropping the registration only deregisters.
struct Registered(RawFd);

impl AsRawFd for Registered {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

pub struct Sockets {
    /// Each socket's epoll registration, for reading only, while its receiver waits on
    /// it: a registered socket wakes the thread for every datagram that arrives, which
    /// a quiet shard (polling on its grid) must not pay for, so the receiver drops the
    /// registration when it turns quiet (`park`). Write interest is never registered:
    /// on a UDP socket every sent datagram freed would wake the thread again.
    /// Declared before `sockets`, so that registrations go before their sockets close.
    registered: Vec<RefCell<Option<AsyncFd<Registered>>>>,
    sockets: Vec<StdUdpSocket>,
    /// Wildcard sockets learn each datagram's destination (`net::pktinfo`) and reply
    /// from it.
    pktinfo: Vec<bool>,
    /// On those: the local address each remote address last sent to.
    reply_from: RefCell<HashMap<SocketAddr, IpAddr>>,
    /// What each socket is advertised as (and so what str0m sees as the destination).
    advertised: Vec<SocketAddr>,
    /// Whether each socket sends GSO trains: probed at start, turned off for good if
    /// the kernel refuses one (a device without checksum offload answers EIO).
    gso: Vec<Cell<bool>>,
    /// Whether a send from an unadvertised address was already logged.
    unknown_source_seen: Cell<bool>,
}

impl Sockets {
    /// Takes over bound std sockets. A socket that cannot be made non-blocking is left
    /// out, logged. Each is registered with the runtime only when first waited on.
    pub fn adopt(bound: Vec<(StdUdpSocket, SocketAddr)>) -> Sockets {
        let mut sockets = Vec::new();
        let mut advertised = Vec::new();
        let mut gso = Vec::new();
        let mut pktinfo = Vec::new();
        for (socket, addr) in bound {
            if let Err(e) = socket.set_nonblocking(true) {
                warn!(%addr, error = %e, "cannot make a media socket non-blocking; it is left out");
                continue;
            }
            gso.push(Cell::new(gso_supported(socket.as_raw_fd())));
            let local = socket.local_addr().ok();
            let wildcard = local.is_some_and(|l| l.ip().is_unspecified());
            let learns = wildcard
                && crate::net::pktinfo::enable(socket.as_raw_fd(), addr.is_ipv6())
                    .map_err(
                        |e| warn!(error = %e, "no IP_PKTINFO: replies take the kernel's source"),
                    )
                    .is_ok();
            pktinfo.push(learns);
            sockets.push(socket);
            advertised.push(addr);
        }
        debug!(gso = ?gso.iter().map(Cell::get).collect::<Vec<_>>(), "udp sockets adopted");
        Sockets {
            registered: sockets.iter().map(|_| RefCell::new(None)).collect(),
            sockets,
            pktinfo,
            reply_from: RefCell::new(HashMap::new()),
            advertised,
            gso,
            unknown_source_seen: Cell::new(false),
        }
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    pub fn advertised(&self, index: usize) -> SocketAddr {
        self.advertised[index]
    }

    /// Waits for a datagram on socket `index` and takes it (with its destination on a
    /// wildcard socket). The socket is registered with epoll on the first wait after
    /// a `park` (epoll reports what is already queued then); a wait costs no syscall
    /// of its own.
    pub async fn recv(&self, index: usize, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let cell = self
            .registered
            .get(index)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        loop {
            // Out of the cell while it is waited on (no borrow held across the wait);
            // `park` runs on this task too, so never meanwhile.
            let registered = match cell.borrow_mut().take() {
                Some(registered) => registered,
                None => {
                    let fd = Registered(self.sockets[index].as_raw_fd());
                    // SAFETY: the socket stays open as long as `self`, and the
                    // registrations are dropped before the sockets (field order).
                    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                        .map_err(io::Error::from)?
                }
            };
            let waited = async {
                let mut ready = registered.readable().await?;
                // "Nothing queued" inside `try_io` clears the readiness it awaited.
                match ready.try_io(|_| self.take(index, buf)) {
                    Ok(got) => got.map(Some),
                    Err(_would_block) => Ok(None),
                }
            }
            .await;
            *cell.borrow_mut() = Some(registered);
            if let Some(got) = waited? {
                return Ok(got);
            }
        }
    }

    /// Socket `index` is no longer waited on (a quiet shard polls it on a grid): its
    /// epoll registration goes, so that datagrams arriving meanwhile wake nobody.
    pub fn park(&self, index: usize) {
        if let Some(cell) = self.registered.get(index) {
            cell.borrow_mut().take();
        }
    }

    /// One queued datagram, or `WouldBlock`.
    fn take(&self, index: usize, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let fd = self.sockets[index].as_raw_fd();
        let got = if self.pktinfo[index] {
            crate::net::pktinfo::recv_now(fd, buf)?.map(|(n, source, destination)| {
                self.remember_destination(source, destination);
                (n, source)
            })
        } else {
            crate::net::batch::recv_now(fd, buf)?
        };
        got.ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))
    }

    fn remember_destination(&self, source: SocketAddr, destination: Option<IpAddr>) {
        let Some(local) = destination else {
            return;
        };
        let mut map = self.reply_from.borrow_mut();
        // Bounded: a flood of spoofed sources cannot grow it; flows re-learn on their
        // next datagram.
        if map.len() >= MAX_REPLY_ROUTES && !map.contains_key(&source) {
            map.clear();
        }
        map.insert(source, local);
    }

    /// A datagram already queued on socket `index`, without waiting (see
    /// `net::batch::recv_now`); errors other than "nothing queued" are logged and end
    /// the batch: the next awaited receive reports them.
    pub fn recv_now(&self, index: usize, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        self.sockets.get(index)?;
        match self.take(index, buf) {
            Ok(got) => Some(got),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => {
                debug!(error = %e, "non-blocking receive failed");
                None
            }
        }
    }

    /// What is already queued on socket `index`, in one `recvmmsg` (see
    /// `net::recv_batch`): how many datagrams `batch` now holds. Errors are logged and
    /// end the turn's receiving, as in `recv_now`.
    pub fn recv_batch(&self, index: usize, batch: &mut RecvBatch) -> usize {
        let Some(socket) = self.sockets.get(index) else {
            return 0;
        };
        let pktinfo = self.pktinfo[index];
        match batch.recv(socket.as_raw_fd(), pktinfo) {
            Ok(n) => {
                if pktinfo {
                    for (_, source, destination) in (0..n).filter_map(|i| batch.get(i)) {
                        self.remember_destination(source, destination);
                    }
                }
                n
            }
            Err(e) => {
                debug!(error = %e, "non-blocking receive failed");
                0
            }
        }
    }

    /// Sends each transmit from the socket advertised as its source: runs of packets
    /// from one socket go out in `sendmmsg` calls, as GSO trains where the socket can
    /// (`net::trains`). Failures are per packet (a peer gone away) and never stop the
    /// shard; a full socket buffer is waited out.
    pub async fn send_all(&self, transmits: &mut Vec<Transmit>) {
        let mut packets: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut sources: Vec<Option<IpAddr>> = Vec::new();
        let mut at = 0;
        let mut full_waits = 0;
        while at < transmits.len() {
            let index = self.index_of(transmits[at].source);
            let run = transmits[at..]
                .iter()
                .take(MAX_PACKETS)
                .take_while(|t| self.index_of(t.source) == index)
                .count();
            let (Some(socket), Some(gso)) = (self.sockets.get(index), self.gso.get(index)) else {
                at += run;
                continue;
            };
            packets.clear();
            packets.extend(
                transmits[at..at + run]
                    .iter()
                    .map(|t| (t.destination, t.contents.as_slice())),
            );
            sources.clear();
            if self.pktinfo[index] {
                let routes = self.reply_from.borrow();
                sources.extend(packets.iter().map(|(to, _)| routes.get(to).copied()));
            }
            match send_batch_from(socket.as_raw_fd(), &packets, gso.get(), &sources) {
                Ok(n) => at += n.max(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The socket buffer is full: rare (a datagram leaves it as soon as
                    // the kernel has routed it), so it is waited out on a timer rather
                    // than with write interest (see `registered`); past
                    // `FULL_SEND_WAITS` what does not fit is dropped.
                    if full_waits < FULL_SEND_WAITS {
                        full_waits += 1;
                        tokio::time::sleep(FULL_SEND_RETRY).await;
                    } else {
                        debug!(to = %transmits[at].destination, "socket buffer full: packet dropped");
                        at += 1;
                    }
                }
                Err(e) if gso.get() && e.raw_os_error() == Some(libc::EIO) => {
                    warn!(error = %e, "the kernel refused a GSO train; sending datagrams one by one");
                    gso.set(false);
                }
                Err(e) => {
                    debug!(to = %transmits[at].destination, error = %e, "send failed");
                    at += 1;
                }
            }
        }
        drop(packets);
        for t in transmits.drain(..) {
            crate::session::packet_buffers::give_back(t.contents);
        }
    }

    /// Datagrams the kernel dropped on these sockets for a full receive buffer.
    pub fn receive_drops(&self) -> u64 {
        self.sockets
            .iter()
            .filter_map(|s| crate::net::drops::receive_drops(s.as_raw_fd()).ok())
            .sum()
    }

    /// The socket advertised as `source`. str0m only picks sources among our advertised
    /// candidates, so a miss is a bug: it is said once, and the first socket sends.
    fn index_of(&self, source: SocketAddr) -> usize {
        match self.advertised.iter().position(|a| *a == source) {
            Some(i) => i,
            None => {
                if !self.unknown_source_seen.replace(true) {
                    warn!(%source, advertised = ?self.advertised, "send from an address no socket is advertised as; using the first socket");
                }
                0
            }
        }
    }
}

#[cfg(test)]
#[path = "udp_io_tests.rs"]
mod tests;
