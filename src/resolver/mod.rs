//! DNS access for every check: one small interface ([`Dns`]) with typed answers that keep
//! the distinctions the RFCs care about (NXDOMAIN vs NODATA vs a server failure), and the
//! record checks that sit on top of it, one module per record type.
//!
//! A server failure is never turned into "no record": SPF void-lookup counting and the
//! `dns.error` finding both depend on telling them apart.

pub mod cache;
pub mod client;
pub mod wire;

use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;

pub use cache::CachingDns;
pub use client::{HickoryDns, QueryCounters, ResolverSettings};

/// The record types the checks ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    A,
    Aaaa,
    Mx,
    Txt,
    Ptr,
    Cname,
    Tlsa,
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Mx => "MX",
            RecordType::Txt => "TXT",
            RecordType::Ptr => "PTR",
            RecordType::Cname => "CNAME",
            RecordType::Tlsa => "TLSA",
        })
    }
}

/// One record of an answer, reduced to what the checks read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// `exchange` is lower-case without the trailing dot; `"."` stays `""` (null MX, RFC 7505).
    Mx {
        preference: u16,
        exchange: String,
    },
    /// The character-strings of one TXT record, kept apart: SPF and DKIM join them with no
    /// separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2), but a test may want to see the split.
    Txt(Vec<Vec<u8>>),
    Ptr(String),
    Cname(String),
    Tlsa {
        usage: u8,
        selector: u8,
        matching: u8,
        data: Vec<u8>,
    },
}

impl RData {
    /// The TXT record as one string: character-strings joined without separator, invalid
    /// UTF-8 replaced (records are ASCII by their RFCs; a stray byte must not abort a check).
    pub fn txt_joined(&self) -> Option<String> {
        match self {
            RData::Txt(parts) => {
                let bytes: Vec<u8> = parts.concat();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        }
    }
}

/// A successful DNS answer (the server answered; records may still be absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Records of the asked type. `cname_chain` lists the aliases followed to reach them.
    Records {
        records: Vec<RData>,
        cname_chain: Vec<String>,
    },
    /// RCODE NXDOMAIN: the name does not exist.
    NxDomain,
    /// NOERROR with an empty answer: the name exists, the type does not (NODATA).
    NoData,
}

impl Answer {
    /// Records (with the CNAME chain that led to them), or NODATA when there are none.
    pub fn of(records: Vec<RData>, cname_chain: Vec<String>) -> Answer {
        if records.is_empty() {
            Answer::NoData
        } else {
            Answer::Records {
                records,
                cname_chain,
            }
        }
    }

    pub fn records(&self) -> &[RData] {
        match self {
            Answer::Records { records, .. } => records,
            _ => &[],
        }
    }

    /// RFC 7208 §4.6.4's "void lookup": NXDOMAIN or an answer with no records.
    pub fn is_void(&self) -> bool {
        self.records().is_empty()
    }

    /// All TXT records, each joined.
    pub fn txt_strings(&self) -> Vec<String> {
        self.records()
            .iter()
            .filter_map(RData::txt_joined)
            .collect()
    }

    pub fn cname_chain(&self) -> &[String] {
        match self {
            Answer::Records { cname_chain, .. } => cname_chain,
            _ => &[],
        }
    }
}

/// Why a question got no usable answer. Every variant means "unknown", never "absent".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("timed out")]
    Timeout,
    #[error("SERVFAIL")]
    ServFail,
    #[error("REFUSED")]
    Refused,
    /// Nothing listens at the server's address (ICMP port unreachable on UDP, a refused
    /// TCP connection): the resolver is down or not started yet, not refusing the name.
    #[error("no DNS server answers at the address (connection refused)")]
    Unreachable,
    #[error("invalid name {0:?}")]
    InvalidName(String),
    #[error("{0}")]
    Other(String),
}

pub type LookupResult = Result<Arc<Answer>, DnsError>;

/// Boxed future so that `Dns` stays object-safe (`Arc<dyn Dns>` is passed to every check).
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = LookupResult> + Send + 'a>>;

/// An answer and whether the resolver vouched for it with DNSSEC.
pub type AuthenticatedFuture<'a> = Pin<Box<dyn Future<Output = wire::Authenticated> + Send + 'a>>;

/// The one interface between the checks and the network.
pub trait Dns: Send + Sync {
    /// Looks up `name` (with or without trailing dot, any case) for `rtype`.
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> LookupFuture<'a>;

    /// Looks up `name` asking the resolver to say whether it validated the answer with
    /// DNSSEC (the AD bit, [`wire`]). Cached apart from the plain lookups, since only
    /// these answers carry the resolver's verdict. An implementation that cannot tell
    /// says "not validated".
    fn lookup_authenticated<'a>(
        &'a self,
        name: &'a str,
        rtype: RecordType,
    ) -> AuthenticatedFuture<'a> {
        Box::pin(async move {
            wire::Authenticated {
                result: self.lookup(name, rtype).await,
                authenticated: false,
                ttl: None,
            }
        })
    }
}

/// Lower-case, no trailing dot: the one spelling of a name used as a key and in output.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// An internationalised name in its ASCII (punycode) form, as DNS carries it
/// (`bücher.example` → `xn--bcher-kva.example`); ASCII names pass through lower-cased.
pub fn to_ascii_name(name: &str) -> Option<String> {
    if name.is_ascii() {
        return Some(normalize_name(name));
    }
    hickory_proto::rr::Name::from_utf8(name.trim_end_matches('.'))
        .ok()
        .map(|n| normalize_name(&n.to_ascii()))
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`, nibble form for IPv6).
pub fn reverse_name(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(v6) => {
            let mut out = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_names() {
        assert_eq!(
            to_ascii_name("Bücher.Example.").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(
            to_ascii_name("Example.COM.").as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn txt_strings_join_without_separator() {
        let r = RData::Txt(vec![b"v=DKIM1; p=AB".to_vec(), b"CD".to_vec()]);
        assert_eq!(r.txt_joined().unwrap(), "v=DKIM1; p=ABCD");
    }

    #[test]
    fn void_answers() {
        assert!(Answer::NxDomain.is_void());
        assert!(Answer::NoData.is_void());
        let a = Answer::Records {
            records: vec![RData::A(Ipv4Addr::LOCALHOST)],
            cname_chain: vec![],
        };
        assert!(!a.is_void());
    }
}
