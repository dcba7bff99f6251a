//! The wire side of [`Dns`]: hickory-resolver with its own cache switched off (the
//! [`CachingDns`](super::CachingDns) layer above decides what is fresh), answers mapped to
//! [`Answer`]/[`DnsError`], and every query sent counted by its outcome.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData as HRData, RecordType as HRecordType};
use hickory_resolver::{Resolver, TokioResolver};

use super::wire::Authenticated;
use super::{
    normalize_name, Answer, AuthenticatedFuture, Dns, DnsError, LookupFuture, LookupResult, RData,
    RecordType,
};

/// How to reach DNS: explicit servers (`[dns] nameservers`, `--nameserver`) or, when empty,
/// the system's resolv.conf.
#[derive(Clone, Debug)]
pub struct ResolverSettings {
    pub nameservers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: usize,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(3),
            attempts: 2,
        }
    }
}

/// Counts of queries that went to the wire, by outcome (`mailauth_dns_queries_total`).
#[derive(Debug, Default)]
pub struct QueryCounters {
    pub ok: AtomicU64,
    pub nxdomain: AtomicU64,
    pub nodata: AtomicU64,
    pub servfail: AtomicU64,
    pub timeout: AtomicU64,
    pub refused: AtomicU64,
    pub error: AtomicU64,
}

impl QueryCounters {
    /// `(result label, count)` pairs in a fixed order.
    pub fn snapshot(&self) -> [(&'static str, u64); 7] {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("ok", l(&self.ok)),
            ("nxdomain", l(&self.nxdomain)),
            ("nodata", l(&self.nodata)),
            ("servfail", l(&self.servfail)),
            ("timeout", l(&self.timeout)),
            ("refused", l(&self.refused)),
            ("error", l(&self.error)),
        ]
    }

    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|(_, n)| n).sum()
    }

    fn count(&self, result: &LookupResult) {
        let counter = match result {
            Ok(a) => match a.as_ref() {
                Answer::Records { .. } => &self.ok,
                Answer::NxDomain => &self.nxdomain,
                Answer::NoData => &self.nodata,
            },
            Err(DnsError::Timeout) => &self.timeout,
            Err(DnsError::ServFail) => &self.servfail,
            Err(DnsError::Refused) => &self.refused,
            Err(_) => &self.error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// hickory-resolver behind [`Dns`]. Returns each answer with its TTL through [`HickoryDns::query`].
pub struct HickoryDns {
    resolver: TokioResolver,
    counters: Arc<QueryCounters>,
    /// Where every check's query goes ([`super::wire`]); hickory's resolver, built for
    /// the same servers, serves only the libraries that need one.
    upstream: super::wire::Upstream,
}

/// An answer and how long it may be reused (record TTL, or the negative TTL of the SOA).
pub struct TimedAnswer {
    pub result: LookupResult,
    pub ttl: Option<Duration>,
}

impl HickoryDns {
    pub fn new(settings: &ResolverSettings, counters: Arc<QueryCounters>) -> Result<Self, String> {
        let (config, mut opts) = if settings.nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            (
                ResolverConfig::from_parts(None, vec![], servers),
                ResolverOpts::default(),
            )
        };
        opts.timeout = settings.timeout;
        opts.attempts = settings.attempts.max(1);
        // Freshness is decided one layer up; a monitoring tool must see changes.
        opts.cache_size = 0;
        opts.preserve_intermediates = true;
        opts.ndots = 0;
        opts.edns0 = true;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let servers = config
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns
                    .connections
                    .iter()
                    .find(|c| matches!(c.protocol, ProtocolConfig::Udp))
                    .map_or(53, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .collect();
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| format!("cannot build the DNS resolver: {e}"))?;
        Ok(Self {
            resolver,
            counters,
            upstream: super::wire::Upstream {
                servers,
                timeout: settings.timeout,
                attempts: settings.attempts.max(1),
            },
        })
    }

    /// One query with the DNSSEC OK and AD bits set, counted; whether the resolver set AD.
    pub async fn query_authenticated(&self, name: &str, rtype: RecordType) -> Authenticated {
        let answer = super::wire::ask(&self.upstream, name, rtype, true).await;
        self.counters.count(&answer.result);
        answer
    }

    /// The underlying resolver, for libraries that take one (mail-auth's DKIM verifier).
    pub fn resolver(&self) -> TokioResolver {
        self.resolver.clone()
    }

    pub fn counters(&self) -> &Arc<QueryCounters> {
        &self.counters
    }

    /// One query to the wire, counted.
    pub async fn query(&self, name: &str, rtype: RecordType) -> TimedAnswer {
        let answer = self.query_uncounted(name, rtype).await;
        self.counters.count(&answer.result);
        answer
    }

    async fn query_uncounted(&self, name: &str, rtype: RecordType) -> TimedAnswer {
        let fqdn = normalize_name(name);
        if fqdn.len() > 253 || fqdn.is_empty() && rtype != RecordType::Txt {
            return TimedAnswer {
                result: Err(DnsError::InvalidName(name.to_string())),
                ttl: None,
            };
        }
        let answer = super::wire::ask(&self.upstream, &fqdn, rtype, false).await;
        TimedAnswer {
            result: answer.result,
            ttl: answer.ttl,
        }
    }
}

impl Dns for HickoryDns {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> LookupFuture<'a> {
        Box::pin(async move { self.query(name, rtype).await.result })
    }

    fn lookup_authenticated<'a>(
        &'a self,
        name: &'a str,
        rtype: RecordType,
    ) -> AuthenticatedFuture<'a> {
        Box::pin(self.query_authenticated(name, rtype))
    }
}

