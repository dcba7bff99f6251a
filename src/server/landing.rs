//! The landing page on `/`: every domain with the status of each check, and a page per
//! domain with its findings, what they mean and how to fix them. Plain HTML, no scripts.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::checks::{ReportSummary, Status};
use crate::findings::{Check, Severity};
use crate::reports::source_table::{self, SourceSummary};
use crate::resolver::{RData, RecordType};
use crate::service::app::App;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.ok{background:#d4f7d4}\
.fail{background:#f7d4d4}.unknown{background:#eee}.warning{background:#fff1c2}\
.error{background:#f7d4d4}.info{background:#e3ecff}code{font-size:90%}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    )
}

/// Every check is a column: the page shows what ran for each domain.
const COLUMNS: [Check; 11] = crate::checks::TABLE;

fn status_cell(report: &ReportSummary, check: Check) -> String {
    match report.outcome(check).map(|o| o.status(&report.findings)) {
        None => "<td>–</td>".to_string(),
        Some(Status::Unknown) => "<td class=\"unknown\">unknown</td>".to_string(),
        Some(Status::Warn) => "<td class=\"warning\">warning</td>".to_string(),
        Some(Status::Ok) => "<td class=\"ok\">ok</td>".to_string(),
        Some(Status::Fail) => "<td class=\"fail\">FAIL</td>".to_string(),
    }
}

pub fn render_index(app: &App) -> String {
    let config = app.config();
    let entries = app.metrics.domain_entries();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p>mailauth-exporter {} — watches SPF, DKIM, DMARC, MX and reverse DNS. \
         <a href=\"/metrics\">Metrics</a> · <a href=\"/-/healthy\">Health</a></p>",
        env!("CARGO_PKG_VERSION")
    );
    // Configured domains first, then those of the domains file (known once checked).
    let mut names: Vec<String> = config
        .domains
        .iter()
        .map(|d| crate::name::canonical(d.name()))
        .collect();
    // Sets and maps, not scans: a platform's page lists 10,000 domains.
    let mut listed: std::collections::HashSet<String> = names.iter().cloned().collect();
    for e in &entries {
        if listed.insert(e.report.domain.clone()) {
            names.push(e.report.domain.clone());
        }
    }
    let by_name: std::collections::HashMap<&str, &crate::metrics::DomainEntry> = entries
        .iter()
        .map(|e| (e.report.domain.as_str(), e))
        .collect();
    let _ = write!(
        body,
        "<p>{} domain(s) watched, {} checked so far.</p>",
        app.metrics.domains_configured.get().max(names.len() as i64),
        entries.len()
    );
    body.push_str("<table><tr><th>Domain</th>");
    for c in COLUMNS {
        let _ = write!(body, "<th>{}</th>", c.as_str());
    }
    body.push_str("<th>Errors</th><th>Warnings</th><th>Last check</th></tr>");
    for name in &names {
        let link = format!("<a href=\"/domain/{0}\">{0}</a>", escape(name));
        match by_name.get(name.as_str()) {
            None => {
                let _ = write!(
                    body,
                    "<tr><td>{link}</td><td colspan=\"{}\">not checked yet</td></tr>",
                    COLUMNS.len() + 3
                );
            }
            Some(entry) => {
                let r = &entry.report;
                let _ = write!(body, "<tr><td>{link}</td>");
                for c in COLUMNS {
                    body.push_str(&status_cell(r, c));
                }
                let count = |s| r.findings.iter().filter(|f| f.severity == s).count();
                let ago = r.checked_at.elapsed().map_or(0, |d| d.as_secs());
                let _ = write!(
                    body,
                    "<td>{}</td><td>{}</td><td>{ago} s ago</td></tr>",
                    count(Severity::Error),
                    count(Severity::Warning)
                );
            }
        }
    }
    body.push_str("</table>");
    page("mailauth-exporter", &body)
}

/// The domain view's source table: sources of the last days with the reverse names of
/// their busiest IPs (name by IP).
pub struct Sources {
    pub table: Vec<SourceSummary>,
    pub names: HashMap<String, String>,
}

/// Reverse names asked for one page at most, and how long each may take: the page is for
/// people, and a slow PTR zone must not hold it up.
const MAX_PTR_LOOKUPS: usize = 100;
const PTR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The source table of `name`, when reports are read (`[[reports]]` and a state database).
pub async fn sources(app: &App, name: &str) -> Option<Sources> {
    if app.config().reports.is_empty() {
        return None;
    }
    let store = app.state_store()?;
    let domain = crate::name::canonical(name);
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        / 86_400;
    let since = today - (source_table::DAYS - 1);
    let rows = tokio::task::spawn_blocking(move || store.report_sources(&domain, since))
        .await
        .ok()?
        .ok()?;
    let table = source_table::summarize(&rows);
    let dns = app.dns();
    let ips: Vec<std::net::IpAddr> = table
        .iter()
        .flat_map(|s| s.ips.iter().filter_map(|(ip, _)| ip.parse().ok()))
        .take(MAX_PTR_LOOKUPS)
        .collect();
    let lookups = ips.iter().map(|ip| {
        let dns = dns.clone();
        async move {
            let reverse = crate::name::reverse_name(*ip);
            let query = dns.lookup(&reverse, RecordType::Ptr);
            let answer = tokio::time::timeout(PTR_TIMEOUT, query).await.ok()?.ok()?;
            answer.records().iter().find_map(|r| match r {
                RData::Ptr(n) => Some((ip.to_string(), n.trim_end_matches('.').to_string())),
                _ => None,
            })
        }
    });
    let names = futures::future::join_all(lookups)
        .await
        .into_iter()
        .flatten()
        .collect();
    Some(Sources { table, names })
}

fn render_sources(body: &mut String, sources: &Sources) {
    let _ = write!(
        body,
        "<h2>Sources (last {} days of aggregate reports)</h2>",
        source_table::DAYS
    );
    if sources.table.is_empty() {
        body.push_str("<p>No aggregate report about this domain in that time.</p>");
        return;
    }
    body.push_str(
        "<p>What receivers reported, by <code>[[sender]]</code>; <code>unknown</code> is mail from          no configured sender. Reports are unauthenticated claims.</p><table><tr><th>Source</th>         <th>Messages</th><th>DKIM aligned pass</th><th>SPF aligned pass</th><th>Delivered</th>         <th>Quarantined</th><th>Rejected</th><th>Busiest IPs</th></tr>",
    );
    for s in &sources.table {
        let ips: Vec<String> = s
            .ips
            .iter()
            .map(|(ip, n)| match sources.names.get(ip) {
                Some(name) => format!("{} ({}) {n}", escape(ip), escape(name)),
                None => format!("{} {n}", escape(ip)),
            })
            .collect();
        let more = if s.more_ips > 0 {
            format!("<br>and {} more", s.more_ips)
        } else {
            String::new()
        };
        let class = if s.source == crate::reports::sender::UNKNOWN {
            " class=\"warning\""
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{more}</td></tr>",
            escape(&s.source),
            s.messages,
            source_table::percent(s.dkim_pass, s.messages),
            source_table::percent(s.spf_pass, s.messages),
            s.delivered(),
            s.quarantine,
            s.reject,
            ips.join("<br>"),
        );
    }
    body.push_str("</table>");
}

pub fn render_domain(app: &App, name: &str, sources: Option<&Sources>) -> Option<String> {
    let name = crate::name::normalize_name(name);
    let config = app.config();
    let known = config.domain(&name).is_some() || app.metrics.domain_entry(&name).is_some();
    if !known {
        return None;
    }
    let mut body = String::from("<p><a href=\"/\">← all domains</a></p>");
    let Some(entry) = app.metrics.domain_entry(&name) else {
        body.push_str("<p>Not checked yet.</p>");
        return Some(page(&name, &body));
    };
    let r = &entry.report;
    body.push_str("<h2>Records</h2><table>");
    let row = |b: &mut String, k: &str, v: &str| {
        let _ = write!(
            b,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(k),
            escape(v)
        );
    };
    row(
        &mut body,
        "SPF",
        r.spf_record.as_deref().unwrap_or("(none)"),
    );
    if r.spf_record.is_some() {
        row(
            &mut body,
            "SPF lookups",
            &format!("{} of 10 ({} void)", r.spf_dns_lookups, r.spf_void_lookups),
        );
    }
    for key in &r.dkim_keys {
        let desc = match (&key.key_type, key.key_bits) {
            (Some(t), Some(b)) => {
                format!("{t} {b} bits{}", if key.testing { ", testing" } else { "" })
            }
            _ => "(no usable key)".to_string(),
        };
        row(&mut body, &format!("DKIM {}", key.selector), &desc);
    }
    row(
        &mut body,
        "DMARC",
        r.dmarc_record.as_deref().unwrap_or("(none)"),
    );
    if let Some(at) = &r.dmarc_found_at {
        row(&mut body, "DMARC found at", at);
    }
    let mx: Vec<String> = r
        .mx_hosts
        .iter()
        .map(|(preference, host)| format!("{preference} {host}"))
        .collect();
    row(
        &mut body,
        "MX",
        &if r.null_mx {
            "null MX".to_string()
        } else {
            mx.join(", ")
        },
    );
    body.push_str("</table><h2>Findings</h2>");
    if r.findings.is_empty() {
        body.push_str("<p class=\"ok\">No findings.</p>");
    } else {
        body.push_str("<table><tr><th>Severity</th><th>Code</th><th>Message</th><th>Meaning</th><th>Fix</th></tr>");
        for f in &r.findings {
            let _ = write!(
                body,
                "<tr class=\"{s}\"><td>{s}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                f.code.as_str(),
                escape(&f.message),
                escape(f.code.explanation()),
                escape(f.code.fix()),
                s = f.severity.as_str()
            );
        }
        body.push_str("</table>");
    }
    if let Some(sources) = sources {
        render_sources(&mut body, sources);
    }
    Some(page(&name, &body))
}
