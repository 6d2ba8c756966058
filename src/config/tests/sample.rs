//! The repo-root config-sample.yaml parses, validates and documents real defaults.

use super::*;

const SAMPLE: &str = include_str!("../../../config-sample.yaml");

/// The sample with every commented-out `key: value` / list line switched on.
fn uncommented_sample() -> String {
    let mut out = String::new();
    for line in SAMPLE.lines() {
        let Some(rest) = line.strip_prefix("# ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let body = rest.trim_start();
        let is_key = body.split_once(':').is_some_and(|(k, v)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && (v.is_empty() || v.starts_with(' '))
        });
        if is_key || body.starts_with("- ") || body.starts_with('#') {
            out.push_str(rest);
            out.push('\n');
        }
    }
    out
}

#[test]
fn config_sample_parses_and_validates() {
    let loaded = parse_yaml(SAMPLE, "config-sample.yaml").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.port, 7880);
    // The placeholder secret must be replaced by the operator...
    let err = validate(&loaded.config, "config-sample.yaml");
    assert!(err.is_ok() || err.unwrap_err().to_string().contains("keys.APIkey1"));
    // ...and with a real one it validates.
    let filled = SAMPLE.replace(
        "replace-with-a-secret-of-at-least-32-characters",
        "Zr8xQ2pLw9vN4kT7yB1mC6dF3hJ5sG0a",
    );
    let loaded = parse_yaml(&filled, "config-sample.yaml").unwrap();
    validate(&loaded.config, "config-sample.yaml").unwrap();
}

#[test]
fn config_sample_documents_only_modelled_keys() {
    let text = uncommented_sample();
    let loaded = parse_yaml(&text, "uncommented").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    let d = Config::default();
    // The documented defaults are the real ones.
    assert_eq!(c.room, d.room);
    assert_eq!(c.limit, d.limit);
    assert_eq!(c.turn, d.turn);
    assert_eq!(c.logging.level, d.logging.level);
    assert_eq!(c.rtc.tcp_port, d.rtc.tcp_port);
    assert_eq!(
        (c.rtc.port_range_start, c.rtc.port_range_end),
        (d.rtc.port_range_start, d.rtc.port_range_end)
    );
    assert_eq!(c.rtc.udp_port, Some(PortRange::single(7882)));
    assert_eq!(c.webhook.api_key, "APIkey1");
    validate(c, "uncommented").unwrap();
}
