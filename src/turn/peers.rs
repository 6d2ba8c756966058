//! Which peers a relay may talk to: LiveKit's default deny list (loopback, private,
//! link-local and unspecified addresses), except the node's own media addresses, so
//! that a relayed client still reaches this SFU (which is what the relay is for).

use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    /// The node's media addresses: always allowed.
    pub own: Vec<IpAddr>,
}

impl PeerPolicy {
    pub fn allows(&self, peer: IpAddr) -> bool {
        if self.own.contains(&peer) {
            return true;
        }
        !denied_by_default(peer)
    }
}

fn denied_by_default(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return denied_by_default(IpAddr::V4(v4));
            }
            let seg = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg & 0xfe00) == 0xfc00 // unique local
                || (seg & 0xffc0) == 0xfe80 // link local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_peers_are_denied_except_our_own() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let policy = PeerPolicy {
            own: vec![ip("192.0.2.2"), ip("127.0.0.1")],
        };
        for allowed in ["127.0.0.1", "192.0.2.2", "8.8.8.8", "2001:db8::1"] {
            assert!(policy.allows(ip(allowed)), "{allowed}");
        }
        for denied in [
            "127.0.0.2",
            "10.1.2.3",
            "192.168.1.1",
            "::1",
            "fd00::2",
            "fe80::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!policy.allows(ip(denied)), "{denied}");
        }
    }
}
