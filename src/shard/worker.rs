//! The shard's driver: the only place where a shard touches channels, sockets and the
//! clock. Three kinds of task share the rooms on this thread's runtime (never across
//! threads):
//! the inbox from the control thread, one receiver per UDP socket, and the timer.

use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{Receiver, Sender};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::busy::Busy;
use super::latency::LatencyHistogram;
use super::messages::{FromShard, ShardStats, ToShard};
use super::quiet::{self, Activity};
use super::relay_io::{self, RelayEnds, RelayLinks};
use super::tcp_io::{accept_loop, TcpConns};
use super::udp_io::{Sockets, MAX_DATAGRAM};
use crate::clock;
use crate::net::batch::MAX_PACKETS;
use crate::net::recv_batch::RecvBatch;
use crate::room::spread::is_proxy;
use crate::room::{Outbound, Rooms};
use crate::session::{Transmit, Transport};

/// How often room lifetimes are checked and stats are reported.
const STATS_EVERY: Duration = Duration::from_secs(1);
const _: () = assert!(STATS_EVERY
    .as_millis()
    .is_multiple_of(quiet::QUIET_POLL.as_millis()));
/// The longest the timer sleeps. It wakes for the earliest session deadline (a heap,
/// see `room::timers`), and every other task wakes it when a turn made an earlier one;
/// this bound is only a safety net.
const MAX_TIMER_SLEEP: Duration = Duration::from_secs(1);
/// Deadlines further out than `TIMER_URGENT` are rounded up to the next multiple of
/// a grid since the shard started, so that the sessions due within one slot are
/// served by one wake: `TIMER_GRID` for what is due soon (retransmissions, feedback),
/// `TIMER_COARSE_GRID` for what is due `TIMER_COARSE_AFTER` or later (an idle str0m
/// session's once-a-second stats and RTCP), which a slot's delay does not hurt.
/// One wake per session deadline made a shard with 200 idle peer connections wake
/// ~200 times a second, and each wake costs a context switch and an `epoll_wait` (on
/// glommio, which shards ran on first, several io_uring calls and a membarrier).
/// Media does not wait for the grid: forwarding and signalling drive their sessions
/// in the same turn.
const TIMER_GRID: Duration = Duration::from_millis(20);
const TIMER_COARSE_GRID: Duration = Duration::from_millis(100);
const TIMER_COARSE_AFTER: Duration = Duration::from_millis(250);
const TIMER_URGENT: Duration = Duration::from_millis(2);

/// When the timer should wake for a deadline `next`, seen at `now` (see `TIMER_GRID`).
/// A quiet shard (`quiet`: no media, data or signalling for a while) serves every
/// deadline on the grid its receivers poll on (`quiet::QUIET_POLL`): what its sessions want
/// then is bandwidth-estimation and RTCP bookkeeping for streams that carry nothing
/// (a subscriber PC with BWE asks every ~25 ms), and activity makes it precise again.
fn timer_slot(epoch: Instant, now: Instant, next: Instant, quiet: bool) -> Instant {
    if quiet {
        return quiet::grid_ceil(epoch, next.max(now), quiet::QUIET_POLL);
    }
    if next <= now + TIMER_URGENT {
        return next;
    }
    let grid = if next >= now + TIMER_COARSE_AFTER {
        TIMER_COARSE_GRID
    } else {
        TIMER_GRID
    };
    quiet::grid_ceil(epoch, next, grid)
}

pub(super) struct Shard {
    pub(super) id: usize,
    pub(super) rooms: RefCell<Rooms>,
    outbox: Sender<FromShard>,
    sockets: Sockets,
    /// ICE/TCP connections and their writers (`tcp_io`).
    pub(super) tcp: TcpConns,
    /// Time in turns, for `corelay_shard_busy_seconds_total`.
    pub(super) busy: RefCell<Busy>,
    /// Datagram receipt to the flush of what it forwarded, in µs.
    forward_latency: RefCell<LatencyHistogram>,
    /// When the timer task will wake next, and how to wake it sooner.
    timer_at: Cell<Instant>,
    wake_timer: Notify,
    /// The origin of the timer grid (and of the quiet poll grid).
    epoch: Instant,
    /// Whether receivers wait on each datagram or poll on the quiet grid (`quiet`).
    activity: Cell<Activity>,
    /// One per socket: wakes its receiver out of a quiet poll sleep.
    wake_recv: Vec<Notify>,
    /// Media of spread rooms to the other shards (`relay_io`).
    relay: RelayLinks,
}

