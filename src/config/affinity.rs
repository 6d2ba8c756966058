//! `core-affinity.toml`: which core runs the control thread and which cores run shards.
//!
//! ```toml
//! control_core = 0   # HTTP, WebSocket, API
//! shard_cores = []   # empty = every core except control_core
//! shards = 0         # 0 = one shard per shard core
//! spread_after = 100 # a room's participants on its home shard before joins go
//!                    # to other shards too (broadcast rooms); 0 = never
//! ```

use std::path::Path;

use serde::Deserialize;

use super::error::{line_column, ConfigError};

/// The parsed `core-affinity.toml`; absent keys take the defaults below.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AffinityFile {
    /// Core for the control thread; `None` = core 0.
    pub control_core: Option<usize>,
    /// Cores for shards; empty = every available core except `control_core`.
    pub shard_cores: Vec<usize>,
    /// Number of shards; 0 = one per shard core. More shards than cores reuse cores.
    pub shards: usize,
    /// Participants of one room on its home shard before new ones go to the least
    /// loaded shard (the room then spans shards, see `room::spread`); `None` = 100,
    /// 0 = a room stays on one shard.
    pub spread_after: Option<usize>,
}

/// A room's participants on one core before it spreads: below this, relaying between
/// shards costs more than the core it frees.
pub const DEFAULT_SPREAD_AFTER: usize = 100;

impl AffinityFile {
    pub fn spread_after(&self) -> usize {
        self.spread_after.unwrap_or(DEFAULT_SPREAD_AFTER)
    }
}

/// Where each thread runs: one `shard_cores` entry per shard (cores may repeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadPlan {
    pub control_core: usize,
    pub shard_cores: Vec<usize>,
}

/// Reads `path`. A missing file gives the defaults; unknown keys are logged as warnings.
pub fn load_affinity(path: &Path) -> Result<AffinityFile, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AffinityFile::default()),
        Err(e) => {
            return Err(ConfigError::Read {
                what: path.display().to_string(),
                source: e,
            })
        }
    };
    let (file, warnings) = parse_affinity(&text, &path.display().to_string())?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(file)
}

