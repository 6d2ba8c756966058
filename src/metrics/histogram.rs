//! A shards' latency histogram (`shard::latency`) as a Prometheus histogram in seconds.

use std::fmt::Write as _;

use crate::shard::latency::{LatencyHistogram, BUCKETS_US};

/// Prometheus text for one histogram family in seconds: `_bucket` lines with `le`
/// (ending in `+Inf`, equal to `_count`), `_sum` and `_count`, labelled `labels`.
pub fn render(h: &LatencyHistogram, out: &mut String, name: &str, help: &str, labels: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (edge, count) in BUCKETS_US.iter().zip(h.cumulative()) {
        let le = *edge as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
    }
    let count = h.count();
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let sum = h.sum_us() as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_prometheus_histogram_in_seconds() {
        let mut h = LatencyHistogram::default();
        h.record_us(250);
        h.record_us(3_000_000);
        let mut text = String::new();
        render(&h, &mut text, "x_seconds", "help", "n=\"1\"");
        assert!(text.starts_with("# HELP x_seconds help\n# TYPE x_seconds histogram\n"));
        assert!(text.contains("x_seconds_bucket{n=\"1\",le=\"0.00001\"} 0\n"));
        assert!(text.contains("x_seconds_bucket{n=\"1\",le=\"0.00025\"} 1\n"));
        assert!(text.contains("x_seconds_bucket{n=\"1\",le=\"1\"} 1\n"));
        assert!(text.contains("x_seconds_bucket{n=\"1\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("x_seconds_sum{n=\"1\"} 3.00025\n"));
        assert!(text.contains("x_seconds_count{n=\"1\"} 2\n"));
    }
}
