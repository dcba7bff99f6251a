//! check_host() (RFC 7208 §4–§6) over the [`Dns`] interface, in two modes:
//!
//! - `Evaluate`: a receiver's evaluation for a real sender IP, stopping with permerror at
//!   the 11th DNS-querying term (§4.6.4) or the 3rd void lookup.
//! - `Lint`: the walk a receiver makes for a sender that matches nothing, counting every
//!   DNS-querying term of the whole tree and going on past the limits and past broken
//!   includes, so that the report shows the real totals and every problem at once.
//!
//! Own code rather than mail-auth's `verify_spf`, which neither counts lookups nor lets a
//! lint walk continue; records are still parsed by the grammar in `parse`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use super::macros::{expand, needs_sender, truncate_domain, MacroContext};
use super::parse::{self, Mechanism, Qualifier};
use super::SpfResult;
use crate::name::{has_valid_labels, normalize_name, reverse_name};
use crate::resolver::{Answer, Dns, DnsError, RData, RecordType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Evaluate,
    Lint,
}

/// A lint walk stops here, whatever the tree: enough to show any real problem.
const LINT_BUDGET: u32 = 100;
const MAX_LOOKUPS: u32 = 10;
const MAX_VOIDS: u32 = 2;
const MAX_MX_HOSTS: usize = 10;
const MAX_PTR_NAMES: usize = 10;

pub struct Walk<'a> {
    dns: &'a dyn Dns,
    mode: Mode,
    ip: Option<IpAddr>,
    sender: String,
    helo: String,
    pub lookups: u32,
    pub voids: u32,
    /// DNS-querying terms in evaluation order, as written (for the message).
    pub terms: Vec<String>,
    pub dns_errors: Vec<String>,
    pub loops: Vec<String>,
    pub missing: Vec<String>,
    pub mx_overflow: Vec<String>,
    pub ptr_used: bool,
    /// Syntax errors and multiple records in included or redirected records.
    pub nested_errors: Vec<String>,
    validated: Option<String>,
}

type BoxFut<'s> = Pin<Box<dyn Future<Output = SpfResult> + Send + 's>>;

pub enum Fetch {
    Record(String),
    None,
    Multiple(usize),
    Error(DnsError),
}

/// RFC 7208 §4.3: a malformed or single-label name gives "none". Only the shape counts
/// (the name's characters are not checked: SPF names may be macro-expanded from anything).
fn valid_domain(name: &str) -> bool {
    has_valid_labels(name) && name.trim_end_matches('.').contains('.')
}

fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn addresses(answer: &Answer) -> Vec<IpAddr> {
    answer
        .records()
        .iter()
        .filter_map(|r| match r {
            RData::A(a) => Some(IpAddr::V4(*a)),
            RData::Aaaa(a) => Some(IpAddr::V6(*a)),
            _ => None,
        })
        .collect()
}

