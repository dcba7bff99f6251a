//! Where outbound connections of a check may go. A watched domain is the operator's own
//! choice, so its MTA-STS host or MX may sit on a private network. A domain named by an
//! anonymous `/probe?domain=` request is not: without this policy the exporter would open
//! HTTPS and SMTP connections to addresses an outsider picks through their own DNS, and
//! tell them what answered (a reachability oracle for the network the exporter sits in).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which destination addresses checks may connect to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Destinations {
    /// Any address (watched domains: the operator vouches for them).
    #[default]
    Any,
    /// Globally reachable unicast addresses only (on-demand checks of arbitrary domains).
    PublicOnly,
}

impl Destinations {
    /// `Some(range)` when a connection to `ip` is refused under this policy.
    pub fn refuses(self, ip: IpAddr) -> Option<&'static str> {
        match self {
            Destinations::Any => None,
            Destinations::PublicOnly => non_public_range(ip),
        }
    }
}

/// The name of the special-purpose range `ip` falls in, or `None` for an address that is
/// (as far as the IANA special-purpose registries go) globally reachable unicast.
/// Written out rather than taken from `std` since `is_global` and friends are unstable.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "shared (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) => "documentation (192.0.2.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (198, 51, 100) => "documentation (198.51.100.0/24)",
        (203, 0, 113) => "documentation (203.0.113.0/24)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    let s = ip.segments();
    // An IPv4 address carried in IPv6 reaches that IPv4 address: judge it as one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return v4_range(v4);
    }
    Some(match s[0] {
        0x0000 => "IPv4-compatible or reserved (::/8)",
        0x0100 if s[1..4] == [0, 0, 0] => "discard (100::/64)",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x3fff if s[1] < 0x1000 => "documentation (3fff::/20)",
        x if x & 0xfe00 == 0xfc00 => "private, unique local (fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        x if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        x if x & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        Destinations::PublicOnly
            .refuses(text.parse().unwrap())
            .is_some()
    }

    #[test]
    fn special_ranges_are_refused_public_ones_pass() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.9",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::10",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.3.1",
            "2a00:1450:4001::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(ip), "{ip} is public");
        }
        assert_eq!(
            Destinations::Any.refuses("127.0.0.1".parse().unwrap()),
            None
        );
    }
}
