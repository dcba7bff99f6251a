//! The report counters (DESIGN.md § Reports) as exposition text. They live in the state
//! database, not in the registry: a restart must neither reset nor repeat them, so the
//! reader re-renders this text from the database after each commit and at start. Only
//! watched domains get series; a domain dropped from the config keeps its counts in the
//! database (they come back if it does) but shows none.

use std::fmt::Write as _;

use super::line;
use crate::reports::tally;
use crate::state::reports::{CountRow, ReporterRow};

/// (counter kind in the state database, metric name, help, label names).
const COUNTER_FAMILIES: &[(&str, &str, &str, &[&str])] = &[
    (
        tally::MESSAGES,
        "mailauth_dmarc_report_messages_total",
        "Messages in DMARC aggregate reports, by source ([[sender]] name or unknown), disposition and aligned DKIM/SPF result.",
        &["domain", "source", "disposition", "dkim", "spf"],
    ),
    (
        tally::FAILURE_REPORTS,
        "mailauth_dmarc_failure_reports_total",
        "DMARC failure reports (RFC 6591), by auth_failure.",
        &["domain", "auth_failure"],
    ),
    (
        tally::TLSRPT_SESSIONS,
        "mailauth_tlsrpt_sessions_total",
        "SMTP TLS sessions in TLS reports (RFC 8460): result success or the failure result-type.",
        &["domain", "policy_type", "result"],
    ),
    (
        tally::TLSRPT_FAILED_SUMMARY,
        "mailauth_tlsrpt_failed_sessions_summary_total",
        "The TLS reports' own total-failure-session-count.",
        &["domain", "policy_type"],
    ),
];

const REPORTS_TOTAL: &str = "mailauth_dmarc_reports_total";
const LAST_END: &str = "mailauth_dmarc_report_last_end_timestamp_seconds";

/// The report families' exposition text for the watched domains among `counts` and
/// `reporters`.
pub fn render(
    counts: &[CountRow],
    reporters: &[ReporterRow],
    watched: &dyn Fn(&str) -> bool,
) -> String {
    let mut out = String::new();
    for (kind, name, help, label_names) in COUNTER_FAMILIES {
        let mut lines = String::new();
        for row in counts.iter().filter(|r| r.kind == *kind) {
            if row.labels.len() != label_names.len() || !watched(&row.labels[0]) {
                continue;
            }
            let labels: Vec<(&str, &str)> = label_names
                .iter()
                .copied()
                .zip(row.labels.iter().map(String::as_str))
                .collect();
            line(&mut lines, name, &labels, row.value as f64);
        }
        family(&mut out, name, "counter", help, &lines);
    }
    let shown: Vec<&ReporterRow> = reporters.iter().filter(|r| watched(&r.domain)).collect();
    let mut totals = String::new();
    let mut ends = String::new();
    for r in &shown {
        let labels = [
            ("domain", r.domain.as_str()),
            ("reporter", r.reporter.as_str()),
        ];
        line(&mut totals, REPORTS_TOTAL, &labels, r.reports as f64);
        if let Some(end) = r.last_end {
            line(&mut ends, LAST_END, &labels, end as f64);
        }
    }
    family(
        &mut out,
        REPORTS_TOTAL,
        "counter",
        "DMARC aggregate reports counted, by reporter (org_name lower-cased; past max_reporters per domain: other).",
        &totals,
    );
    family(
        &mut out,
        LAST_END,
        "gauge",
        "End of the date range of the newest aggregate report from the reporter (Unix time).",
        &ends,
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, lines: &str) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    out.push_str(lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, labels: &[&str], value: u64) -> CountRow {
        CountRow {
            kind: kind.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            value,
        }
    }

    #[test]
    fn only_watched_domains_get_series() {
        let counts = [
            row(
                tally::MESSAGES,
                &["example.test", "unknown", "none", "fail", "fail"],
                12,
            ),
            row(
                tally::MESSAGES,
                &["dropped.test", "unknown", "none", "fail", "fail"],
                3,
            ),
            row(
                tally::TLSRPT_SESSIONS,
                &["example.test", "sts", "certificate-expired"],
                2,
            ),
        ];
        let reporters = [ReporterRow {
            domain: "example.test".into(),
            reporter: "google.com".into(),
            reports: 4,
            last_end: Some(1_700_086_399),
        }];
        let text = render(&counts, &reporters, &|d| d == "example.test");
        assert!(text.contains(
            "mailauth_dmarc_report_messages_total{domain=\"example.test\",source=\"unknown\",disposition=\"none\",dkim=\"fail\",spf=\"fail\"} 12\n"
        ));
        assert!(!text.contains("dropped.test"));
        assert!(text.contains(
            "mailauth_tlsrpt_sessions_total{domain=\"example.test\",policy_type=\"sts\",result=\"certificate-expired\"} 2\n"
        ));
        assert!(text.contains(
            "mailauth_dmarc_reports_total{domain=\"example.test\",reporter=\"google.com\"} 4\n"
        ));
        assert!(text.contains(
            "mailauth_dmarc_report_last_end_timestamp_seconds{domain=\"example.test\",reporter=\"google.com\"} 1700086399\n"
        ));
        assert!(text.contains("# TYPE mailauth_dmarc_report_messages_total counter\n"));
        assert!(
            !text.contains("mailauth_dmarc_failure_reports_total"),
            "no header without series"
        );
        assert_eq!(render(&[], &[], &|_| true), "");
    }
}
