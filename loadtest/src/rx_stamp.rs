//! When a datagram reached a subscriber's socket, from the kernel (`SO_TIMESTAMPNS`),
//! rather than when loadtest got round to reading it. loadtest shares the machine with
//! the server: during a keyframe burst its own readers fall behind by milliseconds,
//! and a latency read at `recvfrom` would charge that backlog to the SFU. On loopback
//! the kernel stamps a datagram as the server's send delivers it.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::SockAddr;

/// Asks the kernel to stamp every datagram this socket receives.
pub fn enable(sock: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd, and a c_int option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One datagram: its length, its source, and when it arrived (µs since the UNIX
/// epoch), if the kernel said.
pub fn recv_from(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<u64>)> {
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `try_init` hands a zeroed sockaddr storage and its length, which recvmsg
    // fills in (and the length with it); every other pointer in `msg` points at a live
    // buffer of the length it gives.
    let ((n, arrived), source) = unsafe {
        SockAddr::try_init(|name, name_len| {
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = name.cast();
            msg.msg_namelen = *name_len;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of::<[u64; 8]>() as _;
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, 0);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            *name_len = msg.msg_namelen;
            Ok((n as usize, arrival_us(&msg)))
        })?
    };
    let source = source
        .as_socket()
        .ok_or_else(|| io::Error::other("datagram without an IP source"))?;
    Ok((n, source, arrived))
}

fn arrival_us(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: `msg` came back from recvmsg, so the CMSG walk stays inside its control
    // buffer; the timespec is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_sources_come_back() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&rx).unwrap();
        let before = crate::clock::wall_us();
        tx.send_to(b"probe", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 64];
        let (n, source, at) = recv_from(&rx, &mut buf).unwrap();
        let after = crate::clock::wall_us();
        assert_eq!(&buf[..n], b"probe");
        assert_eq!(source, tx.local_addr().unwrap());
        let at = at.expect("the kernel stamps the datagram");
        // µs since the epoch, as the wall clock reads them (a second either way for clock steps)
        assert!(
            before <= at + 1_000_000 && at <= after + 1_000_000,
            "{before} <= {at} <= {after}"
        );
    }

    #[test]
    fn unstamped_socket_reads_without_a_stamp() {
        // IPv6 where the machine has it, so both address families are read back.
        let rx = UdpSocket::bind("[::1]:0")
            .or_else(|_| UdpSocket::bind("127.0.0.1:0"))
            .unwrap();
        let tx = UdpSocket::bind(SocketAddr::new(rx.local_addr().unwrap().ip(), 0)).unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let (n, source, at) = recv_from(&rx, &mut buf).unwrap();
        assert_eq!((n, source, at), (1, tx.local_addr().unwrap(), None));
    }
}
