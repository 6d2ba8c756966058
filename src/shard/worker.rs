//! The shard's driver: the only place where a shard touches channels, sockets and the
//! clock. Three kinds of task share the rooms on this executor (never across threads):
//! the inbox from the control thread, one receiver per UDP socket, and the timer.

use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use tracing::{debug, info, warn};

use super::busy::Busy;
use super::messages::{FromShard, ShardStats, ToShard};
use super::udp_io::{Sockets, MAX_DATAGRAM};
use crate::clock;
use crate::metrics::histogram::LatencyHistogram;
use crate::rtc::session::Transmit;
use crate::rtc::{Outbound, Rooms};

/// How often room lifetimes are checked and stats are reported.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// The longest the timer sleeps, so a deadline moved earlier by a write is not missed
/// for long (str0m deadlines can move on every input).
const MAX_TIMER_SLEEP: Duration = Duration::from_millis(10);

struct Shard {
    id: usize,
    rooms: RefCell<Rooms>,
    outbox: ConnectedSender<FromShard>,
    sockets: Sockets,
    /// Time in turns, for `corelay_shard_busy_seconds_total`.
    busy: RefCell<Busy>,
    /// Datagram receipt to the flush of what it forwarded, in µs.
    forward_latency: RefCell<LatencyHistogram>,
}

impl Shard {
    /// Sends what one turn produced: datagrams to the network, signal messages to the
    /// control thread. Returns false once the control thread is gone.
    async fn flush(&self, mut transmits: Vec<Transmit>, out: Vec<Outbound>) -> bool {
        self.sockets.send_all(&mut transmits).await;
        for o in out {
            if self.outbox.send(FromShard::Out(o)).await.is_err() {
                return false;
            }
        }
        let events = self.rooms.borrow_mut().take_events();
        for e in events {
            if self
                .outbox
                .send(FromShard::Event(Box::new(e)))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

/// Runs one shard until the control thread says stop or goes away.
pub async fn run(
    shard: usize,
    inbox: ConnectedReceiver<ToShard>,
    outbox: ConnectedSender<FromShard>,
    mut rooms: Rooms,
    udp: Vec<(UdpSocket, SocketAddr)>,
) {
    let sockets = Sockets::adopt(udp);
    let advertised: Vec<SocketAddr> = (0..sockets.len()).map(|i| sockets.advertised(i)).collect();
    info!(shard, udp = ?advertised, "shard started");
    rooms.set_local_candidates(advertised);
    let me = Rc::new(Shard {
        id: shard,
        rooms: RefCell::new(rooms),
        outbox,
        sockets,
        busy: RefCell::new(Busy::default()),
        forward_latency: RefCell::new(LatencyHistogram::default()),
    });
    glommio::spawn_local(stats_loop(me.clone())).detach();
    glommio::spawn_local(timer_loop(me.clone())).detach();
    for index in 0..me.sockets.len() {
        glommio::spawn_local(recv_loop(me.clone(), index)).detach();
    }

    while let Some(msg) = inbox.recv().await {
        let now = clock::now();
        me.busy.borrow_mut().begin(now.mono);
        let mut out = Vec::new();
        let mut transmits = Vec::new();
        let reply = {
            let mut rooms = me.rooms.borrow_mut();
            let reply = match msg {
                ToShard::Room { req_id, op } => {
                    let result = rooms.apply(op, now.mono, now.unix_secs, &mut out);
                    Some(FromShard::Reply {
                        req_id,
                        result: Box::new(result),
                    })
                }
                ToShard::Signal { conn, request } => {
                    rooms.signal(conn, *request, now.mono, now.unix_ms, &mut out);
                    None
                }
                ToShard::Disconnect { conn } => {
                    rooms.disconnect(conn, now.mono, &mut out);
                    None
                }
                ToShard::Shutdown => break,
            };
            rooms.flush_dirty(now.mono, &mut transmits, &mut out);
            reply
        };
        // Signal messages first: a join's ParticipantUpdates reach the others before the
        // joiner's own answer lets it act.
        if !me.flush(transmits, out).await {
            return;
        }
        if let Some(reply) = reply {
            if me.outbox.send(reply).await.is_err() {
                break;
            }
        }
        me.busy.borrow_mut().end(clock::mono());
    }
    info!(shard, "shard stopped");
}

async fn recv_loop(me: Rc<Shard>, index: usize) {
    let destination = me.sockets.advertised(index);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, source) = match me.sockets.recv(index, &mut buf).await {
            Ok(r) => r,
            Err(e) => {
                warn!(shard = me.id, error = %e, "udp receive failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let now = clock::now();
        me.busy.borrow_mut().begin(now.mono);
        let mut out = Vec::new();
        let mut transmits = Vec::new();
        let (known, forwarded) = {
            let mut rooms = me.rooms.borrow_mut();
            let before = rooms.counters.forwarded;
            let known = rooms.handle_datagram(
                now.mono,
                source,
                destination,
                &buf[..len],
                &mut transmits,
                &mut out,
            );
            (known, rooms.counters.forwarded != before)
        };
        if !known {
            debug!(shard = me.id, from = %source, "datagram for no session dropped");
        }
        if !me.flush(transmits, out).await {
            return;
        }
        let done = clock::mono();
        me.busy.borrow_mut().end(done);
        if forwarded {
            let us = done.saturating_duration_since(now.mono).as_micros();
            me.forward_latency.borrow_mut().record_us(us as u64);
        }
    }
}

async fn timer_loop(me: Rc<Shard>) {
    loop {
        let now = clock::now().mono;
        let next = me.rooms.borrow().next_deadline();
        let sleep = next
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(MAX_TIMER_SLEEP)
            .min(MAX_TIMER_SLEEP);
        if !sleep.is_zero() {
            glommio::timer::sleep(sleep).await;
        }
        let now = clock::now().mono;
        me.busy.borrow_mut().begin(now);
        let mut out = Vec::new();
        let mut transmits = Vec::new();
        {
            let mut rooms = me.rooms.borrow_mut();
            rooms.handle_timeouts(now, &mut transmits, &mut out);
            rooms.tick_speakers(now, &mut out);
            rooms.tick_quality(now, &mut out);
        }
        if !me.flush(transmits, out).await {
            return;
        }
        me.busy.borrow_mut().end(clock::mono());
    }
}

async fn stats_loop(me: Rc<Shard>) {
    let mut last = crate::rtc::Counters::default();
    loop {
        glommio::timer::sleep(STATS_EVERY).await;
        let now = clock::now();
        let closed = me.rooms.borrow_mut().expire(now.mono);
        if !me.flush(Vec::new(), Vec::new()).await {
            return;
        }
        for name in closed {
            debug!(shard = me.id, room = %name, "room closed after its timeout");
            let msg = FromShard::RoomClosed { shard: me.id, name };
            if me.outbox.send(msg).await.is_err() {
                return;
            }
        }
        let stats = {
            let rooms = me.rooms.borrow();
            let (tracks, subscribed) = rooms.track_counts();
            let bytes_per_sec = rooms.counters.bytes_in + rooms.counters.bytes_out
                - (last.bytes_in + last.bytes_out);
            last = rooms.counters;
            ShardStats {
                shard: me.id,
                rooms: rooms.len(),
                participants: rooms.participant_count(),
                tracks,
                subscribed,
                bytes_per_sec,
                counters: rooms.counters,
                busy_us: me.busy.borrow().total_us(),
                forward_latency: me.forward_latency.borrow().clone(),
            }
        };
        let msg = FromShard::Stats(Box::new(stats));
        if me.outbox.send(msg).await.is_err() {
            return;
        }
    }
}
