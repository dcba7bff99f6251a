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
