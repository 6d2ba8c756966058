//! Many nodes through Redis (`redis.address`). Each node registers itself with its
//! load; a room is placed on one node by the node selector on its first join or
//! CreateRoom, and stays there while it lives. A client or API caller that reaches
//! another node is relayed to the room's node over a direct node-to-node connection
//! (`relay`): the signal WebSocket is spliced byte for byte, so the SDK sees the hosting
//! node's own answers, and media goes straight to that node's candidates.
//!
//! Redis is consulted only to place or find rooms this node does not host: when it is
//! unreachable, this node keeps serving its own rooms and joins to them, placements
//! that need the cluster fail with a clear error, and everything recovers by itself.
//! Without `redis.address` none of this runs.

pub mod load;
pub mod record;
pub mod relay;
pub mod selector;
pub mod store;
#[cfg(test)]
mod store_tests;

use crossbeam_channel::{Sender, TrySendError};
use futures_channel::oneshot;
use sha2::{Digest, Sha256};
use tracing::warn;

use record::{NodeRecord, NodeStats};
use store::{Job, Store};

use crate::config::Config;

/// Jobs queued for the cluster thread before new ones are refused.
const JOB_QUEUE: usize = 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster unavailable (redis: {0})")]
    Unavailable(String),
    #[error("no node is available to host the room")]
    NoNode,
    #[error("redis configuration: {0}")]
    Config(String),
    #[error("cluster thread stopped")]
    Stopped,
}

/// The control thread's handle on the cluster thread.
#[derive(Clone)]
pub struct Cluster {
    jobs: Sender<Job>,
    pub node_id: String,
    /// The value of [`relay::RELAYED_HEADER`] nodes of this cluster send each other.
    relay_token: String,
}

impl Cluster {
    /// Starts the cluster thread when `redis.address` is set.
    pub fn start(config: &Config, me: NodeRecord) -> Result<Option<Cluster>, ClusterError> {
        if config.redis.address.is_none() {
            return Ok(None);
        }
        let secret = config.keys.values().next().cloned().unwrap_or_default();
        let relay_token = relay_token(&secret);
        let node_id = me.id.clone();
        let store = Store::new(&config.redis, config.node_selector.clone(), me)?;
        let (jobs, rx) = crossbeam_channel::bounded(JOB_QUEUE);
        std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || store.run(rx))
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(Some(Cluster {
            jobs,
            node_id,
            relay_token,
        }))
    }

    /// The node that hosts `room`, placing it if it has none (or a dead one).
    pub async fn place(&self, room: &str) -> Result<NodeRecord, ClusterError> {
        let room = room.to_string();
        self.ask(|reply| Job::Place { room, reply }).await
    }

    /// The live node that hosts `room`, if any.
    pub async fn lookup(&self, room: &str) -> Result<Option<NodeRecord>, ClusterError> {
        let room = room.to_string();
        self.ask(|reply| Job::Lookup { room, reply }).await
    }

    /// Every live node, this one included.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, ClusterError> {
        self.ask(|reply| Job::Nodes { reply }).await
    }

    /// Sends the job `make` builds around a reply channel and waits for the answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ClusterError>>) -> Job,
    ) -> Result<T, ClusterError> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply))?;
        rx.await.map_err(|_| ClusterError::Stopped)?
    }

    /// A room of this node ended: its mapping goes.
    pub fn release(&self, room: &str) {
        let _ = self.send(Job::Release { room: room.into() });
    }

    /// This node's figures and rooms, for its next heartbeat.
    pub fn report(&self, stats: NodeStats, rooms: Vec<String>) {
        let _ = self.send(Job::Local { stats, rooms });
    }

    /// Draining: leaves the registry and releases this node's rooms (waits at most
    /// a few seconds for Redis).
    pub async fn leave(&self) {
        let (done, rx) = oneshot::channel();
        if self.send(Job::Leave { done }).is_ok() {
            let timeout = async {
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                Err(oneshot::Canceled)
            };
            let _ = futures_lite::future::or(rx, timeout).await;
        }
    }

    pub fn is_me(&self, node: &NodeRecord) -> bool {
        node.id == self.node_id
    }

    /// Whether a request carries this cluster's relay header (it came from a node).
    pub fn relayed(&self, header: Option<&str>) -> bool {
        header.is_some_and(|h| h == self.relay_token)
    }

    pub fn relay_token(&self) -> &str {
        &self.relay_token
    }

    fn send(&self, job: Job) -> Result<(), ClusterError> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                warn!("cluster thread behind: a cluster question was refused");
                ClusterError::Unavailable("cluster thread busy".into())
            }
            TrySendError::Disconnected(_) => ClusterError::Stopped,
        })
    }
}

/// Nodes prove to each other that a request was relayed with a value derived from the
/// API secret they share (clients do not know it), so a client cannot make a node
/// host a room that lives elsewhere.
fn relay_token(secret: &str) -> String {
    let sum = Sha256::digest(format!("corelay relay|{secret}").as_bytes());
    sum.iter().map(|b| format!("{b:02x}")).collect()
}
