//! DNS access for every check: one small interface ([`Dns`]) with typed answers that keep
//! the distinctions the RFCs care about (NXDOMAIN vs NODATA vs a server failure), and its
//! implementations: the exchange on the wire ([`wire`], with its round-trip estimate
//! [`rtt`] and its sockets [`pool`]), the stub resolver over it
//! ([`client`]), the shared cache in front ([`cache`]) and an in-memory one for tests
//! ([`fake`]). The record checks that sit on top of it live in `crate::checks`.
//!
//! A server failure is never turned into "no record": SPF void-lookup counting and the
//! `dns.error` finding both depend on telling them apart.

pub mod cache;
pub mod client;
pub mod fake;
pub mod pool;
pub mod rtt;
pub mod wire;

use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Re-exported for the callers that still spell them `resolver::` (checks/mod.rs,
/// server/, service/scheduler.rs, config/mod.rs, mail/probe.rs: files being edited in
/// issue 15's steps 2 and 3); new code imports [`crate::name`], where they live.
pub use cache::CachingDns;
pub use client::{HickoryDns, QueryCounters, ResolverError, ResolverSettings};

/// The resolver stack every caller uses (the exporter, `check`, `inspect`, `report`, the
/// tests): the wire client for `settings`, its queries counted in `counters`, behind the
/// cache shared by all checks, which keeps answers for their TTL but at most
/// `cache_max_ttl`. Built in one place so that a change to the stack reaches every caller.
pub fn build_stack(
    settings: &ResolverSettings,
    cache_max_ttl: Duration,
    counters: Arc<QueryCounters>,
) -> Result<Arc<CachingDns>, ResolverError> {
    let wire = HickoryDns::new(settings, counters)?;
    Ok(Arc::new(CachingDns::new(wire, cache_max_ttl)))
}

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
    /// The type of this record (what a question must ask for to get it).
    pub fn record_type(&self) -> RecordType {
        match self {
            RData::A(_) => RecordType::A,
            RData::Aaaa(_) => RecordType::Aaaa,
            RData::Mx { .. } => RecordType::Mx,
            RData::Txt(_) => RecordType::Txt,
            RData::Ptr(_) => RecordType::Ptr,
            RData::Cname(_) => RecordType::Cname,
            RData::Tlsa { .. } => RecordType::Tlsa,
        }
    }

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
    /// An alias chain that comes back to a name already in it (RFC 1034 §3.6.2).
    #[error("CNAME loop at {0}")]
    CnameLoop(String),
    /// More aliases than a resolver follows.
    #[error("CNAME chain of {name} longer than {limit}")]
    CnameChainTooLong { name: String, limit: usize },
    /// The server answered FORMERR to the query with EDNS and to the one without.
    #[error("the server answered FORMERR with EDNS and without")]
    FormErr,
    /// A response code the checks have no meaning for (NOTIMP, and the like).
    #[error("response code {0}")]
    UnexpectedRcode(String),
    /// Bytes under our query id that are not a DNS message: the server is broken.
    #[error("malformed response: {0}")]
    MalformedResponse(String),
    /// The name or type could not be put into a query.
    #[error("cannot encode a query for {0}")]
    QueryEncoding(String),
    #[error("no nameserver configured")]
    NoNameserver,
    #[error("query too long")]
    QueryTooLong,
    /// The answer was truncated over UDP and the TCP retry failed as said.
    #[error("the UDP answer was truncated, and over TCP: {0}")]
    TcpFallback(Box<DnsError>),
    /// Over TCP the server sent an answer to another question, or FORMERR.
    #[error("{0} answered over TCP with something else")]
    TcpAnswerMismatch(std::net::SocketAddr),
    #[error("{0} answered FORMERR over TCP")]
    FormErrOverTcp(std::net::SocketAddr),
    /// The network failed under the exchange (reset, unreachable host, …).
    #[error("{0}")]
    Network(std::io::ErrorKind),
}

pub type LookupResult = Result<Arc<Answer>, DnsError>;

/// Boxed future so that `Dns` stays object-safe (`Arc<dyn Dns>` is passed to every check).
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = LookupResult> + Send + 'a>>;

/// An answer and whether the resolver vouched for it (AD set in its response). Beside the
/// trait that returns it, not in [`wire`], so that an implementation of [`Dns`] other than
/// the wire's needs nothing of the wire.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub result: LookupResult,
    pub authenticated: bool,
    /// How long the answer may be reused: the smallest TTL of the answer records, or the
    /// negative TTL of the SOA for a negative answer (RFC 2308 §5); `None` when the
    /// response gave none.
    pub ttl: Option<Duration>,
}

/// An answer and whether the resolver vouched for it with DNSSEC.
pub type AuthenticatedFuture<'a> = Pin<Box<dyn Future<Output = Authenticated> + Send + 'a>>;

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
            Authenticated {
                result: self.lookup(name, rtype).await,
                authenticated: false,
                ttl: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
