//! Parsing: defaults, LiveKit compatibility, unknown keys, value forms, syntax errors.

use super::*;

#[test]
fn defaults_match_livekit() {
    let c = Config::default();
    assert_eq!(c.port, 7880);
    assert!(c.bind_addresses.is_empty());
    assert_eq!(c.prometheus.port, None);
    assert_eq!(c.rtc.udp_port, None);
    assert_eq!(
        (c.rtc.port_range_start, c.rtc.port_range_end),
        (50000, 60000)
    );
    assert_eq!(c.udp_ports(), (50000, 60000));
    assert_eq!(c.rtc.tcp_port, 7881);
    assert!(!c.rtc.use_external_ip);
    assert_eq!(c.redis.address, None);
    assert!(!c.turn.enabled);
    assert_eq!((c.turn.tls_port, c.turn.udp_port), (5349, 3478));
    assert!(c.room.auto_create);
    assert_eq!((c.room.empty_timeout, c.room.departure_timeout), (300, 20));
    assert_eq!(c.room.max_participants, 0);
    let mimes: Vec<&str> = c
        .room
        .enabled_codecs
        .iter()
        .map(|c| c.mime.as_str())
        .collect();
    assert_eq!(
        mimes,
        [
            "audio/opus",
            "audio/red",
            "video/VP8",
            "video/H264",
            "video/VP9",
            "video/AV1"
        ]
    );
    assert_eq!(c.logging.level, "info");
    assert!(!c.logging.json);
    assert_eq!(c.limit, LimitConfig::default());
    assert!(!c.development);

    // An empty or comment-only document is the defaults, with no warnings.
    for doc in ["", "# nothing\n\n---\n"] {
        let loaded = parse(doc);
        assert_eq!(loaded.config, c);
        assert!(loaded.warnings.is_empty());
    }
    // Partial sections keep the other defaults; empty sections are fine.
    let loaded = parse("rtc:\n  tcp_port: 9000\nroom:\nkeys:\n");
    assert_eq!(loaded.config.rtc.tcp_port, 9000);
    assert_eq!(loaded.config.rtc.port_range_start, 50000);
    assert_eq!(loaded.config.room, RoomConfig::default());
}

/// A representative chunk of LiveKit's config-sample.yaml with its optional sections on.
const LIVEKIT_SAMPLE: &str = r#"
port: 7880
redis:
  address: redis.host:6379
  db: 0
  username: myuser
  password: mypassword
  sentinel_master_name: livekit
  sentinel_addresses:
  - livekit-redis-node-0.livekit-redis-headless:26379
  tls:
    enabled: true
    insecure: false
  cluster_addresses:
  - livekit-redis-node-0.livekit-redis-headless:6379
rtc:
  port_range_start: 50000
  port_range_end: 60000
  tcp_port: 7881
  use_external_ip: true
  node_ip: 10.1.2.3
  udp_port: 7882-7892
  use_ice_lite: true
  stun_servers:
    - server1
  turn_servers:
    - host: myhost.com
      port: 443
      protocol: tls
      username: ""
      credential: ""
  congestion_control:
    enabled: true
    allow_pause: true
  allow_tcp_fallback: true
  packet_buffer_size_video: 500
  packet_buffer_size_audio: 200
  pli_throttle:
    low_quality: 500ms
    mid_quality: 1s
    high_quality: 1s
  enable_loopback_candidate: true
  interfaces:
    includes:
      - en0
    excludes:
      - docker0
  ips:
    includes:
      - 10.0.0.0/16
  use_mdns: true
  strict_acks: true
  batch_io:
     batch_size: 128
     max_flush_interval: 2ms
  data_channel_max_buffered_amount: 0
prometheus_port: 6789
keys:
  key1: secret1
  key2: secret2
logging:
  level: info
  pion_level: error
  json: false
  sample: false
room:
  auto_create: false
  empty_timeout: 300
  departure_timeout: 20
  max_participants: 0
  enabled_codecs:
    - mime: audio/opus
    - mime: video/vp8
  enable_remote_unmute: true
  playout_delay:
    enabled: true
    min: 100
    max: 2000
  sync_streams: true
webhook:
  api_key: key1
  urls:
    - https://your-host.com/handler
signal_relay:
  retry_timeout: 30s
  stream_buffer_size: 1000
psrpc:
  max_attempts: 3
audio:
  active_level: 30
  min_percentile: 40
  active_red_encoding: true
turn:
  enabled: false
  udp_port: 3478
  tls_port: 5349
  relay_range_start: 1024
  relay_range_end: 30000
  external_tls: true
  domain: turn.myhost.com
ingress:
  rtmp_base_url: "rtmp://my.domain.com/live"
region: us-west-2
node_selector:
  kind: sysload
  sort_by: sysload
  sysload_limit: 0.7
  regions:
    - name: us-west-2
      lat: 44.19434095976287
      lon: -123.0674908379146
limit:
  num_tracks: -1
  bytes_per_sec: 1_000_000_000
  subscription_limit_video: 0
  subscription_limit_audio: 0
  max_metadata_size: 0
  max_attributes_size: 0
  max_room_name_length: 0
  max_participant_identity_length: 0
