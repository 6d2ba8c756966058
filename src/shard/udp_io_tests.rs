//! A shard's sockets on the epoll runtime: waiting, parking (the quiet shard drops the
//! registration) and waiting again must neither lose nor hold back a datagram.

use std::net::{Ipv4Addr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use super::*;

/// How long a receive that should finish may take before the test fails (a wait that
/// never ends is the bug looked for, not a slow machine).
const PATIENCE: Duration = Duration::from_secs(10);

fn run<F: std::future::Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("runtime");
    tokio::task::LocalSet::new().block_on(&runtime, test);
}

fn bound() -> (Sockets, SocketAddr, StdUdpSocket) {
    let socket = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = socket.local_addr().expect("addr");
    let peer = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind peer");
    (Sockets::adopt(vec![(socket, addr)]), addr, peer)
}

async fn recv_within(sockets: &Sockets, buf: &mut [u8]) -> (usize, SocketAddr) {
    tokio::time::timeout(PATIENCE, sockets.recv(0, buf))
        .await
        .expect("a datagram within the patience")
        .expect("receive")
}

#[test]
fn a_waiting_receiver_gets_each_datagram_that_arrives() {
    run(async {
        let (sockets, addr, peer) = bound();
        let from = peer.local_addr().expect("peer addr");
        let mut buf = [0u8; MAX_DATAGRAM];
        for i in 0..3u8 {
            let sender = peer.try_clone().expect("clone");
            // Runs once the receiver's wait is pending: sent while it waits.
            tokio::task::spawn_local(async move {
                sender.send_to(&[i; 4], addr).expect("send");
            });
            assert_eq!(recv_within(&sockets, &mut buf).await, (4, from));
            assert_eq!(buf[0], i);
        }
    });
}

#[test]
fn a_datagram_that_came_while_parked_is_had_by_the_next_wait() {
    run(async {
        let (sockets, addr, peer) = bound();
        let from = peer.local_addr().expect("peer addr");
        let mut buf = [0u8; MAX_DATAGRAM];
        peer.send_to(b"one", addr).expect("send");
        assert_eq!(recv_within(&sockets, &mut buf).await, (3, from));
        // The shard turns quiet: nobody waits, and datagrams queue unseen.
        sockets.park(0);
        peer.send_to(b"quiet", addr).expect("send");
        peer.send_to(b"polled", addr).expect("send");
        // A quiet poll takes one without waiting...
        assert_eq!(sockets.recv_now(0, &mut buf), Some((5, from)));
        // ...and the receiver waiting again (registering anew) finds the other at once.
        assert_eq!(recv_within(&sockets, &mut buf).await, (6, from));
        assert_eq!(&buf[..6], b"polled");
        assert_eq!(sockets.recv_now(0, &mut buf), None);
    });
}

#[test]
fn a_socket_that_is_not_there_is_an_error_not_a_wait() {
    run(async {
        let (sockets, _, _) = bound();
        let mut buf = [0u8; MAX_DATAGRAM];
        assert!(sockets.recv(1, &mut buf).await.is_err());
        assert_eq!(sockets.recv_now(1, &mut buf), None);
        sockets.park(1);
    });
}

#[test]
fn sends_leave_as_transmits_and_empty_the_batch() {
    run(async {
        let (sockets, addr, peer) = bound();
        peer.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let to = peer.local_addr().expect("peer addr");
        let mut transmits: Vec<Transmit> = (0..3u8)
            .map(|i| Transmit {
                source: addr,
                destination: to,
                contents: vec![i; 100],
                transport: crate::session::Transport::Udp,
            })
            .collect();
        sockets.send_all(&mut transmits).await;
        assert!(transmits.is_empty());
        let mut buf = [0u8; 200];
        for i in 0..3u8 {
            let (n, from) = peer.recv_from(&mut buf).expect("a datagram");
            assert_eq!((n, from, buf[0]), (100, addr, i));
        }
    });
}
