//! The node selector (`node_selector`), as LiveKit's: which available node a new room
//! goes to. `kind` filters (CPU load or system load under its limit, or the region
//! nearest to the node asked), then `sort_by` and `algorithm` pick: the lowest, or the
//! lower of two chosen at random. When no node is under a limit, all are candidates.

use crate::config::NodeSelectorConfig;

use super::record::{NodeRecord, NodeStats};

/// Picks a room's node among `nodes` (all available). `current_region` is the region
/// of the node that was asked; `random(n)` returns an index below `n`.
pub fn select<'a>(
    nodes: &'a [NodeRecord],
    config: &NodeSelectorConfig,
    current_region: &str,
    random: &mut impl FnMut(usize) -> usize,
) -> Option<&'a NodeRecord> {
    let all: Vec<&NodeRecord> = nodes.iter().collect();
    let under = |limit: f32, load: fn(&NodeStats) -> f32| -> Vec<&'a NodeRecord> {
        let under: Vec<&NodeRecord> = nodes.iter().filter(|n| load(&n.stats) < limit).collect();
        if under.is_empty() {
            all.clone()
        } else {
            under
        }
    };
    let candidates = match config.kind.to_ascii_lowercase().as_str() {
        "cpuload" => under(config.cpu_load_limit, |s| s.cpu_load),
        "sysload" => under(config.sysload_limit, |s| s.sysload),
        "regionaware" => nearest_region(
            under(config.sysload_limit, |s| s.sysload),
            config,
            current_region,
        ),
        _ => all.clone(),
    };
    pick(&candidates, config, random)
}

fn pick<'a>(
    candidates: &[&'a NodeRecord],
    config: &NodeSelectorConfig,
    random: &mut impl FnMut(usize) -> usize,
) -> Option<&'a NodeRecord> {
    if candidates.is_empty() {
        return None;
    }
    let key: fn(&NodeStats) -> f64 = match config.sort_by.to_ascii_lowercase().as_str() {
        "sysload" => |s| f64::from(s.sysload),
        "cpuload" => |s| f64::from(s.cpu_load),
        "rooms" => |s| f64::from(s.rooms),
        "clients" => |s| f64::from(s.clients),
        "tracks" => |s| f64::from(s.tracks),
        "bytespersec" => |s| s.bytes_per_sec as f64,
        _ => return Some(candidates[random(candidates.len())]),
    };
    if config.algorithm.eq_ignore_ascii_case("twochoice") && candidates.len() > 1 {
        let a = random(candidates.len());
        let mut b = random(candidates.len() - 1);
        if b >= a {
            b += 1;
        }
        let (a, b) = (candidates[a], candidates[b]);
        return Some(if key(&b.stats) < key(&a.stats) { b } else { a });
    }
    // Lowest; ties go to the node with the smallest id, so a choice is repeatable.
    candidates.iter().copied().min_by(|a, b| {
        key(&a.stats)
            .total_cmp(&key(&b.stats))
            .then_with(|| a.id.cmp(&b.id))
    })
}

/// The candidates in the configured region nearest to `current_region` (great-circle
/// distance); all of them when regions are not configured or none matches.
fn nearest_region<'a>(
    candidates: Vec<&'a NodeRecord>,
    config: &NodeSelectorConfig,
    current_region: &str,
) -> Vec<&'a NodeRecord> {
    let coords = |name: &str| {
        (config.regions.iter())
            .find(|r| r.name == name)
            .map(|r| (r.lat, r.lon))
    };
    let Some(here) = coords(current_region) else {
        return candidates;
    };
    let distance = |n: &NodeRecord| coords(&n.region).map(|there| haversine_km(here, there));
    let Some(nearest) = (candidates.iter())
        .filter_map(|n| distance(n))
        .min_by(f64::total_cmp)
    else {
        return candidates;
    };
    (candidates.into_iter())
        .filter(|n| distance(n) == Some(nearest))
        .collect()
}

