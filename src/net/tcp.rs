//! TCP listeners for ICE over TCP (RFC 6544): one per local address of a shard, on the
//! shard's own port, so a client's connection lands on the core that owns its session.

use std::net::{IpAddr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Connections not yet accepted: a burst of joins on a fallback path.
const BACKLOG: i32 = 1024;

/// Binds and listens on `ip:port` (port 0 = any free port), non-blocking.
pub fn listen(ip: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The ICE/TCP port of shard `shard`: `port + shard`, or 0 (any free port) for 0.
/// `None` past the last port.
pub fn shard_port(port: u16, shard: usize) -> Option<u16> {
    if port == 0 {
        return Some(0);
    }
    u16::try_from(u32::from(port) + shard as u32).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_per_shard() {
        assert_eq!(shard_port(7881, 0), Some(7881));
        assert_eq!(shard_port(7881, 3), Some(7884));
        assert_eq!(shard_port(0, 3), Some(0));
        assert_eq!(shard_port(u16::MAX, 1), None);
    }

    #[test]
    fn listens_on_a_free_port() {
        let l = listen(IpAddr::from([127, 0, 0, 1]), 0).unwrap();
        assert_ne!(l.local_addr().unwrap().port(), 0);
    }
}
