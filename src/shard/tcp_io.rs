//! ICE over TCP inside a shard: the passive listeners on `rtc.tcp_port + shard`, one
//! task per accepted connection that unframes its packets (RFC 4571) into the rooms,
//! and a writer per connection that frames what the sessions send back.
//!
//! A connection belongs to the shard that accepted it: the client connects to the
//! address its candidate advertised, and this shard advertised it. The first frame must
//! be an authentic STUN request for one of our sessions; anything else (garbage, an
//! oversized frame, silence) closes that connection and is counted, never affecting
//! another.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc::{self, error::TryRecvError, Receiver, Sender};
use tracing::{debug, warn};

use super::worker::Shard;
use crate::clock;
use crate::net::framing::{frame, Deframer};
use crate::net::stream::{TcpListener, TcpStream};
use crate::session::Transmit;

/// How long a new connection may take to send its first (STUN) frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Clients send ICE consent checks every few seconds; this much silence means gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames queued for one connection's writer; past it media for that client is
/// dropped (and counted) rather than buffered without bound.
const SEND_QUEUE: usize = 512;
/// Bytes one write gathers from the queue.
const WRITE_BATCH: usize = 64 * 1024;
/// Open ICE/TCP connections per shard; more are refused at accept.
const MAX_CONNECTIONS: usize = 4096;

/// One open connection's writer queue, with the id that tells it from a later
/// connection from the same address.
type Writer = (u64, Sender<Vec<u8>>);

/// The shard's ICE/TCP connections, by the client's address, and what they cost.
#[derive(Default)]
pub struct TcpConns {
    writers: RefCell<HashMap<SocketAddr, Writer>>,
    next_id: Cell<u64>,
    /// Connections closed for garbage, an oversized frame or silence before their
    /// first valid frame, plus those refused at the connection cap.
    refused: Cell<u64>,
    /// Packets for a connection that was gone or whose queue was full.
    dropped: Cell<u64>,
}

impl TcpConns {
    pub fn refused(&self) -> u64 {
        self.refused.get()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Queues one packet a session sends over ICE/TCP, framed, for its connection.
    pub fn send(&self, t: &Transmit) {
        let writers = self.writers.borrow();
        let sent = match (writers.get(&t.destination), frame(&t.contents)) {
            (Some((_, writer)), Some(framed)) => writer.try_send(framed).is_ok(),
            _ => false,
        };
        if !sent {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    fn open(&self, peer: SocketAddr) -> Option<(u64, Receiver<Vec<u8>>)> {
        let mut writers = self.writers.borrow_mut();
        if writers.len() >= MAX_CONNECTIONS && !writers.contains_key(&peer) {
            return None;
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        // A client reusing an address replaces what was there.
        writers.insert(peer, (id, tx));
        Some((id, rx))
    }

    fn close(&self, peer: SocketAddr, id: u64) {
        let mut writers = self.writers.borrow_mut();
        if writers.get(&peer).is_some_and(|(i, _)| *i == id) {
            writers.remove(&peer);
        }
    }

    fn refuse(&self) {
        self.refused.set(self.refused.get() + 1);
    }
}

/// Accepts connections on one listener, advertised as `local`, until the shard stops.
pub(super) async fn accept_loop(me: Rc<Shard>, listener: TcpListener, local: SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                tokio::task::spawn_local(serve(me.clone(), stream, local));
            }
            Err(e) => {
                warn!(shard = me.id, %local, error = %e, "ICE/TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection: frames in, each as a packet from `peer` to `local`, until it ends.
async fn serve(me: Rc<Shard>, stream: TcpStream, local: SocketAddr) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let Some((id, queue)) = me.tcp.open(peer) else {
        debug!(shard = me.id, %peer, "ICE/TCP connection refused: too many open");
        me.tcp.refuse();
        return;
    };
    let (mut reader, writer) = futures_lite::io::split(stream);
    tokio::task::spawn_local(write_frames(writer, queue));
    let mut deframer = Deframer::default();
    let mut known = false;
    loop {
        let wait = if known {
            IDLE_TIMEOUT
        } else {
            FIRST_FRAME_TIMEOUT
        };
        let space = deframer.space();
        let read = futures_lite::future::or(async { Some(reader.read(space).await) }, async {
            tokio::time::sleep(wait).await;
            None
        })
        .await;
        match read {
            Some(Ok(n)) if n > 0 => deframer.filled(n),
            None if !known => {
                debug!(shard = me.id, %peer, "ICE/TCP connection silent: closed");
                me.tcp.refuse();
                break;
            }
            _ => break,
        }
        match me.take_frames(&mut deframer, peer, local).await {
            Some(true) => known = true,
            Some(false) => {}
            None => {
                debug!(shard = me.id, %peer, "ICE/TCP connection sent garbage: closed");
                me.tcp.refuse();
                break;
            }
        }
    }
    me.tcp.close(peer, id);
}

/// Writes queued frames in order. What is already queued behind the first goes out
/// in the same write (a video frame's packets), up to `WRITE_BATCH` bytes: one
/// syscall per turn rather than one per packet.
async fn write_frames(mut writer: WriteHalf<TcpStream>, mut queue: Receiver<Vec<u8>>) {
    let mut batch = Vec::new();
    while let Some(mut framed) = queue.recv().await {
        batch.clear();
        loop {
            batch.append(&mut framed);
            if batch.len() >= WRITE_BATCH {
                break;
            }
            match queue.try_recv() {
                Ok(next) => framed = next,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if writer.write_all(&batch).await.is_err() {
            break;
        }
    }
    let _ = writer.close().await;
}

impl Shard {
    /// One turn over the whole frames read so far. `Some(true)` when some frame was
    /// for a session, `Some(false)` when none was whole yet, `None` when one was garbage
    /// (not for a session of ours, or over the size cap).
    async fn take_frames(
        &self,
        deframer: &mut Deframer,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Option<bool> {
        let now = clock::now();
        self.busy.borrow_mut().begin(now.mono);
        let mut out = Vec::new();
        let mut transmits = Vec::new();
        let mut verdict = Some(false);
        {
            let mut rooms = self.rooms.borrow_mut();
            rooms.begin_batch();
            loop {
                match deframer.next_frame() {
                    Ok(Some(packet)) => {
                        let ours = rooms.handle_tcp_frame(
                            now.mono,
                            peer,
                            local,
                            packet,
                            &mut transmits,
                            &mut out,
                        );
                        if !ours {
                            verdict = None;
                            break;
                        }
                        verdict = Some(true);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        verdict = None;
                        break;
                    }
                }
            }
        }
        self.end_batch(now.mono, &mut transmits, &mut out).await;
        if verdict == Some(true) {
            self.touch(now.mono);
        }
        // A failed flush means the control thread is gone and the shard stops anyway.
        let _ = self.flush(transmits, out).await;
        let done = clock::mono();
        self.rearm_timer(done);
        self.busy.borrow_mut().end(done);
        verdict
    }
}
