//! UDP sockets for a shard: one per local address, on the shard's own port, so the
//! kernel delivers each flow straight to the core that owns its session.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Large buffers absorb bursts (keyframes, many subscribers) between two loop turns.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Binds `ip:port` (port 0 = any free port). SO_REUSEPORT lets a restarting process
/// bind beside the old one during a drain.
pub fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// The port a shard uses: its offset into the configured range (a single configured
/// port is the first of as many as there are shards, like `udp_port + shard`), or 0
/// (any free port) when the configured port is 0. `None` when the range is too small.
pub fn shard_port(first: u16, last: u16, shard: usize) -> Option<u16> {
    if first == 0 {
        return Some(0);
    }
    let port = u32::from(first) + shard as u32;
    let fits = first == last || port <= u32::from(last);
    (fits && port <= u32::from(u16::MAX)).then_some(port as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn ports_per_shard() {
        assert_eq!(shard_port(7882, 7892, 0), Some(7882));
        assert_eq!(shard_port(7882, 7892, 10), Some(7892));
        assert_eq!(shard_port(7882, 7892, 11), None);
        assert_eq!(shard_port(0, 0, 3), Some(0));
        assert_eq!(shard_port(7882, 7882, 1), Some(7883));
        assert_eq!(shard_port(65535, 65535, 1), None);
    }

    #[test]
    fn binds_an_ephemeral_port() {
        let s = bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
        assert_ne!(s.local_addr().unwrap().port(), 0);
    }
}