"#;

#[test]
fn livekit_sample_parses() {
    let loaded = parse(LIVEKIT_SAMPLE);
    let c = &loaded.config;
    assert_eq!(c.redis.address.as_deref(), Some("redis.host:6379"));
    assert_eq!(c.redis.sentinel_master_name, "livekit");
    assert_eq!(
        c.rtc.udp_port,
        Some(PortRange {
            start: 7882,
            end: 7892
        })
    );
    assert_eq!(c.udp_ports(), (7882, 7892));
    assert_eq!(c.rtc.node_ip.as_deref(), Some("10.1.2.3"));
    assert_eq!(c.rtc.turn_servers[0].port, 443);
    assert_eq!(c.prometheus.port, Some(6789));
    assert_eq!(c.keys.len(), 2);
    assert!(!c.room.auto_create);
    assert_eq!(c.room.enabled_codecs[1].mime, "video/vp8");
    assert_eq!(c.turn.relay_range_start, 1024);
    assert_eq!(c.region, "us-west-2");
    assert_eq!(c.node_selector.kind, "sysload");
    assert_eq!(c.node_selector.sysload_limit, 0.7);
    assert_eq!(c.node_selector.algorithm, "lowest", "LiveKit's default");
    assert_eq!(c.node_selector.regions[0].name, "us-west-2");
    assert_eq!(c.limit.num_tracks, -1);
    assert_eq!(c.limit.bytes_per_sec, 1e9);

    // Real LiveKit keys are "not supported yet", never "unknown".
    assert!(!loaded.warnings.is_empty());
    for w in &loaded.warnings {
        assert!(
            w.contains("is not supported by corelay yet, ignored"),
            "{w}"
        );
    }
    for key in ["rtc.congestion_control", "redis.tls", "audio"] {
        let expected = format!("config.yaml: '{key}' is not supported by corelay yet, ignored");
        assert!(
            loaded.warnings.contains(&expected),
            "{key}: {:?}",
            loaded.warnings
        );
    }
}

#[test]
fn unknown_keys_warn_with_dotted_path() {
    let loaded =
        parse("rtc:\n  udp_prot: 7882\n  turn_servers:\n    - host: a\n      hots: b\nbogus: 1\n");
    assert_eq!(
        loaded.warnings,
        [
            "config.yaml: unknown key 'rtc.udp_prot' ignored",
            "config.yaml: unknown key 'rtc.turn_servers[0].hots' ignored",
            "config.yaml: unknown key 'bogus' ignored",
        ]
    );
    assert_eq!(loaded.config.rtc.turn_servers[0].host, "a");
}

#[test]
fn udp_port_int_range_and_errors() {
    let c = parse("rtc:\n  udp_port: 7882\n").config;
    assert_eq!(c.rtc.udp_port, Some(PortRange::single(7882)));
    assert_eq!(c.udp_ports(), (7882, 7882));
    let c = parse("rtc:\n  udp_port: \"7882-7892\"\n").config;
    assert_eq!(
        c.rtc.udp_port,
        Some(PortRange {
            start: 7882,
            end: 7892
        })
    );
    assert_eq!(PortRange { start: 1, end: 2 }.to_string(), "1-2");

    let err = parse_yaml("rtc:\n  udp_port: 78x2\n", "config.yaml").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("config.yaml: line 2 column "), "{msg}");
    assert!(msg.contains("rtc.udp_port"), "{msg}");
    assert!(
        msg.contains("'78x2' is not a port or a port range"),
        "{msg}"
    );

    let msg = validate_err(&format!(
        "keys: {{k: {SECRET}}}\nrtc:\n  udp_port: 7892-7882\n"
    ));
    assert_eq!(
        msg,
        "config.yaml: rtc.udp_port (7892-7882) starts after it ends"
    );
}

#[test]
fn prometheus_port_legacy() {
    assert_eq!(
        parse("prometheus_port: 6789\n").config.prometheus.port,
        Some(6789)
    );
    let c = parse("prometheus_port: 6789\nprometheus:\n  port: 9100\n").config;
    assert_eq!(c.prometheus.port, Some(9100));
    assert!(parse("prometheus_port: 6789\n").warnings.is_empty());
}

#[test]
fn logging_level_normalized_and_legacy_log_level() {
    assert_eq!(
        parse("logging:\n  level: WARNING\n").config.logging.level,
        "warn"
    );
    assert_eq!(parse("log_level: debug\n").config.logging.level, "debug");
}

#[test]
fn bad_yaml_reports_line_and_column() {
    let err = parse_yaml("port: 7880\nrtc:\n  tcp_port: [1\n", "config.yaml").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("config.yaml: line "), "{msg}");
    assert!(
        matches!(err, ConfigError::Parse { line: Some(_), .. }),
        "{err:?}"
    );

    let err = parse_yaml("port: 7880\nrtc:\n  tcp_port: lots\n", "--config-body").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("--config-body: line 3 column 13: rtc.tcp_port: invalid type"),
        "{msg}"
    );
    assert!(!msg.contains(" at line "), "{msg}");
}
