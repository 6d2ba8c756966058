//! What each node publishes about itself in the registry, refreshed by its heartbeat.
//! A node whose record is older than [`EXPIRY`] is gone (SIGKILL, a lost host); one
//! that is draining stays in the registry but takes no new rooms.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often a node refreshes its record.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A record not refreshed for this long is a dead node's (LiveKit: stats older than 5 s).
pub const EXPIRY: Duration = Duration::from_secs(5);
/// Dead nodes' records are removed from the registry after this long.
pub const FORGET_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Serving,
    ShuttingDown,
}

/// Load figures the node selector sorts and filters by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeStats {
    /// Share of all CPUs busy over the last heartbeat, 0–1.
    pub cpu_load: f32,
    /// 1-minute load average divided by the number of CPUs.
    pub sysload: f32,
    pub num_cpus: u32,
    pub rooms: u32,
    pub clients: u32,
    pub tracks: u32,
    pub bytes_per_sec: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub region: String,
    /// The node's media IP.
    pub ip: String,
    /// `host:port` of its HTTP API: where other nodes relay signalling and Twirp calls.
    pub api: String,
    pub state: NodeState,
    pub stats: NodeStats,
    /// Unix milliseconds of the last heartbeat.
    pub updated_ms: u64,
    pub started_ms: u64,
}

impl NodeRecord {
    /// This node as the registry shows it: its API address as other nodes reach it
    /// (the media IP when the API listens on every address).
    pub fn this_node(
        node: &crate::room::NodeInfo,
        api: Option<std::net::SocketAddr>,
        media_ip: Option<std::net::IpAddr>,
    ) -> NodeRecord {
        let ip = media_ip.map(|ip| ip.to_string()).unwrap_or_default();
        let api = match api {
            Some(a) if a.ip().is_unspecified() => match media_ip {
                Some(ip) => std::net::SocketAddr::new(ip, a.port()).to_string(),
                None => std::net::SocketAddr::new([127, 0, 0, 1].into(), a.port()).to_string(),
            },
            Some(a) => a.to_string(),
            None => String::new(),
        };
        let now = crate::clock::unix_millis();
        NodeRecord {
            id: node.node_id.clone(),
            region: node.region.clone(),
            ip,
            api,
            state: NodeState::Serving,
            stats: NodeStats {
                num_cpus: super::load::num_cpus(),
                ..Default::default()
            },
            updated_ms: now,
            started_ms: now,
        }
    }

    /// Heard from within [`EXPIRY`]: its rooms are live.
    pub fn alive(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.updated_ms) < EXPIRY.as_millis() as u64
    }

    /// Alive and taking new rooms.
    pub fn available(&self, now_ms: u64) -> bool {
        self.alive(now_ms) && self.state == NodeState::Serving
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A record from the registry; `None` for anything else found there.
    pub fn from_json(text: &str) -> Option<NodeRecord> {
        serde_json::from_str(text).ok()
    }
}

/// `corelay list-nodes`: one line per node.
pub fn table(nodes: &[NodeRecord], now_ms: u64) -> String {
    let mut out = format!(
        "{:<18} {:<14} {:<10} {:<21} {:>5} {:>7} {:>6} {:>5} {:>7} {:>12} {:>8}\n",
        "ID",
        "STATE",
        "REGION",
        "API",
        "ROOMS",
        "CLIENTS",
        "TRACKS",
        "CPUS",
        "CPU",
        "BYTES/S",
        "SEEN"
    );
    for n in nodes {
        let state = match (n.alive(now_ms), n.state) {
            (false, _) => "gone",
            (true, NodeState::Serving) => "serving",
            (true, NodeState::ShuttingDown) => "shutting_down",
        };
        out.push_str(&format!(
            "{:<18} {:<14} {:<10} {:<21} {:>5} {:>7} {:>6} {:>5} {:>6.1}% {:>12} {:>7.1}s\n",
            n.id,
            state,
            if n.region.is_empty() { "-" } else { &n.region },
            n.api,
            n.stats.rooms,
            n.stats.clients,
            n.stats.tracks,
            n.stats.num_cpus,
            n.stats.cpu_load * 100.0,
            n.stats.bytes_per_sec,
            now_ms.saturating_sub(n.updated_ms) as f64 / 1000.0,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn record(id: &str, updated_ms: u64) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            region: String::new(),
            ip: "127.0.0.1".into(),
            api: "127.0.0.1:7880".into(),
            state: NodeState::Serving,
            stats: NodeStats::default(),
            updated_ms,
            started_ms: 0,
        }
    }

    #[test]
    fn records_expire_and_draining_nodes_take_no_new_rooms() {
        let mut r = record("ND_a", 10_000);
        assert!(r.available(10_000 + 4_999));
        assert!(!r.alive(10_000 + 5_000));
        r.state = NodeState::ShuttingDown;
        assert!(r.alive(10_000) && !r.available(10_000));
    }

    #[test]
    fn records_round_trip_and_garbage_is_skipped() {
        let r = record("ND_a", 1);
        assert_eq!(NodeRecord::from_json(&r.to_json()), Some(r));
        assert_eq!(NodeRecord::from_json("{\"id\":1}"), None);
        assert_eq!(NodeRecord::from_json("not json"), None);
    }
}
