//! LiveKit's `rtc.interfaces` and `rtc.ips`: which local addresses media is served on.
//! Each has `includes` and `excludes`; an empty `includes` keeps everything not
//! excluded. `ips` entries are CIDRs (a bare address counts as one address).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct IncludeExclude {
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
}

/// Both filters, as the address selection applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AddrFilters {
    pub interfaces: IncludeExclude,
    pub ips: IncludeExclude,
}

/// `192.0.2.0/24`, `fd00::/8` or a bare address.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl AddrFilters {
    /// Whether media may be served on `ip` of `interface`. Entries that do not parse
    /// were refused by config validation and match nothing here.
    pub fn keeps(&self, interface: &str, ip: IpAddr) -> bool {
        let named = |list: &[String]| list.iter().any(|n| n == interface);
        let within = |list: &[String]| {
            list.iter()
                .filter_map(|c| parse_cidr(c))
                .any(|net| net.contains(&ip))
        };
        let (ifs, ips) = (&self.interfaces, &self.ips);
        (ifs.includes.is_empty() || named(&ifs.includes))
            && !named(&ifs.excludes)
            && (ips.includes.is_empty() || within(&ips.includes))
            && !within(&ips.excludes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_bare_addresses() {
        assert!(parse_cidr("10.0.0.0/8").is_some());
        assert!(parse_cidr("fd00::/8").is_some());
        assert!(parse_cidr("192.0.2.7").is_some_and(|n| n.prefix_len() == 32));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("eth0").is_none());
    }
}
