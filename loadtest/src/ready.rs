//! Which of a worker's sockets have input, through one epoll set per worker. `ppoll`
//! over every socket on every wake made the kernel look at each of them each time
//! (`sock_poll`, `fdget`, wait-queue set-up): a fifth of loadtest's CPU at 60
//! subscribers, on cores it shares with the server under test.
//!
//! Sockets are named by (fd, id): a closed socket leaves the epoll set by itself and
//! the kernel may hand its number to the next one, so each socket loadtest opens gets
//! an id of its own ([`socket_id`]) and a number seen with a new id is registered anew.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

static NEXT_SOCKET: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a socket loadtest just opened.
pub fn socket_id() -> u64 {
    NEXT_SOCKET.fetch_add(1, Relaxed)
}

/// A socket to watch: its fd, its id, and who owns it (a client's index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub fd: i32,
    pub id: u64,
    pub owner: usize,
}

struct Entry {
    id: u64,
    owner: usize,
    /// The `sync` that last listed it.
    turn: u64,
}

pub struct Ready {
    ep: OwnedFd,
    known: HashMap<i32, Entry>,
    turn: u64,
    events: Vec<libc::epoll_event>,
}

impl Ready {
    pub fn new() -> io::Result<Ready> {
        // SAFETY: plain syscall; the fd it returns is owned from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Ready {
            // SAFETY: a fresh fd nobody else owns.
            ep: unsafe { OwnedFd::from_raw_fd(fd) },
            known: HashMap::new(),
            turn: 0,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
        })
    }

    /// Watches exactly `sockets` from now on: new ones are added, gone ones dropped.
    /// Errors name a socket that could not be added (it is retried at the next sync).
    pub fn sync(&mut self, sockets: &[Watch]) -> io::Result<()> {
        self.turn += 1;
        let mut failed = Ok(());
        for w in sockets {
            match self.known.get_mut(&w.fd) {
                Some(e) if e.id == w.id => {
                    e.owner = w.owner;
                    e.turn = self.turn;
                }
                stale => {
                    if stale.is_some() {
                        // the number's old socket closed (and left the set with it);
                        // should it still be there, take it out
                        self.ctl(libc::EPOLL_CTL_DEL, w.fd).ok();
                        self.known.remove(&w.fd);
                    }
                    match self.ctl(libc::EPOLL_CTL_ADD, w.fd) {
                        Ok(()) => {
                            self.known.insert(
                                w.fd,
                                Entry {
                                    id: w.id,
                                    owner: w.owner,
                                    turn: self.turn,
                                },
                            );
                        }
                        Err(e) => failed = Err(e),
                    }
                }
            }
        }
        let turn = self.turn;
        let ep = self.ep.as_raw_fd();
        self.known.retain(|&fd, e| {
            if e.turn != turn {
                // usually closed already (EBADF); one kept open elsewhere must go
                ctl(ep, libc::EPOLL_CTL_DEL, fd).ok();
            }
            e.turn == turn
        });
        failed
    }

    /// Waits up to `timeout` for input and calls `ready` with the owner of each socket
    /// that has some.
    pub fn wait(&mut self, timeout: Duration, mut ready: impl FnMut(usize)) -> io::Result<()> {
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `events` is a valid buffer of the length given.
        let n = unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        for ev in &self.events[..n as usize] {
            let fd = ev.u64 as i32;
            if let Some(e) = self.known.get(&fd) {
                ready(e.owner);
            }
        }
        Ok(())
    }

    fn ctl(&self, op: libc::c_int, fd: i32) -> io::Result<()> {
        ctl(self.ep.as_raw_fd(), op, fd)
    }
}

fn ctl(ep: i32, op: libc::c_int, fd: i32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a valid epoll_event for the call (ignored by DEL).
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn owners(r: &mut Ready) -> Vec<usize> {
        let mut got = Vec::new();
        r.wait(Duration::ZERO, |o| got.push(o)).unwrap();
        got.sort();
        got
    }

    #[test]
    fn only_sockets_with_input_are_reported_with_their_owner() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut r = Ready::new().unwrap();
        let watch = |s: &UdpSocket, owner| Watch {
            fd: s.as_raw_fd(),
            id: socket_id(),
            owner,
        };
        let (wa, wb) = (watch(&a, 3), watch(&b, 7));
        r.sync(&[wa, wb]).unwrap();
        assert!(owners(&mut r).is_empty());
        a.send_to(b"x", b.local_addr().unwrap()).unwrap();
        assert_eq!(owners(&mut r), vec![7]);
        // a socket no longer listed is no longer reported
        r.sync(&[wa]).unwrap();
        assert!(owners(&mut r).is_empty());
    }

    #[test]
    fn a_number_seen_with_a_new_id_is_watched_again() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = rx.as_raw_fd();
        let mut r = Ready::new().unwrap();
        r.sync(&[Watch {
            fd,
            id: socket_id(),
            owner: 1,
        }])
        .unwrap();
        // what closing the old socket does to the set (the number then names another)
        r.ctl(libc::EPOLL_CTL_DEL, fd).unwrap();
        r.sync(&[Watch {
            fd,
            id: socket_id(),
            owner: 2,
        }])
        .unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        assert_eq!(owners(&mut r), vec![2]);
    }
}
