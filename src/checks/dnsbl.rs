//! DNS blocklists: each sending IP looked up in each configured list, IPv4 as reversed
//! octets and IPv6 as reversed nibbles under the list's zone. An answer in 127.0.0.0/8 is
//! a listing (the code says which); 127.255.255.x is how lists say "query refused" (an
//! open or over-quota resolver), which is an unknown, not a listing.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::findings::{Check, Code, Finding};
use crate::name::{normalize_name, reverse_name};
use crate::resolver::{Dns, DnsError, RData, RecordType};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub ip: IpAddr,
    pub list: String,
    /// The returned code (127.0.0.x) when listed.
    pub code: Option<Ipv4Addr>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsblReport {
    /// One entry per (IP, list) that answered; `code` None means not listed.
    pub results: Vec<Listing>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub answered: bool,
}

/// The name to query: the reverse-lookup labels of `ip` under `list`.
pub fn query_name(ip: IpAddr, list: &str) -> String {
    let reverse = reverse_name(ip);
    let labels = reverse
        .trim_end_matches(".in-addr.arpa")
        .trim_end_matches(".ip6.arpa");
    format!("{labels}.{}", normalize_name(list))
}

pub async fn check(dns: &dyn Dns, ips: &[IpAddr], lists: &[String]) -> DnsblReport {
    let mut report = DnsblReport {
        answered: true,
        ..Default::default()
    };
    for &ip in ips {
        for list in lists {
            let name = query_name(ip, list);
            match dns.lookup(&name, RecordType::A).await {
                Err(DnsError::InvalidName(_)) => {}
                Err(e) => {
                    report.answered = false;
                    report.findings.push(Finding::dns_error(
                        Check::Dnsbl,
                        format!("{list} lookup of {ip}: {e}"),
                    ));
                }
                Ok(answer) => {
                    let codes: Vec<Ipv4Addr> = answer
                        .records()
                        .iter()
                        .filter_map(|r| if let RData::A(a) = r { Some(*a) } else { None })
                        .collect();
                    if codes.is_empty() {
                        report.results.push(Listing {
                            ip,
                            list: list.clone(),
                            code: None,
                            reason: None,
                        });
                        continue;
                    }
                    let refused = codes.iter().any(|c| c.octets()[..3] == [127, 255, 255]);
                    let listed = codes
                        .iter()
                        .find(|c| c.octets()[0] == 127 && c.octets()[..3] != [127, 255, 255]);
                    match (listed, refused) {
                        (Some(code), _) => {
                            let reason = match dns.lookup(&name, RecordType::Txt).await {
                                Ok(t) => t.txt_strings().into_iter().next(),
                                Err(_) => None,
                            };
                            let why = reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default();
                            report.findings.push(Finding::new(
                                Code::DnsblListed,
                                format!("{ip} is listed on {list} ({code}){why}"),
                            ));
                            report.results.push(Listing {
                                ip,
                                list: list.clone(),
                                code: Some(*code),
                                reason,
                            });
                        }
                        (None, true) => {
                            report.answered = false;
                            report.findings.push(Finding::dns_error(
                                Check::Dnsbl,
                                format!("{list} refused the query for {ip} ({}): use a resolver the list accepts", codes[0]),
                            ));
                        }
                        (None, false) => {
                            report.answered = false;
                            report.findings.push(Finding::dns_error(
                                Check::Dnsbl,
                                format!("{list} answered {} for {ip}, outside 127.0.0.0/8: not a blocklist answer", codes[0]),
                            ));
                        }
                    }
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::fake::{FakeDns, Fault};

    const IP: &str = "192.0.2.99";
    /// IP's name under bl.example.
    const LISTED_AT: &str = "99.2.0.192.bl.example";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn lists(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn codes(report: &DnsblReport) -> Vec<Code> {
        report.findings.iter().map(|f| f.code).collect()
    }

    async fn one(dns: &FakeDns) -> DnsblReport {
        check(dns, &[ip(IP)], &lists(&["bl.example"])).await
    }

    #[tokio::test]
    async fn an_address_not_on_the_list_is_a_clean_result() {
        for dns in [
            FakeDns::new(),
            FakeDns::new().fault(LISTED_AT, Fault::NoData),
        ] {
            let r = one(&dns).await;
            assert!(r.answered);
            assert!(codes(&r).is_empty());
            assert_eq!(
                r.results,
                [Listing {
                    ip: ip(IP),
                    list: "bl.example".into(),
                    code: None,
                    reason: None
                }]
            );
            assert_eq!(dns.asked(), [(LISTED_AT.to_string(), RecordType::A)]);
        }
    }

    #[tokio::test]
    async fn a_listing_gives_its_code_and_the_reason_from_txt() {
        let dns = FakeDns::new()
            .address(LISTED_AT, "127.0.0.2")
            .txt(LISTED_AT, "spam source, see https://bl.example/99");
        let r = one(&dns).await;
        assert!(r.answered);
        assert_eq!(codes(&r), [Code::DnsblListed]);
        assert_eq!(
            r.findings[0].message,
            "192.0.2.99 is listed on bl.example (127.0.0.2): spam source, see https://bl.example/99"
        );
        assert_eq!(r.results[0].code, Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(
            r.results[0].reason.as_deref(),
            Some("spam source, see https://bl.example/99")
        );
    }

    #[tokio::test]
    async fn a_listing_without_a_reason_is_still_a_listing() {
        for dns in [
            FakeDns::new().address(LISTED_AT, "127.0.0.4"),
            FakeDns::new().address(LISTED_AT, "127.0.0.4").fault_for(
                LISTED_AT,
                RecordType::Txt,
                Fault::ServFail,
            ),
        ] {
            let r = one(&dns).await;
            assert!(r.answered, "a failed reason lookup loses only the reason");
            assert_eq!(codes(&r), [Code::DnsblListed]);
            assert_eq!(
                r.findings[0].message,
                "192.0.2.99 is listed on bl.example (127.0.0.4)"
            );
            assert_eq!(r.results[0].reason, None);
        }
    }

    #[tokio::test]
    async fn a_refused_query_is_unknown_not_a_listing() {
        let dns = FakeDns::new().address(LISTED_AT, "127.255.255.254");
        let r = one(&dns).await;
        assert!(!r.answered);
        assert_eq!(codes(&r), [Code::DnsError]);
        assert_eq!(r.findings[0].check, Check::Dnsbl);
        assert_eq!(
            r.findings[0].message,
            "bl.example refused the query for 192.0.2.99 (127.255.255.254): use a resolver the list accepts"
        );
        assert!(r.results.is_empty());
        assert_eq!(dns.asked().len(), 1, "no reason asked for a refusal");
    }

    #[tokio::test]
    async fn a_listing_beside_a_refusal_code_is_a_listing() {
        let dns = FakeDns::new()
            .address(LISTED_AT, "127.255.255.252")
            .address(LISTED_AT, "127.0.0.10");
        let r = one(&dns).await;
        assert_eq!(codes(&r), [Code::DnsblListed]);
        assert_eq!(r.results[0].code, Some(Ipv4Addr::new(127, 0, 0, 10)));
    }

    #[tokio::test]
    async fn an_answer_outside_loopback_is_not_a_blocklist_answer() {
        // A resolver that rewrites NXDOMAIN into an advertising page's address.
        let dns = FakeDns::new().address(LISTED_AT, "198.51.100.7");
        let r = one(&dns).await;
        assert!(!r.answered);
        assert_eq!(codes(&r), [Code::DnsError]);
        assert_eq!(
            r.findings[0].message,
            "bl.example answered 198.51.100.7 for 192.0.2.99, outside 127.0.0.0/8: not a blocklist answer"
        );
        assert!(r.results.is_empty());
    }

    #[tokio::test]
    async fn a_failed_lookup_is_unknown() {
        for (fault, text) in [(Fault::ServFail, "SERVFAIL"), (Fault::Timeout, "timed out")] {
            let dns = FakeDns::new()
                .fault("bl.example", fault)
                .fault(LISTED_AT, fault);
            let r = one(&dns).await;
            assert!(!r.answered);
            assert_eq!(codes(&r), [Code::DnsError]);
            assert_eq!(
                r.findings[0].message,
                format!("bl.example lookup of 192.0.2.99: {text}")
            );
        }
    }

    #[tokio::test]
    async fn a_name_too_long_to_ask_is_skipped_silently() {
        let label = "a".repeat(60);
        let long_list = format!("{label}.{label}.{label}.{label}.example");
        let dns = FakeDns::new();
        let r = check(&dns, &[ip(IP)], &[long_list]).await;
        assert!(r.answered);
        assert!(r.findings.is_empty() && r.results.is_empty());
    }

    #[tokio::test]
    async fn every_address_on_every_list_in_order() {
        let dns = FakeDns::new()
            .address("99.2.0.192.two.example", "127.0.0.2")
            .address(&query_name(ip("2001:db8::1"), "one.example"), "127.0.0.3");
        let r = check(
            &dns,
            &[ip(IP), ip("2001:db8::1")],
            &lists(&["one.example", "Two.Example."]),
        )
        .await;
        assert!(r.answered);
        let seen: Vec<(String, &str, Option<Ipv4Addr>)> = r
            .results
            .iter()
            .map(|l| (l.ip.to_string(), l.list.as_str(), l.code))
            .collect();
        assert_eq!(
            seen,
            [
                (IP.to_string(), "one.example", None),
                (
                    IP.to_string(),
                    "Two.Example.",
                    Some(Ipv4Addr::new(127, 0, 0, 2))
                ),
                (
                    "2001:db8::1".to_string(),
                    "one.example",
                    Some(Ipv4Addr::new(127, 0, 0, 3))
                ),
                ("2001:db8::1".to_string(), "Two.Example.", None),
            ]
        );
        assert_eq!(codes(&r), [Code::DnsblListed, Code::DnsblListed]);
        let txt_asked = dns
            .asked()
            .iter()
            .filter(|(_, t)| *t == RecordType::Txt)
            .count();
        assert_eq!(txt_asked, 2, "a reason is asked for listings only");
    }

    #[tokio::test]
    async fn no_addresses_or_no_lists_ask_nothing() {
        let dns = FakeDns::new();
        assert!(check(&dns, &[], &lists(&["bl.example"]))
            .await
            .results
            .is_empty());
        assert!(check(&dns, &[ip(IP)], &[]).await.answered);
        assert!(dns.asked().is_empty());
    }

    #[test]
    fn query_names() {
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), "bl.example."),
            "99.2.0.192.bl.example"
        );
        assert!(query_name("2001:db8::1".parse().unwrap(), "bl.example").starts_with("1.0.0.0."));
        assert!(query_name("2001:db8::1".parse().unwrap(), "bl.example")
            .ends_with(".8.b.d.0.1.0.0.2.bl.example"));
    }
}
