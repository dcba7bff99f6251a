//! The landing page on `/`: every domain with the status of each check and each probe
//! target, failing cells with since when; and a page per domain with its records, findings
//! (what they mean, how to fix them), its probes' latest round trips with the three
//! sources side by side, and its report sources. Plain HTML, no scripts. It reads the
//! latest results kept in memory (`metrics::DomainEntry`, `metrics::ProbeView`), never
//! the metric text.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::checks::Status;
use crate::config::TargetKind;
use crate::findings::{Check, Severity};
use crate::mail::results;
use crate::metrics::{DomainEntry, ProbeView};
use crate::reports::source_table::{self, SourceSummary};
use crate::resolver::{RData, RecordType};
use crate::service::app::App;
use crate::state::reports::PassCount;

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

/// Readable on a phone: the viewport follows the device, wide tables scroll sideways on
/// their own instead of shrinking the whole page, and the domain column stays in view.
const STYLE: &str = "body{font-family:sans-serif;margin:1em 2em;line-height:1.35}\
h1{font-size:1.6em;overflow-wrap:anywhere}.scroll{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;margin-bottom:1em}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.ok{background:#d4f7d4}.fail{background:#f7d4d4}\
.unknown{background:#eee}.warning{background:#fff1c2}.error{background:#f7d4d4}\
.info{background:#e3ecff}code{font-size:90%;overflow-wrap:anywhere}\
.note{display:block;font-size:80%;color:#333;white-space:nowrap}\
.findings code{overflow-wrap:normal;white-space:nowrap}\
table.overview td:first-child{position:sticky;left:0;background:#fff}\
@media (max-width:700px){body{margin:.5em}td,th{padding:3px 4px}h1{font-size:1.3em}}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    )
}

/// Every check is a column: the page shows what ran for each domain.
const COLUMNS: [Check; 11] = crate::checks::TABLE;

/// What a check looks at, in words for the page's introduction. A match, so that a new
/// check cannot be left out of it.
fn check_title(check: Check) -> &'static str {
    match check {
        Check::Spf => "SPF",
        Check::Dkim => "DKIM",
        Check::Dmarc => "DMARC",
        Check::Mx => "MX",
        Check::Ptr => "reverse DNS",
        Check::Parked => "parked domains",
        Check::MtaSts => "MTA-STS",
        Check::TlsRpt => "TLS-RPT",
        Check::Bimi => "BIMI",
        Check::Dnsbl => "DNS blocklists",
        Check::Dane => "DANE",
    }
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A span of time for people: "45 s", "12 min", "3 h", "2 d".
fn span(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7_199 => format!("{} min", s / 60),
        7_200..=172_799 => format!("{} h", s / 3_600),
        _ => format!("{} d", s / 86_400),
    }
}

/// A Unix time for people, in UTC: the time of day when it is within the last day, else
/// the date.
fn when(unix: f64, now: f64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0.0) as u64);
    let text = humantime::format_rfc3339_seconds(at).to_string(); // 2026-12-02T15:03:07Z
    if now - unix < 86_400.0 {
        format!("{} UTC", &text[11..16])
    } else {
        text[..10].to_string()
    }
}

/// A delivery time: tenths of a second, and a fast delivery as such rather than "0.0 s".
fn delivery(took: std::time::Duration) -> String {
    let seconds = took.as_secs_f64();
    if seconds < 0.1 {
        "under 0.1 s".to_string()
    } else {
        format!("{seconds:.1} s")
    }
}

/// "since 15:03 UTC (12 min)", kept small under a cell's status.
fn since_note(since: f64, now: f64) -> String {
    format!(
        "<span class=\"note\">since {} ({})</span>",
        when(since, now),
        span(now - since)
    )
}

/// The status cell of one check, with since when a failing or warning check has been so.
fn status_cell(entry: &DomainEntry, check: Check, now: f64) -> String {
    let report = &entry.report;
    let since = entry.since.since(check).map(|(_, at)| at);
    let note = |at: Option<f64>| at.map(|a| since_note(a, now)).unwrap_or_default();
    match report.outcome(check).map(|o| o.status(&report.findings)) {
        None => "<td>–</td>".to_string(),
        Some(Status::Unknown) => format!("<td class=\"unknown\">unknown{}</td>", note(since)),
        Some(Status::Warn) => format!("<td class=\"warning\">warning{}</td>", note(since)),
        Some(Status::Ok) => "<td class=\"ok\">ok</td>".to_string(),
        Some(Status::Fail) => format!("<td class=\"fail\">FAIL{}</td>", note(since)),
    }
}

