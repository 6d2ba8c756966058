//! The LiveKit `config.yaml` model. Field names and defaults follow LiveKit's
//! `pkg/config/config.go`; every struct is `#[serde(default)]`, so partial YAML works.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::addr_filter::{AddrFilters, IncludeExclude};
use super::de::{lenient, opt_port, port};

/// The whole server configuration. `Default` gives LiveKit's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RawConfig")]
pub struct Config {
    /// HTTP/WebSocket port. 0 binds an ephemeral port (tests).
    pub port: u16,
    /// Addresses to bind; empty = all interfaces (`0.0.0.0`).
    pub bind_addresses: Vec<String>,
    pub prometheus: PrometheusConfig,
    pub rtc: RtcConfig,
    pub redis: RedisConfig,
    pub turn: TurnConfig,
    /// API key -> secret, after `key_file` and `--keys` are merged in.
    pub keys: BTreeMap<String, String>,
    pub key_file: Option<PathBuf>,
    pub webhook: WebhookConfig,
    pub room: RoomConfig,
    pub logging: LoggingConfig,
    pub region: String,
    pub node_selector: NodeSelectorConfig,
    pub limit: LimitConfig,
    pub development: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 7880,
            bind_addresses: Vec::new(),
            prometheus: PrometheusConfig::default(),
            rtc: RtcConfig::default(),
            redis: RedisConfig::default(),
            turn: TurnConfig::default(),
            keys: BTreeMap::new(),
            key_file: None,
            webhook: WebhookConfig::default(),
            room: RoomConfig::default(),
            logging: LoggingConfig::default(),
            region: String::new(),
            node_selector: NodeSelectorConfig::default(),
            limit: LimitConfig::default(),
            development: false,
        }
    }
}

impl Config {
    /// First and last UDP port for WebRTC media: `rtc.udp_port` when set, otherwise
    /// `rtc.port_range_start..=rtc.port_range_end`.
    pub fn udp_ports(&self) -> (u16, u16) {
        match self.rtc.udp_port {
            Some(r) => (r.start, r.end),
            None => (self.rtc.port_range_start, self.rtc.port_range_end),
        }
    }
}

/// A port or an inclusive port range; `end == start` for a single port.
/// YAML accepts `7882` or `"7882-7892"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange {
            start: port,
            end: port,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PrometheusConfig {
    /// Metrics port; `None` = metrics off. 0 binds an ephemeral port.
    #[serde(deserialize_with = "opt_port")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RtcConfig {
    /// Single port or range for UDP mux; wins over `port_range_start/end`.
    pub udp_port: Option<PortRange>,
    #[serde(deserialize_with = "port")]
    pub port_range_start: u16,
    #[serde(deserialize_with = "port")]
    pub port_range_end: u16,
    /// ICE/TCP port (one per shard from it); 0 disables ICE over TCP.
    #[serde(deserialize_with = "port")]
    pub tcp_port: u16,
    /// `--tcp-port 0`: ICE/TCP on any free port (tests, several servers on one host).
    #[serde(skip)]
    pub tcp_port_any: bool,
    /// Discover the public IP via STUN.
    pub use_external_ip: bool,
    /// IP to advertise in ICE candidates.
    pub node_ip: Option<String>,
    pub stun_servers: Vec<String>,
    pub turn_servers: Vec<TurnServer>,
    /// Interfaces (by name) media is served on; see `AddrFilters`.
    pub interfaces: IncludeExclude,
    /// Local addresses (CIDRs) media is served on.
    pub ips: IncludeExclude,
    /// Steer a participant whose connection failed over UDP to ICE/TCP, then to
    /// TURN/TLS (on when absent, as LiveKit's).
    pub allow_tcp_fallback: Option<bool>,
}

impl RtcConfig {
    /// `interfaces` and `ips`, as address selection applies them.
    pub fn addr_filters(&self) -> AddrFilters {
        AddrFilters {
            interfaces: self.interfaces.clone(),
            ips: self.ips.clone(),
        }
    }

    /// Where ICE/TCP listens: `None` when off, `Some(0)` for any free port.
    pub fn ice_tcp_port(&self) -> Option<u16> {
        match (self.tcp_port_any, self.tcp_port) {
            (true, _) => Some(0),
            (false, 0) => None,
            (false, port) => Some(port),
        }
    }
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            udp_port: None,
            port_range_start: 50000,
            port_range_end: 60000,
            tcp_port: 7881,
            tcp_port_any: false,
            use_external_ip: false,
            node_ip: None,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            interfaces: IncludeExclude::default(),
            ips: IncludeExclude::default(),
            allow_tcp_fallback: None,
        }
    }
}

