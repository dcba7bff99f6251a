//! Address ranges in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or a bare address),
//! as `[[sender]] ip_ranges` names a sending service's networks.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address and a prefix length; addresses match when their first `prefix` bits do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

/// Why a text is not an address range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpRangeError {
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    #[error("{0:?}: the prefix length must be 0-32 for IPv4, 0-128 for IPv6")]
    BadPrefix(String),
    #[error("{0:?} has bits set past its prefix length (did you mean {1}?)")]
    HostBits(String, String),
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    all & !(all >> prefix)
}

impl IpRange {
    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is
    /// the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (net, width) = bits(self.network);
        let (addr, addr_width) = bits(ip);
        width == addr_width && (net ^ addr) & mask(width, self.prefix) == 0
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    /// `ADDRESS` or `ADDRESS/PREFIX`. Host bits past the prefix are refused
    /// (`192.0.2.1/24`): a typo there silently widens or narrows what matches.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| IpRangeError::BadAddress(text.to_string()))?;
        let (value, width) = bits(network);
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| IpRangeError::BadPrefix(text.to_string()))?,
        };
        let net = value & mask(width, prefix);
        if net != value {
            let shown = match network {
                IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(net as u32)),
                IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(net)),
            };
            return Err(IpRangeError::HostBits(
                text.to_string(),
                format!("{shown}/{prefix}"),
            ));
        }
        Ok(IpRange { network, prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> IpRange {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_match_their_prefix() {
        let r = range("192.0.2.0/24");
        assert!(r.contains(ip("192.0.2.0")));
        assert!(r.contains(ip("192.0.2.255")));
        assert!(!r.contains(ip("192.0.3.0")));
        assert!(!r.contains(ip("2001:db8::1")));
        assert!(r.contains(ip("::ffff:192.0.2.7")), "IPv4-mapped is IPv4");
        let r6 = range("2001:db8::/32");
        assert!(r6.contains(ip("2001:db8:ffff::1")));
        assert!(!r6.contains(ip("2001:db9::1")));
        assert!(!r6.contains(ip("192.0.2.1")));
        assert!(range("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(range("::/0").contains(ip("2001:db8::1")));
        assert!(range("198.51.100.7").contains(ip("198.51.100.7")));
        assert!(!range("198.51.100.7").contains(ip("198.51.100.8")));
        assert!(range("10.1.2.3/32").contains(ip("10.1.2.3")));
        assert_eq!(range(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_ranges_are_refused_with_the_reason() {
        assert!(matches!(
            "192.0.2/24".parse::<IpRange>(),
            Err(IpRangeError::BadAddress(_))
        ));
        assert!(matches!(
            "192.0.2.0/33".parse::<IpRange>(),
            Err(IpRangeError::BadPrefix(_))
        ));
        assert!(matches!(
            "192.0.2.0/".parse::<IpRange>(),
            Err(IpRangeError::BadPrefix(_))
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<IpRange>(),
            Err(IpRangeError::BadPrefix(_))
        ));
        assert_eq!(
            "192.0.2.1/24".parse::<IpRange>(),
            Err(IpRangeError::HostBits(
                "192.0.2.1/24".into(),
                "192.0.2.0/24".into()
            ))
        );
        assert!(matches!(
            "2001:db8::1/32".parse::<IpRange>(),
            Err(IpRangeError::HostBits(..))
        ));
        assert!("example.com".parse::<IpRange>().is_err());
    }
}
