//! `check`'s report for people: a summary table per domain, then the findings grouped by
//! check, each with what it means and how to fix it. Colour only on a terminal.

use std::fmt::Write as _;

use crate::checks::DomainReport;
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
    match r.outcome(check) {
        None => "-",
        Some(o) if !o.answered => "UNKNOWN",
        Some(o) if o.success(&r.findings) => {
            if r.findings
                .iter()
                .any(|f| f.check == check && f.severity == Severity::Warning)
            {
                "WARN"
            } else {
                "OK"
            }
        }
        Some(_) => "FAIL",
    }
}

pub fn render(r: &DomainReport, style: &Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.paint("1", &r.domain));
    let mut rows: Vec<(String, &'static str, String)> = Vec::new();
    let spf_detail = match &r.spf.record {
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
    };
    rows.push(("SPF".into(), status(r, Check::Spf), spf_detail));
    for key in &r.dkim.keys {
        let detail = match (&key.key_type, key.key_bits) {
            (Some(t), Some(b)) => format!("{t} {b} bits{}", if key.testing { ", t=y" } else { "" }),
            _ => "(no usable key)".into(),
        };
        rows.push((
            format!("DKIM {}", key.selector),
            status(r, Check::Dkim),
            detail,
        ));
    }
    let dmarc_detail = match (&r.dmarc.record, &r.dmarc.found_at) {
        (Some(rec), Some(at)) => format!("{rec}  [at {at}]"),
        (Some(rec), None) => rec.clone(),
        _ => "(no record)".into(),
    };
    rows.push(("DMARC".into(), status(r, Check::Dmarc), dmarc_detail));
    let mx_detail = if r.mx.null_mx {
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
    };
    rows.push(("MX".into(), status(r, Check::Mx), mx_detail));
    for ip in &r.ptr.ips {
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
        rows.push((
            format!("PTR {ipt}"),
            status(r, Check::Ptr),
            format!("{name} ({confirmed})"),
        ));
    }
    for (label, check, text) in [
        ("MTA-STS", Check::MtaSts, &r.newer.mta_sts),
        ("TLS-RPT", Check::TlsRpt, &r.newer.tls_rpt),
        ("BIMI", Check::Bimi, &r.newer.bimi),
    ] {
        if let Some(t) = text {
            rows.push((label.into(), status(r, check), t.clone()));
        }
    }
    for l in &r.dnsbl.results {
        let detail = match l.code {
            Some(code) => format!("{} LISTED ({code})", l.list),
            None => format!("{} not listed", l.list),
        };
        rows.push((format!("DNSBL {}", l.ip), status(r, Check::Dnsbl), detail));
    }
    if r.outcome(Check::Parked).is_some() {
        rows.push((
            "Parked".into(),
            status(r, Check::Parked),
            "v=spf1 -all, DMARC reject, null MX".into(),
        ));
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