/// An external TURN server handed to clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TurnServer {
    pub host: String,
    #[serde(deserialize_with = "port")]
    pub port: u16,
    /// `udp`, `tcp` or `tls`.
    pub protocol: String,
    pub username: String,
    pub credential: String,
    /// TURN REST shared secret: clients get time-limited credentials instead of
    /// `username`/`credential`.
    pub secret: String,
    /// A file holding `secret` (read at load; `secret` wins when both are set).
    pub secret_file: Option<PathBuf>,
    /// Lifetime of those credentials in seconds (0: 4 hours, as LiveKit).
    #[serde(deserialize_with = "lenient")]
    pub ttl: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RedisConfig {
    /// `host:port`; `None` = single node, no Redis.
    pub address: Option<String>,
    pub username: String,
    pub password: String,
    pub db: i64,
    pub use_tls: bool,
    pub sentinel_master_name: String,
    pub sentinel_username: String,
    pub sentinel_password: String,
    pub sentinel_addresses: Vec<String>,
    pub cluster_addresses: Vec<String>,
}

/// How a room's node is chosen among the cluster's (`node_selector`, LiveKit's keys
/// and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct NodeSelectorConfig {
    /// `any`, `cpuload`, `sysload` or `regionaware`.
    pub kind: String,
    /// `random`, `sysload`, `cpuload`, `rooms`, `clients`, `tracks` or `bytespersec`.
    pub sort_by: String,
    /// `lowest` or `twochoice`.
    pub algorithm: String,
    pub cpu_load_limit: f32,
    pub sysload_limit: f32,
    pub regions: Vec<RegionConfig>,
}

