//! Runs the `loadtest` binary end to end against a corelay it starts (port 0), and
//! against broken endpoints. Checks behaviour (tracks received, error kinds, JSON
//! fields, exit codes), never timings.
//!
//! The corelay binary is not built here: `CORELAY_BIN`, else `<workspace>/target/debug/corelay`
//! (build it first with `cargo build --bin corelay`).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn corelay_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CORELAY_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug/corelay")
}

struct Server {
    child: Child,
    url: String,
    /// Its Prometheus endpoint, once printed (when a config gave it `prometheus_port`).
    metrics: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("loadtest-e2e-{}-{name}", std::process::id()))
}

fn start_corelay(tag: &str) -> Server {
    start_corelay_with(tag, &[])
}

/// As `start_corelay`, with more arguments (a config, a core-affinity file).
fn start_corelay_with(tag: &str, extra: &[&str]) -> Server {
    let bin = corelay_bin();
    assert!(
        bin.exists(),
        "corelay binary not found at {} (set CORELAY_BIN or run `cargo build --bin corelay` first)",
        bin.display()
    );
    let log = tmp(&format!("{tag}-corelay.log"));
    let mut child = Command::new(&bin)
        .args(["--dev", "--port", "0", "--udp-port", "0", "--tcp-port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let (metrics_tx, metrics_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("corelay listening on http://127.0.0.1:") {
                let _ = tx.send(rest.trim().to_owned());
            }
            if let Some(url) = line.strip_prefix("corelay metrics on ") {
                if url.starts_with("http://127.0.0.1:") {
                    let _ = metrics_tx.send(url.trim().to_owned());
                }
            }
        }
    });
    let port = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(p) => p,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "corelay did not print its listening address; log {}:\n{}",
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    Server {
        child,
        url: format!("ws://127.0.0.1:{port}"),
        metrics: metrics_rx,
        log,
    }
}

