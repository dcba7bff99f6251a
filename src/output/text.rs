//! `check`'s report for people: a summary table per domain, then the findings grouped by
//! check, each with what it means and how to fix it. Colour only on a terminal.

use std::fmt::Write as _;

use crate::checks::{DomainReport, Status};
use crate::findings::{Check, Severity};

pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn severity(&self, s: Severity) -> String {
        let label = format!("{:<7}", s.as_str().to_uppercase());
        match s {
            Severity::Error => self.paint("1;31", &label),
            Severity::Warning => self.paint("33", &label),
            Severity::Info => self.paint("36", &label),
        }
    }
}

fn status(r: &DomainReport, check: Check) -> &'static str {
    match r.outcome(check).map(|o| o.status(&r.findings)) {
        None => "-",
        Some(Status::Unknown) => "UNKNOWN",
        Some(Status::Warn) => "WARN",
        Some(Status::Ok) => "OK",
        Some(Status::Fail) => "FAIL",
    }
}

/// A check's name in the table of the text report.
fn label(check: Check) -> &'static str {
    match check {
        Check::Spf => "SPF",
        Check::Dkim => "DKIM",
        Check::Dmarc => "DMARC",
        Check::Mx => "MX",
        Check::Ptr => "PTR",
        Check::MtaSts => "MTA-STS",
        Check::TlsRpt => "TLS-RPT",
        Check::Bimi => "BIMI",
        Check::Dnsbl => "DNSBL",
        Check::Dane => "DANE",
        Check::Parked => "Parked",
    }
}

/// The rows one check contributes: (name, detail), one per key, address or host where the
/// check has several.
fn rows_of(r: &DomainReport, check: Check) -> Vec<(String, String)> {
    let one = |detail: String| vec![(label(check).to_string(), detail)];
    match check {
        Check::Spf => one(match &r.spf.record {
            Some(rec) => format!(
                "{rec}  [{} of 10 lookups, {} void]",
                r.spf.dns_lookups, r.spf.void_lookups
            ),
            None if r
                .findings
                .iter()
                .any(|f| f.code == crate::findings::Code::SpfMultipleRecords) =>
            {
                "(several v=spf1 records)".into()
            }
            None => "(no record)".into(),
        }),
        Check::Dkim => r
            .dkim
            .keys
            .iter()
            .map(|key| {
                let detail = match (&key.key_type, key.key_bits) {
                    (Some(t), Some(b)) => {
                        format!("{t} {b} bits{}", if key.testing { ", t=y" } else { "" })
                    }
                    _ => "(no usable key)".into(),
                };
                (format!("DKIM {}", key.selector), detail)
            })
            .collect(),
        Check::Dmarc => one(match (&r.dmarc.record, &r.dmarc.found_at) {
            (Some(rec), Some(at)) => format!("{rec}  [at {at}]"),
            (Some(rec), None) => rec.clone(),
            _ => "(no record)".into(),
        }),
        Check::Mx => one(if r.mx.null_mx {
            "null MX (accepts no mail)".to_string()
        } else if r.mx.hosts.is_empty() {
            "(none)".to_string()
        } else {
            r.mx.hosts
                .iter()
                .map(|h| {
                    let addrs: Vec<String> = h.addresses.iter().map(|a| a.to_string()).collect();
                    format!("{} {} ({})", h.preference, h.host, addrs.join(" "))
                })
                .collect::<Vec<_>>()
                .join(", ")
        }),
        Check::Ptr => r
            .ptr
            .ips
            .iter()
            .map(|ip| {
                let name = ip
                    .ptr_names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "(no PTR)".into());
                let ipt = ip.ip.map(|i| i.to_string()).unwrap_or_default();
                let confirmed = if ip.forward_confirmed.is_some() {
                    "forward-confirmed"
                } else {
                    "not confirmed"
                };
                (format!("PTR {ipt}"), format!("{name} ({confirmed})"))
            })
            .collect(),
        Check::MtaSts => r.newer.mta_sts.clone().map_or_else(Vec::new, one),
        Check::TlsRpt => r.newer.tls_rpt.clone().map_or_else(Vec::new, one),
        Check::Bimi => r.newer.bimi.clone().map_or_else(Vec::new, one),
        Check::Dnsbl => r
            .dnsbl
            .results
            .iter()
            .map(|l| {
                let detail = match l.code {
                    Some(code) => format!("{} LISTED ({code})", l.list),
                    None => format!("{} not listed", l.list),
                };
                (format!("DNSBL {}", l.ip), detail)
            })
            .collect(),
        Check::Dane => r
            .dane
            .hosts
            .iter()
            .map(|h| {
                let detail = match h.dane_match {
                    Some(true) => "a TLSA record matches the certificate",
                    Some(false) => "no TLSA record matches the certificate",
                    None => "certificate not compared (no STARTTLS)",
                };
                (format!("DANE {}", h.host), detail.to_string())
            })
            .collect(),
        Check::Parked => {
            if r.outcome(Check::Parked).is_some() {
                one("v=spf1 -all, DMARC reject, null MX".into())
            } else {
                Vec::new()
            }
        }
    }
}

pub fn render(r: &DomainReport, style: &Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.paint("1", &r.domain));
    let mut rows: Vec<(String, &'static str, String)> = Vec::new();
    for check in crate::checks::TABLE {
        let status = status(r, check);
        let mut of = rows_of(r, check);
        // A check that ran but has nothing to show (it panicked or timed out) still gets
        // its row, so that an unknown result is never silent.
        if of.is_empty() && r.outcome(check).is_some_and(|o| !o.answered) {
            of.push((label(check).to_string(), "(unknown)".to_string()));
        }
        rows.extend(of.into_iter().map(|(k, d)| (k, status, d)));
    }
    let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (k, s, d) in rows {
        let painted = match s {
            "OK" => style.paint("32", &format!("{s:<7}")),
            "WARN" => style.paint("33", &format!("{s:<7}")),
            "FAIL" | "UNKNOWN" => style.paint("31", &format!("{s:<7}")),
            _ => format!("{s:<7}"),
        };
        let _ = writeln!(out, "  {k:<width$}  {painted}  {d}");
    }
    if r.findings.is_empty() {
        let _ = writeln!(out, "  No findings.");
    }
    for check in Check::ALL {
        let mut findings: Vec<_> = r.findings.iter().filter(|f| f.check == check).collect();
        if findings.is_empty() {
            continue;
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let _ = writeln!(out, "\n  {} findings:", check.as_str().to_uppercase());
        for f in findings {
            let _ = writeln!(
                out,
                "    {} {}  {}",
                style.severity(f.severity),
                f.code,
                f.message
            );
            let _ = writeln!(out, "            why: {}", f.code.explanation());
            let _ = writeln!(out, "            fix: {}", f.code.fix());
        }
    }
    out
}
