//! The store against a real `redis-server` (started on a free loopback port; the test
//! is skipped when the binary is missing, as `scripts/test` installs it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::record::{NodeRecord, NodeState, NodeStats};
use super::store::Store;
use crate::config::{NodeSelectorConfig, RedisConfig};

struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn config(&self) -> RedisConfig {
        RedisConfig {
            address: Some(format!("127.0.0.1:{}", self.port)),
            ..Default::default()
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn me(id: &str) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        region: String::new(),
        ip: "127.0.0.1".into(),
        api: "127.0.0.1:1".into(),
        state: NodeState::Serving,
        stats: NodeStats::default(),
        updated_ms: crate::clock::unix_millis(),
        started_ms: 0,
    }
}

#[test]
fn two_nodes_placing_one_room_agree_and_a_release_is_the_owners_only() {
    let Some(redis) = RedisServer::start() else {
        eprintln!("redis-server not available: skipped");
        return;
    };
    let store = |id: &str| {
        Store::new(&redis.config(), NodeSelectorConfig::default(), me(id)).expect("store")
    };
    let (mut a, mut b) = (store("ND_a"), store("ND_b"));
    a.heartbeat_now();
    b.heartbeat_now();
    // Both read "no owner" and claim at once: the claim that lands second gets the first.
    assert_eq!(a.claim("room", "", "ND_a").expect("claim"), "ND_a");
    assert_eq!(b.claim("room", "", "ND_b").expect("claim"), "ND_a");
    assert_eq!(b.place_now("room").expect("placed").id, "ND_a");
    // Only the owner's release removes the mapping.
    b.release_now("room");
    assert_eq!(b.owner("room").expect("owner").as_deref(), Some("ND_a"));
    a.release_now("room");
    assert_eq!(b.owner("room").expect("owner"), None);
    // Gone Redis: an error at once, not a hang.
    drop(redis);
    assert!(a.place_now("other").is_err());
}
