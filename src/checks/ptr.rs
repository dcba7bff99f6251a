//! Reverse DNS of each sending IP, forward confirmation (FCrDNS) and the HELO name.
//!
//! Receivers reject or penalise mail from addresses without a PTR, or whose PTR name does
//! not resolve back to the address; many also compare the HELO name with it.

use std::net::IpAddr;

use serde::Serialize;

use crate::findings::{Check, Code, Finding};
use crate::name::{normalize_name, reverse_name};
use crate::resolver::{Dns, RData, RecordType};

/// PTR names examined per address: a hostile reverse zone must not make us do unbounded
/// lookups (the same bound as RFC 7208 §5.5 puts on the ptr mechanism).
const MAX_PTR_NAMES: usize = 10;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PtrIpReport {
    pub ip: Option<IpAddr>,
    pub ptr_names: Vec<String>,
    /// The PTR name whose A/AAAA records contain the IP.
    pub forward_confirmed: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PtrReport {
    pub ips: Vec<PtrIpReport>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub answered: bool,
}

fn address_type(ip: IpAddr) -> RecordType {
    if ip.is_ipv4() {
        RecordType::A
    } else {
        RecordType::Aaaa
    }
}

fn contains(records: &[RData], ip: IpAddr) -> bool {
    records.iter().any(|r| match (r, ip) {
        (RData::A(a), IpAddr::V4(v4)) => *a == v4,
        (RData::Aaaa(a), IpAddr::V6(v6)) => *a == v6,
        _ => false,
    })
}

pub async fn check(dns: &dyn Dns, sending_ips: &[IpAddr], helo: Option<&str>) -> PtrReport {
    let mut report = PtrReport {
        answered: true,
        ..Default::default()
    };
    for &ip in sending_ips {
        let mut entry = PtrIpReport {
            ip: Some(ip),
            ..Default::default()
        };
        match dns.lookup(&reverse_name(ip), RecordType::Ptr).await {
            Err(e) => {
                report.answered = false;
                report.findings.push(Finding::dns_error(
                    Check::Ptr,
                    format!("PTR lookup of {ip}: {e}"),
                ));
            }
            Ok(answer) => {
                entry.ptr_names = answer
                    .records()
                    .iter()
                    .filter_map(|r| {
                        if let RData::Ptr(name) = r {
                            Some(name.clone())
                        } else {
                            None
                        }
                    })
                    .take(MAX_PTR_NAMES)
                    .collect();
                if entry.ptr_names.is_empty() {
                    report.findings.push(Finding::new(
                        Code::PtrMissing,
                        format!("{ip} has no PTR record"),
                    ));
                } else {
                    let mut failed = None;
                    for name in &entry.ptr_names {
                        match dns.lookup(name, address_type(ip)).await {
                            Ok(a) if contains(a.records(), ip) => {
                                entry.forward_confirmed = Some(name.clone());
                                break;
                            }
                            Ok(_) => {}
                            Err(e) => failed = Some(format!("address lookup of {name}: {e}")),
                        }
                    }
                    if entry.forward_confirmed.is_none() {
                        if let Some(msg) = failed {
                            report.answered = false;
                            report.findings.push(Finding::dns_error(Check::Ptr, msg));
                        } else {
                            report.findings.push(Finding::new(
                                Code::PtrNotForwardConfirmed,
                                format!(
                                    "{ip} has PTR {} but no such name resolves back to {ip}",
                                    entry.ptr_names.join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
        }
        report.ips.push(entry);
    }
    if let Some(helo) = helo {
        check_helo(dns, helo, &mut report).await;
    }
    report
}

/// RFC 5321 §4.1.4 asks for the HELO name to be the client's primary host name; receivers
/// check that it resolves to the connecting address and often that it matches the PTR.
async fn check_helo(dns: &dyn Dns, helo: &str, report: &mut PtrReport) {
    let helo = normalize_name(helo);
    let (v4, v6) = tokio::join!(
        dns.lookup(&helo, RecordType::A),
        dns.lookup(&helo, RecordType::Aaaa)
    );
    let mut addresses = Vec::new();
    for result in [v4, v6] {
        match result {
            Ok(a) => addresses.extend(a.records().iter().cloned()),
            Err(e) => {
                report.answered = false;
                report.findings.push(Finding::dns_error(
                    Check::Ptr,
                    format!("address lookup of HELO name {helo}: {e}"),
                ));
                return;
            }
        }
    }
    for entry in &report.ips {
        let Some(ip) = entry.ip else { continue };
        if !contains(&addresses, ip) {
            report.findings.push(Finding::new(
                Code::HeloMismatch,
                format!("HELO name {helo} does not resolve to sending IP {ip}"),
            ));
        } else if let Some(fcrdns) = &entry.forward_confirmed {
            if *fcrdns != helo {
                report.findings.push(Finding::new(
                    Code::HeloMismatch,
                    format!("HELO name {helo} differs from {ip}'s reverse DNS name {fcrdns}"),
                ));
            }
        }
    }
    if report.ips.is_empty() && addresses.is_empty() {
        report.findings.push(Finding::new(
            Code::HeloMismatch,
            format!("HELO name {helo} has no A or AAAA record"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::fake::{FakeDns, Fault};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn codes(report: &PtrReport) -> Vec<Code> {
        report.findings.iter().map(|f| f.code).collect()
    }

    /// 192.0.2.10 ↔ mail.example.com, both ways.
    fn confirmed() -> FakeDns {
        FakeDns::new()
            .ptr("192.0.2.10", "mail.example.com")
            .address("mail.example.com", "192.0.2.10")
    }

    #[tokio::test]
    async fn forward_confirmed_reverse_dns_is_clean() {
        let r = check(&confirmed(), &[ip("192.0.2.10")], None).await;
        assert!(r.answered);
        assert!(codes(&r).is_empty(), "{:?}", r.findings);
        assert_eq!(r.ips[0].ptr_names, ["mail.example.com"]);
        assert_eq!(
            r.ips[0].forward_confirmed.as_deref(),
            Some("mail.example.com")
        );
    }

    #[tokio::test]
    async fn ipv6_is_looked_up_in_ip6_arpa_and_confirmed_by_aaaa() {
        let dns = FakeDns::new()
            .ptr("2001:db8::25", "mail6.example.com")
            .address("mail6.example.com", "192.0.2.99")
            .address("mail6.example.com", "2001:db8::25");
        let r = check(&dns, &[ip("2001:db8::25")], None).await;
        assert!(codes(&r).is_empty(), "{:?}", r.findings);
        assert_eq!(
            dns.asked()[1],
            ("mail6.example.com".to_string(), RecordType::Aaaa)
        );
        assert!(dns.asked()[0].0.ends_with(".ip6.arpa"));
    }

    #[tokio::test]
    async fn no_ptr_is_missing() {
        for dns in [
            FakeDns::new(),
            FakeDns::new().fault("10.2.0.192.in-addr.arpa", Fault::NoData),
        ] {
            let r = check(&dns, &[ip("192.0.2.10")], None).await;
            assert!(r.answered);
            assert_eq!(codes(&r), [Code::PtrMissing]);
            assert_eq!(r.findings[0].message, "192.0.2.10 has no PTR record");
        }
    }

    #[tokio::test]
    async fn a_failed_ptr_lookup_is_unknown_not_missing() {
        let dns = FakeDns::new().fault("10.2.0.192.in-addr.arpa", Fault::ServFail);
        let r = check(&dns, &[ip("192.0.2.10")], None).await;
        assert!(!r.answered);
        assert_eq!(codes(&r), [Code::DnsError]);
        assert_eq!(r.findings[0].check, Check::Ptr);
        assert_eq!(r.findings[0].message, "PTR lookup of 192.0.2.10: SERVFAIL");
        assert_eq!(r.ips.len(), 1, "the address is still listed");
    }

    #[tokio::test]
    async fn a_ptr_name_that_does_not_lead_back_is_not_confirmed() {
        for dns in [
            // The name has another address.
            FakeDns::new()
                .ptr("192.0.2.10", "mail.example.com")
                .address("mail.example.com", "192.0.2.11"),
            // The name does not exist.
            FakeDns::new().ptr("192.0.2.10", "mail.example.com"),
            // Only an IPv6 address for an IPv4 sender.
            FakeDns::new()
                .ptr("192.0.2.10", "mail.example.com")
                .address("mail.example.com", "2001:db8::10"),
        ] {
            let r = check(&dns, &[ip("192.0.2.10")], None).await;
            assert!(r.answered);
            assert_eq!(codes(&r), [Code::PtrNotForwardConfirmed]);
            assert_eq!(
                r.findings[0].message,
                "192.0.2.10 has PTR mail.example.com but no such name resolves back to 192.0.2.10"
            );
            assert_eq!(r.ips[0].forward_confirmed, None);
        }
    }

    #[tokio::test]
    async fn a_failed_forward_lookup_is_unknown_unless_another_name_confirms() {
        let failing = FakeDns::new()
            .ptr("192.0.2.10", "a.example.com")
            .fault("a.example.com", Fault::Timeout);
        let r = check(&failing, &[ip("192.0.2.10")], None).await;
        assert!(!r.answered);
        assert_eq!(codes(&r), [Code::DnsError]);
        assert_eq!(
            r.findings[0].message,
            "address lookup of a.example.com: timed out"
        );

        let rescued = FakeDns::new()
            .ptr("192.0.2.10", "a.example.com")
            .ptr("192.0.2.10", "b.example.com")
            .fault("a.example.com", Fault::Timeout)
            .address("b.example.com", "192.0.2.10");
        let r = check(&rescued, &[ip("192.0.2.10")], None).await;
        assert!(r.answered);
        assert!(codes(&r).is_empty(), "{:?}", r.findings);
        assert_eq!(r.ips[0].forward_confirmed.as_deref(), Some("b.example.com"));
    }

    #[tokio::test]
    async fn the_first_confirming_name_stops_the_lookups() {
        let dns = FakeDns::new()
            .ptr("192.0.2.10", "a.example.com")
            .ptr("192.0.2.10", "b.example.com")
            .address("a.example.com", "192.0.2.10")
            .address("b.example.com", "192.0.2.10");
        let r = check(&dns, &[ip("192.0.2.10")], None).await;
        assert_eq!(r.ips[0].forward_confirmed.as_deref(), Some("a.example.com"));
        assert_eq!(dns.asked().len(), 2, "{:?}", dns.asked());
    }

    #[tokio::test]
    async fn at_most_ten_ptr_names_are_followed() {
        let mut dns = FakeDns::new();
        for i in 0..15 {
            dns = dns.ptr("192.0.2.10", &format!("h{i}.example.com"));
        }
        let r = check(&dns, &[ip("192.0.2.10")], None).await;
        assert_eq!(r.ips[0].ptr_names.len(), MAX_PTR_NAMES);
        assert_eq!(codes(&r), [Code::PtrNotForwardConfirmed]);
        assert_eq!(dns.asked().len(), 1 + MAX_PTR_NAMES);
    }

    #[tokio::test]
    async fn each_address_is_judged_on_its_own() {
        let dns = confirmed().fault("11.2.0.192.in-addr.arpa", Fault::ServFail);
        let ips = [ip("192.0.2.10"), ip("192.0.2.11"), ip("192.0.2.12")];
        let r = check(&dns, &ips, None).await;
        assert!(!r.answered);
        assert_eq!(codes(&r), [Code::DnsError, Code::PtrMissing]);
        assert_eq!(r.ips.len(), 3);
        assert!(r.ips[0].forward_confirmed.is_some());
    }

    #[tokio::test]
    async fn a_helo_name_that_matches_the_reverse_name_is_clean() {
        for helo in ["mail.example.com", "Mail.Example.COM."] {
            let r = check(&confirmed(), &[ip("192.0.2.10")], Some(helo)).await;
            assert!(r.answered);
            assert!(codes(&r).is_empty(), "{helo}: {:?}", r.findings);
        }
    }

    #[tokio::test]
    async fn a_helo_name_elsewhere_or_other_than_the_reverse_name_mismatches() {
        let dns = confirmed()
            .address("other.example.com", "192.0.2.10")
            .address("far.example.com", "198.51.100.1");
        let r = check(&dns, &[ip("192.0.2.10")], Some("other.example.com")).await;
        assert_eq!(codes(&r), [Code::HeloMismatch]);
        assert_eq!(
            r.findings[0].message,
            "HELO name other.example.com differs from 192.0.2.10's reverse DNS name mail.example.com"
        );
        let r = check(&dns, &[ip("192.0.2.10")], Some("far.example.com")).await;
        assert_eq!(codes(&r), [Code::HeloMismatch]);
        assert_eq!(
            r.findings[0].message,
            "HELO name far.example.com does not resolve to sending IP 192.0.2.10"
        );
    }

    #[tokio::test]
    async fn a_helo_name_without_a_reverse_name_only_needs_to_resolve_to_the_ip() {
        let dns = FakeDns::new().address("mail.example.com", "192.0.2.10");
        let r = check(&dns, &[ip("192.0.2.10")], Some("mail.example.com")).await;
        assert_eq!(codes(&r), [Code::PtrMissing], "no HELO finding");
    }

    #[tokio::test]
    async fn a_helo_name_alone_needs_an_address() {
        let r = check(&FakeDns::new(), &[], Some("mail.example.com")).await;
        assert!(r.answered);
        assert_eq!(codes(&r), [Code::HeloMismatch]);
        assert_eq!(
            r.findings[0].message,
            "HELO name mail.example.com has no A or AAAA record"
        );
        let r = check(&confirmed(), &[], Some("mail.example.com")).await;
        assert!(codes(&r).is_empty(), "{:?}", r.findings);
    }

    #[tokio::test]
    async fn a_failed_helo_lookup_is_unknown_and_judges_nothing() {
        let dns = confirmed().fault_for("helo.example.com", RecordType::Aaaa, Fault::ServFail);
        let r = check(&dns, &[ip("192.0.2.10")], Some("helo.example.com")).await;
        assert!(!r.answered);
        assert_eq!(codes(&r), [Code::DnsError]);
        assert_eq!(
            r.findings[0].message,
            "address lookup of HELO name helo.example.com: SERVFAIL"
        );
    }

    #[tokio::test]
    async fn nothing_to_check_asks_nothing() {
        let dns = FakeDns::new();
        let r = check(&dns, &[], None).await;
        assert!(r.answered && r.ips.is_empty() && r.findings.is_empty());
        assert!(dns.asked().is_empty());
    }
}
