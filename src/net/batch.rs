//! Batched UDP sends on a non-blocking socket: `sendmmsg` sends up to [`BATCH`]
//! datagrams in one syscall, so a packet fanned out to many subscribers costs a few
//! syscalls, not one each (architecture rule 5). It never waits: the caller falls
//! back to a waiting send when the socket buffer is full. quinn-udp (which the
//! receive and GSO paths otherwise resemble) sends one destination's train per
//! `sendmsg`; a fan-out goes to many destinations at once, so the messages of up to
//! [`BATCH`] trains share one `sendmmsg` here.
//!
//! Receiving: the first datagram of a turn is taken when epoll says the socket is
//! readable, or by [`recv_now`] on a quiet shard's poll; what else is
//! already queued then comes in one `recvmmsg` (`recv_batch`), so that one turn serves
//! a burst (the packets of one video frame) and each subscriber session is driven once
//! for all of it.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Datagrams per syscall (quinn-udp's batch size).
pub const BATCH: usize = 32;

/// One datagram already queued on `fd`, without waiting: `None` when there is none.
pub fn recv_now(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
    // SAFETY: plain old data, filled in by the kernel.
    let mut from: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: buf and from are valid for the lengths given, for the call's duration.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&mut from as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(e),
        };
    }
    let source = from_storage(&from)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))?;
    Ok(Some((n as usize, source)))
}

/// Packets one `send_batch` call takes at most (one iovec each).
pub const MAX_PACKETS: usize = 256;

/// Whether the socket can send GSO trains (`UDP_SEGMENT`, Linux 4.18+).
pub fn gso_supported(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0
}

/// Room for a `UDP_SEGMENT` control message (a u16) and a source-address one
/// (`pktinfo`), 8-byte aligned as cmsghdr wants: 24 + 40 bytes at most.
type MessageCmsg = [u64; 8];

/// Sends `packets` (destination, bytes) with `sendmmsg`: up to [`BATCH`] messages of
/// up to [`MAX_PACKETS`] packets in all. With `gso`, each run that `trains::train_len`
/// allows is one message with a `UDP_SEGMENT` size; without, one message per packet.
/// Returns how many leading packets the kernel took; `WouldBlock` if it took none
/// because the socket buffer is full. Any other error is for the first message only.
pub fn send_batch(fd: RawFd, packets: &[(SocketAddr, &[u8])], gso: bool) -> io::Result<usize> {
    send_batch_from(fd, packets, gso, &[])
}

