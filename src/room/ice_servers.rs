//! `JoinResponse.ice_servers` (and the ReconnectResponse's) from `rtc.turn_servers` and
//! `rtc.stun_servers`, as LiveKit hands them out. A TURN server with a shared `secret`
//! gets time-limited credentials per participant (TURN REST: username
//! `expiry:participant sid`, password base64(HMAC-SHA1(secret, username))); others get
//! their static username and credential. Unlike LiveKit, no public STUN servers are
//! added when none is configured: corelay never points clients at third parties.

use hmac::{Hmac, Mac};
use livekit_protocol as lk;
use sha1::Sha1;

use crate::turn::credentials::EmbeddedTurn;

/// LiveKit's default lifetime of shared-secret credentials, and its bounds.
pub const DEFAULT_TTL_SECS: u64 = 14_400;
const MIN_TTL_SECS: u64 = 300;
const MAX_TTL_SECS: u64 = 24 * 60 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnAuth {
    Static {
        username: String,
        credential: String,
    },
    /// TURN REST API shared secret; `ttl_secs` 0 means the default.
    Secret { secret: String, ttl_secs: i64 },
}

/// One configured TURN server, as clients are given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTurn {
    /// `turn:host:port?transport=udp`, `turns:host:port?transport=tcp`, ...
    pub url: String,
    pub auth: TurnAuth,
}

