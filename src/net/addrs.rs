//! Local interface addresses, to bind media sockets on and advertise as ICE host
//! candidates when no `rtc.node_ip` is configured.

use std::net::{IpAddr, Ipv4Addr};

/// The IPv4 addresses of this machine's interfaces that are up, loopback last. ICE
/// host candidates on these reach clients on the same host or network.
pub fn local_ipv4s() -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below; we only read it.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    }
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cursor };
        let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
        if up && !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points to a sockaddr of its family.
            let family = unsafe { (*ifa.ifa_addr).sa_family };
            if i32::from(family) == libc::AF_INET {
                // SAFETY: AF_INET means the sockaddr is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !found.contains(&IpAddr::V4(ip)) {
                    found.push(IpAddr::V4(ip));
                }
            }
        }
        cursor = ifa.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    found.sort_by_key(|ip| ip.is_loopback());
    if found.is_empty() {
        found.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_at_least_loopback_and_puts_it_last() {
        let ips = local_ipv4s();
        assert!(!ips.is_empty());
        if ips.len() > 1 {
            assert!(!ips[0].is_loopback());
        }
    }
}
