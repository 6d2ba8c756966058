//! The control thread's side of rooms that span shards (`room::spread`): where a join
//! goes, opening a room's copy on another shard, passing the shards' news to each
//! other, and routing RoomService calls to the shard that holds the participant.

use std::rc::Rc;
use std::time::Duration;

use tracing::{debug, info};

use super::directory::{join_shard, Closed, RoomPlace};
use super::{CallError, Control};
use crate::room::spread::{SpreadOut, SpreadTo};
use crate::room::{ConnId, RoomError, RoomOp};
use crate::shard::ToShard;

/// How often a join waits for another join's opening of the same room copy.
const OPENING_POLL: Duration = Duration::from_millis(5);

impl Control {
    /// The shard a new participant of an existing room goes to: where its identity
    /// already is (a rejoin), else by `spread_after` and load (`directory::join_shard`):
    /// each shard's participants (joins in flight included) plus its downtracks.
    pub(super) fn choose_join_shard(&self, room: &str, identity: &str, home: usize) -> usize {
        let shards = self.shards.len();
        let mut in_room = vec![0; shards];
        let mut load = vec![0; shards];
        let mut same_identity = None;
        for c in self.conns.borrow().values() {
            let Some(s) = c.shard.filter(|s| *s < shards) else {
                continue;
            };
            load[s] += 1;
            if c.room == room {
                in_room[s] += 1;
                if c.identity == identity {
                    same_identity = Some(s);
                }
            }
        }
        if let Some(s) = same_identity {
            return s;
        }
        // Downtracks weigh too (from the shards' last reports): forwarding is the cost.
        for (s, status) in self.status.borrow().iter().enumerate() {
            if let Some(l) = load.get_mut(s) {
                *l += status.stats.subscribed;
            }
        }
        let hosts = self.directory.borrow().hosts(room);
        let shard = join_shard(home, &hosts, &in_room, &load, self.spread_after.get());
        debug!(%room, %identity, home, ?in_room, ?load, shard, "join placed");
        shard
    }

    /// Records where a joining connection's participant will be, before its join is
    /// sent: joins in flight count for placement, and a copy with a join on its way
    /// is not dropped by a stale close.
    pub(super) fn place_conn(&self, conn: ConnId, room: &str, identity: &str, shard: usize) {
        if let Some(c) = self.conns.borrow_mut().get_mut(&conn) {
            c.shard = Some(shard);
            c.room = room.to_string();
            c.identity = identity.to_string();
        }
    }

    /// Makes sure `shard` has a copy of `room` before a join is sent there: the home
    /// gives what the copy needs, the new host gets it first, then every host learns
    /// the new set of peers. One opening per room and shard at a time; joins that
    /// arrive meanwhile wait for it.
    pub(super) async fn open_copy(&self, room: &str, shard: usize) -> Result<(), CallError> {
        loop {
            let hosted = self.directory.borrow().hosts(room).contains(&shard);
            if hosted {
                return Ok(());
            }
            let key = (room.to_string(), shard);
            if !self.opening.borrow().contains(&key) {
                self.opening.borrow_mut().insert(key);
                break;
            }
            tokio::time::sleep(OPENING_POLL).await;
        }
        let result = self.open_copy_now(room, shard).await;
        self.opening.borrow_mut().remove(&(room.to_string(), shard));
        result
    }

    async fn open_copy_now(&self, room: &str, shard: usize) -> Result<(), CallError> {
        let home = self
            .directory
            .borrow()
            .lookup(room)
            .ok_or(RoomError::RoomNotFound)?;
        let seed = match self.call(home, RoomOp::Seed { room: room.into() }).await? {
            crate::room::RoomReply::Seed(seed) => seed,
            _ => return Err(RoomError::RoomNotFound.into()),
        };
        let peers = self.directory.borrow().hosts(room);
        self.send_to(
            shard,
            ToShard::Peers {
                room: room.to_string(),
                peers,
                home: false,
                seed: Some(seed),
            },
        )
        .await?;
        // Only now may joins go there: its copy is queued ahead of them.
        self.directory.borrow_mut().add_host(room, shard);
        info!(%room, shard, home, "room spreads to another shard");
        let place = self.directory.borrow().place_of(room).cloned();
        if let Some(place) = place {
            self.tell_peers(room, &place, Some(shard)).await;
        }
        Ok(())
    }

    /// Tells each host of `room` (but `skip`) the others and whether it is home.
    async fn tell_peers(&self, room: &str, place: &RoomPlace, skip: Option<usize>) {
        for &host in place.hosts.iter().filter(|h| Some(**h) != skip) {
            let peers = place.hosts.iter().copied().filter(|h| *h != host).collect();
            let msg = ToShard::Peers {
                room: room.to_string(),
                peers,
                home: host == place.home,
                seed: None,
            };
            let _ = self.send_to(host, msg).await;
        }
    }

    /// A shard closed its copy of `room` (or the room, on a single shard). A close that
    /// crossed a join on its way there changes nothing.
    pub(super) async fn copy_closed(&self, room: &str, shard: usize) {
        let joining = self
            .conns
            .borrow()
            .values()
            .any(|c| c.room == room && c.shard == Some(shard));
        if joining {
            debug!(%room, shard, "room close crossed a join: kept");
            return;
        }
        let closed = self.directory.borrow_mut().remove(room, shard);
        match closed {
            Closed::Ignored => {}
            Closed::Gone => self.release_room(room),
            Closed::Remaining(place) => self.tell_peers(room, &place, None).await,
        }
    }

    /// Passes a shard's news about a spread room on to the shards it is for.
    pub(super) fn route_spread(&self, from: usize, out: SpreadOut) {
        let SpreadOut { room, to, msg } = out;
        let targets: Vec<usize> = match to {
            SpreadTo::Peers => self.directory.borrow().hosts(&room),
            SpreadTo::Shard(s) => vec![s],
            SpreadTo::HostOf(conn) => self.conn_shard(conn).into_iter().collect(),
        };
        for shard in targets.into_iter().filter(|s| *s != from) {
            let msg = ToShard::Spread {
                room: room.clone(),
                from,
                msg: msg.clone(),
            };
            // Unbounded: never full (see `news`).
            if let Some(queue) = self.news.get(shard) {
                let _ = queue.send(msg);
            }
        }
    }

    /// Starts the tasks that drain each shard's news queue into its inbox, in order.
    pub fn start_news(self: &Rc<Self>) {
        let queues = std::mem::take(&mut *self.news_queues.borrow_mut());
        for (shard, queue) in queues.into_iter().enumerate() {
            let Some(mut queue) = queue else { continue };
            let me = self.clone();
            tokio::task::spawn_local(async move {
                while let Some(msg) = queue.recv().await {
                    if me.send_to(shard, msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    }

    /// The shard where `identity` of `room` is connected, if it is on this node.
    pub(super) fn shard_of(&self, room: &str, identity: &str) -> Option<usize> {
        self.conn_shard(self.conn_of(room, identity)?)
    }

    /// The shard a connection's participant is on.
    pub fn conn_shard(&self, conn: ConnId) -> Option<usize> {
        self.conns.borrow().get(&conn).and_then(|c| c.shard)
    }
}
