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
