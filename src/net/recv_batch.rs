//! Batched UDP receives: one `recvmmsg` takes every datagram already queued on a
//! non-blocking socket, up to [`RECV_MESSAGES`], with each one's source and (on
//! wildcard sockets, `pktinfo`) destination address. A shard's turn then serves a
//! burst (a video frame's packets, the subscribers' feedback) for one syscall instead
//! of one per datagram.

use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

/// Messages one call takes at most (quinn-udp's batch size).
pub const RECV_MESSAGES: usize = 32;

/// Room for an IPv4 or IPv6 `pktinfo` control message, 8-byte aligned.
type Control = [u64; 8];

/// The buffers of one batch, reused from call to call (no allocation per receive).
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    lens: [usize; RECV_MESSAGES],
    sources: [Option<SocketAddr>; RECV_MESSAGES],
    destinations: [Option<IpAddr>; RECV_MESSAGES],
    received: usize,
}

impl RecvBatch {
    /// Datagrams longer than `max_datagram` are cut to it (the kernel drops the rest).
    pub fn new(max_datagram: usize) -> Self {
        RecvBatch {
            bufs: (0..RECV_MESSAGES).map(|_| vec![0; max_datagram]).collect(),
            lens: [0; RECV_MESSAGES],
            sources: [None; RECV_MESSAGES],
            destinations: [None; RECV_MESSAGES],
            received: 0,
        }
    }

    /// Datagram `i` of the last `recv`: its bytes, source and destination (the latter
    /// with `pktinfo` only). `None` past the end or for an unknown address family.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr, Option<IpAddr>)> {
        if i >= self.received {
            return None;
        }
        let source = self.sources[i]?;
        Some((&self.bufs[i][..self.lens[i]], source, self.destinations[i]))
    }

    /// Takes what is queued on `fd`, without waiting: `Ok(0)` when nothing is. With
    /// `pktinfo`, each datagram's destination is read from its control data.
    pub fn recv(&mut self, fd: RawFd, pktinfo: bool) -> io::Result<usize> {
        self.received = 0;
        let mut addrs = [const { MaybeUninit::<libc::sockaddr_storage>::uninit() }; RECV_MESSAGES];
        let mut controls = [const { MaybeUninit::<Control>::uninit() }; RECV_MESSAGES];
        let mut iovecs = [const { MaybeUninit::<libc::iovec>::uninit() }; RECV_MESSAGES];
        let mut msgs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; RECV_MESSAGES];
        for i in 0..RECV_MESSAGES {
            let buf = &mut self.bufs[i];
            let iov = iovecs[i].write(libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            });
            // SAFETY: plain old data, zeroed is a valid empty value.
            let mut hdr: libc::msghdr = unsafe { zeroed() };
            hdr.msg_name = addrs[i].as_mut_ptr().cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = iov;
            hdr.msg_iovlen = 1;
            if pktinfo {
                hdr.msg_control = controls[i].write([0; 8]).as_mut_ptr().cast();
                hdr.msg_controllen = size_of::<Control>();
            }
            msgs[i].write(libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            });
        }
        // SAFETY: every header points at this batch's buffer, address and control
        // storage, all alive and of the lengths given for the call's duration.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr().cast::<libc::mmsghdr>(),
                RECV_MESSAGES as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for i in 0..n {
            // SAFETY: the kernel filled the first `n` headers and their addresses.
            let msg = unsafe { msgs[i].assume_init_ref() };
            let addr = unsafe { addrs[i].assume_init_ref() };
            self.lens[i] = (msg.msg_len as usize).min(self.bufs[i].len());
            self.sources[i] = super::batch::from_storage(addr);
            self.destinations[i] = if pktinfo {
                super::pktinfo::destination(&msg.msg_hdr)
            } else {
                None
            };
        }
        self.received = n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn one_call_takes_every_queued_datagram_with_its_source() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let (a, b) = (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        let to = rx.local_addr().unwrap();
        let mut batch = RecvBatch::new(64);
        assert_eq!(
            batch.recv(rx.as_raw_fd(), false).unwrap(),
            0,
            "nothing queued"
        );
        for i in 0..5u8 {
            a.send_to(&[i; 10], to).unwrap();
        }
        b.send_to(&[9; 100], to).unwrap();
        let mut got = Vec::new();
        let mut n = 0;
        // Loopback delivery is synchronous, but read until all six are in anyway.
        while got.len() < 6 {
            n = batch.recv(rx.as_raw_fd(), false).unwrap();
            for i in 0..n {
                let (data, from, dst) = batch.get(i).unwrap();
                assert_eq!(dst, None);
                got.push((data.to_vec(), from));
            }
        }
        for (i, (data, from)) in got[..5].iter().enumerate() {
            assert_eq!(data, &vec![i as u8; 10]);
            assert_eq!(*from, a.local_addr().unwrap());
        }
        assert_eq!(got[5].0.len(), 64, "cut to the buffer");
        assert_eq!(got[5].1, b.local_addr().unwrap());
        assert!(
            batch.get(n).is_none(),
            "nothing past the last call's datagrams"
        );
    }

    #[test]
    fn with_pktinfo_each_datagram_says_where_it_was_sent() {
        let rx = UdpSocket::bind("0.0.0.0:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        super::super::pktinfo::enable(rx.as_raw_fd(), false).unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"one", ("127.0.0.1", port)).unwrap();
        tx.send_to(b"two", ("127.0.0.1", port)).unwrap();
        let mut batch = RecvBatch::new(2048);
        let mut got = Vec::new();
        while got.len() < 2 {
            let n = batch.recv(rx.as_raw_fd(), true).unwrap();
            for i in 0..n {
                let (data, _, dst) = batch.get(i).unwrap();
                got.push((data.to_vec(), dst));
            }
        }
        let local = Some(IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            got,
            vec![(b"one".to_vec(), local), (b"two".to_vec(), local)]
        );
    }
}
