//! The cluster thread: the only Redis client of a node. It owns one connection (with
//! short timeouts, reconnecting at most every second), refreshes the node's record on
//! each heartbeat, and answers placement questions for the control thread, which never
//! blocks on Redis. When Redis is unreachable every question fails at once with
//! [`ClusterError::Unavailable`] and the node keeps serving what it hosts; when Redis
//! returns the node registers again and re-asserts its rooms.
//!
//! Keys: `corelay:nodes` (hash: node id → [`NodeRecord`] JSON) and
//! `corelay:room_node_map` (hash: room → node id). A room is placed with a
//! compare-and-set script, so two nodes asked at once agree on one node.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use futures_channel::oneshot;
use tracing::{info, warn};

use super::load::{self, CpuSample};
use super::record::{NodeRecord, NodeState, NodeStats, FORGET_AFTER, HEARTBEAT};
use super::selector::select;
use super::ClusterError;
use crate::config::{NodeSelectorConfig, RedisConfig};

pub const NODES_KEY: &str = "corelay:nodes";
pub const ROOMS_KEY: &str = "corelay:room_node_map";

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const IO_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, questions fail at once for this long instead of each waiting for
/// a connect timeout.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Sets `room`'s node to ARGV[3] if it is still ARGV[2] ('' for none); returns the
/// node the room ends up on.
const CLAIM: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then cur = '' end
if cur == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return ARGV[3]
end
return cur
";

/// Removes `room`'s mapping only if it still names this node.
const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
";

pub enum Job {
    /// The room's node: the one it is on if that node is alive, else a new choice.
    Place {
        room: String,
        reply: oneshot::Sender<Result<NodeRecord, ClusterError>>,
    },
    /// The room's node if it has a live one.
    Lookup {
        room: String,
        reply: oneshot::Sender<Result<Option<NodeRecord>, ClusterError>>,
    },
    /// Every live node.
    Nodes {
        reply: oneshot::Sender<Result<Vec<NodeRecord>, ClusterError>>,
    },
    /// A room of this node ended.
    Release { room: String },
    /// This node's figures and rooms, from the control thread.
    Local {
        stats: NodeStats,
        rooms: Vec<String>,
    },
    /// Draining: leave the registry and release this node's rooms, then stop
    /// heartbeats.
    Leave { done: oneshot::Sender<()> },
}

pub struct Store {
    client: redis::Client,
    con: Option<redis::Connection>,
    failed_at: Option<Instant>,
    /// Connected since the last heartbeat: re-assert this node's rooms.
    reconnected: bool,
    me: NodeRecord,
    rooms: Vec<String>,
    selector: NodeSelectorConfig,
    cpu: Option<CpuSample>,
    beats: u64,
    /// Drained: no more heartbeats.
    left: bool,
}

/// `redis://[user:password@]host:port/db` (`rediss://` with `use_tls`).
pub fn url(config: &RedisConfig) -> Option<String> {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let address = config.address.as_deref()?;
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let auth = match (config.username.is_empty(), config.password.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!(":{}@", enc(&config.password)),
        (false, _) => format!("{}:{}@", enc(&config.username), enc(&config.password)),
    };
    let scheme = if config.use_tls { "rediss" } else { "redis" };
    Some(format!("{scheme}://{auth}{address}/{}", config.db))
}

fn client(config: &RedisConfig) -> Result<redis::Client, ClusterError> {
    let url = url(config).ok_or_else(|| ClusterError::Config("no redis.address".into()))?;
    redis::Client::open(url).map_err(|e| ClusterError::Config(e.to_string()))
}

pub fn unix_ms() -> u64 {
    crate::clock::unix_millis()
}

impl Store {
    pub fn new(
        config: &RedisConfig,
        selector: NodeSelectorConfig,
        me: NodeRecord,
    ) -> Result<Store, ClusterError> {
        Ok(Store {
            client: client(config)?,
            con: None,
            failed_at: None,
            reconnected: false,
            me,
            rooms: Vec::new(),
            selector,
            cpu: CpuSample::read(),
            beats: 0,
            left: false,
        })
    }

