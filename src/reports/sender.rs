//! `[[sender]]`: the services allowed to send as a watched domain, and which of them an
//! aggregate report's record came from (its `source`: a sender's name, or `unknown`).
//!
//! A record matches a sender when its source IP is in one of the sender's `ip_ranges`,
//! when DKIM passed (in the receiver's `auth_results`) for one of its `dkim_domains`, or
//! when the sender's `spf` terms, evaluated by the exporter's own SPF evaluator
//! (`checks::spf::check_terms`) for the record's source IP, pass. The cheap tests (ranges,
//! DKIM) run over every sender first, in config order; SPF, which costs DNS queries, only
//! when none of them matched, again in config order. A sender with `domains` only
//! matches records about those domains.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use super::aggregate::{AggregateReport, Record};
use crate::checks::spf::{check_terms, SpfResult};
use crate::ip_range::IpRange;
use crate::name::canonical;
use crate::resolver::Dns;

/// The `source` of a record no sender matched.
pub const UNKNOWN: &str = crate::config::UNKNOWN_SENDER;

/// SPF answers remembered per (sender, IP, domain) between reports; cleared when full.
const SPF_MEMO_ENTRIES: usize = 10_000;

/// One `[[sender]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub name: String,
    pub ip_ranges: Vec<IpRange>,
    /// Canonical domain names.
    pub dkim_domains: Vec<String>,
    /// SPF terms (`include:_spf.google.com`), evaluated as `v=spf1 <terms> -all`.
    pub spf: Option<String>,
    /// Canonical watched domains it sends for; empty: all.
    pub domains: Vec<String>,
}

/// The `[[sender]]` table of a (validated) config, in config order; an entry that does not
/// check out (impossible after validation) is left out.
pub fn from_config(config: &crate::config::Config) -> Vec<Sender> {
    config
        .senders
        .iter()
        .filter_map(|s| {
            let parts = s.parts().ok()?;
            Some(Sender {
                name: s.name.get_ref().clone(),
                ip_ranges: parts.ip_ranges,
                dkim_domains: parts.dkim_domains,
                spf: parts.spf,
                domains: parts.domains,
            })
        })
        .collect()
}

impl Sender {
    fn applies_to(&self, domain: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d == domain)
    }

    /// Whether the record matches without DNS: its IP in a range, or a DKIM pass for one of
    /// the sender's domains.
    fn matches_offline(&self, ip: Option<IpAddr>, record: &Record) -> bool {
        if ip.is_some_and(|ip| self.ip_ranges.iter().any(|r| r.contains(ip))) {
            return true;
        }
        record.dkim.iter().any(|d| {
            d.result.as_deref() == Some("pass")
                && d.domain
                    .as_deref()
                    .is_some_and(|name| self.dkim_domains.contains(&canonical(name)))
        })
    }
}

/// The configured senders, in config order, with a memo of SPF answers.
#[derive(Debug, Default)]
pub struct SenderTable {
    senders: Vec<Sender>,
    spf_memo: Mutex<HashMap<(usize, IpAddr, String), bool>>,
}