fn loadtest(url: &str, extra: &[&str], json: &PathBuf) -> (Output, Value) {
    let _ = std::fs::remove_file(json);
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["--url", url, "--quiet", "--json"])
        .arg(json)
        .args(extra)
        .env_remove("LIVEKIT_URL")
        .env_remove("LIVEKIT_API_KEY")
        .env_remove("LIVEKIT_API_SECRET")
        .output()
        .expect("run loadtest");
    let text = std::fs::read_to_string(json).unwrap_or_else(|e| {
        panic!(
            "no JSON summary at {} ({e}); stdout:\n{}\nstderr:\n{}",
            json.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v: Value = serde_json::from_str(&text).expect("summary is JSON");
    (out, v)
}

fn check_fields(v: &Value) {
    for f in [
        "tracks_expected",
        "tracks_received",
        "packets_sent",
        "packets_received",
        "loss_pct",
        "latency_ms",
        "read_latency_ms",
        "join_ms",
        "errors",
        "server_cpu_us_per_packet",
    ] {
        assert!(v.get(f).is_some(), "summary lacks {f}: {v}");
    }
    for q in ["p50", "p99", "p999"] {
        assert!(v["latency_ms"].get(q).is_some(), "latency_ms lacks {q}");
    }
    for q in ["p50", "p99"] {
        assert!(v["join_ms"].get(q).is_some(), "join_ms lacks {q}");
    }
    assert!(v["errors"].is_object());
}

/// One publisher, two subscribers, on the given signal path.
fn end_to_end(signal: &str) {
    let server = start_corelay(signal);
    let json = tmp(&format!("ok-{signal}.json"));
    let pid = server.child.id().to_string();
    let (out, v) = loadtest(
        &server.url,
        &[
            "--rooms",
            "1",
            "--pubs",
            "1",
            "--subs",
            "2",
            "--duration",
            "5",
            "--server-pid",
            &pid,
            "--signal",
            signal,
        ],
        &json,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = format!(
        "stdout:\n{stdout}\nstderr:\n{}\ncorelay log: {}",
        String::from_utf8_lossy(&out.stderr),
        server.log.display()
    );
    check_fields(&v);
    assert!(stdout.contains("== loadtest summary =="), "{ctx}");
    // one video track, seen by the two subscribers
    assert_eq!(v["tracks_expected"], 2, "{ctx}");
    assert_eq!(v["tracks_received"], v["tracks_expected"], "{ctx}");
    assert_eq!(v["participants"]["connected"], 3, "{ctx}");
    assert!(v["packets_sent"].as_u64().unwrap() > 0, "{ctx}");
    assert!(v["packets_received"].as_u64().unwrap() > 0, "{ctx}");
    assert!(v["latency_ms"]["p50"].is_number(), "{ctx}");
    // every packet arrives (kernel stamp) before loadtest reads it, so each quantile of
    // the one is at most that of the other; both count every packet
    let (arrival, read) = (&v["latency_ms"], &v["read_latency_ms"]);
    assert_eq!(arrival["count"], read["count"], "{ctx}");
    for q in ["p50", "p99", "max"] {
        let (a, r) = (arrival[q].as_f64().unwrap(), read[q].as_f64().unwrap());
        assert!(a <= r, "{q}: arrival {a} ms after read {r} ms: {ctx}");
    }
    assert!(v["join_ms"]["p50"].is_number(), "{ctx}");
    assert!(v["first_media_ms"]["p50"].is_number(), "{ctx}");
    assert_eq!(v["config"]["signal"], signal, "{ctx}");
    assert!(v["server_cpu_s"].is_number(), "{ctx}");
    assert_eq!(v["errors"], serde_json::json!({}), "{ctx}");
    // no simulcast: one layer
    assert_eq!(v["layers"]["ended_on"]["single"], 2, "{ctx}");
    assert!(out.status.success(), "{ctx}");
    let _ = std::fs::remove_file(json);
}

/// Two shards, two rooms (the directory puts one on each): `--metrics` reports what
/// each shard forwarded.
#[test]
fn forwarding_is_reported_per_shard() {
    let dir = tmp("two-shards");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (config, affinity) = (dir.join("config.yaml"), dir.join("core-affinity.toml"));
    std::fs::write(&config, "prometheus_port: 0\n").expect("config");
    std::fs::write(&affinity, "shards = 2\n").expect("affinity");
    let server = start_corelay_with(
        "two-shards",
        &[
            "--config",
            config.to_str().expect("utf-8 path"),
            "--core-affinity",
            affinity.to_str().expect("utf-8 path"),
        ],
    );
    let metrics = server
        .metrics
        .recv_timeout(Duration::from_secs(10))
        .expect("corelay printed its metrics URL");
    let json = tmp("two-shards.json");
    let (out, v) = loadtest(
        &server.url,
        &[
            "--rooms",
            "2",
            "--pubs",
            "1",
            "--subs",
            "2",
            "--duration",
            "4",
            "--metrics",
            &metrics,
        ],
        &json,
    );
    let ctx = format!(
        "stdout:\n{}\ncorelay log: {}",
        String::from_utf8_lossy(&out.stdout),
        server.log.display()
    );
    assert!(out.status.success(), "{ctx}");
    assert_eq!(v["errors"], serde_json::json!({}), "{ctx}");
    let shards = v["steady"]["forwarded_per_shard"]
        .as_array()
        .unwrap_or_else(|| panic!("no forwarded_per_shard: {ctx}"));
    assert_eq!(shards.len(), 2, "{ctx}");
    for s in shards {
        assert!(
            s["packets"].as_u64().unwrap_or(0) > 0,
            "both shards forward: {ctx}"
        );
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("forwarded       shard 0"));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(json);
}

#[test]
fn runs_end_to_end_against_corelay_on_v1() {
    end_to_end("v1");
}

#[test]
fn runs_end_to_end_against_corelay_on_v0() {
    end_to_end("v0");
}

#[test]
fn simulcast_subscribers_get_the_quality_they_ask_for() {
    let server = start_corelay("simulcast");
    let json = tmp("simulcast.json");
    // one constrained subscriber, on a link wide enough for the low layer
    let (out, v) = loadtest(
        &server.url,
        &[
            "--pubs",
            "1",
            "--subs",
            "2",
            "--simulcast",
            "--sub-quality",
            "low",
            "--constrained-subs",
            "1",
            "--constrain-kbps",
            "3000",
            "--duration",
            "3",
        ],
        &json,
    );
    let ctx = format!(
        "stdout:\n{}\nstderr:\n{}\ncorelay log: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log.display()
    );
    check_fields(&v);
    assert_eq!(v["config"]["simulcast"], "on", "{ctx}");
    assert_eq!(v["tracks_expected"], 2, "{ctx}");
    assert_eq!(v["tracks_received"], v["tracks_expected"], "{ctx}");
    assert_eq!(v["errors"], serde_json::json!({}), "{ctx}");
    // both subscribers asked for LOW: they end on rid q
    let layers = &v["layers"];
    assert_eq!(layers["tracks"], 2, "{ctx}");
    assert_eq!(layers["ended_on"]["q"], 2, "{ctx}");
    assert!(layers["packets"]["q"].as_u64().unwrap_or(0) > 0, "{ctx}");
    for side in ["constrained", "unconstrained"] {
        assert_eq!(v[side]["subs"], 1, "{side}: {ctx}");
        assert!(v[side]["layers"].is_object(), "{side}: {ctx}");
        assert!(v[side]["loss_pct"].is_number(), "{side}: {ctx}");
    }
    assert!(
        v["constrained"]["shaper"]["datagrams_passed"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{ctx}"
    );
    assert!(out.status.success(), "{ctx}");
    let _ = std::fs::remove_file(json);
}

#[test]
fn bad_keys_are_counted_as_unauthorized() {
    let server = start_corelay("badkeys");
    let json = tmp("badkeys.json");
    let (out, v) = loadtest(
        &server.url,
        &[
            "--api-secret",
            "not-the-secret",
            "--pubs",
            "1",
            "--subs",
            "1",
            "--duration",
            "1",
        ],
        &json,
    );
    check_fields(&v);
    assert_eq!(out.status.code(), Some(1), "nothing connected: exit 1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("== loadtest summary =="));
    assert_eq!(v["errors"]["unauthorized"], 2, "{v}");
    assert_eq!(v["tracks_received"], 0);
    assert_eq!(v["participants"]["connected"], 0);
    assert!(v["server_cpu_us_per_packet"].is_null());
    let _ = std::fs::remove_file(json);
}

#[test]
fn refused_and_dropped_connections_are_counted() {
    // nothing listens: connection refused
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let json = tmp("refused.json");
    let (out, v) = loadtest(
        &format!("ws://127.0.0.1:{port}"),
        &["--subs", "2", "--duration", "1"],
        &json,
    );
    check_fields(&v);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["errors"]["connect_refused"], 3, "{v}");

    // a server that accepts and hangs up at once
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    let (out, v) = loadtest(&url, &["--subs", "1", "--duration", "1"], &json);
    check_fields(&v);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["errors"]["connection_dropped"], 2, "{v}");

    // not a ws:// URL
    let (out, v) = loadtest("wss://127.0.0.1:1", &["--duration", "1"], &json);
    check_fields(&v);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["errors"]["bad_url"], 2, "{v}");
    let _ = std::fs::remove_file(json);
}
