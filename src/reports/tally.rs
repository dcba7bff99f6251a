//! A read report → what it adds to the counters (`state::reports::ReportCommit`), with
//! every label value bounded: domains only when watched, sources from `[[sender]]` names,
//! results and dispositions from fixed keyword sets, reporters clipped (and limited per
//! domain by the state store). Pure: the record sources come in already classified.
//!
//! Counter kinds (the metrics layer names the families, DESIGN.md § Reports):
//! - `messages` (domain, source, disposition, dkim, spf): aggregate report messages;
//! - `failure_reports` (domain, auth_failure): RFC 6591 reports;
//! - `tlsrpt_sessions` (domain, policy_type, result): RFC 8460 sessions;
//! - `tlsrpt_failed_summary` (domain, policy_type): the reports' own failure totals.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::aggregate::AggregateReport;
use super::failure::FailureReport;
use super::tlsrpt::TlsReport;
use super::Report;
use crate::name::canonical;
use crate::state::reports::{CountAdd, ReportCommit, ReporterAdd, SeenKey, SourceRow};

pub const MESSAGES: &str = "messages";
pub const FAILURE_REPORTS: &str = "failure_reports";
pub const TLSRPT_SESSIONS: &str = "tlsrpt_sessions";
pub const TLSRPT_FAILED_SUMMARY: &str = "tlsrpt_failed_summary";

/// A record claiming more messages than this from one IP in one report is not believed:
/// no receiver sees four billion messages a day from one address, and a report with a
/// `count` of 2^63 would otherwise pin the counters at their maximum for good.
pub const MAX_RECORD_MESSAGES: u64 = 1 << 32;

/// Longest reporter label value (org names are the reporter's own text).
pub const MAX_REPORTER_LEN: usize = 64;

/// `auth_failure` label values (RFC 6591 §3.2.2 `Auth-Failure`, RFC 7489 §7.3 `dmarc`).
pub const AUTH_FAILURES: &[&str] = &[
    "dkim",
    "spf",
    "dmarc",
    "bodyhash",
    "revoked",
    "signature",
    "other",
];

/// TLS-RPT `result-type` label values (RFC 8460 §4.3), `other` for the rest.
pub const TLS_RESULT_TYPES: &[&str] = &[
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
    "other",
];

/// TLS-RPT `policy-type` values (RFC 8460 §4.4).
pub const TLS_POLICY_TYPES: &[&str] = &["sts", "tlsa", "no-policy-found"];

/// What a report comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// Counts to commit (once: the key decides).
    Commit(ReportCommit),
    /// The report is about no watched domain: nothing is counted.
    IgnoredDomain,
}

/// Parts of a report that were not counted, each with the reason.
pub type Skipped = Vec<String>;

/// The counts of `report`. `watched` says whether a canonical domain is watched;
/// `sources[i]` is the `source` of an aggregate report's record `i` (ignored for the other
/// kinds); `now` (Unix seconds) dates reports that carry no date range.
pub fn tally(
    report: &Report,
    watched: &dyn Fn(&str) -> bool,
    sources: &[String],
    now: i64,
) -> (Tally, Skipped) {
    match report {
        Report::Aggregate(a) => aggregate(a, watched, sources, now),
        Report::Failure(f) => failure(f, watched),
        Report::TlsRpt(t) => tls(t, watched),
    }
}

/// The reporter as a label value: lower-cased, control characters and quotes dropped,
/// clipped to [`MAX_REPORTER_LEN`] bytes.
pub fn reporter_label(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_control() || c == '"' || c == '\\' {
            continue;
        }
        if out.len() + c.len_utf8() > MAX_REPORTER_LEN {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "unnamed".to_string()
    } else {
        out
    }
}

fn is_pass(result: Option<&str>) -> bool {
    result.is_some_and(|r| r.eq_ignore_ascii_case("pass"))
}

fn disposition(text: Option<&str>) -> &'static str {
    match text.map(str::to_ascii_lowercase).as_deref() {
        Some("quarantine") => "quarantine",
        Some("reject") => "reject",
        _ => "none",
    }
}