/// Parses the text of a `core-affinity.toml`; returns the file and unknown-key warnings.
/// `origin` names the file in messages.
pub fn parse_affinity(
    text: &str,
    origin: &str,
) -> Result<(AffinityFile, Vec<String>), ConfigError> {
    let mut unknown = Vec::new();
    let de = toml::Deserializer::new(text);
    let file: AffinityFile = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
        .map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_column(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            ConfigError::Parse {
                origin: origin.to_string(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
    let warnings = unknown
        .into_iter()
        .map(|key| format!("{origin}: unknown key '{key}' ignored"))
        .collect();
    Ok((file, warnings))
}

/// Configured cores this process may not run on (not in `allowed`, the CPU ids of its
/// affinity mask); `plan_threads` drops them, so the caller can log them.
pub fn dropped_cores(file: &AffinityFile, allowed: &[usize]) -> Vec<usize> {
    let allowed = usable(allowed);
    let mut dropped: Vec<usize> = file
        .control_core
        .into_iter()
        .chain(file.shard_cores.iter().copied())
        .filter(|c| !allowed.contains(c))
        .collect();
    dropped.sort_unstable();
    dropped.dedup();
    dropped
}

/// `allowed`, or CPU 0 when the mask could not be read.
fn usable(allowed: &[usize]) -> Vec<usize> {
    if allowed.is_empty() {
        vec![0]
    } else {
        allowed.to_vec()
    }
}

/// Turns the file into a plan. Core numbers are CPU ids, as `taskset` and cpusets name
/// them; `allowed` is the CPU ids this process may run on (at least CPU 0 assumed).
/// Always yields at least one shard; cores not allowed are dropped (see `dropped_cores`).
pub fn plan_threads(file: &AffinityFile, allowed: &[usize]) -> ThreadPlan {
    let allowed = usable(allowed);
    let control_core = file
        .control_core
        .filter(|c| allowed.contains(c))
        .unwrap_or(allowed[0]);

    let mut cores: Vec<usize> = Vec::new();
    for &c in &file.shard_cores {
        if allowed.contains(&c) && !cores.contains(&c) {
            cores.push(c);
        }
    }
    if cores.is_empty() {
        // Nothing listed (or nothing usable): every allowed core but the control core.
        cores = allowed
            .iter()
            .copied()
            .filter(|&c| c != control_core)
            .collect();
    }
    if cores.is_empty() {
        // One core: control and the shard share it.
        cores.push(control_core);
    }

    let shards = if file.shards == 0 {
        cores.len()
    } else {
        file.shards
    };
    let shard_cores = (0..shards).map(|i| cores[i % cores.len()]).collect();
    ThreadPlan {
        control_core,
        shard_cores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(file: &AffinityFile, cores: usize) -> (usize, Vec<usize>) {
        let allowed: Vec<usize> = (0..cores).collect();
        let p = plan_threads(file, &allowed);
        (p.control_core, p.shard_cores)
    }

    fn dropped(file: &AffinityFile, cores: usize) -> Vec<usize> {
        let allowed: Vec<usize> = (0..cores).collect();
        dropped_cores(file, &allowed)
    }

    #[test]
    fn core_numbers_are_cpu_ids_of_the_affinity_mask() {
        // Started with `taskset -c 4-7`.
        let allowed = [4, 5, 6, 7];
        let p = plan_threads(&AffinityFile::default(), &allowed);
        assert_eq!((p.control_core, p.shard_cores), (4, vec![5, 6, 7]));
        let f = AffinityFile {
            control_core: Some(7),
            shard_cores: vec![5, 6, 1],
            shards: 0,
            ..Default::default()
        };
        let p = plan_threads(&f, &allowed);
        assert_eq!((p.control_core, p.shard_cores), (7, vec![5, 6]));
        assert_eq!(
            dropped_cores(&f, &allowed),
            vec![1],
            "CPU 1 is outside the mask"
        );
    }

    #[test]
    fn default_plans() {
        let d = AffinityFile::default();
        assert_eq!(plan(&d, 1), (0, vec![0]));
        assert_eq!(plan(&d, 2), (0, vec![1]));
        assert_eq!(plan(&d, 8), (0, vec![1, 2, 3, 4, 5, 6, 7]));
        // 0 reported cores is treated as 1.
        assert_eq!(plan(&d, 0), (0, vec![0]));
    }

    #[test]
    fn explicit_files() {
        let f = AffinityFile {
            control_core: Some(3),
            shard_cores: vec![],
            shards: 0,
            ..Default::default()
        };
        assert_eq!(plan(&f, 4), (3, vec![0, 1, 2]));

        let f = AffinityFile {
            control_core: Some(0),
            shard_cores: vec![2, 4, 6],
            shards: 0,
            ..Default::default()
        };
        assert_eq!(plan(&f, 8), (0, vec![2, 4, 6]));
        // More shards than cores: round robin.
        let f = AffinityFile { shards: 5, ..f };
        assert_eq!(plan(&f, 8), (0, vec![2, 4, 6, 2, 4]));
        // Fewer shards than cores: the first ones.
        let f = AffinityFile { shards: 2, ..f };
        assert_eq!(plan(&f, 8), (0, vec![2, 4]));
        // Two shards on a single core machine share core 0 with control.
        let f = AffinityFile {
            shards: 2,
            ..AffinityFile::default()
        };
        assert_eq!(plan(&f, 1), (0, vec![0, 0]));
    }

    #[test]
    fn missing_cores_are_dropped() {
        let f = AffinityFile {
            control_core: Some(9),
            shard_cores: vec![1, 5, 12, 1],
            shards: 0,
            ..Default::default()
        };
        assert_eq!(plan(&f, 4), (0, vec![1]));
        assert_eq!(dropped(&f, 4), vec![5, 9, 12]);
        // Every listed core missing: fall back to the default set.
        let f = AffinityFile {
            control_core: None,
            shard_cores: vec![10, 11],
            shards: 0,
            ..Default::default()
        };
        assert_eq!(plan(&f, 3), (0, vec![1, 2]));
        assert_eq!(dropped(&f, 3), vec![10, 11]);
    }

    #[test]
    fn parses_repo_file_and_reports_unknown_keys() {
        let (file, warnings) = parse_affinity(
            include_str!("../../core-affinity.toml"),
            "core-affinity.toml",
        )
        .unwrap();
        assert_eq!(
            file,
            AffinityFile {
                control_core: Some(0),
                shard_cores: vec![],
                shards: 0,
                spread_after: Some(100),
            }
        );
        assert!(warnings.is_empty(), "{warnings:?}");

        let (file, warnings) = parse_affinity(
            "control_core = 1\nshard_cores = [2, 3]\nshard = 4\n",
            "a.toml",
        )
        .unwrap();
        assert_eq!(file.control_core, Some(1));
        assert_eq!(file.shard_cores, vec![2, 3]);
        assert_eq!(
            warnings,
            vec!["a.toml: unknown key 'shard' ignored".to_string()]
        );
    }

    #[test]
    fn bad_toml_names_the_file_and_line() {
        let err = parse_affinity("control_core = 0\nshards = \"many\"\n", "ca.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("ca.toml: line 2 column "), "{msg}");
        let err = parse_affinity("control_core = = 0\n", "ca.toml").unwrap_err();
        assert!(err.to_string().starts_with("ca.toml: line 1"), "{err}");
    }

    #[test]
    fn missing_file_is_default() {
        let file = load_affinity(Path::new("/nonexistent/corelay/core-affinity.toml")).unwrap();
        assert_eq!(file, AffinityFile::default());
    }
}
