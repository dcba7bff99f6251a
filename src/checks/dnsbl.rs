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
