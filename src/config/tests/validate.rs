//! Validation messages name the key and the source.

use super::*;

#[test]
fn validation_errors_name_key_and_source() {
    let keys = format!("keys:\n  k: {SECRET}\n");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{keys}rtc:\n  port_range_start: 0\n"),
            "config.yaml: rtc.port_range_start (0) is not a valid port (1-65535)",
        ),
        (
            format!("{keys}rtc:\n  ips:\n    excludes: [10.0.0.0/8, eth0]\n"),
            "config.yaml: rtc.ips.excludes[1] ('eth0') must be a CIDR such as 10.0.0.0/8 or an IP",
        ),
        (
            format!("{keys}rtc:\n  port_range_start: 60001\n"),
            "config.yaml: rtc.port_range_start (60001) is greater than rtc.port_range_end (60000)",
        ),
        (
            "keys: {}\n".to_string(),
            "config.yaml: keys: no API keys configured: set keys, key_file, --keys or \
             LIVEKIT_KEYS (or use --dev)",
        ),
        (
            "keys:\n  devkey: secret\n".to_string(),
            "config.yaml: keys.devkey: secret is shorter than 32 characters (use --dev for \
             short development secrets)",
        ),
        (
            format!("{keys}webhook:\n  urls: [https://x.example/hook]\n"),
            "config.yaml: webhook.api_key must be set when webhook.urls is not empty",
        ),
        (
            format!("{keys}webhook:\n  api_key: other\n  urls: [https://x.example/hook]\n"),
            "config.yaml: webhook.api_key ('other') is not one of the configured keys",
        ),
        (
            format!("{keys}webhook:\n  api_key: k\n  urls: [ftp://x]\n"),
            "config.yaml: webhook.urls[0] ('ftp://x') must start with http:// or https://",
        ),
        (
            format!("{keys}logging:\n  level: loud\n"),
            "config.yaml: logging.level ('loud') must be one of trace, debug, info, warn, error",
        ),
        (
            format!("{keys}rtc:\n  turn_servers:\n    - host: t\n      port: 3478\n      protocol: sctp\n"),
            "config.yaml: rtc.turn_servers[0].protocol ('sctp') must be udp, tcp or tls",
        ),
        (
            format!("{keys}room:\n  enabled_codecs:\n    - mime: vp8\n"),
            "config.yaml: room.enabled_codecs[0].mime ('vp8') must look like audio/opus or video/VP8",
        ),
        (
            format!("{keys}turn:\n  enabled: true\n"),
            "config.yaml: turn.domain must be set when turn.enabled and turn.tls_port is not 0",
        ),
    ];
    for (yaml, expected) in cases {
        assert_eq!(validate_err(&yaml), expected, "for:\n{yaml}");
    }
    let err = validate(&parse("keys: {}\n").config, "config.yaml").unwrap_err();
    assert_eq!(err.key(), Some("keys"));

    // Ports above 65535 are caught while parsing, still naming key and source.
    let msg = parse_yaml("rtc:\n  port_range_start: 70000\n", "config.yaml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "config.yaml: line 2 column 21: rtc.port_range_start: 70000 is not a valid port (0-65535)"
    );

    // `port` and `prometheus.port` may be 0; short secrets are fine in development.
    let ok = parse("port: 0\nprometheus:\n  port: 0\ndevelopment: true\nkeys:\n  a: b\n");
    validate(&ok.config, "config.yaml").unwrap();
}
