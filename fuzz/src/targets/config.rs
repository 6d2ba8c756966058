//! config.yaml, as `--config-body` passes it, then validated.

use corelay::config::{parse_yaml, validate};

pub fn yaml(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    if let Ok(loaded) = parse_yaml(text, "fuzz") {
        let _ = validate(&loaded.config, "fuzz");
    }
}