/// The probe targets configured anywhere, in a fixed order: one overview column each.
fn probe_targets(config: &crate::config::Config) -> Vec<TargetKind> {
    [TargetKind::Mailbox, TargetKind::Verifier]
        .into_iter()
        .filter(|kind| {
            config
                .probes
                .iter()
                .any(|p| p.targets.iter().any(|t| t.kind == *kind))
        })
        .collect()
}

/// (domain, target) of every `[[probe]]` target: looked up per overview row, a set.
fn probed_targets(config: &crate::config::Config) -> HashSet<(String, &'static str)> {
    config
        .probes
        .iter()
        .flat_map(|p| {
            let domain = crate::name::canonical(p.domain.get_ref());
            p.targets
                .iter()
                .map(move |t| (domain.clone(), t.kind.as_str()))
        })
        .collect()
}

/// A probe target's latest round trip in one cell: the result (the failed stage, since
/// when), the age of the last success, the delivery time and where it landed.
fn probe_cell(view: Option<&ProbeView>, now: f64) -> String {
    let Some(v) = view else {
        return "<td class=\"unknown\">no round yet</td>".to_string();
    };
    let mut cell = if v.success {
        "<td class=\"ok\">ok".to_string()
    } else {
        // A round that completed but where a method did not pass has no failed stage.
        let stage = v
            .failure
            .as_ref()
            .map_or("a method failed", |(stage, _)| stage);
        format!(
            "<td class=\"fail\">FAIL ({}){}",
            escape(stage),
            since_note(v.since, now)
        )
    };
    match v.last_success {
        Some(at) => {
            let _ = write!(
                cell,
                "<span class=\"note\">last success {} ago</span>",
                span(now - at)
            );
        }
        None => cell.push_str("<span class=\"note\">no success yet</span>"),
    }
    if let Some(d) = v.delivery {
        let _ = write!(
            cell,
            "<span class=\"note\">delivered in {}</span>",
            delivery(d)
        );
    }
    if let Some((folder, spam, _)) = &v.placement {
        let place = if *spam { "as spam" } else { "inbox" };
        let _ = write!(
            cell,
            "<span class=\"note\">{place} ({})</span>",
            escape(folder)
        );
    }
    cell.push_str("</td>");
    cell
}

/// Days the overview's DMARC pass rate covers.
const PASS_RATE_DAYS: i64 = 7;

/// Today as days since 1970-01-01 (UTC), the unit of the report tables.
fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        / 86_400
}

/// Per domain, the messages receivers reported over the last [`PASS_RATE_DAYS`] days and
/// how many passed DMARC, when reports are read (`[[reports]]` and a state database).
pub async fn pass_counts(app: &App) -> Option<HashMap<String, PassCount>> {
    if app.config().reports.is_empty() {
        return None;
    }
    let store = app.state_store()?;
    let since = today() - (PASS_RATE_DAYS - 1);
    tokio::task::spawn_blocking(move || store.dmarc_pass_counts(since))
        .await
        .ok()?
        .ok()
}

/// The overview's pass-rate cell: the rate and how many messages it rests on.
fn pass_cell(count: Option<&PassCount>) -> String {
    match count {
        Some(c) if c.messages > 0 => format!(
            "<td>{} <span class=\"note\">of {} messages</span></td>",
            source_table::percent(c.passed, c.messages),
            c.messages
        ),
        _ => "<td>–</td>".to_string(),
    }
}