impl SenderTable {
    pub fn new(senders: Vec<Sender>) -> SenderTable {
        SenderTable {
            senders,
            spf_memo: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// The name of the sender that `record` (of a report about `domain`) came from, or
    /// `unknown`; `None` from [`Self::classify_offline`] means SPF would have to be asked.
    pub fn classify_offline(&self, domain: &str, record: &Record) -> Option<&str> {
        let domain = canonical(domain);
        let ip = record.source_ip.trim().parse::<IpAddr>().ok();
        let candidates = self.senders.iter().filter(|s| s.applies_to(&domain));
        for sender in candidates.clone() {
            if sender.matches_offline(ip, record) {
                return Some(&sender.name);
            }
        }
        if ip.is_none() || candidates.clone().all(|s| s.spf.is_none()) {
            return Some(UNKNOWN);
        }
        None
    }

    /// The name of the sender that `record` (of a report about `domain`) came from, or
    /// `unknown`, asking SPF through `dns` where the offline tests do not decide.
    pub async fn classify(&self, dns: &dyn Dns, domain: &str, record: &Record) -> String {
        if let Some(name) = self.classify_offline(domain, record) {
            return name.to_string();
        }
        let domain = canonical(domain);
        let Ok(ip) = record.source_ip.trim().parse::<IpAddr>() else {
            return UNKNOWN.to_string();
        };
        for (index, sender) in self.senders.iter().enumerate() {
            let Some(terms) = sender.spf.as_deref().filter(|_| sender.applies_to(&domain)) else {
                continue;
            };
            let key = (index, ip, domain.clone());
            let known = self.memo().get(&key).copied();
            let pass = match known {
                Some(pass) => pass,
                None => {
                    let result = check_terms(dns, ip, &domain, terms).await;
                    // A temporary DNS failure is not remembered: the next report asks again.
                    if result != SpfResult::TempError {
                        let mut memo = self.memo();
                        if memo.len() >= SPF_MEMO_ENTRIES {
                            memo.clear();
                        }
                        memo.insert(key, result == SpfResult::Pass);
                    }
                    result == SpfResult::Pass
                }
            };
            if pass {
                return sender.name.clone();
            }
        }
        UNKNOWN.to_string()
    }

    /// The `source` of every record of `report`, in record order.
    pub async fn classify_report(&self, dns: &dyn Dns, report: &AggregateReport) -> Vec<String> {
        let mut sources = Vec::with_capacity(report.records.len());
        for record in &report.records {
            sources.push(self.classify(dns, &report.domain, record).await);
        }
        sources
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, IpAddr, String), bool>> {
        self.spf_memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::aggregate::DkimResult;
    use crate::resolver::fake::FakeDns;

    fn sender(name: &str) -> Sender {
        Sender {
            name: name.into(),
            ip_ranges: Vec::new(),
            dkim_domains: Vec::new(),
            spf: None,
            domains: Vec::new(),
        }
    }

    fn record(ip: &str) -> Record {
        Record {
            source_ip: ip.into(),
            count: 1,
            ..Record::default()
        }
    }

    fn dkim(domain: &str, result: &str) -> DkimResult {
        DkimResult {
            domain: Some(domain.into()),
            result: Some(result.into()),
            ..DkimResult::default()
        }
    }

    #[test]
    fn ranges_and_dkim_domains_match_without_dns() {
        let table = SenderTable::new(vec![
            Sender {
                ip_ranges: vec!["192.0.2.0/24".parse().unwrap()],
                ..sender("office")
            },
            Sender {
                dkim_domains: vec!["mail.example.test".into()],
                ..sender("newsletters")
            },
        ]);
        assert_eq!(
            table.classify_offline("example.test", &record("192.0.2.9")),
            Some("office")
        );
        let mut signed = record("203.0.113.5");
        signed.dkim = vec![
            dkim("other.test", "pass"),
            dkim("Mail.Example.Test.", "pass"),
        ];
        assert_eq!(
            table.classify_offline("example.test", &signed),
            Some("newsletters")
        );
        signed.dkim = vec![dkim("mail.example.test", "fail")];
        assert_eq!(
            table.classify_offline("example.test", &signed),
            Some(UNKNOWN),
            "a failed signature names nobody"
        );
        assert_eq!(
            table.classify_offline("example.test", &record("not an ip")),
            Some(UNKNOWN)
        );
    }

    #[test]
    fn a_sender_limited_to_domains_matches_only_those() {
        let table = SenderTable::new(vec![Sender {
            ip_ranges: vec!["192.0.2.0/24".parse().unwrap()],
            domains: vec!["shop.test".into()],
            ..sender("shop-mailer")
        }]);
        assert_eq!(
            table.classify_offline("SHOP.test", &record("192.0.2.1")),
            Some("shop-mailer")
        );
        assert_eq!(
            table.classify_offline("example.test", &record("192.0.2.1")),
            Some(UNKNOWN)
        );
    }

    #[tokio::test]
    async fn spf_terms_decide_when_nothing_else_matched() {
        let dns = FakeDns::new().txt("_spf.provider.test", "v=spf1 ip4:198.51.100.0/24 -all");
        let table = SenderTable::new(vec![
            Sender {
                ip_ranges: vec!["192.0.2.0/24".parse().unwrap()],
                ..sender("office")
            },
            Sender {
                spf: Some("include:_spf.provider.test".into()),
                ..sender("provider")
            },
        ]);
        assert_eq!(
            table.classify_offline("example.test", &record("198.51.100.4")),
            None
        );
        assert_eq!(
            table
                .classify(&dns, "example.test", &record("198.51.100.4"))
                .await,
            "provider"
        );
        assert_eq!(
            table
                .classify(&dns, "example.test", &record("203.0.113.4"))
                .await,
            UNKNOWN
        );
        // The offline match wins and asks no DNS.
        let asked = dns.asked().len();
        assert_eq!(
            table
                .classify(&dns, "example.test", &record("192.0.2.4"))
                .await,
            "office"
        );
        // A second classification of the same IP is answered from the memo.
        assert_eq!(
            table
                .classify(&dns, "example.test", &record("198.51.100.4"))
                .await,
            "provider"
        );
        assert_eq!(dns.asked().len(), asked);
    }
}