impl<'a> Walk<'a> {
    pub fn new(dns: &'a dyn Dns, mode: Mode, ip: Option<IpAddr>, sender: &str, helo: &str) -> Self {
        // §5: an IPv4-mapped IPv6 client is an IPv4 client.
        let ip = ip.map(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        });
        Walk {
            dns,
            mode,
            ip,
            sender: sender.to_string(),
            helo: helo.to_string(),
            lookups: 0,
            voids: 0,
            terms: Vec::new(),
            dns_errors: Vec::new(),
            loops: Vec::new(),
            missing: Vec::new(),
            mx_overflow: Vec::new(),
            ptr_used: false,
            nested_errors: Vec::new(),
            validated: None,
        }
    }

    fn lint(&self) -> bool {
        self.mode == Mode::Lint
    }

    /// The SPF record at `domain` (§4.4, §4.5).
    pub async fn fetch(&self, domain: &str) -> Fetch {
        match self.dns.lookup(domain, RecordType::Txt).await {
            Err(DnsError::InvalidName(_)) => Fetch::None,
            Err(e) => Fetch::Error(e),
            Ok(answer) => {
                let records: Vec<String> = answer
                    .txt_strings()
                    .into_iter()
                    .filter(|t| parse::is_spf(t))
                    .collect();
                match records.len() {
                    0 => Fetch::None,
                    1 => Fetch::Record(records.into_iter().next().unwrap_or_default()),
                    n => Fetch::Multiple(n),
                }
            }
        }
    }

    /// Counts a DNS-querying term; false when the limit forbids evaluating it.
    fn count(&mut self, term: &str) -> bool {
        self.lookups += 1;
        self.terms.push(term.to_string());
        match self.mode {
            Mode::Evaluate => self.lookups <= MAX_LOOKUPS,
            Mode::Lint => self.lookups <= LINT_BUDGET,
        }
    }

    /// Counts a void answer; false when the limit is exceeded (Evaluate only).
    fn void(&mut self, answer: &Answer) -> bool {
        if answer.is_void() {
            self.voids += 1;
        }
        self.mode == Mode::Lint || self.voids <= MAX_VOIDS
    }

    async fn validated_name(&mut self, domain: &str) -> String {
        if let Some(v) = &self.validated {
            return v.clone();
        }
        let mut chosen = "unknown".to_string();
        if let Some(ip) = self.ip {
            let names = self.ptr_names(ip).await;
            let target = normalize_name(domain);
            if let Some(n) = names
                .iter()
                .find(|n| **n == target || n.ends_with(&format!(".{target}")))
                .or(names.first())
            {
                chosen = n.clone();
            }
        }
        self.validated = Some(chosen.clone());
        chosen
    }

    /// §5.5: PTR names of the IP that resolve back to it (at most 10 examined).
    async fn ptr_names(&self, ip: IpAddr) -> Vec<String> {
        let Ok(answer) = self.dns.lookup(&reverse_name(ip), RecordType::Ptr).await else {
            return Vec::new();
        };
        let rtype = if ip.is_ipv4() {
            RecordType::A
        } else {
            RecordType::Aaaa
        };
        let mut validated = Vec::new();
        for name in answer
            .records()
            .iter()
            .filter_map(|r| {
                if let RData::Ptr(n) = r {
                    Some(n.clone())
                } else {
                    None
                }
            })
            .take(MAX_PTR_NAMES)
        {
            if let Ok(a) = self.dns.lookup(&name, rtype).await {
                if addresses(&a).contains(&ip) {
                    validated.push(name);
                }
            }
        }
        validated
    }

    /// Expands a domain-spec; None when a lint walk cannot (sender macros) or the result
    /// is not a usable name.
    async fn target(&mut self, spec: &str, domain: &str) -> Option<String> {
        if self.lint() && needs_sender(spec) {
            return None;
        }
        let validated = if spec.to_ascii_lowercase().contains("%{p") {
            self.validated_name(domain).await
        } else {
            String::new()
        };
        let ctx = MacroContext {
            sender: &self.sender,
            domain,
            ip: self.ip,
            helo: &self.helo,
            validated: &validated,
        };
        Some(truncate_domain(expand(spec, &ctx)))
    }

    pub fn check_host<'s>(&'s mut self, domain: String, path: Vec<String>) -> BoxFut<'s> {
        Box::pin(async move { self.check_host_inner(domain, path).await })
    }

    async fn check_host_inner(&mut self, domain: String, path: Vec<String>) -> SpfResult {
        let domain = normalize_name(&domain);
        if !valid_domain(&domain) {
            return SpfResult::None;
        }
        let text = match self.fetch(&domain).await {
            Fetch::Record(t) => t,
            Fetch::None => return SpfResult::None,
            Fetch::Multiple(n) => {
                if !path.is_empty() {
                    self.nested_errors
                        .push(format!("{domain} has {n} SPF records"));
                }
                return SpfResult::PermError;
            }
            Fetch::Error(e) => {
                self.dns_errors.push(format!("TXT lookup of {domain}: {e}"));
                return SpfResult::TempError;
            }
        };
        self.evaluate_record(domain, &text, path).await
    }

    /// check_host() of a record's `text` as if it were published at `domain` (whose name
    /// the macros expand to): the record at the root of the walk, or one fetched for an
    /// include or redirect. `path` is the chain of names that led here (loop detection).
    pub fn evaluate_text<'s>(
        &'s mut self,
        domain: String,
        text: &'s str,
        path: Vec<String>,
    ) -> BoxFut<'s> {
        Box::pin(async move {
            let domain = normalize_name(&domain);
            self.evaluate_record(domain, text, path).await
        })
    }

    async fn evaluate_record(
        &mut self,
        domain: String,
        text: &str,
        mut path: Vec<String>,
    ) -> SpfResult {
        let record = match parse::parse(text) {
            Ok(r) => r,
            Err(e) => {
                if !path.is_empty() {
                    self.nested_errors.push(format!("{domain}: {e}"));
                }
                return SpfResult::PermError;
            }
        };
        path.push(domain.clone());
        for directive in &record.directives {
            let matched = match &directive.mechanism {
                Mechanism::All => true,
                Mechanism::Ip4(net, len) => self
                    .ip
                    .is_some_and(|ip| in_network(ip, IpAddr::V4(*net), *len)),
                Mechanism::Ip6(net, len) => self
                    .ip
                    .is_some_and(|ip| in_network(ip, IpAddr::V6(*net), *len)),
                Mechanism::Include(spec) => {
                    if !self.count(&directive.text) {
                        return SpfResult::PermError;
                    }
                    let Some(target) = self.target(spec, &domain).await else {
                        continue;
                    };
                    let target = normalize_name(&target);
                    if path.contains(&target) {
                        self.loops
                            .push(format!("{} → include:{target}", path.join(" → ")));
                        if self.lint() {
                            continue;
                        }
                        return SpfResult::PermError;
                    }
                    // §5.2: the include's result decides whether the mechanism matches.
                    match self.check_host(target.clone(), path.clone()).await {
                        SpfResult::Pass => true,
                        SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => false,
                        SpfResult::TempError if self.lint() => false,
                        SpfResult::TempError => return SpfResult::TempError,
                        other => {
                            if other == SpfResult::None {
                                self.missing.push(format!("include:{target}"));
                            }
                            if self.lint() {
                                false
                            } else {
                                return SpfResult::PermError;
                            }
                        }
                    }
                }
                Mechanism::A {
                    domain: spec,
                    cidr4,
                    cidr6,
                }
                | Mechanism::Mx {
                    domain: spec,
                    cidr4,
                    cidr6,
                } => {
                    if !self.count(&directive.text) {
                        return SpfResult::PermError;
                    }
                    let target = match spec {
                        Some(s) => match self.target(s, &domain).await {
                            Some(t) => t,
                            None => continue,
                        },
                        None => domain.clone(),
                    };
                    let matched = if matches!(directive.mechanism, Mechanism::A { .. }) {
                        self.match_addresses(&target, *cidr4, *cidr6).await
                    } else {
                        self.match_mx(&target, *cidr4, *cidr6).await
                    };
                    match matched {
                        Ok(Some(m)) => m,
                        Ok(None) => return SpfResult::PermError,
                        Err(r) => return r,
                    }
                }
                Mechanism::Ptr(spec) => {
                    self.ptr_used = true;
                    if !self.count(&directive.text) {
                        return SpfResult::PermError;
                    }
                    let target = match spec {
                        Some(s) => match self.target(s, &domain).await {
                            Some(t) => normalize_name(&t),
                            None => continue,
                        },
                        None => domain.clone(),
                    };
                    match self.ip {
                        None => false,
                        Some(ip) => self
                            .ptr_names(ip)
                            .await
                            .iter()
                            .any(|n| *n == target || n.ends_with(&format!(".{target}"))),
                    }
                }
                Mechanism::Exists(spec) => {
                    if !self.count(&directive.text) {
                        return SpfResult::PermError;
                    }
                    let Some(target) = self.target(spec, &domain).await else {
                        continue;
                    };
                    // §5.7: an A query, whatever the client's address family.
                    match self.dns.lookup(&target, RecordType::A).await {
                        Ok(answer) => {
                            if !self.void(&answer) {
                                return SpfResult::PermError;
                            }
                            !answer.is_void() && !self.lint()
                        }
                        Err(DnsError::InvalidName(_)) => false,
                        Err(e) => {
                            self.dns_errors.push(format!("A lookup of {target}: {e}"));
                            if self.lint() {
                                false
                            } else {
                                return SpfResult::TempError;
                            }
                        }
                    }
                }
            };
            if matched {
                return match directive.qualifier {
                    Qualifier::Pass => SpfResult::Pass,
                    Qualifier::Fail => SpfResult::Fail,
                    Qualifier::SoftFail => SpfResult::SoftFail,
                    Qualifier::Neutral => SpfResult::Neutral,
                };
            }
        }
        // §6.1: redirect applies when nothing matched and there is no `all`.
        if let (Some(spec), None) = (&record.redirect, record.all()) {
            let term = format!("redirect={spec}");
            if !self.count(&term) {
                return SpfResult::PermError;
            }
            let Some(target) = self.target(spec, &domain).await else {
                return SpfResult::Neutral;
            };
            let target = normalize_name(&target);
            if path.contains(&target) {
                self.loops
                    .push(format!("{} → redirect={target}", path.join(" → ")));
                return SpfResult::PermError;
            }
            let result = self.check_host(target.clone(), path.clone()).await;
            if result == SpfResult::None {
                self.missing.push(format!("redirect={target}"));
                return SpfResult::PermError;
            }
            return result;
        }
        SpfResult::Neutral
    }

    /// a/mx address matching. Ok(None) means a limit was exceeded (permerror).
    async fn match_addresses(
        &mut self,
        target: &str,
        cidr4: u8,
        cidr6: u8,
    ) -> Result<Option<bool>, SpfResult> {
        let rtype = if self.ip.is_some_and(|ip| ip.is_ipv6()) {
            RecordType::Aaaa
        } else {
            RecordType::A
        };
        match self.dns.lookup(target, rtype).await {
            Ok(answer) => {
                if !self.void(&answer) {
                    return Ok(None);
                }
                Ok(Some(self.ip.is_some_and(|ip| {
                    addresses(&answer)
                        .iter()
                        .any(|a| in_network(ip, *a, if a.is_ipv4() { cidr4 } else { cidr6 }))
                })))
            }
            Err(DnsError::InvalidName(_)) => Ok(Some(false)),
            Err(e) => {
                self.dns_errors
                    .push(format!("{rtype} lookup of {target}: {e}"));
                if self.lint() {
                    Ok(Some(false))
                } else {
                    Err(SpfResult::TempError)
                }
            }
        }
    }

    async fn match_mx(
        &mut self,
        target: &str,
        cidr4: u8,
        cidr6: u8,
    ) -> Result<Option<bool>, SpfResult> {
        let answer = match self.dns.lookup(target, RecordType::Mx).await {
            Ok(a) => a,
            Err(DnsError::InvalidName(_)) => return Ok(Some(false)),
            Err(e) => {
                self.dns_errors.push(format!("MX lookup of {target}: {e}"));
                return if self.lint() {
                    Ok(Some(false))
                } else {
                    Err(SpfResult::TempError)
                };
            }
        };
        if !self.void(&answer) {
            return Ok(None);
        }
        let hosts: Vec<String> = answer
            .records()
            .iter()
            .filter_map(|r| {
                if let RData::Mx { exchange, .. } = r {
                    Some(exchange.clone())
                } else {
                    None
                }
            })
            .filter(|h| !h.is_empty())
            .collect();
        if hosts.len() > MAX_MX_HOSTS {
            self.mx_overflow
                .push(format!("mx:{target} has {} MX hosts", hosts.len()));
            if !self.lint() {
                return Ok(None);
            }
        }
        let Some(ip) = self.ip else {
            // Lint: a receiver would look the hosts up too; their lookups do not count.
            for host in hosts.iter().take(MAX_MX_HOSTS) {
                if let Err(e) = self.dns.lookup(host, RecordType::A).await {
                    if !matches!(e, DnsError::InvalidName(_)) {
                        self.dns_errors
                            .push(format!("A lookup of MX host {host}: {e}"));
                    }
                }
            }
            return Ok(Some(false));
        };
        let rtype = if ip.is_ipv6() {
            RecordType::Aaaa
        } else {
            RecordType::A
        };
        for host in hosts.iter().take(MAX_MX_HOSTS) {
            match self.dns.lookup(host, rtype).await {
                Ok(a) => {
                    if addresses(&a).iter().any(|addr| {
                        in_network(ip, *addr, if addr.is_ipv4() { cidr4 } else { cidr6 })
                    }) {
                        return Ok(Some(true));
                    }
                }
                Err(DnsError::InvalidName(_)) => {}
                Err(e) => {
                    self.dns_errors
                        .push(format!("{rtype} lookup of MX host {host}: {e}"));
                    if !self.lint() {
                        return Err(SpfResult::TempError);
                    }
                }
            }
        }
        Ok(Some(false))
    }
}
