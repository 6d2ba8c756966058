//! This host's load for the registry: CPU busy share between two samples of
//! `/proc/stat`, and the 1-minute load average per CPU from `/proc/loadavg`.

/// Busy and total jiffies of all CPUs at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    busy: u64,
    total: u64,
}

impl CpuSample {
    pub fn read() -> Option<CpuSample> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        parse_stat(&text)
    }

    /// Share of CPU time busy between `earlier` and `self`, 0–1.
    pub fn load_since(&self, earlier: &CpuSample) -> f32 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f32 / total as f32
    }
}

/// The first `cpu` line: user nice system idle iowait irq softirq steal …
fn parse_stat(text: &str) -> Option<CpuSample> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = (line.split_whitespace().skip(1))
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some(CpuSample {
        busy: total.saturating_sub(idle),
        total,
    })
}

pub fn num_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// 1-minute load average divided by the number of CPUs.
pub fn sysload() -> f32 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let one: f32 = (text.split_whitespace().next())
        .and_then(|f| f.parse().ok())
        .unwrap_or(0.0);
    one / num_cpus() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_between_two_samples() {
        let a = parse_stat("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n").unwrap();
        let b = parse_stat("cpu  200 0 200 1200 100 0 0 0 0 0\n").unwrap();
        assert!((b.load_since(&a) - 200.0 / 700.0).abs() < 1e-6);
        assert_eq!(a.load_since(&a), 0.0);
        assert!(parse_stat("garbage").is_none());
    }
}
