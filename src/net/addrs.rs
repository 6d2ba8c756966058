//! Local interface addresses, to bind media sockets on and advertise as ICE host
//! candidates when no `rtc.node_ip` is configured: IPv4 and IPv6, narrowed by LiveKit's
//! `rtc.interfaces` and `rtc.ips` filters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::AddrFilters;

/// One address of an interface that is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIp {
    pub interface: String,
    pub ip: IpAddr,
}

/// The addresses of this machine's interfaces that are up, as getifaddrs lists them.
/// IPv6 link-local addresses are left out: a candidate on one would need the
/// interface's scope, which ICE candidates cannot carry.
pub fn interface_ips() -> Vec<LocalIp> {
    let mut found = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below; we only read it.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return found;
    }
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
        if !up || ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        let interface = name.to_string_lossy().into_owned();
        // SAFETY: ifa_addr is non-null and points to a sockaddr of its family.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let ip = if family == libc::AF_INET {
            // SAFETY: AF_INET means the sockaddr is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
        } else if family == libc::AF_INET6 {
            // SAFETY: AF_INET6 means the sockaddr is a sockaddr_in6.
            let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            if ip.is_unicast_link_local() {
                continue;
            }
            IpAddr::V6(ip)
        } else {
            continue;
        };
        let entry = LocalIp { interface, ip };
        if !found.contains(&entry) {
            found.push(entry);
        }
    }
    // SAFETY: `head` came from a successful getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    found
}

/// The addresses to serve media on: those `filters` keep, IPv4 before IPv6 and
/// loopback last in each family (a client on another host never reaches those), one
/// per address. Loopback IPv4 when nothing is left, so a development server on a
/// machine without interfaces still works.
pub fn media_ips(ips: &[LocalIp], filters: &AddrFilters) -> Vec<IpAddr> {
    let mut kept: Vec<IpAddr> = Vec::new();
    for l in ips.iter().filter(|l| filters.keeps(&l.interface, l.ip)) {
        if !kept.contains(&l.ip) {
            kept.push(l.ip);
        }
    }
    kept.sort_by_key(|ip| (ip.is_ipv6(), ip.is_loopback()));
    if kept.is_empty() {
        kept.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(interface: &str, ip: &str) -> LocalIp {
        LocalIp {
            interface: interface.into(),
            ip: ip.parse().unwrap(),
        }
    }

    fn filters(yaml: &str) -> AddrFilters {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn ipv4_first_and_loopback_last() {
        let ips = [
            ip("lo", "127.0.0.1"),
            ip("lo", "::1"),
            ip("eth0", "fd00::2"),
            ip("eth0", "192.0.2.2"),
        ];
        let got = media_ips(&ips, &AddrFilters::default());
        let want: Vec<IpAddr> = ["192.0.2.2", "127.0.0.1", "fd00::2", "::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn interface_and_cidr_filters() {
        let ips = [
            ip("lo", "127.0.0.1"),
            ip("eth0", "192.0.2.2"),
            ip("eth0", "fd00::2"),
            ip("docker0", "172.17.0.1"),
        ];
        let only_eth0 = filters("interfaces:\n  includes: [eth0]\n");
        assert_eq!(
            media_ips(&ips, &only_eth0),
            vec![
                "192.0.2.2".parse::<IpAddr>().unwrap(),
                "fd00::2".parse().unwrap()
            ]
        );
        let no_docker_no_v6 =
            filters("interfaces:\n  excludes: [docker0]\nips:\n  excludes: ['::/0']\n");
        assert_eq!(
            media_ips(&ips, &no_docker_no_v6),
            vec![
                "192.0.2.2".parse::<IpAddr>().unwrap(),
                "127.0.0.1".parse().unwrap()
            ]
        );
        let private_only = filters("ips:\n  includes: [192.0.2.0/24]\n");
        assert_eq!(
            media_ips(&ips, &private_only),
            vec!["192.0.2.2".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn this_machine_has_an_address() {
        assert!(!media_ips(&interface_ips(), &AddrFilters::default()).is_empty());
    }
}