impl Shard {
    /// Something happened that must not wait for the quiet grid: receivers that were
    /// polling on it go back to waiting on each datagram.
    pub(super) fn touch(&self, now: Instant) {
        let mut activity = self.activity.get();
        if activity.touch(now) {
            // A wake not yet awaited is kept (one), so none is lost.
            for wake in &self.wake_recv {
                wake.notify_one();
            }
            // It may sleep to a coarse slot chosen while quiet.
            self.wake_timer.notify_one();
        }
        self.activity.set(activity);
    }

    /// When the timer task wakes for the deadline `at`, given the shard's activity.
    fn timer_slot(&self, now: Instant, at: Instant) -> Instant {
        timer_slot(self.epoch, now, at, self.activity.get().is_quiet(now))
    }

    /// After a turn: if it gave some session (or a room tick) an earlier deadline than
    /// the timer task sleeps to, wake that task now.
    pub(super) fn rearm_timer(&self, now: Instant) {
        let next = self.rooms.borrow_mut().next_wake(now);
        let slot = next.map(|at| self.timer_slot(now, at));
        if slot.is_some_and(|at| at < self.timer_at.get()) {
            self.timer_at.set(now);
            self.wake_timer.notify_one();
        }
    }

    /// Ends a turn that began at `began`: flushes what it produced, rearms the timer,
    /// and records the turn's time (and, if it forwarded, its forwarding latency).
    /// Returns false once the control thread is gone.
    pub(super) async fn end_turn(
        &self,
        began: Instant,
        transmits: Vec<Transmit>,
        out: Vec<Outbound>,
        forwarded: bool,
    ) -> bool {
        if !self.flush(transmits, out).await {
            return false;
        }
        let done = clock::mono();
        self.rearm_timer(done);
        self.busy.borrow_mut().end(done);
        if forwarded {
            let us = done.saturating_duration_since(began).as_micros();
            self.forward_latency.borrow_mut().record_us(us as u64);
        }
        true
    }

    /// Ends the receive batch open on the rooms: drives the subscriber sessions it wrote
    /// to and sends their datagrams in shares of what one send takes
    /// ([`Rooms::drive_batch`]), so that the first subscribers of a keyframe have it
    /// while the last are still being encrypted. What is left in `transmits` (the last
    /// share) and `out` goes with the turn's flush.
    pub(super) async fn end_batch(
        &self,
        now: Instant,
        transmits: &mut Vec<Transmit>,
        out: &mut Vec<Outbound>,
    ) {
        // Other shards hosting a spread room fan out in parallel with this one: hand
        // them the turn's packets before this shard's own subscribers take their time.
        let mut rest = {
            let mut rooms = self.rooms.borrow_mut();
            self.relay.send(rooms.relays());
            rooms.finish_batch()
        };
        while (self.rooms.borrow_mut()).drive_batch(&mut rest, now, transmits, out, MAX_PACKETS) {
            self.send_datagrams(transmits).await;
        }
    }

    /// Sends `transmits` (ICE/TCP ones on their connections) and empties it.
    pub(super) async fn send_datagrams(&self, transmits: &mut Vec<Transmit>) {
        for t in transmits.extract_if(.., |t| t.transport == Transport::Tcp) {
            self.tcp.send(&t);
            crate::session::packet_buffers::give_back(t.contents);
        }
        self.sockets.send_all(transmits).await;
    }