    pub fn run(mut self, jobs: Receiver<Job>) {
        let mut next_beat = crate::clock::mono();
        loop {
            let now = crate::clock::mono();
            if now >= next_beat {
                self.heartbeat();
                next_beat = now + HEARTBEAT;
            }
            match jobs.recv_timeout(next_beat.saturating_duration_since(now)) {
                Ok(job) => self.handle(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // The process is ending: leave the registry now instead of at expiry.
        let id = self.me.id.clone();
        let _ = self.query(|c| redis::cmd("HDEL").arg(NODES_KEY).arg(&id).query::<()>(c));
    }

    fn handle(&mut self, job: Job) {
        match job {
            Job::Place { room, reply } => {
                let _ = reply.send(self.place(&room));
            }
            Job::Lookup { room, reply } => {
                let _ = reply.send(self.lookup(&room));
            }
            Job::Nodes { reply } => {
                let now = unix_ms();
                let live = (self.nodes()).map(|n| n.into_iter().filter(|n| n.alive(now)).collect());
                let _ = reply.send(live);
            }
            Job::Release { room } => {
                let id = self.me.id.clone();
                let _ = self.query(|c| {
                    redis::Script::new(RELEASE)
                        .key(ROOMS_KEY)
                        .arg(&room)
                        .arg(&id)
                        .invoke::<i64>(c)
                });
            }
            Job::Local { stats, rooms } => {
                let cpu_load = self.me.stats.cpu_load;
                let sysload = self.me.stats.sysload;
                self.me.stats = NodeStats {
                    cpu_load,
                    sysload,
                    num_cpus: load::num_cpus(),
                    ..stats
                };
                self.rooms = rooms;
            }
            Job::Leave { done } => {
                self.me.state = NodeState::ShuttingDown;
                self.left = true;
                let (id, rooms) = (self.me.id.clone(), self.rooms.clone());
                let left = self.query(|c| {
                    let mut pipe = redis::pipe();
                    pipe.cmd("HDEL").arg(NODES_KEY).arg(&id).ignore();
                    for room in &rooms {
                        (pipe.invoke_script(
                            redis::Script::new(RELEASE)
                                .key(ROOMS_KEY)
                                .arg(room)
                                .arg(&id),
                        ))
                        .ignore();
                    }
                    pipe.query::<()>(c)
                });
                info!(node = %id, ok = left.is_ok(), "draining: left the cluster");
                let _ = done.send(());
            }
        }
    }

    fn heartbeat(&mut self) {
        if self.left {
            return;
        }
        if let Some(now) = CpuSample::read() {
            if let Some(before) = self.cpu.replace(now) {
                self.me.stats.cpu_load = now.load_since(&before);
            }
        }
        self.me.stats.sysload = load::sysload();
        self.me.updated_ms = unix_ms();
        let (id, json) = (self.me.id.clone(), self.me.to_json());
        if self
            .query(|c| {
                redis::cmd("HSET")
                    .arg(NODES_KEY)
                    .arg(&id)
                    .arg(&json)
                    .query::<()>(c)
            })
            .is_err()
        {
            return;
        }
        if std::mem::take(&mut self.reconnected) && !self.rooms.is_empty() {
            // Redis may have lost our rooms (a restart without persistence): claim them
            // back unless another node took one meanwhile.
            let rooms = self.rooms.clone();
            let _ = self.query(|c| {
                let mut pipe = redis::pipe();
                for room in &rooms {
                    pipe.cmd("HSETNX")
                        .arg(ROOMS_KEY)
                        .arg(room)
                        .arg(&id)
                        .ignore();
                }
                pipe.query::<()>(c)
            });
            info!(rooms = rooms.len(), "registered again; rooms re-asserted");
        }
        self.beats += 1;
        if self.beats.is_multiple_of(10) {
            self.forget_dead_nodes();
        }
    }

    fn forget_dead_nodes(&mut self) {
        let now = unix_ms();
        let Ok(nodes) = self.nodes() else {
            return;
        };
        let dead: Vec<String> = (nodes.into_iter())
            .filter(|n| now.saturating_sub(n.updated_ms) > FORGET_AFTER.as_millis() as u64)
            .map(|n| n.id)
            .collect();
        if !dead.is_empty() {
            let _ = self.query(|c| redis::cmd("HDEL").arg(NODES_KEY).arg(&dead).query::<()>(c));
        }
    }

    /// Every record in the registry (dead ones included), this node's as it is now.
    fn nodes(&mut self) -> Result<Vec<NodeRecord>, ClusterError> {
        let mut nodes = self.query(registry)?;
        nodes.retain(|n| n.id != self.me.id);
        nodes.push(self.me.clone());
        Ok(nodes)
    }

    /// The node `room` is mapped to, alive or not.
    pub(super) fn owner(&mut self, room: &str) -> Result<Option<String>, ClusterError> {
        self.query(|c| redis::cmd("HGET").arg(ROOMS_KEY).arg(room).query(c))
    }

    /// Maps `room` to `node` if it is still mapped to `expected` ('' for none); the
    /// node it ends up on.
    pub(super) fn claim(
        &mut self,
        room: &str,
        expected: &str,
        node: &str,
    ) -> Result<String, ClusterError> {
        self.query(|c| {
            redis::Script::new(CLAIM)
                .key(ROOMS_KEY)
                .arg(room)
                .arg(expected)
                .arg(node)
                .invoke(c)
        })
    }

    fn lookup(&mut self, room: &str) -> Result<Option<NodeRecord>, ClusterError> {
        let Some(owner) = self.owner(room)? else {
            return Ok(None);
        };
        let now = unix_ms();
        Ok(self
            .nodes()?
            .into_iter()
            .find(|n| n.id == owner && n.alive(now)))
    }

    fn place(&mut self, room: &str) -> Result<NodeRecord, ClusterError> {
        let now = unix_ms();
        let nodes = self.nodes()?;
        let owner = self.owner(room)?;
        if let Some(n) = (owner.as_ref()).and_then(|o| nodes.iter().find(|n| &n.id == o)) {
            if n.alive(now) {
                return Ok(n.clone());
            }
        }
        let available: Vec<NodeRecord> = (nodes.iter())
            .filter(|n| n.available(now))
            .cloned()
            .collect();
        let mut random = |n: usize| rand::random_range(0..n.max(1));
        let chosen = select(&available, &self.selector, &self.me.region, &mut random)
            .ok_or(ClusterError::NoNode)?
            .clone();
        let winner = self.claim(room, owner.as_deref().unwrap_or_default(), &chosen.id)?;
        if winner == chosen.id {
            info!(%room, node = %chosen.id, "room placed");
            return Ok(chosen);
        }
        // Another node placed it first: theirs, if that node is alive.
        (nodes.into_iter())
            .find(|n| n.id == winner && n.alive(now))
            .ok_or(ClusterError::NoNode)
    }

    /// Runs one command, connecting first if needed; an error drops the connection.
    fn query<T>(
        &mut self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, ClusterError> {
        if self.con.is_none() {
            let now = crate::clock::mono();
            if (self.failed_at).is_some_and(|at| now.saturating_duration_since(at) < RETRY_EVERY) {
                return Err(ClusterError::Unavailable("redis unreachable".into()));
            }
            match self.client.get_connection_with_timeout(CONNECT_TIMEOUT) {
                Ok(con) => {
                    let _ = con.set_read_timeout(Some(IO_TIMEOUT));
                    let _ = con.set_write_timeout(Some(IO_TIMEOUT));
                    if self.failed_at.take().is_some() {
                        info!("redis reachable again");
                    }
                    self.con = Some(con);
                    self.reconnected = true;
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        let Some(con) = self.con.as_mut() else {
            return Err(ClusterError::Unavailable("redis unreachable".into()));
        };
        f(con).map_err(|e| self.failed(e))
    }

    fn failed(&mut self, e: redis::RedisError) -> ClusterError {
        if self.failed_at.is_none() {
            warn!(error = %e, "redis unreachable: serving the rooms of this node only");
        }
        self.con = None;
        self.failed_at = Some(crate::clock::mono());
        ClusterError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
impl Store {
    pub(super) fn heartbeat_now(&mut self) {
        self.heartbeat();
    }

    pub(super) fn place_now(&mut self, room: &str) -> Result<NodeRecord, ClusterError> {
        self.place(room)
    }

    pub(super) fn release_now(&mut self, room: &str) {
        self.handle(Job::Release { room: room.into() });
    }
}

/// Reads the registry once (`corelay list-nodes`).
pub fn list_nodes(config: &RedisConfig) -> Result<Vec<NodeRecord>, ClusterError> {
    let mut con = client(config)?
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
    let mut nodes = registry(&mut con).map_err(|e| ClusterError::Unavailable(e.to_string()))?;
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(nodes)
}

/// Every node record in the registry (entries that are not records skipped).
fn registry(con: &mut redis::Connection) -> redis::RedisResult<Vec<NodeRecord>> {
    let raw: Vec<(String, String)> = redis::cmd("HGETALL").arg(NODES_KEY).query(con)?;
    Ok((raw.iter())
        .filter_map(|(_, json)| NodeRecord::from_json(json))
        .collect())
}
