//! `--metrics URL`: the server's per-shard forwarded-packet counters and its forwarding
//! latency histogram, read from its Prometheus endpoint at both ends of the steady
//! window, so that the summary can say how the forwarding spread over the shards and
//! how much of the one-way latency the server itself added.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The counter read, one sample per shard.
const FAMILY: &str = "corelay_shard_forwarded_packet_total";
/// The histogram read: a datagram's receipt to the flush of what it forwarded.
const LATENCY_BUCKET: &str = "corelay_forward_latency_seconds_bucket";
/// A metrics page larger than this is not corelay's.
const MAX_PAGE: u64 = 8 << 20;
const TIMEOUT: Duration = Duration::from_secs(3);

/// One reading of the server's metrics page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// `(shard, packets)` for each shard the page lists, by shard number.
    pub forwarded: Vec<(u32, u64)>,
    /// The forwarding latency histogram: `(upper edge in seconds, cumulative count)`
    /// by edge, `+Inf` last.
    pub latency: Vec<(f64, u64)>,
}

pub fn read(url: &str) -> Result<Page, String> {
    let page = fetch(url)?;
    Ok(Page {
        forwarded: parse(&page),
        latency: parse_latency(&page),
    })
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
    let mut out: Vec<(u32, u64)> = samples(page, FAMILY, "shard")
        .filter_map(|(shard, value)| Some((shard.parse().ok()?, value)))
        .collect();
    out.sort_unstable();
    out
}

/// The buckets of the latency histogram in a Prometheus text page.
fn parse_latency(page: &str) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = samples(page, LATENCY_BUCKET, "le")
        .filter_map(|(le, count)| {
            let le = match le {
                "+Inf" => f64::INFINITY,
                _ => le.parse().ok()?,
            };
            Some((le, count))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Each sample of `family` as (its `label`'s value, the sample's value); samples
/// without the label or with a value that is not a number are left out.
fn samples<'a>(
    page: &'a str,
    family: &'a str,
    label: &'a str,
) -> impl Iterator<Item = (&'a str, u64)> + 'a {
    page.lines().filter_map(move |line| {
        let labels = line.strip_prefix(family)?.strip_prefix('{')?;
        let (labels, value) = labels.split_once("} ")?;
        let wanted = labels.split(',').find_map(|l| {
            l.strip_prefix(label)?
                .strip_prefix("=\"")?
                .strip_suffix('"')
        })?;
        let value: f64 = value.trim().parse().ok()?;
        Some((wanted, value as u64))
    })
}

/// For each quantile in `qs`, the upper edge (seconds) of the bucket that holds it
/// among what the histogram counted between two readings; `None` when it counted
/// nothing or the readings do not have the same buckets.
pub fn latency_quantiles(from: &[(f64, u64)], to: &[(f64, u64)], qs: &[f64]) -> Option<Vec<f64>> {
    if from.len() != to.len() || from.iter().zip(to).any(|(a, b)| a.0 != b.0) {
        return None;
    }
    let counted: Vec<(f64, u64)> = (from.iter().zip(to))
        .map(|(a, b)| (b.0, b.1.saturating_sub(a.1)))
        .collect();
    let total = counted.last()?.1;
    if total == 0 {
        return None;
    }
    let edges = qs.iter().map(|q| {
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        counted
            .iter()
            .find(|(_, cumulative)| *cumulative >= rank)
            .map_or(f64::INFINITY, |(le, _)| *le)
    });
    Some(edges.collect())
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
    fn reads_the_latency_buckets_and_their_quantiles_between_readings() {
        let page = |a: u64, b: u64, c: u64| {
            format!(
                "corelay_forward_latency_seconds_bucket{{node_id=\"N\",le=\"0.001\"}} {a}\n\
                 corelay_forward_latency_seconds_bucket{{node_id=\"N\",le=\"+Inf\"}} {c}\n\
                 corelay_forward_latency_seconds_bucket{{node_id=\"N\",le=\"0.005\"}} {b}\n\
                 corelay_forward_latency_seconds_sum{{node_id=\"N\"}} 1.5\n\
                 corelay_shard_forwarded_packet_total{{shard=\"0\"}} 7\n"
            )
        };
        let before = parse_latency(&page(10, 10, 10));
        assert_eq!(before, vec![(0.001, 10), (0.005, 10), (f64::INFINITY, 10)]);
        // Between the readings: 98 under 1 ms, 1 under 5 ms, 1 above.
        let after = parse_latency(&page(108, 109, 110));
        let q = latency_quantiles(&before, &after, &[0.5, 0.99, 0.999]);
        assert_eq!(q, Some(vec![0.001, 0.005, f64::INFINITY]));
        assert_eq!(
            latency_quantiles(&before, &before, &[0.5]),
            None,
            "nothing counted"
        );
        assert_eq!(latency_quantiles(&before, &after[1..], &[0.5]), None);
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
