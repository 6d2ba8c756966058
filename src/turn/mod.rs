//! The embedded TURN server (LiveKit's `turn.*`), over UDP and TLS (or plain TCP behind
//! a TLS load balancer): for clients whose network lets only a relay through.
//! Participants get its URLs with credentials in `JoinResponse.ice_servers`
//! (`credentials`); relays may reach the node's own media addresses and public peers,
//! never other private ones (`peers`). RFC 6062 TCP allocations are not offered.

pub mod credentials;
mod forbid;
pub mod peers;
mod relay;
pub mod stats;
mod tls;

pub use relay::{start, Settings, TurnHandle};
pub use stats::{Refusal, TurnStats};
pub use tls::{next_frame, server_config};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::auth::KeyStore;
use crate::config::Config;
use crate::net;
use credentials::EmbeddedTurn;

/// Why the TURN server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("rtc.node_ip: {0:?} is not an IP address")]
    NodeIp(String),
    #[error("no API keys configured: TURN credentials derive from one")]
    NoKeys,
    #[error("{0}")]
    Tls(String),
    #[error("cannot start the TURN server: {0}")]
    Io(#[from] std::io::Error),
}

/// The embedded TURN server (`turn.enabled`; UDP on `turn.udp_port`, TLS on
/// `turn.tls_port`, each unless 0) on each media IP, and what participants are told of it.
pub fn start_from_config(
    config: &Config,
    keys: &KeyStore,
    stats: &Arc<TurnStats>,
) -> Result<Option<EmbeddedTurn>, TurnError> {
    let turn = &config.turn;
    if !turn.enabled || (turn.udp_port == 0 && turn.tls_port == 0) {
        return Ok(None);
    }
    let ips: Vec<IpAddr> = match &config.rtc.node_ip {
        Some(ip) => vec![ip.parse().map_err(|_| TurnError::NodeIp(ip.clone()))?],
        None => net::addrs::media_ips(&net::addrs::interface_ips(), &config.rtc.addr_filters()),
    };
    let (api_key, secret) = keys.first().ok_or(TurnError::NoKeys)?;
    // TURN/TLS, or plain TCP when TLS ends at a load balancer (`external_tls`).
    let tls = match (turn.tls_port, turn.external_tls) {
        (0, _) | (_, true) => None,
        _ => Some(server_config(&turn.cert_file, &turn.key_file).map_err(TurnError::Tls)?),
    };
    let on = |port: u16| -> Vec<SocketAddr> {
        match port {
            0 => Vec::new(),
            port => ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
        }
    };
    let settings = Settings {
        listen: on(turn.udp_port),
        streams: on(turn.tls_port),
        tls,
        relay_range: (turn.relay_range_start, turn.relay_range_end),
        keys: keys.clone(),
        policy: peers::PeerPolicy { own: ips.clone() },
        per_user_limit: turn.per_user_relay_allocation_limit,
        stats: stats.clone(),
    };
    let handle = start(settings)?;
    let mut urls: Vec<String> = handle
        .addrs
        .iter()
        .map(|a| format!("turn:{a}?transport=udp"))
        .collect();
    if let Some(port) = handle.stream_addrs.first().map(|a| a.port()) {
        // As LiveKit: one TLS URL by domain name (certificates name it); behind a load
        // balancer that ends TLS, the balancer's port 443.
        let port = if turn.external_tls { 443 } else { port };
        urls.push(format!("turns:{}:{port}?transport=tcp", turn.domain));
    }
    Ok(Some(EmbeddedTurn {
        urls,
        api_key: api_key.to_string(),
        secret: secret.to_string(),
        ttl_secs: u64::from(turn.ttl_seconds),
    }))
}
