//! The control thread's half of resume (`room::resume` is the shard's): a signal
//! connection that drops without a leave parks its queue here, and a `reconnect=1`
//! connection for the same participant takes the queue over, so that what the shard
//! sent in between reaches the client, in order, after the resume's first messages.

use std::time::Duration;

use super::{ConnEvent, Control};
use crate::room::ConnId;
use crate::shard::ToShard;
use tokio::sync::mpsc::Receiver;

/// How long a resume waits for a previous connection task of the same participant to
/// let go (it may be in a write, bounded by the signal write timeout).
const TAKEOVER_WAIT: Duration = Duration::from_secs(6);
const TAKEOVER_POLL: Duration = Duration::from_millis(20);

/// A participant's queue, handed to the connection task that resumes it.
pub struct Resumed {
    pub conn: ConnId,
    pub generation: u64,
    pub events: Receiver<ConnEvent>,
}

impl Control {
    /// The connection task `generation` of `conn` ended without a leave: its queue is
    /// kept for a resume and the shard starts the departure timeout. A task that was
    /// taken over (an older generation) changes nothing.
    pub async fn signal_lost(&self, conn: ConnId, generation: u64, events: Receiver<ConnEvent>) {
        let shard = {
            let mut conns = self.conns.borrow_mut();
            let Some(c) = conns.get_mut(&conn) else {
                return;
            };
            if c.generation != generation {
                return;
            }
            c.parked = Some(events);
            c.shard
        };
        self.lifecycle.conn_closed();
        if let Some(shard) = shard {
            let _ = self.send_to(shard, ToShard::SignalLost { conn }).await;
        }
    }

    /// The connection of `identity` in `room`, if any.
    pub(super) fn conn_of(&self, room: &str, identity: &str) -> Option<ConnId> {
        // The newest, should a full reconnect's connection not have replaced the old one
        // yet.
        self.conns
            .borrow()
            .iter()
            .filter(|(_, c)| c.room == room && c.identity == identity)
            .map(|(id, _)| *id)
            .max()
    }

    /// The sid of `identity`'s participant in `room`, if it is here.
    pub fn participant_sid(&self, room: &str, identity: &str) -> Option<String> {
        let conn = self.conn_of(room, identity)?;
        self.conns.borrow().get(&conn).map(|c| c.sid.clone())
    }

    /// Takes over the queue of `identity`'s participant in `room` for a resuming
    /// connection. A connection task still running for it is told to end first (its
    /// client gave up on it before the server noticed). `None` when there is nothing
    /// to resume: no such participant here, or its queue overflowed while away.
    pub async fn take_over(&self, room: &str, identity: &str) -> Option<Resumed> {
        let conn = self.conn_of(room, identity)?;
        let waited_from = crate::clock::mono();
        let mut told = false;
        loop {
            {
                let mut conns = self.conns.borrow_mut();
                let c = conns.get_mut(&conn)?;
                c.events.as_ref()?;
                if let Some(events) = c.parked.take() {
                    c.generation += 1;
                    self.lifecycle.conn_opened();
                    return Some(Resumed {
                        conn,
                        generation: c.generation,
                        events,
                    });
                }
                if !told {
                    told = true;
                    if let Some(tx) = c.events.as_ref() {
                        // A full queue means a task that does not read: it is ended
                        // by the overflow rule, and this waits for that.
                        let _ = tx.try_send(ConnEvent::Takeover);
                    }
                }
            }
            if crate::clock::mono().saturating_duration_since(waited_from) > TAKEOVER_WAIT {
                return None;
            }
            tokio::time::sleep(TAKEOVER_POLL).await;
        }
    }

    /// A resume the shard refused (the participant is gone): forget the connection.
    pub fn drop_conn(&self, conn: ConnId) {
        if self.conns.borrow_mut().remove(&conn).is_some() {
            self.lifecycle.conn_closed();
        }
    }
}