impl ExternalTurn {
    /// LiveKit's URL for `protocol` (`udp`, `tcp` or `tls`).
    pub fn new(host: &str, port: u16, protocol: &str, auth: TurnAuth) -> Self {
        let (scheme, transport) = match protocol.to_ascii_lowercase().as_str() {
            "tls" => ("turns", "tcp"),
            "udp" => ("turn", "udp"),
            _ => ("turn", "tcp"),
        };
        ExternalTurn {
            url: format!("{scheme}:{host}:{port}?transport={transport}"),
            auth,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServerConfig {
    pub turn: Vec<ExternalTurn>,
    /// `host:port` each.
    pub stun: Vec<String>,
    /// corelay's own TURN server (`turn.enabled`), first in the list.
    pub embedded: Option<EmbeddedTurn>,
}

impl IceServerConfig {
    /// What participant `sid` is told, at `unix_secs`.
    pub fn for_participant(&self, sid: &str, unix_secs: u64) -> Vec<lk::IceServer> {
        let mut servers: Vec<lk::IceServer> = self
            .turn
            .iter()
            .map(|t| {
                let (username, credential) = match &t.auth {
                    TurnAuth::Static {
                        username,
                        credential,
                    } => (username.clone(), credential.clone()),
                    TurnAuth::Secret { secret, ttl_secs } => {
                        let expiry = unix_secs + ttl(*ttl_secs);
                        let username = format!("{expiry}:{sid}");
                        let credential = rest_password(secret, &username);
                        (username, credential)
                    }
                };
                lk::IceServer {
                    urls: vec![t.url.clone()],
                    username,
                    credential,
                }
            })
            .collect();
        if let Some(e) = &self.embedded {
            let (username, credential) = crate::turn::credentials::issue(
                &e.api_key,
                &e.secret,
                sid,
                unix_secs,
                if e.ttl_secs == 0 {
                    DEFAULT_TTL_SECS
                } else {
                    e.ttl_secs
                },
            );
            let own = lk::IceServer {
                urls: e.urls.clone(),
                username,
                credential,
            };
            servers.insert(0, own);
        }
        if !self.stun.is_empty() {
            servers.push(lk::IceServer {
                urls: self.stun.iter().map(|s| format!("stun:{s}")).collect(),
                ..Default::default()
            });
        }
        servers
    }

    /// Whether clients are offered a TURN/TLS server (somewhere to steer them after
    /// ICE/TCP failed, `rtc.allow_tcp_fallback`).
    pub fn has_tls(&self) -> bool {
        let embedded = self.embedded.iter().flat_map(|e| e.urls.iter());
        let external = self.turn.iter().map(|t| &t.url);
        embedded.chain(external).any(|u| is_tls(u))
    }
}

/// Only the TURN/TLS entries of `servers` (a participant steered to relay over TLS), or
/// all of them if there is none.
pub fn tls_only(servers: Vec<lk::IceServer>) -> Vec<lk::IceServer> {
    let tls: Vec<lk::IceServer> = (servers.iter())
        .filter_map(|s| {
            let urls: Vec<String> = (s.urls.iter()).filter(|u| is_tls(u)).cloned().collect();
            (!urls.is_empty()).then(|| lk::IceServer { urls, ..s.clone() })
        })
        .collect();
    if tls.is_empty() {
        servers
    } else {
        tls
    }
}

fn is_tls(url: &str) -> bool {
    url.starts_with("turns:")
}

/// LiveKit: 0 is the default, non-positive falls back to 5 minutes, at most a day.
fn ttl(configured: i64) -> u64 {
    match configured {
        0 => DEFAULT_TTL_SECS,
        n if n < 0 => MIN_TTL_SECS,
        n => (n as u64).min(MAX_TTL_SECS),
    }
}

/// base64(HMAC-SHA1(secret, username)), what coturn's `use-auth-secret` checks.
fn rest_password(secret: &str, username: &str) -> String {
    use base64::Engine as _;
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_secret_credentials_are_turn_rest() {
        let config = IceServerConfig {
            turn: vec![ExternalTurn::new(
                "turn.example.com",
                443,
                "tls",
                TurnAuth::Secret {
                    secret: "north".into(),
                    ttl_secs: 0,
                },
            )],
            stun: vec!["stun.example.com:3478".into()],
            embedded: None,
        };
        let servers = config.for_participant("PA_abc", 1_700_000_000);
        assert_eq!(
            servers[0].urls,
            ["turns:turn.example.com:443?transport=tcp"]
        );
        assert_eq!(servers[0].username, "1700014400:PA_abc");
        // python3: base64(hmac.new(b"north", b"1700014400:PA_abc", sha1).digest())
        assert_eq!(servers[0].credential, "xz9OflV0NPJPpS23GCWSHq30h0g=");
        assert_eq!(servers[1].urls, ["stun:stun.example.com:3478"]);
    }

    #[test]
    fn static_credentials_and_urls() {
        let auth = TurnAuth::Static {
            username: "u".into(),
            credential: "c".into(),
        };
        let udp = ExternalTurn::new("10.0.0.1", 3478, "udp", auth.clone());
        let tcp = ExternalTurn::new("10.0.0.1", 3478, "TCP", auth);
        assert_eq!(udp.url, "turn:10.0.0.1:3478?transport=udp");
        assert_eq!(tcp.url, "turn:10.0.0.1:3478?transport=tcp");
        let config = IceServerConfig {
            turn: vec![udp],
            stun: vec![],
            embedded: None,
        };
        let s = &config.for_participant("PA_x", 0)[0];
        assert_eq!((s.username.as_str(), s.credential.as_str()), ("u", "c"));
        assert_eq!(config.for_participant("PA_x", 0).len(), 1, "no STUN entry");
    }

    #[test]
    fn the_embedded_server_comes_first_with_credentials_it_accepts() {
        let config = IceServerConfig {
            embedded: Some(EmbeddedTurn {
                urls: vec!["turn:192.0.2.2:3478?transport=udp".into()],
                api_key: "devkey".into(),
                secret: "secret".into(),
                ttl_secs: 0,
            }),
            ..Default::default()
        };
        let s = &config.for_participant("PA_x", 1000)[0];
        assert_eq!(s.urls, ["turn:192.0.2.2:3478?transport=udp"]);
        let keys = crate::auth::KeyStore::new([("devkey".to_string(), "secret".to_string())]);
        let expected = crate::turn::credentials::password_for(&s.username, &keys, 1000);
        assert_eq!(expected.as_deref(), Ok(s.credential.as_str()));
    }

    #[test]
    fn ttl_bounds() {
        assert_eq!(ttl(0), DEFAULT_TTL_SECS);
        assert_eq!(ttl(-5), MIN_TTL_SECS);
        assert_eq!(ttl(600), 600);
        assert_eq!(ttl(i64::MAX), MAX_TTL_SECS);
    }
}
