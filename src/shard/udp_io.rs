//! A shard's UDP sockets inside its executor: receive a datagram, hand it to the
//! rooms, send what they produced. One socket per advertised address.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};

use glommio::net::UdpSocket;
use tracing::{debug, warn};

use crate::net::batch::{gso_supported, send_batch_from, MAX_PACKETS};
use crate::net::recv_batch::RecvBatch;
use crate::session::Transmit;
use std::cell::{Cell, RefCell};

/// Remote addresses a wildcard socket remembers the local address of.
const MAX_REPLY_ROUTES: usize = 65_536;

/// Datagrams bigger than this are not WebRTC (MTU-sized packets, ~1200 bytes).
pub const MAX_DATAGRAM: usize = 2048;

pub struct Sockets {
    sockets: Vec<UdpSocket>,
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
    /// Takes over bound std sockets. Must run inside the shard's executor.
    pub fn adopt(bound: Vec<(StdUdpSocket, SocketAddr)>) -> Sockets {
        let mut sockets = Vec::new();
        let mut advertised = Vec::new();
        let mut gso = Vec::new();
        let mut pktinfo = Vec::new();
        for (socket, addr) in bound {
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
            // SAFETY: the fd belongs to a bound std socket that we give up here.
            sockets.push(unsafe { UdpSocket::from_raw_fd(socket.into_raw_fd()) });
            advertised.push(addr);
        }
        debug!(gso = ?gso.iter().map(Cell::get).collect::<Vec<_>>(), "udp sockets adopted");
        Sockets {
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

    pub async fn recv(&self, index: usize, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        if !self.pktinfo[index] {
            return self.sockets[index]
                .recv_from(buf)
                .await
                .map_err(std::io::Error::from);
        }
        // glommio's receive has no control data: wait with a peek, then take the
        // datagram with its destination.
        loop {
            self.sockets[index]
                .peek_from(&mut [0u8; 1])
                .await
                .map_err(std::io::Error::from)?;
            if let Some(got) = self.recv_now(index, buf) {
                return Ok(got);
            }
        }
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
        let fd = self.sockets.get(index)?.as_raw_fd();
        let got = if self.pktinfo[index] {
            crate::net::pktinfo::recv_now(fd, buf).map(|got| {
                got.map(|(n, source, destination)| {
                    self.remember_destination(source, destination);
                    (n, source)
                })
            })
        } else {
            crate::net::batch::recv_now(fd, buf)
        };
        match got {
            Ok(got) => got,
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
                    let t = &transmits[at];
                    if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                        debug!(to = %t.destination, error = %e, "send failed");
                    }
                    at += 1;
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
        transmits.clear();
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
