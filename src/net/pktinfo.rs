//! Replies from the address the client used, on a wildcard socket: `IP_PKTINFO` /
//! `IPV6_RECVPKTINFO` tell each received datagram's destination address, and the same
//! control message on a send picks the source address. Without it the kernel picks
//! the source by route, which on a host with several addresses is often not the one
//! the client sent to, and ICE drops such replies.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;

/// Asks the kernel to report each datagram's destination address.
pub fn enable(fd: RawFd, ipv6: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    // SAFETY: `on` is a c_int valid for reads of its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Room for one pktinfo control message of either family, 8-byte aligned.
type PktinfoCmsg = [u64; 8];

/// One datagram already queued on `fd`, without waiting, with the local address it was
/// sent to when the kernel said (`enable` was called). `None` when nothing is queued.
pub fn recv_now(
    fd: RawFd,
    buf: &mut [u8],
) -> io::Result<Option<(usize, SocketAddr, Option<IpAddr>)>> {
    // SAFETY: plain old data, filled in by the kernel.
    let mut from: libc::sockaddr_storage = unsafe { zeroed() };
    let mut control: PktinfoCmsg = [0; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut hdr: libc::msghdr = unsafe { zeroed() };
    hdr.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
    hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = (&mut control as *mut PktinfoCmsg).cast();
    hdr.msg_controllen = size_of::<PktinfoCmsg>();
    // SAFETY: every pointer in `hdr` is valid for its length for the call's duration.
    let n = unsafe { libc::recvmsg(fd, &mut hdr, libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(e),
        };
    }
    let source = super::batch::from_storage(&from)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))?;
    Ok(Some((n as usize, source, destination(&hdr))))
}

/// The destination address in a received message's control data, if any.
pub(super) fn destination(hdr: &libc::msghdr) -> Option<IpAddr> {
    // SAFETY: the kernel filled msg_control up to msg_controllen with well-formed
    // headers; CMSG_FIRSTHDR/NXTHDR stay within it and return null at its end.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            let (level, kind) = ((*c).cmsg_level, (*c).cmsg_type);
            if level == libc::IPPROTO_IP && kind == libc::IP_PKTINFO {
                let info: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            }
            if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    None
}

/// Bytes a source-address control message for `ip` takes (`CMSG_SPACE`).
pub fn space(ip: IpAddr) -> usize {
    let data = match ip {
        IpAddr::V4(_) => size_of::<libc::in_pktinfo>(),
        IpAddr::V6(_) => size_of::<libc::in6_pktinfo>(),
    };
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(data as u32) as usize }
}

/// Writes a control message that sends from `ip` at `c`.
///
/// # Safety
/// `c` must point at `space(ip)` writable, zeroed, 8-byte-aligned bytes inside the
/// message's control buffer.
pub unsafe fn write_source(c: *mut libc::cmsghdr, ip: IpAddr) {
    // SAFETY: the caller guarantees room for the header and its data.
    unsafe {
        match ip {
            IpAddr::V4(v4) => {
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(v4).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
            }
            IpAddr::V6(v6) => {
                (*c).cmsg_level = libc::IPPROTO_IPV6;
                (*c).cmsg_type = libc::IPV6_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: v6.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// A client on this host's non-loopback address sends to the wildcard socket's
    /// loopback address: the socket learns 127.0.0.1 as the destination, and a reply
    /// sent from it arrives from 127.0.0.1, the address the client used.
    #[test]
    fn replies_leave_from_the_address_the_client_used() {
        let Some(own) = crate::net::addrs::interface_ips()
            .into_iter()
            .map(|l| l.ip)
            .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        else {
            return; // a host with loopback only has nothing to choose between
        };
        let server = UdpSocket::bind("0.0.0.0:0").unwrap();
        enable(server.as_raw_fd(), false).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind(SocketAddr::new(own, 0)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let to_loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        client.send_to(b"ping", to_loopback).unwrap();

        let mut buf = [0u8; 64];
        let mut got = None;
        for _ in 0..200 {
            got = recv_now(server.as_raw_fd(), &mut buf).unwrap();
            if got.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (n, from, dst) = got.expect("the datagram arrives");
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(dst, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));

        let reply: &[u8] = b"pong";
        let sent =
            crate::net::batch::send_batch_from(server.as_raw_fd(), &[(from, reply)], false, &[dst])
                .unwrap();
        assert_eq!(sent, 1);
        let (n, reply_from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
        assert_eq!(
            reply_from, to_loopback,
            "the reply comes from where the client sent"
        );
    }
}
