//! Checks a loaded `Config`. Every error names the source and the dotted key.

use super::error::ConfigError;
use super::model::Config;

/// Minimum secret length outside development mode.
pub const MIN_SECRET_LEN: usize = 32;

/// Log levels `logging.level` accepts.
pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

/// Validates `config`; `source` (a file name, `--config-body`) prefixes every message.
pub fn validate(config: &Config, source: &str) -> Result<(), ConfigError> {
    validate_with_origins(config, source, &|_| source.to_string())
}

/// Like `validate`, with `key_origin(api_key)` naming where each API key came from
/// (the config, `key_file ...`, `--keys`).
pub(crate) fn validate_with_origins(
    config: &Config,
    source: &str,
    key_origin: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    let err = |key: &str, msg: std::fmt::Arguments<'_>| ConfigError::invalid(source, key, msg);

    // Ports. `port` and `prometheus.port` may be 0 (ephemeral); u16 bounds the top.
    let rtc = &config.rtc;
    for (key, value) in [
        ("rtc.port_range_start", rtc.port_range_start),
        ("rtc.port_range_end", rtc.port_range_end),
    ] {
        nonzero_port(source, key, value)?;
    }
    if rtc.port_range_start > rtc.port_range_end {
        return Err(err(
            "rtc.port_range_start",
            format_args!(
                " ({}) is greater than rtc.port_range_end ({})",
                rtc.port_range_start, rtc.port_range_end
            ),
        ));
    }
    // udp_port 0 lets each shard pick a free port (tests run servers side by side).
    if let Some(range) = rtc.udp_port {
        if range.start > range.end {
            return Err(err(
                "rtc.udp_port",
                format_args!(" ({}-{}) starts after it ends", range.start, range.end),
            ));
        }
    }
    if let Some(p) = config.prometheus.port {
        if p != 0 && p == config.port {
            return Err(err(
                "prometheus.port",
                format_args!(" ({p}) is the same as port"),
            ));
        }
    }
    for (i, server) in rtc.turn_servers.iter().enumerate() {
        let key = format!("rtc.turn_servers[{i}]");
        if server.host.trim().is_empty() {
            return Err(err(&format!("{key}.host"), format_args!(" must be set")));
        }
        nonzero_port(source, &format!("{key}.port"), server.port)?;
        let proto = server.protocol.to_ascii_lowercase();
        if !["udp", "tcp", "tls"].contains(&proto.as_str()) {
            return Err(err(
                &format!("{key}.protocol"),
                format_args!(" ('{}') must be udp, tcp or tls", server.protocol),
            ));
        }
    }

    // Embedded TURN: only checked when it is on; 0 disables its UDP or TLS listener.
    let turn = &config.turn;
    if turn.enabled {
        if turn.tls_port == 0 && turn.udp_port == 0 {
            return Err(err(
                "turn.enabled",
                format_args!(": turn.tls_port and turn.udp_port are both 0"),
            ));
        }
        if turn.tls_port != 0 && turn.domain.trim().is_empty() {
            return Err(err(
                "turn.domain",
                format_args!(" must be set when turn.enabled and turn.tls_port is not 0"),
            ));
        }
        nonzero_port(source, "turn.relay_range_start", turn.relay_range_start)?;
        nonzero_port(source, "turn.relay_range_end", turn.relay_range_end)?;
        if turn.relay_range_start > turn.relay_range_end {
            return Err(err(
                "turn.relay_range_start",
                format_args!(
                    " ({}) is greater than turn.relay_range_end ({})",
                    turn.relay_range_start, turn.relay_range_end
                ),
            ));
        }
    }

    // API keys.
    if config.keys.is_empty() {
        return Err(err(
            "keys",
            format_args!(
                ": no API keys configured: set keys, key_file, --keys or LIVEKIT_KEYS (or use --dev)"
            ),
        ));
    }
    for (key, secret) in &config.keys {
        let origin = key_origin(key);
        if key.trim().is_empty() {
            return Err(ConfigError::invalid(
                &origin,
                "keys",
                ": an API key name is empty",
            ));
        }
        if secret.is_empty() {
            return Err(ConfigError::invalid(
                &origin,
                &format!("keys.{key}"),
                ": secret is empty",
            ));
        }
        if !config.development && secret.chars().count() < MIN_SECRET_LEN {
            return Err(ConfigError::invalid(
                &origin,
                &format!("keys.{key}"),
                format_args!(
                    ": secret is shorter than {MIN_SECRET_LEN} characters \
                     (use --dev for short development secrets)"
                ),
            ));
        }
    }

    // Webhooks.
    let webhook = &config.webhook;
    if !webhook.urls.is_empty() {
        if webhook.api_key.is_empty() {
            return Err(err(
                "webhook.api_key",
                format_args!(" must be set when webhook.urls is not empty"),
            ));
        }
        if !config.keys.contains_key(&webhook.api_key) {
            return Err(err(
                "webhook.api_key",
                format_args!(" ('{}') is not one of the configured keys", webhook.api_key),
            ));
        }
    }
    for (i, url) in webhook.urls.iter().enumerate() {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(
                &format!("webhook.urls[{i}]"),
                format_args!(" ('{url}') must start with http:// or https://"),
            ));
        }
    }

    // Media addresses.
    for (list, entries) in [
        ("rtc.ips.includes", &config.rtc.ips.includes),
        ("rtc.ips.excludes", &config.rtc.ips.excludes),
    ] {
        for (i, cidr) in entries.iter().enumerate() {
            if super::parse_cidr(cidr).is_none() {
                return Err(err(
                    &format!("{list}[{i}]"),
                    format_args!(" ('{cidr}') must be a CIDR such as 10.0.0.0/8 or an IP"),
                ));
            }
        }
    }

    // Rooms.
    for (i, codec) in config.room.enabled_codecs.iter().enumerate() {
        let ok = codec.mime.split_once('/').is_some_and(|(kind, name)| {
            (kind.eq_ignore_ascii_case("audio") || kind.eq_ignore_ascii_case("video"))
                && !name.is_empty()
        });
        if !ok {
            return Err(err(
                &format!("room.enabled_codecs[{i}].mime"),
                format_args!(" ('{}') must look like audio/opus or video/VP8", codec.mime),
            ));
        }
    }

    // Logging.
    if !LOG_LEVELS.contains(&config.logging.level.as_str()) {
        return Err(err(
            "logging.level",
            format_args!(
                " ('{}') must be one of {}",
                config.logging.level,
                LOG_LEVELS.join(", ")
            ),
        ));
    }
    Ok(())
}

fn nonzero_port(source: &str, key: &str, value: u16) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(
            source,
            key,
            format_args!(" ({value}) is not a valid port (1-65535)"),
        ))
    } else {
        Ok(())
    }
}
