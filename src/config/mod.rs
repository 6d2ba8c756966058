//! Configuration: the LiveKit config.yaml model, loading, validation and core affinity.
//!
//! * [`load`] reads every source the CLI names ([`LoadOptions`]) in LiveKit's order:
//!   defaults < `--config-body` or `--config` file < `key_file` < `--keys` < flags < `--dev`
//!   defaults, then [`validate`]s the result.
//! * [`parse_yaml`] only parses; unknown keys become warnings, never errors.
//! * [`load_affinity`] and [`plan_threads`] turn `core-affinity.toml` into a [`ThreadPlan`].
//!
//! Every [`ConfigError`] message names its source (file, `--config-body`, flag) and the key.

mod addr_filter;
mod affinity;
mod de;
mod error;
mod load;
mod model;
mod validate;

#[cfg(test)]
mod tests;

pub use addr_filter::{parse_cidr, AddrFilters, IncludeExclude};
pub use affinity::{
    dropped_cores, load_affinity, parse_affinity, plan_threads, AffinityFile, ThreadPlan,
};
pub use error::ConfigError;
pub use load::{load, parse_yaml, LoadOptions, Loaded, DEV_API_KEY, DEV_API_SECRET, DEV_UDP_PORT};
pub use model::{
    CodecSpec, Config, LimitConfig, LoggingConfig, NodeSelectorConfig, PortRange, PrometheusConfig,
    RedisConfig, RegionConfig, RoomConfig, RtcConfig, TurnConfig, TurnServer, WebhookConfig,
};
pub use validate::{validate, LOG_LEVELS, MIN_SECRET_LEN};
