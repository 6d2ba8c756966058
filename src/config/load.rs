//! Where a configuration comes from and in which order the sources win:
//! defaults < `--config-body` or `--config` file < `key_file` < `--keys` < flags
//! (`--bind`, `--port`, `--node-ip`, `--udp-port`, `--redis-host`) < `--dev` defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::model::{Config, PortRange, RawConfig};
use super::validate::validate_with_origins;

/// What the CLI hands over; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--config` / `LIVEKIT_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// `--config-body`: YAML text; wins over `config_file` if both are given.
    pub config_body: Option<String>,
    /// `--keys` / `LIVEKIT_KEYS`: `"key1: secret1\nkey2: secret2"`.
    pub keys: Option<String>,
    /// `--dev`.
    pub dev: bool,
    /// `--bind` (repeatable); replaces `bind_addresses` when non-empty.
    pub bind: Vec<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--node-ip` -> `rtc.node_ip`.
    pub node_ip: Option<String>,
    /// `--udp-port` `"7882"` or `"7882-7892"` -> `rtc.udp_port`.
    pub udp_port: Option<String>,
    /// `--tcp-port` -> `rtc.tcp_port`; 0 picks a free port (as `--port 0` does),
    /// where `rtc.tcp_port: 0` in a config turns ICE/TCP off, as in LiveKit.
    pub tcp_port: Option<u16>,
    /// `--redis-host` -> `redis.address`.
    pub redis_host: Option<String>,
}

/// A loaded configuration and the warnings (unknown keys, loose key_file permissions) to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// The development key pair `--dev` installs when no keys are configured.
pub const DEV_API_KEY: &str = "devkey";
pub const DEV_API_SECRET: &str = "secret";
/// UDP port `--dev` uses when none is configured.
pub const DEV_UDP_PORT: u16 = 7882;

const KEYS_FLAG: &str = "--keys";

/// Loads the configuration from every source in `opts`, applies overrides, validates it.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let (text, source) = if let Some(body) = &opts.config_body {
        (body.clone(), "--config-body".to_string())
    } else if let Some(path) = &opts.config_file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            what: format!("config file {}", path.display()),
            source: e,
        })?;
        (text, path.display().to_string())
    } else {
        (String::new(), "command line".to_string())
    };

    let (raw, mut warnings) = parse_raw(&text, &source)?;
    let level_set = raw.sets_log_level();
    let mut config = Config::from(raw);

    // Which source each key came from, so a short secret names the right one.
    let mut key_origins: BTreeMap<String, String> = config
        .keys
        .keys()
        .map(|k| (k.clone(), source.clone()))
        .collect();

    if let Some(path) = config.key_file.clone() {
        let path = expand_home(&path);
        let origin = format!("key_file {}", path.display());
        let keys = read_key_file(&path, &origin, &mut warnings)?;
        for (k, v) in keys {
            key_origins.insert(k.clone(), origin.clone());
            config.keys.insert(k, v);
        }
        config.key_file = Some(path);
    }

    read_turn_secret_files(&mut config, &source, &mut warnings)?;

    if let Some(arg) = &opts.keys {
        for (k, v) in parse_keys_arg(arg)? {
            key_origins.insert(k.clone(), KEYS_FLAG.to_string());
            config.keys.insert(k, v);
        }
    }

    if !opts.bind.is_empty() {
        config.bind_addresses = opts.bind.clone();
    }
    if let Some(port) = opts.port {
        config.port = port;
    }
    if let Some(ip) = &opts.node_ip {
        config.rtc.node_ip = Some(ip.clone());
    }
    if let Some(spec) = &opts.udp_port {
        config.rtc.udp_port = Some(parse_udp_port_flag(spec)?);
    }
    if let Some(port) = opts.tcp_port {
        config.rtc.tcp_port = port;
        config.rtc.tcp_port_any = port == 0;
    }
    if let Some(host) = &opts.redis_host {
        config.redis.address = Some(host.clone());
    }
    let redis = &config.redis;
    if !redis.sentinel_addresses.is_empty() || !redis.cluster_addresses.is_empty() {
        warnings.push(format!(
            "{source}: redis sentinel and cluster addresses are not supported by corelay yet, \
             ignored (redis.address is used)"
        ));
    }

    if opts.dev || config.development {
        apply_dev_defaults(&mut config, level_set, &mut key_origins);
    }

    validate_with_origins(&config, &source, &|key: &str| {
        key_origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| source.clone())
    })?;
    Ok(Loaded { config, warnings })
}

/// Parses a YAML document into a `Config` and collects unknown-key warnings. Applies no
/// overrides and does not validate. `source` names the document in messages.
pub fn parse_yaml(yaml: &str, source: &str) -> Result<Loaded, ConfigError> {
    let (raw, warnings) = parse_raw(yaml, source)?;
    Ok(Loaded {
        config: Config::from(raw),
        warnings,
    })
}

fn parse_raw(yaml: &str, source: &str) -> Result<(RawConfig, Vec<String>), ConfigError> {
    if is_blank_yaml(yaml) {
        return Ok((RawConfig::default(), Vec::new()));
    }
    let mut ignored = Vec::new();
    let de = yaml_serde::Deserializer::from_str(yaml);
    let raw: RawConfig = serde_ignored::deserialize(de, |path| ignored.push(dotted(&path)))
        .map_err(|e| ConfigError::from_yaml(source, &e))?;
    let warnings = ignored.iter().map(|p| ignored_warning(source, p)).collect();
    Ok((raw, warnings))
}

/// Only comments, blank lines and document markers: yaml_serde rejects an empty document.
fn is_blank_yaml(yaml: &str) -> bool {
    yaml.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// `rtc.turn_servers[0].hots` from serde_ignored's path.
fn dotted(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", dotted(parent)),
        Path::Map { parent, key } => {
            let parent = dotted(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => dotted(parent),
    }
}

/// LiveKit keys corelay reads but does not act on (yet): a key equal to, or under, one of these.
const LIVEKIT_ONLY_KEYS: &[&str] = &[
    "agents",
    "audio",
    "egress",
    "enable_data_tracks",
    "environment",
    "ingress",
    "metric",
    "node_stats",
    "psrpc",
    "signal_relay",
    "sip",
    "video",
    "logging.component_levels",
    "logging.sample",
    "redis.dial_timeout",
    "redis.max_redirects",
    "redis.read_timeout",
    "redis.tls",
    "redis.write_timeout",
    "room.create_room_attempts",
    "room.create_room_enabled",
    "room.create_room_timeout",
    "room.enable_remote_unmute",
    "room.participant_disconnect_timeout",
    "room.playout_delay",
    "room.sync_streams",
    "rtc.batch_io",
    "rtc.congestion_control",
    "rtc.data_channel_max_buffered_amount",
    "rtc.enable_loopback_candidate",
    "rtc.forward_stats",
    "rtc.node_ip_autogen",
    "rtc.packet_buffer_size",
    "rtc.packet_buffer_size_audio",
    "rtc.packet_buffer_size_video",
    "rtc.pli_throttle",
    "rtc.reconnect_on_data_channel_error",
    "rtc.reconnect_on_publication_error",
    "rtc.reconnect_on_subscription_error",
    "rtc.strict_acks",
    "rtc.use_ice_lite",
    "rtc.use_mdns",
    "turn.secret_name",
    "webhook.url_filters",
];

fn ignored_warning(source: &str, path: &str) -> String {
    let known = LIVEKIT_ONLY_KEYS.iter().any(|k| {
        path.strip_prefix(k)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    });
    if known {
        format!("{source}: '{path}' is not supported by corelay yet, ignored")
    } else {
        format!("{source}: unknown key '{path}' ignored")
    }
}

/// `--dev`: development mode, `devkey: secret` when no keys, loopback binds, UDP 7882,
/// debug logging unless the config chose a level.
fn apply_dev_defaults(
    config: &mut Config,
    level_set: bool,
    key_origins: &mut BTreeMap<String, String>,
) {
    config.development = true;
    if config.keys.is_empty() {
        config
            .keys
            .insert(DEV_API_KEY.to_string(), DEV_API_SECRET.to_string());
        key_origins.insert(DEV_API_KEY.to_string(), "--dev".to_string());
    }
    if config.bind_addresses.is_empty() {
        config.bind_addresses = vec!["127.0.0.1".to_string(), "::1".to_string()];
    }
    if config.rtc.udp_port.is_none() {
        config.rtc.udp_port = Some(PortRange::single(DEV_UDP_PORT));
    }
    if !level_set {
        config.logging.level = "debug".to_string();
    }
}

fn parse_udp_port_flag(spec: &str) -> Result<PortRange, ConfigError> {
    const FLAG: &str = "--udp-port";
    let range: PortRange = spec
        .parse()
        .map_err(|e| ConfigError::flag(FLAG, "rtc.udp_port", e))?;
    // 0: every shard binds a free port (tests run servers side by side).
    if range.start > range.end {
        return Err(ConfigError::flag(
            FLAG,
            "rtc.udp_port",
            format_args!("range {range} starts after it ends"),
        ));
    }
    Ok(range)
}

/// Parses `--keys` / `LIVEKIT_KEYS`: a YAML map (`"k1: s1\nk2: s2"`), or `key:secret` lines.
/// Errors never echo the text, which holds secrets.
pub(crate) fn parse_keys_arg(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let bad = || {
        ConfigError::flag(
            "--keys (or LIVEKIT_KEYS)",
            "keys",
            "cannot parse; expected \"key: secret\" pairs, one per line",
        )
    };
    if let Ok(map) = yaml_serde::from_str::<BTreeMap<String, String>>(text) {
        if !map.is_empty() {
            return Ok(map);
        }
    }
    let mut keys = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, secret) = line.split_once(':').ok_or_else(bad)?;
        let (key, secret) = (key.trim(), secret.trim());
        if key.is_empty() || secret.is_empty() {
            return Err(bad());
        }
        keys.insert(key.to_string(), secret.to_string());
    }
    if keys.is_empty() {
        return Err(bad());
    }
    Ok(keys)
}

/// Reads a key file (a YAML map key -> secret). Warns if group or others may access it.
pub(crate) fn read_key_file(
    path: &Path,
    origin: &str,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        what: origin.to_string(),
        source: e,
    })?;
    if let Some(mode) = file_mode(path).filter(|m| m & 0o077 != 0) {
        warnings.push(format!(
            "{origin}: readable by group or others (mode {mode:03o}); \
             LiveKit refuses this, run chmod 600 on it"
        ));
    }
    if is_blank_yaml(&text) {
        return Ok(BTreeMap::new());
    }
    yaml_serde::from_str(&text).map_err(|e| ConfigError::from_yaml(origin, &e))
}

/// `rtc.turn_servers[].secret_file`, as LiveKit reads it: trimmed, refused when others
/// may read it or when it is empty; an inline `secret` wins (with a warning).
fn read_turn_secret_files(
    config: &mut Config,
    source: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (i, server) in config.rtc.turn_servers.iter_mut().enumerate() {
        let Some(path) = server.secret_file.clone() else {
            continue;
        };
        let key = format!("rtc.turn_servers[{i}].secret_file");
        if !server.secret.trim().is_empty() {
            warnings.push(format!(
                "{source}: {key}: secret is set too; the inline secret is used, as LiveKit does"
            ));
            continue;
        }
        let path = expand_home(&path);
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
            what: format!("{key} {}", path.display()),
            source: e,
        })?;
        if let Some(mode) = file_mode(&path).filter(|m| m & 0o007 != 0) {
            return Err(ConfigError::invalid(
                source,
                &key,
                format_args!(
                    " ({}) may be read by others (mode {mode:03o}): chmod o-rwx it",
                    path.display()
                ),
            ));
        }
        let secret = text.trim();
        if secret.is_empty() {
            return Err(ConfigError::invalid(
                source,
                &key,
                format_args!(" ({}) is empty", path.display()),
            ));
        }
        server.secret = secret.to_string();
    }
    Ok(())
}

/// A secret file's permission bits (`None` where unknown or not Unix).
fn file_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// `~/keys.yaml` -> `$HOME/keys.yaml`, as LiveKit does for key_file.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}
