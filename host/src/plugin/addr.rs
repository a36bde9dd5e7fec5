//! Which resolved addresses a notifier may connect to by default.
//!
//! The rule: anything that is not a public unicast address is refused unless
//! the operator's grant lists the host in `allow_private`. That covers
//! loopback, private, link-local (with the cloud metadata services),
//! CGNAT, multicast, reserved and tunnelling ranges. Addresses that embed an
//! IPv4 address (IPv4-mapped, IPv4-compatible, NAT64) are judged by the
//! embedded address. The ranges are `ipnet` tables, checked in order, so the
//! list reads like the registry it comes from and is easy to extend.

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an IPv6 range means for the check.
#[derive(Clone, Copy)]
enum V6Rule {
    /// Refused, for this reason.
    Block(&'static str),
    /// The low 32 bits are an IPv4 address: judge that instead.
    EmbeddedV4,
}

/// IPv4 special-purpose ranges, first match wins (broadcast before the
/// reserved 240/4 that contains it).
const V4_BLOCKED: &[(Ipv4Net, &str)] = &[
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(169, 254, 0, 0, 16), "link-local (includes the cloud metadata service 169.254.169.254)"),
    (v4(100, 64, 0, 0, 10), "shared address space (CGNAT, includes some cloud metadata services)"),
    (v4(0, 0, 0, 0, 8), "unspecified/this-network"),
    (v4(255, 255, 255, 255, 32), "broadcast/multicast"),
    (v4(224, 0, 0, 0, 4), "broadcast/multicast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
    (v4(192, 0, 0, 0, 24), "special-purpose (IETF/benchmarking)"),
    (v4(198, 18, 0, 0, 15), "special-purpose (IETF/benchmarking)"),
];

/// IPv6 special-purpose ranges, first match wins (`::1` and `::` before the
/// IPv4-compatible `::/96` that contains them). IPv4-mapped addresses are
/// unwrapped before this table is consulted.
const V6_RULES: &[(Ipv6Net, V6Rule)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), V6Rule::Block("loopback")),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), V6Rule::Block("unspecified")),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), V6Rule::Block("unique-local (private; includes fd00:ec2::254 metadata)")),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), V6Rule::Block("link-local")),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), V6Rule::Block("site-local (deprecated private range)")),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), V6Rule::Block("multicast")),
    (
        v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        V6Rule::Block("6to4 tunnel (can reach any IPv4 address, private ones included)"),
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        V6Rule::Block("Teredo tunnel (can reach any IPv4 address, private ones included)"),
    ),
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), V6Rule::EmbeddedV4),
    // Deprecated IPv4-compatible form ::a.b.c.d.
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), V6Rule::EmbeddedV4),
];

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]), len)
}

/// Why an address is not reachable by default, or `None` if it is public.
pub(crate) fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    V4_BLOCKED.iter().find(|(net, _)| net.contains(&ip)).map(|(_, why)| *why)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    match V6_RULES.iter().find(|(net, _)| net.contains(&ip)).map(|(_, rule)| *rule)? {
        V6Rule::Block(why) => Some(why),
        V6Rule::EmbeddedV4 => {
            let [.., a, b, c, d] = ip.octets();
            v4_reason(Ipv4Addr::new(a, b, c, d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(ip: &str) -> Option<&'static str> {
        blocked_reason(ip.parse().unwrap())
    }

    #[test]
    fn special_addresses_are_blocked_including_mapped_forms() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
            "fe80::1",
            "64:ff9b::a9fe:a9fe",
            "::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(blocked_reason(ip).is_some(), "{ip} should be blocked");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(blocked_reason(ip).is_none(), "{ip} should be allowed");
        }
    }

    #[test]
    fn every_v4_range_blocks_its_first_and_last_address_and_not_its_neighbours() {
        for (net, why) in V4_BLOCKED {
            assert_eq!(v4_reason(net.network()), Some(*why), "{net} first address");
            let last = v4_reason(net.broadcast()).unwrap_or_else(|| panic!("{net} last address is allowed"));
            assert!(!last.is_empty());
        }
        // Just outside some ranges.
        for ip in [
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert_eq!(reason(ip), None, "{ip} should be allowed");
        }
    }

    #[test]
    fn ranges_resolve_in_table_order() {
        assert_eq!(reason("255.255.255.255"), Some("broadcast/multicast"));
        assert_eq!(reason("240.0.0.1"), Some("reserved"));
        assert_eq!(reason("::1"), Some("loopback"));
        assert_eq!(reason("::"), Some("unspecified"));
        assert_eq!(reason("fd00:ec2::254"), Some("unique-local (private; includes fd00:ec2::254 metadata)"));
    }

    #[test]
    fn tunnelling_and_site_local_v6_ranges_are_blocked() {
        for ip in ["2002:c0a8:0101::1", "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"] {
            assert!(reason(ip).is_some_and(|r| r.starts_with("6to4")), "{ip}");
        }
        for ip in ["2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"] {
            assert!(reason(ip).is_some_and(|r| r.starts_with("Teredo")), "{ip}");
        }
        for ip in ["fec0::1", "feff:ffff::1"] {
            assert!(reason(ip).is_some_and(|r| r.starts_with("site-local")), "{ip}");
        }
        // Neighbours of those ranges stay public.
        for ip in ["2001:1::1", "2001:db9::1", "2003::1", "2001:4860:4860::8888"] {
            assert_eq!(reason(ip), None, "{ip} should be allowed");
        }
    }

    #[test]
    fn embedded_v4_addresses_are_judged_by_the_v4_address() {
        assert_eq!(reason("64:ff9b::10.0.0.1"), Some("private"));
        assert_eq!(reason("64:ff9b::8.8.8.8"), None);
        assert_eq!(reason("::10.0.0.1"), Some("private"));
        assert_eq!(reason("::8.8.8.8"), None);
        assert_eq!(reason("::ffff:192.168.0.1"), Some("private"));
        assert_eq!(reason("::ffff:8.8.8.8"), None);
    }
}
