//! Tests for loading, overrides and validation. No network, no sleeps; key files live in
//! per-test directories under the system temp dir.

use std::path::PathBuf;

use super::*;

mod load;
mod parse;
mod sample;
mod validate;

pub(super) const SECRET: &str = "0123456789abcdef0123456789abcdef";

pub(super) fn parse(yaml: &str) -> Loaded {
    parse_yaml(yaml, "config.yaml").unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn body(yaml: &str) -> LoadOptions {
    LoadOptions {
        config_body: Some(yaml.to_string()),
        ..LoadOptions::default()
    }
}

pub(super) fn load_err(opts: &LoadOptions) -> String {
    load(opts).unwrap_err().to_string()
}

pub(super) fn validate_err(yaml: &str) -> String {
    let loaded = parse(yaml);
    validate(&loaded.config, "config.yaml")
        .unwrap_err()
        .to_string()
}

/// A fresh directory for one test's files.
pub(super) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("corelay-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