/// A chain of aliases that comes back to a name already in it (the queried name
/// included) ends nowhere: a broken zone, which must show as a DNS error, not as "no
/// record" (RFC 1034 §3.6.2 asks resolvers to detect such loops).
pub(super) fn cname_loop(name: &str, chain: &[String]) -> bool {
    let mut seen = std::collections::HashSet::from([normalize_name(name)]);
    chain
        .iter()
        .any(|target| !seen.insert(normalize_name(target)))
}

/// The records of `rtype` in an answer section, and the CNAME targets that led to them.
pub(super) fn answer_records<'a>(
    data: impl Iterator<Item = &'a HRData>,
    rtype: RecordType,
) -> (Vec<RData>, Vec<String>) {
    let mut records = Vec::new();
    let mut cname_chain = Vec::new();
    for d in data {
        match convert(d) {
            Some(RData::Cname(target)) if rtype != RecordType::Cname => cname_chain.push(target),
            Some(data) if record_type_of(&data) == rtype => records.push(data),
            _ => {}
        }
    }
    (records, cname_chain)
}

pub(super) fn hickory_type(rtype: RecordType) -> HRecordType {
    match rtype {
        RecordType::A => HRecordType::A,
        RecordType::Aaaa => HRecordType::AAAA,
        RecordType::Mx => HRecordType::MX,
        RecordType::Txt => HRecordType::TXT,
        RecordType::Ptr => HRecordType::PTR,
        RecordType::Cname => HRecordType::CNAME,
        RecordType::Tlsa => HRecordType::TLSA,
    }
}

pub(super) fn record_type_of(data: &RData) -> RecordType {
    match data {
        RData::A(_) => RecordType::A,
        RData::Aaaa(_) => RecordType::Aaaa,
        RData::Mx { .. } => RecordType::Mx,
        RData::Txt(_) => RecordType::Txt,
        RData::Ptr(_) => RecordType::Ptr,
        RData::Cname(_) => RecordType::Cname,
        RData::Tlsa { .. } => RecordType::Tlsa,
    }
}

pub(super) fn convert(data: &HRData) -> Option<RData> {
    Some(match data {
        HRData::A(a) => RData::A(a.0),
        HRData::AAAA(a) => RData::Aaaa(a.0),
        HRData::MX(mx) => RData::Mx {
            preference: mx.preference,
            exchange: normalize_name(&mx.exchange.to_ascii()),
        },
        HRData::TXT(txt) => RData::Txt(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
        HRData::PTR(ptr) => RData::Ptr(normalize_name(&ptr.0.to_ascii())),
        HRData::CNAME(c) => RData::Cname(normalize_name(&c.0.to_ascii())),
        HRData::TLSA(t) => RData::Tlsa {
            usage: u8::from(t.cert_usage),
            selector: u8::from(t.selector),
            matching: u8::from(t.matching),
            data: t.cert_data.clone(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::cname_loop;

    #[test]
    fn alias_chains_that_return_to_a_name_are_loops() {
        let chain = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(cname_loop("a.test.", &chain(&["b.test", "a.test"])));
        assert!(cname_loop(
            "a.test",
            &chain(&["b.test", "c.test", "B.test"])
        ));
        assert!(!cname_loop("a.test", &chain(&["b.test", "c.test"])));
        assert!(!cname_loop("a.test", &[]));
    }
}