/// The overview. `pass_counts` adds the DMARC pass-rate column (reports are read).
pub fn render_index(app: &App, pass_counts: Option<&HashMap<String, PassCount>>) -> String {
    let config = app.config();
    let entries = app.metrics.domain_entries();
    let views = app.metrics.all_probe_views();
    let targets = probe_targets(&config);
    let probed = probed_targets(&config);
    let now = now_unix();
    let mut body = String::new();
    let checks: Vec<&str> = COLUMNS.iter().map(|c| check_title(*c)).collect();
    let _ = write!(
        body,
        "<p>mailauth-exporter {} checks each domain's {} and {}, and sends probe mails \
         through the domain's own submission server to a mailbox and a verifier, comparing \
         what the receiver, the verifier and its own check found. \
         <a href=\"/metrics\">Metrics</a> · <a href=\"/-/healthy\">Health</a></p>",
        env!("CARGO_PKG_VERSION"),
        checks[..checks.len() - 1].join(", "),
        checks[checks.len() - 1],
    );
    // Configured domains first, then probed ones, then those of the domains file (known
    // once checked).
    let mut names: Vec<String> = config
        .domains
        .iter()
        .map(|d| crate::name::canonical(d.name()))
        .collect();
    // Sets and maps, not scans: a platform's page lists 10,000 domains.
    let mut listed: HashSet<String> = names.iter().cloned().collect();
    for name in config
        .probes
        .iter()
        .map(|p| crate::name::canonical(p.domain.get_ref()))
        .chain(entries.iter().map(|e| e.report.domain.clone()))
    {
        if listed.insert(name.clone()) {
            names.push(name);
        }
    }
    let by_name: HashMap<&str, &DomainEntry> = entries
        .iter()
        .map(|e| (e.report.domain.as_str(), e))
        .collect();
    let _ = write!(
        body,
        "<p>{} domain(s) watched, {} checked so far.</p>",
        app.metrics.domains_configured.get().max(names.len() as i64),
        entries.len()
    );
    body.push_str("<div class=\"scroll\"><table class=\"overview\"><tr><th>Domain</th>");
    for c in COLUMNS {
        let _ = write!(body, "<th title=\"{}\">{}</th>", check_title(c), c.as_str());
    }
    for t in &targets {
        let _ = write!(body, "<th>probe {}</th>", t.as_str());
    }
    if pass_counts.is_some() {
        let _ = write!(
            body,
            "<th title=\"Share of the messages receivers reported in DMARC aggregate reports that \
             passed DMARC (DKIM or SPF aligned), last {PASS_RATE_DAYS} days\">DMARC pass \
             ({PASS_RATE_DAYS} d)</th>"
        );
    }
    body.push_str("<th>Errors</th><th>Warnings</th><th>Last check</th></tr>");
    for name in &names {
        let _ = write!(
            body,
            "<tr><td><a href=\"/domain/{0}\">{0}</a></td>",
            escape(name)
        );
        match by_name.get(name.as_str()) {
            None => {
                let _ = write!(
                    body,
                    "<td colspan=\"{}\">not checked yet</td>",
                    COLUMNS.len()
                );
            }
            Some(entry) => {
                for c in COLUMNS {
                    body.push_str(&status_cell(entry, c, now));
                }
            }
        }
        for t in &targets {
            let key = (name.clone(), t.as_str());
            if probed.contains(&key) {
                let key = (name.clone(), t.as_str().to_string());
                body.push_str(&probe_cell(views.get(&key), now));
            } else {
                body.push_str("<td>–</td>");
            }
        }
        if let Some(counts) = pass_counts {
            body.push_str(&pass_cell(counts.get(name)));
        }
        match by_name.get(name.as_str()) {
            None => body.push_str("<td></td><td></td><td></td></tr>"),
            Some(entry) => {
                let r = &entry.report;
                let count = |s| r.findings.iter().filter(|f| f.severity == s).count();
                let ago = r.checked_at.elapsed().map_or(0.0, |d| d.as_secs_f64());
                let _ = write!(
                    body,
                    "<td>{}</td><td>{}</td><td>{} ago</td></tr>",
                    count(Severity::Error),
                    count(Severity::Warning),
                    span(ago)
                );
            }
        }
    }
    body.push_str("</table></div>");
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
    let since = today() - (source_table::DAYS - 1);
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
    let known = config.domain(&name).is_some()
        || app.metrics.domain_entry(&name).is_some()
        || config
            .probes
            .iter()
            .any(|p| crate::name::canonical(p.domain.get_ref()) == name);
    if !known {
        return None;
    }
    let mut body = String::from("<p><a href=\"/\">← all domains</a></p>");
    let Some(entry) = app.metrics.domain_entry(&name) else {
        body.push_str("<p>Not checked yet.</p>");
        render_probes(&mut body, app, &name, now_unix());
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
    body.push_str("</table>");
    let now = now_unix();
    body.push_str("<h2>Checks</h2><table><tr><th>Check</th><th>Status</th></tr>");
    for c in COLUMNS {
        let _ = write!(
            body,
            "<tr><th title=\"{}\">{}</th>{}</tr>",
            check_title(c),
            c.as_str(),
            status_cell(&entry, c, now)
        );
    }
    body.push_str("</table><h2>Findings</h2>");
    if r.findings.is_empty() {
        body.push_str("<p class=\"ok\">No findings.</p>");
    } else {
        body.push_str("<div class=\"scroll\"><table class=\"findings\"><tr><th>Severity</th><th>Code</th><th>Message</th><th>Meaning</th><th>Fix</th></tr>");
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
        body.push_str("</table></div>");
    }
    render_probes(&mut body, app, &name, now);
    if let Some(sources) = sources {
        render_sources(&mut body, sources);
    }
    Some(page(&name, &body))
}

/// Sources in the order the probe section shows them side by side, with their headings.
const SOURCES: [(&str, &str); 3] = [
    ("receiver", "receiver"),
    ("verifier", "verifier"),
    ("dns", "own check"),
];

/// The domain's probes: each target's latest round trip, then each method's result from
/// the three sources side by side (receiver, verifier, the exporter's own check), with the
/// methods on which they disagree marked.
fn render_probes(body: &mut String, app: &App, domain: &str, now: f64) {
    let probed = app
        .config()
        .probes
        .iter()
        .any(|p| crate::name::canonical(p.domain.get_ref()) == domain);
    probe_section(body, &app.metrics.probe_views(domain), probed, now);
}

/// The probe section of a domain page from its targets' latest round trips (`probed`: the
/// domain has a `[[probe]]`).
fn probe_section(body: &mut String, views: &[(String, ProbeView)], probed: bool, now: f64) {
    if !probed && views.is_empty() {
        return;
    }
    body.push_str("<h2>Probe mails</h2>");
    if views.is_empty() {
        body.push_str("<p>No probe round has ended yet.</p>");
        return;
    }
    body.push_str(
        "<div class=\"scroll\"><table class=\"probes\"><tr><th>Target</th><th>Latest round</th>\
         <th>Result</th><th>What went wrong</th></tr>",
    );
    for (target, v) in views {
        let why = v
            .failure
            .as_ref()
            .map(|(stage, why)| format!("<code>{}</code>: {}", escape(stage), escape(why)))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><th>{}</th><td>{} ago</td>{}<td>{why}</td></tr>",
            escape(target),
            span(now - v.at),
            probe_cell(Some(v), now),
        );
    }
    body.push_str("</table></div>");
    // Each source comes from one target (receiver and own check from the mailbox, the
    // verifier's report from the verifier); the first one that has it is shown.
    let by_source: Vec<Option<&results::MethodResults>> = SOURCES
        .iter()
        .map(|(source, _)| {
            views
                .iter()
                .find_map(|(_, v)| v.sources.iter().find(|(s, _)| s == source))
                .map(|(_, r)| r)
        })
        .collect();
    let present: Vec<&results::MethodResults> = by_source.iter().flatten().copied().collect();
    if present.is_empty() {
        return;
    }
    let disagreeing = results::disagreements(&present);
    body.push_str("<h3>Authentication results by source</h3>");
    if let Some(at) = views
        .iter()
        .filter_map(|(_, v)| v.sources_at)
        .reduce(f64::min)
    {
        let _ = write!(
            body,
            "<p>From each target's latest round with results (the oldest {} ago): what the \
             receiver wrote in its <code>Authentication-Results</code>, what the verifier \
             replied, and the exporter's own check of the message received.</p>",
            span(now - at)
        );
    }
    body.push_str("<div class=\"scroll\"><table class=\"methods\"><tr><th>Method</th>");
    for (_, heading) in SOURCES {
        let _ = write!(body, "<th>{heading}</th>");
    }
    body.push_str("<th>Sources agree</th></tr>");
    for method in results::METHODS {
        if !present.iter().any(|r| r.contains_key(method)) {
            continue;
        }
        let _ = write!(body, "<tr><th>{method}</th>");
        for results in &by_source {
            match results.and_then(|r| r.get(method)) {
                Some(result) => {
                    let class = if result == "pass" { "ok" } else { "fail" };
                    let _ = write!(body, "<td class=\"{class}\">{}</td>", escape(result));
                }
                None => body.push_str("<td>–</td>"),
            }
        }
        if disagreeing.iter().any(|m| m == method) {
            body.push_str("<td class=\"fail\">no: they disagree</td></tr>");
        } else {
            body.push_str("<td>yes</td></tr>");
        }
    }
    body.push_str("</table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(pairs: &[(&str, &str)]) -> results::MethodResults {
        pairs
            .iter()
            .map(|(m, r)| (m.to_string(), r.to_string()))
            .collect()
    }

    fn view(success: bool, sources: Vec<(&'static str, results::MethodResults)>) -> ProbeView {
        ProbeView {
            at: 1_000.0,
            success,
            since: 400.0,
            failure: (!success).then(|| ("receive_timeout", "no <copy> arrived".to_string())),
            last_success: Some(100.0),
            delivery: Some(std::time::Duration::from_millis(1_500)),
            placement: Some(("Junk".to_string(), true, Some(7.5))),
            sources,
            sources_at: Some(900.0),
        }
    }

    #[test]
    fn spans_and_times_for_people() {
        assert_eq!(span(45.0), "45 s");
        assert_eq!(span(-3.0), "0 s");
        assert_eq!(span(720.0), "12 min");
        assert_eq!(span(3.0 * 3_600.0), "3 h");
        assert_eq!(span(3.0 * 86_400.0), "3 d");
        assert_eq!(
            delivery(std::time::Duration::from_millis(40)),
            "under 0.1 s"
        );
        assert_eq!(delivery(std::time::Duration::from_millis(1_260)), "1.3 s");
        // 2026-12-02T15:03:07Z
        let t = 1_796_223_787.0;
        assert_eq!(when(t, t + 60.0), "15:03 UTC");
        assert_eq!(when(t, t + 2.0 * 86_400.0), "2026-12-02");
    }

    #[test]
    fn a_failing_probe_cell_says_the_stage_since_when_and_where_it_landed() {
        let cell = probe_cell(Some(&view(false, Vec::new())), 1_000.0);
        assert!(
            cell.starts_with("<td class=\"fail\">FAIL (receive_timeout)"),
            "{cell}"
        );
        assert!(cell.contains("(10 min)"), "{cell}");
        assert!(cell.contains("last success 15 min ago"), "{cell}");
        assert!(cell.contains("delivered in 1.5 s"), "{cell}");
        assert!(cell.contains("as spam (Junk)"), "{cell}");
        let ok = probe_cell(Some(&view(true, Vec::new())), 1_000.0);
        assert!(ok.starts_with("<td class=\"ok\">ok"), "{ok}");
        assert!(probe_cell(None, 0.0).contains("no round yet"));
    }

    #[test]
    fn the_three_sources_side_by_side_with_their_disagreement() {
        let mailbox = view(
            false,
            vec![
                ("receiver", results(&[("spf", "pass"), ("dkim", "pass")])),
                ("dns", results(&[("spf", "pass"), ("dkim", "fail")])),
            ],
        );
        let verifier = view(true, vec![("verifier", results(&[("spf", "pass")]))]);
        let mut body = String::new();
        probe_section(
            &mut body,
            &[("mailbox".into(), mailbox), ("verifier".into(), verifier)],
            true,
            1_000.0,
        );
        // The failure's message is an outside string: escaped.
        assert!(body.contains("no &lt;copy&gt; arrived"), "{body}");
        assert!(
            body.contains(
                "<tr><th>spf</th><td class=\"ok\">pass</td><td class=\"ok\">pass</td>\
             <td class=\"ok\">pass</td><td>yes</td></tr>"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "<tr><th>dkim</th><td class=\"ok\">pass</td><td>–</td>\
             <td class=\"fail\">fail</td><td class=\"fail\">no: they disagree</td></tr>"
            ),
            "{body}"
        );
        assert!(
            !body.contains("<th>dmarc</th>"),
            "no source has dmarc: {body}"
        );
    }

    #[test]
    fn a_probed_domain_without_a_round_says_so() {
        let mut body = String::new();
        probe_section(&mut body, &[], true, 0.0);
        assert!(body.contains("No probe round has ended yet"));
        let mut none = String::new();
        probe_section(&mut none, &[], false, 0.0);
        assert!(none.is_empty());
    }
}