fn aggregate(
    report: &AggregateReport,
    watched: &dyn Fn(&str) -> bool,
    sources: &[String],
    now: i64,
) -> (Tally, Skipped) {
    let domain = canonical(&report.domain);
    if domain.is_empty() || !watched(&domain) {
        return (Tally::IgnoredDomain, Vec::new());
    }
    let mut skipped = Vec::new();
    let day = report
        .end
        .or(report.begin)
        .unwrap_or(now)
        .div_euclid(86_400);
    let mut messages: BTreeMap<[&str; 4], u64> = BTreeMap::new();
    let mut rows: BTreeMap<(&str, String), SourceRow> = BTreeMap::new();
    for (index, record) in report.records.iter().enumerate() {
        if record.count > MAX_RECORD_MESSAGES {
            skipped.push(format!(
                "record {index} ({}) claims {} messages, more than {MAX_RECORD_MESSAGES}: not counted",
                record.source_ip.chars().take(64).collect::<String>(),
                record.count
            ));
            continue;
        }
        let source = sources
            .get(index)
            .map_or(super::sender::UNKNOWN, String::as_str);
        let dkim = is_pass(record.dkim_aligned.as_deref());
        let spf = is_pass(record.spf_aligned.as_deref());
        let disposition = disposition(record.disposition.as_deref());
        let pass_fail = |p: bool| if p { "pass" } else { "fail" };
        let entry = messages
            .entry([source, disposition, pass_fail(dkim), pass_fail(spf)])
            .or_default();
        *entry = entry.saturating_add(record.count);
        let ip = record
            .source_ip
            .trim()
            .parse::<IpAddr>()
            .map_or_else(|_| "invalid".to_string(), |ip| ip.to_string());
        let row = rows
            .entry((source, ip.clone()))
            .or_insert_with(|| SourceRow {
                domain: domain.clone(),
                day,
                source: source.to_string(),
                ip,
                dmarc_pass: Some(0),
                ..SourceRow::default()
            });
        let add = |field: &mut u64, yes: bool| {
            if yes {
                *field = field.saturating_add(record.count);
            }
        };
        add(&mut row.messages, true);
        add(&mut row.dkim_pass, dkim);
        add(&mut row.spf_pass, spf);
        add(&mut row.quarantine, disposition == "quarantine");
        add(&mut row.reject, disposition == "reject");
        if dkim || spf {
            let passed = row.dmarc_pass.unwrap_or(0).saturating_add(record.count);
            row.dmarc_pass = Some(passed);
        }
    }
    let reporter = reporter_label(&report.org_name);
    let counts = messages
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|([source, disposition, dkim, spf], value)| CountAdd {
            kind: MESSAGES,
            labels: [domain.as_str(), source, disposition, dkim, spf]
                .map(str::to_string)
                .to_vec(),
            value,
        })
        .collect();
    let commit = ReportCommit {
        key: SeenKey {
            reporter: reporter.clone(),
            report_id: super::clip(&report.report_id),
            domain: domain.clone(),
            kind: "dmarc_aggregate",
        },
        counts,
        reporter: Some(ReporterAdd {
            domain,
            reporter,
            end: report.end,
        }),
        sources: rows.into_values().filter(|r| r.messages > 0).collect(),
    };
    (Tally::Commit(commit), skipped)
}

