//! Datagrams the kernel dropped because a socket's receive buffer was full: what a shard
//! that cannot keep up loses, read from the socket itself (`SO_MEMINFO`).

use std::io;
use std::os::fd::RawFd;

/// Slots of `SO_MEMINFO`'s answer we ask for; the drop count is the ninth.
const MEMINFO_SLOTS: usize = 9;

/// The socket's receive drops since it was opened.
pub fn receive_drops(fd: RawFd) -> io::Result<u64> {
    let mut info = [0u32; MEMINFO_SLOTS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes, and the kernel writes at most `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let slot = libc::SK_MEMINFO_DROPS as usize;
    if (len as usize) < (slot + 1) * std::mem::size_of::<u32>() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "SO_MEMINFO without a drop count",
        ));
    }
    Ok(u64::from(info[slot]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_full_receive_buffer_counts_drops() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let socket = socket2::SockRef::from(&rx);
        socket.set_recv_buffer_size(4096).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        assert_eq!(receive_drops(rx.as_raw_fd()).unwrap(), 0);
        for _ in 0..200 {
            tx.send_to(&[0u8; 1200], to).unwrap();
        }
        assert!(receive_drops(rx.as_raw_fd()).unwrap() > 0);
    }
}
