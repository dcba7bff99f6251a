//! The uncached side of [`Dns`]: every query sent through the exporter's own exchange
//! ([`super::wire`]) to the configured servers (or resolv.conf's), counted by its outcome.
//! The [`CachingDns`](super::CachingDns) layer above decides what is fresh. A
//! hickory-resolver for the same servers, its own cache off, is kept for the libraries
//! that take one (mail-auth's DKIM verifier).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

use super::wire::Server;
use super::{
    Answer, Authenticated, AuthenticatedFuture, Dns, DnsError, LookupFuture, LookupResult,
    RecordType,
};
use crate::name::normalize_name;

/// How to reach DNS: explicit servers (`[dns] nameservers`, `--nameserver`) or, when empty,
/// the system's resolv.conf.
#[derive(Clone, Debug)]
pub struct ResolverSettings {
    pub nameservers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: usize,
    /// Queries sent to one server at once, at most (`[dns] max_in_flight`).
    pub max_in_flight: usize,
}

/// The default bound on queries in flight per server. Large enough not to slow a healthy
/// server: at a loopback resolver's 0.1 to 1 ms per answer, 256 at once carry 250,000
/// queries a second or more, beyond what the checks of 10,000 domains ask. Small enough
/// that a burst fits a server's receive queue: a Linux socket's default buffer
/// (`net.core.rmem_default`, 208 KiB) holds a few hundred small queries, so a resolver
/// with one UDP worker is not made to drop datagrams by the exporter's bursts alone.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(3),
            attempts: 2,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Counts of queries that went to the wire, by outcome (`mailauth_dns_queries_total`),
/// and the state of each server they went to.
#[derive(Debug, Default)]
pub struct QueryCounters {
    pub ok: AtomicU64,
    pub nxdomain: AtomicU64,
    pub nodata: AtomicU64,
    pub servfail: AtomicU64,
    pub timeout: AtomicU64,
    pub refused: AtomicU64,
    pub unreachable: AtomicU64,
    pub error: AtomicU64,
    /// The servers of the resolver built last with these counters.
    servers: RwLock<Vec<Arc<Server>>>,
    /// Retransmissions per server address, kept when a reload builds the servers again.
    retransmissions: std::sync::Mutex<HashMap<SocketAddr, Arc<AtomicU64>>>,
}

/// One server's transport figures (`mailauth_dns_retransmissions_total`,
/// `mailauth_dns_rto_seconds`).
#[derive(Clone, Debug, PartialEq)]
pub struct ServerStats {
    /// The configured address: the label, bounded by the configuration.
    pub server: SocketAddr,
    pub retransmissions: u64,
    pub rto: Duration,
}

impl QueryCounters {
    /// `(result label, count)` pairs in a fixed order.
    pub fn snapshot(&self) -> [(&'static str, u64); 8] {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("ok", l(&self.ok)),
            ("nxdomain", l(&self.nxdomain)),
            ("nodata", l(&self.nodata)),
            ("servfail", l(&self.servfail)),
            ("timeout", l(&self.timeout)),
            ("refused", l(&self.refused)),
            ("unreachable", l(&self.unreachable)),
            ("error", l(&self.error)),
        ]
    }

    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|(_, n)| n).sum()
    }

    /// Each server's retransmissions and current RTO, in the configured order.
    pub fn servers(&self) -> Vec<ServerStats> {
        self.servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|s| ServerStats {
                server: s.addr,
                retransmissions: s.retransmissions(),
                rto: s.rto(),
            })
            .collect()
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
            Err(DnsError::Unreachable) => &self.unreachable,
            Err(_) => &self.error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why no resolver could be built.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    /// No servers were configured and resolv.conf could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfigUnreadable(String),
    /// hickory-resolver refused the configuration (for the DKIM verifier).
    #[error("cannot build the DNS resolver: {0}")]
    ResolverRefused(String),
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
    pub fn new(
        settings: &ResolverSettings,
        counters: Arc<QueryCounters>,
    ) -> Result<Self, ResolverError> {
        let (config, mut opts) = if settings.nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| ResolverError::SystemConfigUnreadable(e.to_string()))?
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
        let servers: Vec<SocketAddr> = config
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
            .map_err(|e| ResolverError::ResolverRefused(e.to_string()))?;
        let servers: Vec<Arc<Server>> = servers
            .into_iter()
            .map(|addr: SocketAddr| {
                let retransmissions = counters
                    .retransmissions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(addr)
                    .or_default()
                    .clone();
                Arc::new(Server::new(
                    addr,
                    settings.timeout,
                    settings.max_in_flight,
                    retransmissions,
                ))
            })
            .collect();
        *counters
            .servers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = servers.clone();
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
