//! The media relay between shards for rooms that span several (`room::spread`): the
//! shard that receives a publisher's packet hands one reference-counted copy to each
//! other shard hosting the room, over a bounded channel per ordered pair of shards
//! (glommio `shared_channel`, whose send wakes the receiving executor). A full channel
//! means the receiving shard is behind: the copy is dropped and counted, and the
//! publisher's shard never waits. Signalling between shards does not travel here (it
//! goes through the control thread and is never dropped).

use std::cell::Cell;
use std::rc::Rc;

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

use super::connect::connected;
use super::worker::Shard;
use crate::clock;
use crate::room::spread::Relayed;
use crate::room::ConnId;
use crate::session::RtpIn;

/// Packets one shard may have queued for another before copies are dropped: about a
/// second of a 2.5 Mb/s publisher, or a few frames of many.
pub const RELAY_QUEUE: usize = 1024;
/// The most relayed packets one turn takes before the executor serves its other tasks.
const RELAY_BATCH: usize = 64;

/// One relayed packet: its publisher's connection (on the sending shard) and the packet.
pub type RelayPacket = (ConnId, RtpIn);

/// Both ends of the mesh for one shard, before its executor connects them.
pub struct RelayEnds {
    /// Index = destination shard; `None` for itself.
    pub to: Vec<Option<SharedSender<RelayPacket>>>,
    /// (source shard, receiver).
    pub from: Vec<(usize, SharedReceiver<RelayPacket>)>,
}

/// A channel for every ordered pair of `shards` shards; entry `i` is shard `i`'s ends.
pub fn mesh(shards: usize) -> Vec<RelayEnds> {
    let mut ends: Vec<RelayEnds> = (0..shards)
        .map(|_| RelayEnds {
            to: (0..shards).map(|_| None).collect(),
            from: Vec::new(),
        })
        .collect();
    for from in 0..shards {
        for to in 0..shards {
            if from != to {
                let (tx, rx) = shared_channel::new_bounded(RELAY_QUEUE);
                ends[from].to[to] = Some(tx);
                ends[to].from.push((from, rx));
            }
        }
    }
    ends
}

/// A shard's connected senders to the others, with what they carried and dropped.
#[derive(Default)]
pub struct RelayLinks {
    to: Vec<Option<ConnectedSender<RelayPacket>>>,
    sent: Cell<u64>,
    dropped: Cell<u64>,
}

impl RelayLinks {
    /// Hands each packet to its shard, dropping (and counting) what does not fit.
    pub fn send(&self, relays: &mut Vec<Relayed>) {
        for r in relays.drain(..) {
            let Some(Some(tx)) = self.to.get(r.shard) else {
                continue;
            };
            match tx.try_send((r.publisher, r.rtp)) {
                Ok(()) => self.sent.set(self.sent.get() + 1),
                Err(_) => self.dropped.set(self.dropped.get() + 1),
            }
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent.get()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

/// Connects a shard's ends. Every shard connects at once at start-up, and a connect
/// waits for its peer's, so all of this shard's ends are connected concurrently.
pub async fn connect(
    ends: RelayEnds,
) -> (RelayLinks, Vec<(usize, ConnectedReceiver<RelayPacket>)>) {
    let senders: Vec<_> = (ends.to.into_iter())
        .map(|tx| tx.map(|tx| glommio::spawn_local(connected(tx.connect()))))
        .collect();
    let receivers: Vec<_> = (ends.from.into_iter())
        .map(|(from, rx)| (from, glommio::spawn_local(connected(rx.connect()))))
        .collect();
    let mut to = Vec::new();
    for tx in senders {
        to.push(match tx {
            Some(task) => Some(task.await),
            None => None,
        });
    }
    let mut from = Vec::new();
    for (shard, task) in receivers {
        from.push((shard, task.await));
    }
    let links = RelayLinks {
        to,
        ..Default::default()
    };
    (links, from)
}

/// Fans out what another shard relays: each batch is one turn, like a receive batch.
pub(super) async fn relay_loop(me: Rc<Shard>, from: ConnectedReceiver<RelayPacket>) {
    let mut batch = Vec::with_capacity(RELAY_BATCH);
    while let Some(first) = from.recv().await {
        // What is already queued behind it (a video frame's packets) joins the turn.
        batch.push(first);
        while batch.len() < RELAY_BATCH {
            match futures_lite::future::poll_once(from.recv()).await {
                Some(Some(next)) => batch.push(next),
                _ => break,
            }
        }
        let now = clock::now();
        me.busy.borrow_mut().begin(now.mono);
        let mut out = Vec::new();
        let mut transmits = Vec::new();
        let forwarded = {
            let mut rooms = me.rooms.borrow_mut();
            let before = rooms.counters.forwarded;
            rooms.begin_batch();
            for (publisher, rtp) in batch.drain(..) {
                rooms.forward_relayed(publisher, rtp, now.mono);
            }
            rooms.end_batch(now.mono, &mut transmits, &mut out);
            rooms.counters.forwarded != before
        };
        me.touch(now.mono);
        if !me.end_turn(now.mono, transmits, out, forwarded).await {
            return;
        }
        futures_lite::future::yield_now().await;
    }
}
