//! The media relay between shards for rooms that span several (`room::spread`): the
//! shard that receives a publisher's packet hands one reference-counted copy to each
//! other shard hosting the room, over a bounded channel per ordered pair of shards
//! (tokio `mpsc`, whose send wakes the receiving shard's runtime). A full channel
//! means the receiving shard is behind: the copy is dropped and counted, and the
//! publisher's shard never waits. Signalling between shards does not travel here (it
//! goes through the control thread and is never dropped).

use std::cell::Cell;
use std::rc::Rc;

use tokio::sync::mpsc::{self, error::TryRecvError, Receiver, Sender};

use super::worker::Shard;
use crate::clock;
use crate::room::spread::Relayed;
use crate::room::ConnId;
use crate::session::RtpIn;

/// Batches one shard may have queued for another before copies are dropped. A batch
/// is what one turn of the sending shard forwarded (a video frame's packets, say), so
/// this is a few seconds of turns.
pub const RELAY_QUEUE: usize = 512;
/// The most relayed batches one turn takes before the executor serves its other tasks.
const RELAY_BATCHES_PER_TURN: usize = 8;

/// The packets one turn of a shard relays to one other shard, each with its
/// publisher's connection (on the sending shard). One message per turn, not per
/// packet: every message may wake the receiving executor, and each of its turns
/// drives the subscriber sessions the packets went to.
pub type RelayPacket = Vec<(ConnId, RtpIn)>;

/// Both ends of the mesh for one shard.
pub struct RelayEnds {
    /// Index = destination shard; `None` for itself.
    pub to: Vec<Option<Sender<RelayPacket>>>,
    /// One per other shard, from it.
    pub from: Vec<Receiver<RelayPacket>>,
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
                let (tx, rx) = mpsc::channel(RELAY_QUEUE);
                ends[from].to[to] = Some(tx);
                ends[to].from.push(rx);
            }
        }
    }
    ends
}

/// A shard's senders to the others, with what they carried and dropped.
#[derive(Default)]
pub struct RelayLinks {
    to: Vec<Option<Sender<RelayPacket>>>,
    sent: Cell<u64>,
    dropped: Cell<u64>,
}

impl RelayLinks {
    /// Hands a turn's packets to their shards, one batch per shard; a batch that does
    /// not fit is dropped (and its packets counted).
    pub fn send(&self, relays: &mut Vec<Relayed>) {
        if relays.is_empty() {
            return;
        }
        let mut batches: Vec<RelayPacket> = self.to.iter().map(|_| Vec::new()).collect();
        for r in relays.drain(..) {
            if let Some(batch) = batches.get_mut(r.shard) {
                batch.push((r.publisher, r.rtp));
            }
        }
        for (batch, tx) in batches.into_iter().zip(&self.to) {
            let (Some(tx), false) = (tx, batch.is_empty()) else {
                continue;
            };
            let n = batch.len() as u64;
            match tx.try_send(batch) {
                Ok(()) => self.sent.set(self.sent.get() + n),
                Err(_) => self.dropped.set(self.dropped.get() + n),
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

/// A shard's senders (to count what they carry) and its receivers.
pub fn split(ends: RelayEnds) -> (RelayLinks, Vec<Receiver<RelayPacket>>) {
    let links = RelayLinks {
        to: ends.to,
        ..Default::default()
    };
    (links, ends.from)
}

/// Fans out what another shard relays: each batch is one turn, like a receive batch.
pub(super) async fn relay_loop(me: Rc<Shard>, mut from: Receiver<RelayPacket>) {
    let mut batch = Vec::new();
    while let Some(first) = from.recv().await {
        // What is already queued behind it joins the turn.
        batch.push(first);
        while batch.len() < RELAY_BATCHES_PER_TURN {
            match from.try_recv() {
                Ok(next) => batch.push(next),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
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
            for (publisher, rtp) in batch.drain(..).flatten() {
                rooms.forward_relayed(publisher, rtp, now.mono);
            }
            rooms.counters.forwarded != before
        };
        me.end_batch(now.mono, &mut transmits, &mut out).await;
        me.touch(now.mono);
        if !me.end_turn(now.mono, transmits, out, forwarded).await {
            return;
        }
        tokio::task::yield_now().await;
    }
}