    /// Sends what one turn produced: datagrams to the network, packets of spread rooms
    /// to the other shards, signal messages and spread news to the control thread.
    /// Returns false once the control thread is gone.
    pub(super) async fn flush(&self, mut transmits: Vec<Transmit>, out: Vec<Outbound>) -> bool {
        self.send_datagrams(&mut transmits).await;
        let spread = {
            let mut rooms = self.rooms.borrow_mut();
            self.relay.send(rooms.relays());
            rooms.take_spread()
        };
        // What the room code says to proxies (participants of other shards) is for
        // nobody here: their own shard tells them.
        for o in out.into_iter().filter(|o| !is_proxy(o.conn())) {
            if self.outbox.send(FromShard::Out(o)).await.is_err() {
                return false;
            }
        }
        for s in spread {
            let msg = FromShard::Spread {
                shard: self.id,
                out: Box::new(s),
            };
            if self.outbox.send(msg).await.is_err() {
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
    mut inbox: Receiver<ToShard>,
    outbox: Sender<FromShard>,
    mut rooms: Rooms,
    udp: Vec<(UdpSocket, SocketAddr)>,
    tcp: Vec<(std::net::TcpListener, SocketAddr)>,
    relay: RelayEnds,
) {
    let sockets = Sockets::adopt(udp);
    let advertised: Vec<SocketAddr> = (0..sockets.len()).map(|i| sockets.advertised(i)).collect();
    let tcp_advertised: Vec<SocketAddr> = tcp.iter().map(|(_, a)| *a).collect();
    info!(shard, udp = ?advertised, tcp = ?tcp_advertised, "shard started");
    rooms.set_local_candidates(advertised);
    rooms.set_tcp_candidates(tcp_advertised);
    let wake_recv = (0..sockets.len()).map(|_| Notify::new()).collect();
    let (relay, relayed_from) = relay_io::split(relay);
    let me = Rc::new(Shard {
        id: shard,
        rooms: RefCell::new(rooms),
        outbox,
        sockets,
        tcp: TcpConns::default(),
        busy: RefCell::new(Busy::default()),
        forward_latency: RefCell::new(LatencyHistogram::default()),
        timer_at: Cell::new(clock::mono()),
        wake_timer: Notify::new(),
        epoch: clock::mono(),
        activity: Cell::new(Activity::default()),
        wake_recv,
        relay,
    });
    for from in relayed_from {
        tokio::task::spawn_local(relay_io::relay_loop(me.clone(), from));
    }
    tokio::task::spawn_local(stats_loop(me.clone()));
    tokio::task::spawn_local(timer_loop(me.clone()));
    for index in 0..me.sockets.len() {
        tokio::task::spawn_local(recv_loop(me.clone(), index));
    }
    for (listener, local) in tcp {
        match crate::net::stream::TcpListener::from_std(listener) {
            Ok(listener) => {
                tokio::task::spawn_local(accept_loop(me.clone(), listener, local));
            }
            Err(e) => warn!(shard, %local, error = %e, "cannot serve an ICE/TCP listener"),
        }
    }
    while let Some(msg) = inbox.recv().await {
        let now = clock::now();
        me.touch(now.mono);
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
                    rooms.signal(conn, *request, now.mono, &mut out);
                    None
                }
                ToShard::Disconnect { conn } => {
                    rooms.disconnect(conn, now.mono, &mut out);
                    None
                }
                ToShard::SignalLost { conn } => {
                    rooms.signal_lost(conn, now.mono, &mut out);
                    None
                }
                ToShard::Peers {
                    room,
                    peers,
                    home,
                    seed,
                } => {
                    rooms.set_peers(&room, peers, home, seed.map(|s| *s), now.mono);
                    None
                }
                ToShard::Spread { room, from, msg } => {
                    rooms.on_spread(&room, from, msg, now.mono, &mut out);
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
        let done = clock::mono();
        me.rearm_timer(done);
        me.busy.borrow_mut().end(done);
    }
    info!(shard, "shard stopped");
}

/// Datagrams one receive turn takes at most before it drives the sessions and sends:
/// a keyframe's packets (~50 at 2.5 Mbit/s) and the feedback queued with them, not an
/// unbounded flood.
const MAX_TURN_DATAGRAMS: usize = 128;

async fn recv_loop(me: Rc<Shard>, index: usize) {
    let destination = me.sockets.advertised(index);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut batch = RecvBatch::new(MAX_DATAGRAM);
    loop {
        let first = if me.activity.get().is_quiet(clock::mono()) {
            match me.sockets.recv_now(index, &mut buf) {
                Some(got) => got,
                None => {
                    me.sockets.park(index);
                    let now = clock::mono();
                    let sleep = quiet::next_slot(me.epoch, now, quiet::QUIET_POLL)
                        .saturating_duration_since(now);
                    let woken = me.wake_recv[index].notified();
                    futures_lite::future::or(tokio::time::sleep(sleep), woken).await;
                    continue;
                }
            }
        } else {
            match me.sockets.recv(index, &mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    warn!(shard = me.id, error = %e, "udp receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        };
        let now = clock::now();
        me.busy.borrow_mut().begin(now.mono);
        let mut out = Vec::new();
        let mut transmits = Vec::new();
        let (forwarded, active) = {
            let mut rooms = me.rooms.borrow_mut();
            let before = rooms.counters.forwarded;
            let data_before = rooms.counters.data_packets;
            let mut media = false;
            // One turn serves what is already queued behind this datagram (a video
            // frame's packets, the subscribers' feedback), taken by `recvmmsg`, and
            // what arrived while that was handled, until a take finds nothing: a
            // frame's packets arrive a few µs apart, the shard wakes on the first, and
            // every subscriber session is driven once per turn, at its end.
            rooms.begin_batch();
            let (len, source) = first;
            let mut handle = |datagram: &[u8], source, at| {
                media |= quiet::is_media(datagram);
                let known = rooms.handle_datagram(
                    at,
                    source,
                    destination,
                    datagram,
                    &mut transmits,
                    &mut out,
                );
                if !known {
                    debug!(shard = me.id, from = %source, "datagram for no session dropped");
                }
            };
            handle(&buf[..len], source, now.mono);
            let mut taken = 1;
            while taken < MAX_TURN_DATAGRAMS {
                let got = me.sockets.recv_batch(index, &mut batch);
                // Later takes arrived later: str0m times receipts (jitter, and the
                // transport-wide feedback a publisher estimates its bandwidth from).
                let at = if taken == 1 { now.mono } else { clock::mono() };
                for (datagram, source, _) in (0..got).filter_map(|i| batch.get(i)) {
                    handle(datagram, source, at);
                }
                if got == 0 {
                    break;
                }
                taken += got;
            }
            let active = media || rooms.counters.data_packets != data_before;
            (rooms.counters.forwarded != before, active)
        };
        me.end_batch(clock::mono(), &mut transmits, &mut out).await;
        if active {
            me.touch(now.mono);
        }
        if !me.end_turn(now.mono, transmits, out, forwarded).await {
            return;
        }
        // Under a flood the socket is never empty and this loop would never give the
        // executor back: joins and every other signal message would wait behind the
        // media. One yield per batch lets the inbox and the timer take their turn;
        // what the shard cannot keep up with overflows the socket buffer (dropped
        // and counted by the kernel), never the signalling.
        tokio::task::yield_now().await;
    }
}

async fn timer_loop(me: Rc<Shard>) {
    loop {
        let now = clock::now().mono;
        let next = me.rooms.borrow_mut().next_wake(now);
        let sleep = next
            .map(|d| me.timer_slot(now, d).saturating_duration_since(now))
            .unwrap_or(MAX_TIMER_SLEEP)
            .min(MAX_TIMER_SLEEP);
        me.timer_at.set(now + sleep);
        if !sleep.is_zero() {
            let woken = me.wake_timer.notified();
            futures_lite::future::or(tokio::time::sleep(sleep), woken).await;
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
    let mut last = crate::room::Counters::default();
    loop {
        // On the grid, so that a quiet shard reports in the wake of a receiver poll
        // (`STATS_EVERY` is a multiple of `quiet::QUIET_POLL`).
        let now = clock::mono();
        let at = quiet::next_slot(me.epoch, now, STATS_EVERY);
        tokio::time::sleep(at.saturating_duration_since(now)).await;
        let now = clock::now();
        let mut out = Vec::new();
        let closed = {
            let mut rooms = me.rooms.borrow_mut();
            rooms.expire_departed(now.mono, &mut out);
            rooms.expire(now.mono)
        };
        if !me.flush(Vec::new(), out).await {
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
                udp_receive_drops: me.sockets.receive_drops(),
                tcp_refused: me.tcp.refused(),
                tcp_dropped: me.tcp.dropped(),
                relayed: me.relay.sent(),
                relay_dropped: me.relay.dropped(),
            }
        };
        let msg = FromShard::Stats(Box::new(stats));
        if me.outbox.send(msg).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