/// A failure report has no identifier of its own: its key is a digest of what it says,
/// so the same report mailed twice counts once.
fn failure_id(report: &FailureReport) -> String {
    let text = serde_json::to_string(report).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn failure(report: &FailureReport, watched: &dyn Fn(&str) -> bool) -> (Tally, Skipped) {
    let Some(domain) = report
        .reported_domain
        .as_deref()
        .map(canonical)
        .filter(|d| !d.is_empty() && watched(d))
    else {
        return (Tally::IgnoredDomain, Vec::new());
    };
    let mut kinds: Vec<&str> = report
        .auth_failure
        .iter()
        .map(|f| {
            let f = f.trim().to_ascii_lowercase();
            AUTH_FAILURES
                .iter()
                .copied()
                .find(|k| *k == f)
                .unwrap_or("other")
        })
        .collect();
    if kinds.is_empty() {
        kinds.push("other");
    }
    kinds.sort_unstable();
    kinds.dedup();
    let counts = kinds
        .into_iter()
        .map(|kind| CountAdd {
            kind: FAILURE_REPORTS,
            labels: vec![domain.clone(), kind.to_string()],
            value: 1,
        })
        .collect();
    let reporter = report
        .reporting_mta
        .as_deref()
        .or(report.user_agent.as_deref())
        .map_or_else(String::new, reporter_label);
    let commit = ReportCommit {
        key: SeenKey {
            reporter,
            report_id: failure_id(report),
            domain,
            kind: "dmarc_failure",
        },
        counts,
        reporter: None,
        sources: Vec::new(),
    };
    (Tally::Commit(commit), Vec::new())
}

fn tls(report: &TlsReport, watched: &dyn Fn(&str) -> bool) -> (Tally, Skipped) {
    let mut skipped = Vec::new();
    let mut sessions: BTreeMap<(String, &str, &str), u64> = BTreeMap::new();
    let mut summary: BTreeMap<(String, &str), u64> = BTreeMap::new();
    let mut first_domain = None;
    for policy in &report.policies {
        let Some(domain) = policy
            .policy_domain
            .as_deref()
            .map(canonical)
            .filter(|d| !d.is_empty() && watched(d))
        else {
            continue;
        };
        let kind = policy
            .policy_type
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let Some(policy_type) = TLS_POLICY_TYPES.iter().copied().find(|t| *t == kind) else {
            skipped.push(format!(
                "policy for {domain}: unknown policy-type {:?}: not counted",
                kind.chars().take(64).collect::<String>()
            ));
            continue;
        };
        first_domain.get_or_insert_with(|| domain.clone());
        let mut add = |result: &'static str, n: u64| {
            if n > 0 {
                let e = sessions
                    .entry((domain.clone(), policy_type, result))
                    .or_default();
                *e = e.saturating_add(n);
            }
        };
        add("success", policy.successful);
        let mut detailed: u64 = 0;
        for detail in &policy.failures {
            let rt = detail
                .result_type
                .as_deref()
                .unwrap_or("")
                .to_ascii_lowercase();
            let result = TLS_RESULT_TYPES
                .iter()
                .copied()
                .find(|t| *t == rt)
                .unwrap_or("other");
            add(result, detail.count);
            detailed = detailed.saturating_add(detail.count);
        }
        // DESIGN.md: a summary larger than its details adds the difference as `other`.
        add("other", policy.failed.saturating_sub(detailed));
        let e = summary.entry((domain.clone(), policy_type)).or_default();
        *e = e.saturating_add(policy.failed);
    }
    let Some(domain) = first_domain else {
        return (Tally::IgnoredDomain, skipped);
    };
    let mut counts: Vec<CountAdd> = sessions
        .into_iter()
        .map(|((domain, policy_type, result), value)| CountAdd {
            kind: TLSRPT_SESSIONS,
            labels: vec![domain, policy_type.to_string(), result.to_string()],
            value,
        })
        .collect();
    counts.extend(
        summary
            .into_iter()
            .map(|((domain, policy_type), value)| CountAdd {
                kind: TLSRPT_FAILED_SUMMARY,
                labels: vec![domain, policy_type.to_string()],
                value,
            }),
    );
    let reporter = reporter_label(report.organization_name.as_deref().unwrap_or(""));
    let report_id = report
        .report_id
        .as_deref()
        .map(super::clip)
        .unwrap_or_else(|| format!("{}..{}", report.begin.unwrap_or(0), report.end.unwrap_or(0)));
    let commit = ReportCommit {
        key: SeenKey {
            reporter,
            report_id,
            domain,
            kind: "tls_rpt",
        },
        counts,
        reporter: None,
        sources: Vec::new(),
    };
    (Tally::Commit(commit), skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::aggregate::Record;
    use crate::reports::tlsrpt::{FailureDetail, PolicyReport};

    fn watched(d: &str) -> bool {
        d == "example.test"
    }

    fn record(ip: &str, count: u64, disposition: &str, dkim: &str, spf: &str) -> Record {
        Record {
            source_ip: ip.into(),
            count,
            disposition: Some(disposition.into()),
            dkim_aligned: Some(dkim.into()),
            spf_aligned: Some(spf.into()),
            ..Record::default()
        }
    }

    fn aggregate_report(records: Vec<Record>) -> Report {
        Report::Aggregate(AggregateReport {
            org_name: "Google.com".into(),
            report_id: "r-1".into(),
            begin: Some(1_700_000_000),
            end: Some(1_700_086_399),
            domain: "Example.Test.".into(),
            records,
            ..AggregateReport::default()
        })
    }

    fn commit(t: (Tally, Skipped)) -> (ReportCommit, Skipped) {
        match t.0 {
            Tally::Commit(c) => (c, t.1),
            other => panic!("expected a commit, got {other:?}"),
        }
    }

    fn counts(c: &ReportCommit) -> Vec<(String, u64)> {
        c.counts
            .iter()
            .map(|a| (format!("{} {}", a.kind, a.labels.join(",")), a.value))
            .collect()
    }

    #[test]
    fn aggregate_records_are_summed_by_source_disposition_and_alignment() {
        let report = aggregate_report(vec![
            record("192.0.2.1", 10, "none", "pass", "fail"),
            record("192.0.2.2", 5, "NONE", "PASS", "softfail"),
            record("203.0.113.9", 3, "reject", "fail", "fail"),
            record("203.0.113.9", 2, "quarantine", "fail", "pass"),
        ]);
        let sources = ["office", "office", "unknown", "unknown"].map(String::from);
        let (c, skipped) = commit(tally(&report, &watched, &sources, 0));
        assert!(skipped.is_empty());
        assert_eq!(
            counts(&c),
            [
                (
                    "messages example.test,office,none,pass,fail".to_string(),
                    15
                ),
                (
                    "messages example.test,unknown,quarantine,fail,pass".to_string(),
                    2
                ),
                (
                    "messages example.test,unknown,reject,fail,fail".to_string(),
                    3
                ),
            ]
        );
        assert_eq!(
            c.key,
            SeenKey {
                reporter: "google.com".into(),
                report_id: "r-1".into(),
                domain: "example.test".into(),
                kind: "dmarc_aggregate",
            }
        );
        let reporter = c.reporter.clone().unwrap();
        assert_eq!(reporter.end, Some(1_700_086_399));
        // Source rows per (source, IP), dated by the report's end.
        assert_eq!(c.sources.len(), 3);
        let unknown = c.sources.iter().find(|r| r.ip == "203.0.113.9").unwrap();
        assert_eq!(
            (
                unknown.messages,
                unknown.spf_pass,
                unknown.quarantine,
                unknown.reject
            ),
            (5, 2, 2, 3)
        );
        // DMARC passes where DKIM or SPF is aligned and passing, in the same record: the
        // two aligned counts (0 and 2 here, 15 and 0 for office) cannot say it.
        assert_eq!(unknown.dmarc_pass, Some(2));
        let office: u64 = c
            .sources
            .iter()
            .filter(|r| r.source == "office")
            .map(|r| r.dmarc_pass.unwrap())
            .sum();
        assert_eq!(office, 15);
        assert_eq!(unknown.day, 1_700_086_399 / 86_400);
    }

    #[test]
    fn reports_about_other_domains_count_nothing() {
        let mut report = aggregate_report(vec![record("192.0.2.1", 1, "none", "pass", "pass")]);
        if let Report::Aggregate(a) = &mut report {
            a.domain = "google.com".into();
        }
        assert_eq!(tally(&report, &watched, &[], 0).0, Tally::IgnoredDomain);
    }

    #[test]
    fn implausible_counts_are_skipped_with_a_reason() {
        let report = aggregate_report(vec![
            record("192.0.2.1", 1 << 63, "none", "pass", "pass"),
            record("192.0.2.2", 4, "none", "pass", "pass"),
        ]);
        let (c, skipped) = commit(tally(&report, &watched, &[], 0));
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("192.0.2.1"));
        assert_eq!(
            counts(&c),
            [(
                "messages example.test,unknown,none,pass,pass".to_string(),
                4
            )]
        );
    }

    #[test]
    fn reporter_labels_are_bounded_text() {
        assert_eq!(reporter_label(" Google.COM "), "google.com");
        assert_eq!(reporter_label("evil\"\n\\name"), "evilname");
        assert_eq!(reporter_label(""), "unnamed");
        assert_eq!(reporter_label(&"é".repeat(100)).len(), 64);
    }

    #[test]
    fn failure_reports_count_each_auth_failure_once_and_have_a_stable_key() {
        let report = Report::Failure(FailureReport {
            reported_domain: Some("example.test".into()),
            auth_failure: vec!["DKIM".into(), "spf".into(), "dkim".into(), "weird".into()],
            reporting_mta: Some("mx.receiver.test".into()),
            ..FailureReport::default()
        });
        let (c, _) = commit(tally(&report, &watched, &[], 0));
        assert_eq!(
            counts(&c),
            [
                ("failure_reports example.test,dkim".to_string(), 1),
                ("failure_reports example.test,other".to_string(), 1),
                ("failure_reports example.test,spf".to_string(), 1),
            ]
        );
        let (again, _) = commit(tally(&report, &watched, &[], 0));
        assert_eq!(c.key, again.key);
        assert_eq!(c.key.report_id.len(), 32);
        let empty = Report::Failure(FailureReport {
            reported_domain: Some("example.test".into()),
            ..FailureReport::default()
        });
        let (c, _) = commit(tally(&empty, &watched, &[], 0));
        assert_eq!(
            counts(&c),
            [("failure_reports example.test,other".to_string(), 1)]
        );
    }

    fn detail(result: &str, count: u64) -> FailureDetail {
        FailureDetail {
            result_type: Some(result.into()),
            count,
            ..FailureDetail::default()
        }
    }

    #[test]
    fn tls_sessions_by_result_and_the_summary_remainder_as_other() {
        let report = Report::TlsRpt(TlsReport {
            organization_name: Some("Google Inc.".into()),
            report_id: Some("2024-09-03T00:00:00Z_example.test".into()),
            policies: vec![
                PolicyReport {
                    policy_type: Some("sts".into()),
                    policy_domain: Some("example.test".into()),
                    successful: 48,
                    failed: 10,
                    failures: vec![detail("certificate-expired", 3), detail("made-up", 2)],
                    ..PolicyReport::default()
                },
                PolicyReport {
                    policy_type: Some("sts".into()),
                    policy_domain: Some("elsewhere.test".into()),
                    successful: 7,
                    ..PolicyReport::default()
                },
            ],
            ..TlsReport::default()
        });
        let (c, skipped) = commit(tally(&report, &watched, &[], 0));
        assert!(skipped.is_empty());
        assert_eq!(
            counts(&c),
            [
                (
                    "tlsrpt_sessions example.test,sts,certificate-expired".to_string(),
                    3
                ),
                ("tlsrpt_sessions example.test,sts,other".to_string(), 7),
                ("tlsrpt_sessions example.test,sts,success".to_string(), 48),
                ("tlsrpt_failed_summary example.test,sts".to_string(), 10),
            ]
        );
        assert_eq!(c.key.reporter, "google inc.");
        assert_eq!(c.key.kind, "tls_rpt");
    }

    #[test]
    fn tls_reports_for_unwatched_domains_or_unknown_policy_types_count_nothing() {
        let report = Report::TlsRpt(TlsReport {
            policies: vec![PolicyReport {
                policy_type: Some("bogus".into()),
                policy_domain: Some("example.test".into()),
                successful: 3,
                ..PolicyReport::default()
            }],
            ..TlsReport::default()
        });
        let (t, skipped) = tally(&report, &watched, &[], 0);
        assert_eq!(t, Tally::IgnoredDomain);
        assert_eq!(skipped.len(), 1);
    }
}