impl Default for NodeSelectorConfig {
    fn default() -> Self {
        NodeSelectorConfig {
            kind: "any".into(),
            sort_by: "random".into(),
            algorithm: "lowest".into(),
            cpu_load_limit: 0.9,
            sysload_limit: 0.9,
            regions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegionConfig {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

/// The embedded TURN server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TurnConfig {
    pub enabled: bool,
    pub domain: String,
    pub cert_file: String,
    pub key_file: String,
    /// TURN/TLS port; 0 disables TURN/TLS.
    #[serde(deserialize_with = "port")]
    pub tls_port: u16,
    /// TURN/UDP port; 0 disables TURN/UDP.
    #[serde(deserialize_with = "port")]
    pub udp_port: u16,
    #[serde(deserialize_with = "port")]
    pub relay_range_start: u16,
    #[serde(deserialize_with = "port")]
    pub relay_range_end: u16,
    pub external_tls: bool,
    /// Lifetime of the credentials participants are given, seconds (0: 4 hours).
    pub ttl_seconds: u32,
    /// Relay allocations one participant's credentials may hold at once (0: no limit).
    pub per_user_relay_allocation_limit: u32,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            enabled: false,
            domain: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            tls_port: 5349,
            udp_port: 3478,
            relay_range_start: 30000,
            relay_range_end: 40000,
            external_tls: false,
            ttl_seconds: 0,
            per_user_relay_allocation_limit: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Key whose secret signs webhook requests; must be one of `keys`.
    pub api_key: String,
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RoomConfig {
    pub auto_create: bool,
    /// Seconds an unused room stays open.
    pub empty_timeout: u32,
    /// Seconds a room stays open after the last participant leaves.
    pub departure_timeout: u32,
    /// 0 = no limit.
    pub max_participants: u32,
    pub enabled_codecs: Vec<CodecSpec>,
    /// LiveKit's older place for three of the `limit.*` keys: a value other than 0
    /// here wins over `limit`, as in LiveKit (folded in at load).
    #[serde(deserialize_with = "lenient")]
    pub max_metadata_size: u32,
    #[serde(deserialize_with = "lenient")]
    pub max_participant_identity_length: u32,
    #[serde(deserialize_with = "lenient")]
    pub max_room_name_length: u32,
}

impl Default for RoomConfig {
    fn default() -> Self {
        let codec = |mime: &str| CodecSpec {
            mime: mime.to_string(),
            fmtp_line: String::new(),
        };
        RoomConfig {
            auto_create: true,
            empty_timeout: 300,
            departure_timeout: 20,
            max_participants: 0,
            enabled_codecs: [
                "audio/opus",
                "audio/red",
                "video/VP8",
                "video/H264",
                "video/VP9",
                "video/AV1",
            ]
            .into_iter()
            .map(codec)
            .collect(),
            max_metadata_size: 0,
            max_participant_identity_length: 0,
            max_room_name_length: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CodecSpec {
    pub mime: String,
    pub fmtp_line: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LoggingConfig {
    /// `trace`, `debug`, `info`, `warn` or `error` (lower-cased; `warning` reads as `warn`).
    pub level: String,
    pub json: bool,
    /// Accepted for LiveKit compatibility; corelay has no pion.
    pub pion_level: Option<String>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".to_string(),
            json: false,
            pion_level: None,
        }
    }
}

/// Node and participant limits; 0 (or negative, as in LiveKit) = no limit. The
/// defaults are LiveKit's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct LimitConfig {
    #[serde(deserialize_with = "lenient")]
    pub num_tracks: i32,
    #[serde(deserialize_with = "lenient")]
    pub bytes_per_sec: f32,
    #[serde(deserialize_with = "lenient")]
    pub subscription_limit_video: i32,
    #[serde(deserialize_with = "lenient")]
    pub subscription_limit_audio: i32,
    #[serde(deserialize_with = "lenient")]
    pub max_metadata_size: u32,
    #[serde(deserialize_with = "lenient")]
    pub max_attributes_size: u32,
    #[serde(deserialize_with = "lenient")]
    pub max_room_name_length: u32,
    #[serde(deserialize_with = "lenient")]
    pub max_participant_identity_length: u32,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            num_tracks: 0,
            bytes_per_sec: 0.0,
            subscription_limit_video: 0,
            subscription_limit_audio: 0,
            max_metadata_size: 512 * 1024,
            max_attributes_size: 64 * 1024,
            max_room_name_length: 256,
            max_participant_identity_length: 256,
        }
    }
}

/// What the YAML holds before legacy keys are folded in: `Config` plus LiveKit's deprecated
/// top-level `prometheus_port` and `log_level`, and whether `logging.level` was written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct RawConfig {
    #[serde(deserialize_with = "port")]
    port: u16,
    bind_addresses: Vec<String>,
    prometheus: PrometheusConfig,
    #[serde(deserialize_with = "opt_port")]
    prometheus_port: Option<u16>,
    rtc: RtcConfig,
    redis: RedisConfig,
    turn: TurnConfig,
    keys: BTreeMap<String, String>,
    key_file: Option<PathBuf>,
    webhook: WebhookConfig,
    room: RoomConfig,
    logging: RawLogging,
    log_level: Option<String>,
    region: String,
    node_selector: NodeSelectorConfig,
    limit: LimitConfig,
    development: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawLogging {
    level: Option<String>,
    json: bool,
    pion_level: Option<String>,
}

impl Default for RawConfig {
    fn default() -> Self {
        let c = Config::default();
        RawConfig {
            port: c.port,
            bind_addresses: c.bind_addresses,
            prometheus: c.prometheus,
            prometheus_port: None,
            rtc: c.rtc,
            redis: c.redis,
            turn: c.turn,
            keys: c.keys,
            key_file: c.key_file,
            webhook: c.webhook,
            room: c.room,
            logging: RawLogging::default(),
            log_level: None,
            region: c.region,
            node_selector: c.node_selector,
            limit: c.limit,
            development: c.development,
        }
    }
}

impl RawConfig {
    /// Whether the document set the log level (`logging.level` or legacy `log_level`).
    pub(crate) fn sets_log_level(&self) -> bool {
        self.logging.level.is_some() || self.log_level.is_some()
    }
}

impl From<RawConfig> for Config {
    fn from(raw: RawConfig) -> Self {
        let level = raw
            .log_level
            .or(raw.logging.level)
            .map(|l| normalize_level(&l))
            .unwrap_or_else(|| LoggingConfig::default().level);
        let limit = fold_legacy_limits(raw.limit, &raw.room);
        Config {
            port: raw.port,
            bind_addresses: raw.bind_addresses,
            prometheus: PrometheusConfig {
                port: raw.prometheus.port.or(raw.prometheus_port),
            },
            rtc: raw.rtc,
            redis: raw.redis,
            turn: raw.turn,
            keys: raw.keys,
            key_file: raw.key_file,
            webhook: raw.webhook,
            room: raw.room,
            logging: LoggingConfig {
                level,
                json: raw.logging.json,
                pion_level: raw.logging.pion_level,
            },
            region: raw.region,
            node_selector: raw.node_selector,
            limit,
            development: raw.development,
        }
    }
}

fn fold_legacy_limits(mut limit: LimitConfig, room: &RoomConfig) -> LimitConfig {
    let legacy = [
        (room.max_metadata_size, &mut limit.max_metadata_size),
        (
            room.max_participant_identity_length,
            &mut limit.max_participant_identity_length,
        ),
        (room.max_room_name_length, &mut limit.max_room_name_length),
    ];
    for (old, new) in legacy {
        if old != 0 {
            *new = old;
        }
    }
    limit
}

fn normalize_level(level: &str) -> String {
    let level = level.trim().to_ascii_lowercase();
    if level == "warning" {
        "warn".to_string()
    } else {
        level
    }
}
