//! `--metrics URL`: the server's per-shard forwarded-packet counters, read from its
//! Prometheus endpoint at both ends of the steady window, so that the summary can say
//! how the forwarding spread over the shards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The counter read, one sample per shard.
const FAMILY: &str = "corelay_shard_forwarded_packet_total";
/// A metrics page larger than this is not corelay's.
const MAX_PAGE: u64 = 8 << 20;
const TIMEOUT: Duration = Duration::from_secs(3);

/// `(shard, packets)` for each shard the page lists, by shard number.
pub fn forwarded_per_shard(url: &str) -> Result<Vec<(u32, u64)>, String> {
    Ok(parse(&fetch(url)?))
}

/// A plain HTTP/1.0 GET of an `http://host:port/path` URL (the metrics listener
/// speaks nothing else); the body.
fn fetch(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{host}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut page = String::new();
    stream
        .take(MAX_PAGE)
        .read_to_string(&mut page)
        .map_err(|e| format!("{url}: {e}"))?;
    let (head, body) = page
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(format!("{url}: {status}"));
    }
    Ok(body.to_string())
}

/// The samples of `FAMILY` in a Prometheus text page.
fn parse(page: &str) -> Vec<(u32, u64)> {
    let mut out: Vec<(u32, u64)> = page
        .lines()
        .filter_map(|line| {
            let labels = line.strip_prefix(FAMILY)?.strip_prefix('{')?;
            let (labels, value) = labels.split_once("} ")?;
            let shard = labels
                .split(',')
                .find_map(|l| l.strip_prefix("shard=\""))?
                .strip_suffix('"')?
                .parse()
                .ok()?;
            let value: f64 = value.trim().parse().ok()?;
            Some((shard, value as u64))
        })
        .collect();
    out.sort_unstable();
    out
}

/// Per shard, what was forwarded between two readings (shards missing from either
/// are left out).
pub fn delta(from: &[(u32, u64)], to: &[(u32, u64)]) -> Vec<(u32, u64)> {
    to.iter()
        .filter_map(|&(shard, b)| {
            let a = from.iter().find(|(s, _)| *s == shard)?.1;
            Some((shard, b.saturating_sub(a)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_per_shard_counter_and_nothing_else() {
        let page = "# HELP corelay_shard_forwarded_packet_total x\n\
             # TYPE corelay_shard_forwarded_packet_total counter\n\
             corelay_shard_forwarded_packet_total{node_id=\"N\",node_type=\"SERVER\",shard=\"1\"} 25\n\
             corelay_shard_forwarded_packet_total{node_id=\"N\",node_type=\"SERVER\",shard=\"0\"} 150000\n\
             corelay_forwarded_packet_total{node_id=\"N\",node_type=\"SERVER\"} 150025\n\
             corelay_shard_forwarded_packet_total{shard=\"x\"} 3\n\
             corelay_shard_forwarded_packet_total{shard=\"2\"} garbage\n";
        assert_eq!(parse(page), vec![(0, 150_000), (1, 25)]);
        assert!(parse("").is_empty());
    }

    #[test]
    fn the_delta_is_per_shard_present_in_both() {
        let a = [(0, 100), (1, 50)];
        let b = [(0, 400), (1, 50), (2, 9)];
        assert_eq!(delta(&a, &b), vec![(0, 300), (1, 0)]);
    }

    #[test]
    fn bad_urls_are_errors() {
        assert!(fetch("https://127.0.0.1:1/metrics").is_err());
        assert!(fetch("http://").is_err());
    }
}
