//! The control thread's side of many nodes: where a room lives, reporting this node's
//! figures for its heartbeat, and releasing rooms that ended.

use std::rc::Rc;
use std::time::Duration;

use super::Control;
use crate::cluster::record::{NodeRecord, NodeStats};
use crate::cluster::ClusterError;

/// Where a room's signalling and API calls are served.
#[derive(Debug)]
pub enum Home {
    Here,
    Elsewhere(NodeRecord),
}

impl Control {
    /// Where `room` lives. Rooms this node hosts are served here without asking Redis
    /// (so they keep working while it is away), as are requests another node relayed.
    /// Otherwise the cluster is asked: `place` puts a new room on a node (a join that
    /// may create it, CreateRoom), else only an existing room is looked up.
    pub async fn room_home(
        &self,
        room: &str,
        place: bool,
        relayed: Option<&str>,
    ) -> Result<Home, ClusterError> {
        let Some(cluster) = &self.cluster else {
            return Ok(Home::Here);
        };
        if room.is_empty() || cluster.relayed(relayed) || self.room_exists(room) {
            return Ok(Home::Here);
        }
        let node = if place {
            Some(cluster.place(room).await?)
        } else {
            cluster.lookup(room).await?
        };
        Ok(match node {
            Some(n) if !cluster.is_me(&n) => Home::Elsewhere(n),
            _ => Home::Here,
        })
    }

    pub(super) fn release_room(&self, room: &str) {
        if let Some(cluster) = &self.cluster {
            cluster.release(room);
        }
    }

    /// Every second: this node's rooms and figures, for the registry.
    pub async fn report_to_cluster(self: Rc<Self>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        loop {
            let stats = {
                let status = self.status.borrow();
                let sum = |f: fn(&crate::shard::ShardStats) -> usize| {
                    status.iter().map(|s| f(&s.stats)).sum::<usize>() as u32
                };
                NodeStats {
                    rooms: sum(|s| s.rooms),
                    clients: sum(|s| s.participants),
                    tracks: sum(|s| s.tracks),
                    bytes_per_sec: status.iter().map(|s| s.stats.bytes_per_sec).sum(),
                    ..Default::default()
                }
            };
            cluster.report(stats, self.directory.borrow().names());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
