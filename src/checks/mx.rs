//! MX records (RFC 5321 §5.1, RFC 7505 null MX) and the addresses of their hosts.
//!
//! Senders look up the MX, then each host's A/AAAA (RFC 5321 §5.1); a host without
//! addresses, or one reached through a CNAME (forbidden by RFC 2181 §10.3 and avoided by
//! some senders), is mail that cannot or may not be delivered.

use std::net::IpAddr;

use serde::Serialize;

use crate::findings::{Check, Code, Finding};
use crate::resolver::{Answer, Dns, DnsError, RData, RecordType};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MxHost {
    pub preference: u16,
    pub host: String,
    pub addresses: Vec<IpAddr>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MxReport {
    pub hosts: Vec<MxHost>,
    pub null_mx: bool,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub answered: bool,
}

/// What the address lookups of one MX host found.
struct HostAddresses {
    addresses: Vec<IpAddr>,
    via_cname: bool,
    error: Option<DnsError>,
}

async fn host_addresses(dns: &dyn Dns, host: &str) -> HostAddresses {
    let (v4, v6) = tokio::join!(
        dns.lookup(host, RecordType::A),
        dns.lookup(host, RecordType::Aaaa)
    );
    let mut out = HostAddresses {
        addresses: Vec::new(),
        via_cname: false,
        error: None,
    };
    for result in [v4, v6] {
        match result {
            Ok(answer) => {
                out.via_cname |= !answer.cname_chain().is_empty();
                for r in answer.records() {
                    match r {
                        RData::A(a) => out.addresses.push(IpAddr::V4(*a)),
                        RData::Aaaa(a) => out.addresses.push(IpAddr::V6(*a)),
                        _ => {}
                    }
                }
            }
            Err(e) => out.error = Some(e),
        }
    }
    out
}

pub async fn check(dns: &dyn Dns, domain: &str) -> MxReport {
    let mut report = MxReport {
        answered: true,
        ..Default::default()
    };
    let answer = match dns.lookup(domain, RecordType::Mx).await {
        Ok(a) => a,
        Err(e) => {
            report.answered = false;
            report.findings.push(Finding::dns_error(
                Check::Mx,
                format!("MX lookup of {domain}: {e}"),
            ));
            return report;
        }
    };
    let mut records: Vec<(u16, String)> = answer
        .records()
        .iter()
        .filter_map(|r| match r {
            RData::Mx {
                preference,
                exchange,
            } => Some((*preference, exchange.clone())),
            _ => None,
        })
        .collect();
    if matches!(*answer, Answer::NxDomain | Answer::NoData) || records.is_empty() {
        report.findings.push(Finding::new(
            Code::MxMissing,
            format!("{domain} has no MX records; senders will try its A/AAAA address instead"),
        ));
        return report;
    }
    records.sort();
    // RFC 7505 §3: a null MX is a single record with exchange "." (preference 0 expected).
    let nulls = records.iter().filter(|(_, host)| host.is_empty()).count();
    if nulls > 0 {
        report.null_mx = true;
        if records.len() == 1 {
            report.findings.push(Finding::new(
                Code::MxNull,
                format!("{domain} publishes a null MX: it accepts no mail"),
            ));
            return report;
        }
        report.findings.push(Finding::new(
            Code::MxNull,
            format!("{domain} mixes a null MX with {} other MX record(s); RFC 7505 §3 says a null MX must be the only one", records.len() - nulls),
        ));
    }
    let hosts: Vec<(u16, String)> = records.into_iter().filter(|(_, h)| !h.is_empty()).collect();
    let lookups =
        futures::future::join_all(hosts.iter().map(|(_, host)| host_addresses(dns, host))).await;
    for ((preference, host), found) in hosts.into_iter().zip(lookups) {
        if host.parse::<IpAddr>().is_ok() {
            report.findings.push(Finding::new(
                Code::MxHostUnresolvable,
                format!(
                    "MX {host} is an IP address literal; an MX must name a host (RFC 5321 §5.1)"
                ),
            ));
        } else if let Some(e) = &found.error {
            report.answered = false;
            report.findings.push(Finding::dns_error(
                Check::Mx,
                format!("address lookup of MX host {host}: {e}"),
            ));
        } else if found.addresses.is_empty() {
            report.findings.push(Finding::new(
                Code::MxHostUnresolvable,
                format!("MX host {host} has no A or AAAA record"),
            ));
        }
        if found.via_cname {
            report.findings.push(Finding::new(
                Code::MxHostIsCname,
                format!("MX host {host} is an alias (CNAME)"),
            ));
        }
        report.hosts.push(MxHost {
            preference,
            host,
            addresses: found.addresses,
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::fake::{FakeDns, Fault};

    fn codes(report: &MxReport) -> Vec<Code> {
        report.findings.iter().map(|f| f.code).collect()
    }

    fn hosts(report: &MxReport) -> Vec<(u16, &str, usize)> {
        report
            .hosts
            .iter()
            .map(|h| (h.preference, h.host.as_str(), h.addresses.len()))
            .collect()
    }

    #[tokio::test]
    async fn hosts_sorted_by_preference_with_their_addresses() {
        let dns = FakeDns::new()
            .mx("example.com", 20, "mx2.example.com")
            .mx("example.com", 10, "mx1.example.com")
            .mx("example.com", 10, "a.example.com")
            .address("mx1.example.com", "192.0.2.1")
            .address("mx1.example.com", "2001:db8::1")
            .address("mx2.example.com", "192.0.2.2")
            .address("a.example.com", "2001:db8::a");
        let r = check(&dns, "example.com").await;
        assert!(r.answered);
        assert!(codes(&r).is_empty(), "{:?}", r.findings);
        assert!(!r.null_mx);
        assert_eq!(
            hosts(&r),
            [
                (10, "a.example.com", 1),
                (10, "mx1.example.com", 2),
                (20, "mx2.example.com", 1)
            ]
        );
        assert_eq!(
            r.hosts[1].addresses,
            [
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn no_mx_is_missing_whether_nxdomain_or_nodata() {
        for dns in [
            FakeDns::new(),
            FakeDns::new().txt("example.com", "v=spf1 -all"),
            FakeDns::new().fault("example.com", Fault::NxDomain),
            FakeDns::new().fault_for("example.com", RecordType::Mx, Fault::NoData),
        ] {
            let r = check(&dns, "example.com").await;
            assert!(r.answered);
            assert_eq!(codes(&r), [Code::MxMissing]);
            assert!(r.hosts.is_empty());
            assert_eq!(dns.asked().len(), 1, "no address lookups without MX");
        }
    }

    #[tokio::test]
    async fn a_failed_mx_lookup_is_unknown_not_missing() {
        for (fault, text) in [(Fault::ServFail, "SERVFAIL"), (Fault::Timeout, "timed out")] {
            let dns = FakeDns::new()
                .mx("example.com", 10, "mx1.example.com")
                .fault("example.com", fault);
            let r = check(&dns, "example.com").await;
            assert!(!r.answered);
            assert_eq!(codes(&r), [Code::DnsError]);
            assert_eq!(r.findings[0].check, Check::Mx);
            assert_eq!(
                r.findings[0].message,
                format!("MX lookup of example.com: {text}")
            );
        }
    }

    #[tokio::test]
    async fn a_lone_null_mx_accepts_no_mail_and_asks_nothing_more() {
        let dns = FakeDns::new().mx("example.com", 0, ".");
        let r = check(&dns, "example.com").await;
        assert!(r.answered && r.null_mx);
        assert_eq!(codes(&r), [Code::MxNull]);
        assert!(r.hosts.is_empty());
        assert_eq!(dns.asked(), [("example.com".to_string(), RecordType::Mx)]);
    }

    #[tokio::test]
    async fn a_null_mx_among_others_is_reported_and_the_others_checked() {
        let dns = FakeDns::new()
            .mx("example.com", 0, ".")
            .mx("example.com", 10, "mx1.example.com")
            .address("mx1.example.com", "192.0.2.1");
        let r = check(&dns, "example.com").await;
        assert!(r.null_mx);
        assert_eq!(codes(&r), [Code::MxNull]);
        assert!(r.findings[0].message.contains("1 other MX record(s)"));
        assert_eq!(hosts(&r), [(10, "mx1.example.com", 1)]);
    }

    #[tokio::test]
    async fn a_host_without_addresses_is_unresolvable() {
        for dns in [
            FakeDns::new().mx("example.com", 10, "gone.example.com"),
            FakeDns::new()
                .mx("example.com", 10, "mx1.example.com")
                .txt("mx1.example.com", "no address here"),
        ] {
            let r = check(&dns, "example.com").await;
            assert!(r.answered);
            assert_eq!(codes(&r), [Code::MxHostUnresolvable]);
            assert_eq!(r.hosts.len(), 1);
            assert!(r.hosts[0].addresses.is_empty());
        }
    }

    #[tokio::test]
    async fn a_failed_address_lookup_is_unknown_and_keeps_what_answered() {
        let dns = FakeDns::new()
            .mx("example.com", 10, "mx1.example.com")
            .address("mx1.example.com", "192.0.2.1")
            .fault_for("mx1.example.com", RecordType::Aaaa, Fault::Timeout);
        let r = check(&dns, "example.com").await;
        assert!(!r.answered);
        assert_eq!(codes(&r), [Code::DnsError]);
        assert_eq!(
            r.findings[0].message,
            "address lookup of MX host mx1.example.com: timed out"
        );
        assert_eq!(hosts(&r), [(10, "mx1.example.com", 1)]);
    }

    #[tokio::test]
    async fn a_host_reached_through_an_alias_is_reported() {
        let dns = FakeDns::new()
            .mx("example.com", 10, "mail.example.com")
            .cname("mail.example.com", "real.example.net")
            .address("real.example.net", "192.0.2.9");
        let r = check(&dns, "example.com").await;
        assert!(r.answered);
        assert_eq!(codes(&r), [Code::MxHostIsCname]);
        assert_eq!(hosts(&r), [(10, "mail.example.com", 1)]);
    }

    #[tokio::test]
    async fn an_alias_to_nothing_is_both_unresolvable_and_an_alias() {
        let dns = FakeDns::new()
            .mx("example.com", 10, "mail.example.com")
            .cname("mail.example.com", "real.example.net")
            .txt("real.example.net", "exists, no address");
        let r = check(&dns, "example.com").await;
        // NODATA at the target drops the chain (as the wire reader does): no alias seen.
        assert_eq!(codes(&r), [Code::MxHostUnresolvable]);
    }

    #[tokio::test]
    async fn an_ip_literal_is_not_a_host_name() {
        let dns = FakeDns::new().mx("example.com", 10, "192.0.2.25");
        let r = check(&dns, "example.com").await;
        assert!(r.answered, "a literal is a finding, not a DNS failure");
        assert_eq!(codes(&r), [Code::MxHostUnresolvable]);
        assert!(r.findings[0].message.contains("IP address literal"));
    }

    #[tokio::test]
    async fn names_are_matched_without_case_or_trailing_dot() {
        let dns = FakeDns::new()
            .mx("example.com", 5, "MX.Example.COM.")
            .address("mx.example.com", "192.0.2.1");
        let r = check(&dns, "Example.Com.").await;
        assert!(codes(&r).is_empty(), "{:?}", r.findings);
        assert_eq!(hosts(&r), [(5, "mx.example.com", 1)]);
    }

    #[tokio::test]
    async fn every_host_is_judged_on_its_own() {
        let dns = FakeDns::new()
            .mx("example.com", 10, "ok.example.com")
            .mx("example.com", 20, "gone.example.com")
            .mx("example.com", 30, "broken.example.com")
            .address("ok.example.com", "192.0.2.1")
            .fault("broken.example.com", Fault::ServFail);
        let r = check(&dns, "example.com").await;
        assert!(!r.answered);
        assert_eq!(codes(&r), [Code::MxHostUnresolvable, Code::DnsError]);
        assert_eq!(r.hosts.len(), 3);
    }
}