fn haversine_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::record::NodeState;
    use crate::config::RegionConfig;

    fn node(id: &str, region: &str, stats: NodeStats) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            region: region.into(),
            ip: "127.0.0.1".into(),
            api: "127.0.0.1:7880".into(),
            state: NodeState::Serving,
            stats,
            updated_ms: 0,
            started_ms: 0,
        }
    }

    fn config(kind: &str, sort_by: &str, algorithm: &str) -> NodeSelectorConfig {
        NodeSelectorConfig {
            kind: kind.into(),
            sort_by: sort_by.into(),
            algorithm: algorithm.into(),
            regions: vec![
                RegionConfig {
                    name: "us-west".into(),
                    lat: 37.64,
                    lon: -120.99,
                },
                RegionConfig {
                    name: "us-east".into(),
                    lat: 40.71,
                    lon: -74.0,
                },
                RegionConfig {
                    name: "eu".into(),
                    lat: 50.11,
                    lon: 8.68,
                },
            ],
            ..Default::default()
        }
    }

    fn rooms(n: u32) -> NodeStats {
        NodeStats {
            rooms: n,
            ..Default::default()
        }
    }

    fn first(_: usize) -> usize {
        0
    }

    #[test]
    fn lowest_sorts_by_the_chosen_figure() {
        let nodes = [
            node("a", "", rooms(3)),
            node("b", "", rooms(1)),
            node("c", "", rooms(2)),
        ];
        let picked = select(&nodes, &config("any", "rooms", "lowest"), "", &mut first);
        assert_eq!(picked.map(|n| n.id.as_str()), Some("b"));
        let picked = select(&nodes, &config("any", "random", "lowest"), "", &mut |n| {
            n - 1
        });
        assert_eq!(picked.map(|n| n.id.as_str()), Some("c"));
    }

    #[test]
    fn twochoice_takes_the_lower_of_two_random_nodes() {
        let nodes = [
            node("a", "", rooms(3)),
            node("b", "", rooms(1)),
            node("c", "", rooms(2)),
        ];
        // Draws a (0) then c (index 1 of the rest): c has fewer rooms.
        let mut draws = [0, 1].into_iter();
        let picked = select(
            &nodes,
            &config("any", "rooms", "twochoice"),
            "",
            &mut |_| draws.next().unwrap_or(0),
        );
        assert_eq!(picked.map(|n| n.id.as_str()), Some("c"));
    }

    #[test]
    fn load_limits_filter_unless_every_node_is_over() {
        let load = |cpu: f32, sys: f32| NodeStats {
            cpu_load: cpu,
            sysload: sys,
            ..Default::default()
        };
        let nodes = [
            node("busy", "", load(0.95, 0.1)),
            node("idle", "", load(0.2, 0.95)),
        ];
        let cpu = select(
            &nodes,
            &config("cpuload", "random", "lowest"),
            "",
            &mut first,
        );
        assert_eq!(cpu.map(|n| n.id.as_str()), Some("idle"));
        let sys = select(
            &nodes,
            &config("sysload", "random", "lowest"),
            "",
            &mut first,
        );
        assert_eq!(sys.map(|n| n.id.as_str()), Some("busy"));
        let both = [
            node("x", "", load(0.95, 0.95)),
            node("y", "", load(0.99, 0.99)),
        ];
        let any = select(
            &both,
            &config("cpuload", "cpuload", "lowest"),
            "",
            &mut first,
        );
        assert_eq!(
            any.map(|n| n.id.as_str()),
            Some("x"),
            "all over: all candidates"
        );
    }

    #[test]
    fn regionaware_prefers_the_nearest_region_to_the_node_asked() {
        let nodes = [
            node("frankfurt", "eu", rooms(0)),
            node("virginia", "us-east", rooms(5)),
            node("oregon", "us-west", rooms(9)),
        ];
        let cfg = config("regionaware", "rooms", "lowest");
        let from = |region| select(&nodes, &cfg, region, &mut first).map(|n| n.id.clone());
        assert_eq!(from("us-west").as_deref(), Some("oregon"));
        assert_eq!(from("us-east").as_deref(), Some("virginia"));
        assert_eq!(from("eu").as_deref(), Some("frankfurt"));
        // An unknown region: every node, by load.
        assert_eq!(from("mars").as_deref(), Some("frankfurt"));
        assert!(select(&[], &cfg, "eu", &mut first).is_none());
    }
}