/// As `send_batch`; packet `i` leaves from local address `sources[i]` where that is
/// given (a wildcard socket replying from the address the client used, see `pktinfo`).
pub fn send_batch_from(
    fd: RawFd,
    packets: &[(SocketAddr, &[u8])],
    gso: bool,
    sources: &[Option<std::net::IpAddr>],
) -> io::Result<usize> {
    use std::mem::MaybeUninit;
    let packets = &packets[..packets.len().min(MAX_PACKETS)];
    if packets.is_empty() {
        return Ok(0);
    }
    // Only the entries a message uses are written, so nothing is zeroed wholesale.
    let mut addrs = [const { MaybeUninit::<libc::sockaddr_storage>::uninit() }; BATCH];
    let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; MAX_PACKETS];
    let mut cmsgs = [const { MaybeUninit::<MessageCmsg>::uninit() }; BATCH];
    let mut msgs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
    let mut counts = [0usize; BATCH];
    let (mut m, mut p) = (0, 0);
    while m < BATCH && p < packets.len() {
        let n = if gso {
            super::trains::train_len(&packets[p..], packets.len() - p)
        } else {
            1
        };
        for (k, (_, bytes)) in packets[p..p + n].iter().enumerate() {
            iovecs[p + k].write(libc::iovec {
                // sendmmsg only reads through this pointer.
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            });
        }
        // SAFETY: plain old data, zeroed is a valid empty value.
        let addr = addrs[m].write(unsafe { zeroed() });
        let namelen = to_storage(packets[p].0, addr);
        // SAFETY: as above.
        let mut hdr: libc::msghdr = unsafe { zeroed() };
        hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
        hdr.msg_namelen = namelen;
        hdr.msg_iov = iovecs[p].as_mut_ptr();
        hdr.msg_iovlen = n;
        let source = sources.get(p).copied().flatten();
        // SAFETY: CMSG_SPACE only computes a size.
        let segment_space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
        let control_len =
            if n > 1 { segment_space } else { 0 } + source.map_or(0, super::pktinfo::space);
        if control_len > 0 {
            let cmsg = cmsgs[m].write([0; 8]);
            hdr.msg_control = (cmsg as *mut MessageCmsg).cast();
            hdr.msg_controllen = control_len;
            // SAFETY: msg_control points at a zeroed buffer of 64 bytes and
            // msg_controllen (at most 24 + 40) covers exactly the headers written
            // below, so FIRSTHDR/NXTHDR return headers inside it.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&hdr);
                if n > 1 {
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = libc::UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
                    let segment = packets[p].1.len() as u16;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segment);
                    c = libc::CMSG_NXTHDR(&hdr, c);
                }
                if let (Some(ip), false) = (source, c.is_null()) {
                    super::pktinfo::write_source(c, ip);
                }
            }
        }
        msgs[m].write(libc::mmsghdr {
            msg_hdr: hdr,
            msg_len: 0,
        });
        counts[m] = n;
        p += n;
        m += 1;
    }
    // SAFETY: the first `m` headers are written and point at written addresses,
    // iovecs and control buffers, all alive for the call, and at the callers' slices,
    // which the kernel only reads.
    let sent = unsafe {
        libc::sendmmsg(
            fd,
            msgs.as_mut_ptr().cast::<libc::mmsghdr>(),
            m as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(counts[..sent as usize].iter().sum())
}

/// The reverse of `to_storage`.
pub(super) fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which fits in it.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is suitably aligned.
            let out: &mut libc::sockaddr_in =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast() };
            out.sin_family = libc::AF_INET as libc::sa_family_t;
            out.sin_port = a.port().to_be();
            out.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let out: &mut libc::sockaddr_in6 =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast() };
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = a.port().to_be();
            out.sin6_flowinfo = a.flowinfo();
            out.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            out.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn batches_go_out_in_order() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 10 + i as usize]).collect();
        let packets: Vec<(SocketAddr, &[u8])> =
            payloads.iter().map(|p| (to, p.as_slice())).collect();
        let first = send_batch(a.as_raw_fd(), &packets, false).unwrap();
        assert_eq!(first, BATCH, "one call takes a whole batch");
        let mut sent = first;
        while sent < packets.len() {
            sent += send_batch(a.as_raw_fd(), &packets[sent..], false).unwrap();
        }
        let mut buf = [0u8; 2048];
        for want in &payloads {
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(from, a.local_addr().unwrap());
            assert_eq!(&buf[..n], want.as_slice());
        }
        assert_eq!(send_batch(a.as_raw_fd(), &[], false).unwrap(), 0);
    }

    #[test]
    fn gso_trains_arrive_as_the_datagrams_they_were() {
        let (a, b) = pair();
        let (_, c) = pair();
        assert!(gso_supported(a.as_raw_fd()), "Linux 4.18+ has UDP_SEGMENT");
        let (to_b, to_c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        // Two frames to b (the second ends short), one to c, then a lone bigger packet.
        let mut payloads: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for i in 0..5u8 {
            payloads.push((to_b, vec![i; 1000]));
        }
        payloads.push((to_b, vec![5; 300]));
        for i in 6..9u8 {
            payloads.push((to_c, vec![i; 1000]));
        }
        payloads.push((to_b, vec![9; 1100]));
        let packets: Vec<(SocketAddr, &[u8])> =
            payloads.iter().map(|(to, p)| (*to, p.as_slice())).collect();
        let mut sent = 0;
        while sent < packets.len() {
            sent += send_batch(a.as_raw_fd(), &packets[sent..], true).unwrap();
        }
        let mut buf = [0u8; 2048];
        for (to, want) in &payloads {
            let socket = if *to == to_b { &b } else { &c };
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(from, a.local_addr().unwrap());
            assert_eq!(&buf[..n], want.as_slice(), "datagram {}", want[0]);
        }
        assert!(recv_now(b.as_raw_fd(), &mut buf).unwrap().is_none());
    }

    #[test]
    fn one_call_takes_more_packets_than_messages_when_they_form_trains() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let payload = [7u8; 500];
        let packets = vec![(to, &payload[..]); 100];
        assert_eq!(send_batch(a.as_raw_fd(), &packets, true).unwrap(), 100);
        let mut buf = [0u8; 2048];
        for _ in 0..100 {
            assert_eq!(b.recv_from(&mut buf).unwrap().0, 500);
        }
    }

    #[test]
    fn a_bad_first_destination_is_an_error_for_it_alone() {
        let (a, b) = pair();
        let good = b.local_addr().unwrap();
        // IPv6 from an IPv4 socket: refused by the kernel for that message only.
        let bad: SocketAddr = "[::1]:9".parse().unwrap();
        let packets: Vec<(SocketAddr, &[u8])> = vec![(bad, b"x"), (good, b"y")];
        assert!(send_batch(a.as_raw_fd(), &packets, false).is_err());
        assert_eq!(send_batch(a.as_raw_fd(), &packets[1..], false).unwrap(), 1);
    }

    #[test]
    fn queued_datagrams_are_taken_without_waiting() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut buf = [0u8; 2048];
        assert_eq!(
            recv_now(b.as_raw_fd(), &mut buf).unwrap(),
            None,
            "nothing queued"
        );
        a.send_to(b"one", to).unwrap();
        a.send_to(b"two", to).unwrap();
        let from = a.local_addr().unwrap();
        assert_eq!(recv_now(b.as_raw_fd(), &mut buf).unwrap(), Some((3, from)));
        assert_eq!(&buf[..3], b"one");
        assert_eq!(recv_now(b.as_raw_fd(), &mut buf).unwrap(), Some((3, from)));
        assert_eq!(&buf[..3], b"two");
        assert_eq!(recv_now(b.as_raw_fd(), &mut buf).unwrap(), None);
    }

    #[test]
    fn addresses_round_trip() {
        let v6: SocketAddr = "[2001:db8::1]:7882".parse().unwrap();
        // SAFETY: plain old data.
        let mut s: libc::sockaddr_storage = unsafe { zeroed() };
        to_storage(v6, &mut s);
        assert_eq!(from_storage(&s), Some(v6));
        let v4: SocketAddr = "192.0.2.7:9".parse().unwrap();
        to_storage(v4, &mut s);
        assert_eq!(from_storage(&s), Some(v4));
    }
}
