//! `report FILE...|-`: DMARC aggregate, DMARC failure and TLS-RPT reports read from files
//! (bare, gzip, zip or whole messages) and printed as JSON Lines (DESIGN.md § Reports)
//! or as text for people. The reading is `crate::reports`; this is only files in and
//! lines out.
//!
//! With `--config`, each aggregate record's `source` is classified by the config's
//! `[[sender]]` table, exactly as the reports reader does (`reports::sender`).

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::{read_input, InputError};
use crate::cli::{Format, ReportArgs};
use crate::config::{Config, ConfigError};
use crate::reports::aggregate::AggregateReport;
use crate::reports::failure::FailureReport;
use crate::reports::sender::SenderTable;
use crate::reports::tlsrpt::TlsReport;
use crate::reports::{format_epoch, read, Limits, Report};
use crate::resolver::{Dns, QueryCounters};
use crate::service::app::build_dns;

/// Why one input of `report` printed nothing (named on stderr after its label).
#[derive(Debug, thiserror::Error)]
enum ReportInputError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Report(#[from] crate::reports::ReadError),
}

/// The `[[sender]]` table of `--config` and the resolver its SPF terms are asked through.
struct Classifier {
    senders: SenderTable,
    dns: Arc<dyn Dns>,
}

/// Why `--config` gave no classifier (the command then exits 2 before reading a report).
#[derive(Debug, thiserror::Error)]
enum ClassifierError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The resolver for the SPF terms could not be built.
    #[error(transparent)]
    Resolver(#[from] crate::resolver::ResolverError),
}

fn classifier(path: &Path) -> Result<Classifier, ClassifierError> {
    let config = Config::load(path)?;
    let dns: Arc<dyn Dns> = build_dns(&config, Arc::new(QueryCounters::default()))?;
    Ok(Classifier {
        senders: SenderTable::new(crate::reports::sender::from_config(&config)),
        dns,
    })
}

/// Sets the `source` of every record of an aggregate report.
async fn classify(report: &mut Report, classifier: &Classifier) {
    let Report::Aggregate(a) = report else {
        return;
    };
    let sources = classifier
        .senders
        .classify_report(classifier.dns.as_ref(), a)
        .await;
    for (record, source) in a.records.iter_mut().zip(sources) {
        record.source = Some(source);
    }
}

pub async fn run(args: &ReportArgs) -> ExitCode {
    let classifier = match args.config.as_deref().map(classifier).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let limits = Limits::default();
    let mut unreadable = false;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for file in &args.files {
        let label = if file.as_os_str() == "-" {
            "standard input".to_string()
        } else {
            file.display().to_string()
        };
        let unpacked = read_input(file)
            .map_err(ReportInputError::from)
            .and_then(|bytes| Ok(read(&bytes, &limits)?));
        let mut unpacked = match unpacked {
            Ok(u) => u,
            Err(e) => {
                let _ = out.flush();
                eprintln!("{label}: {e}");
                unreadable = true;
                continue;
            }
        };
        for problem in &unpacked.problems {
            eprintln!("{label}: skipped: {problem}");
        }
        if let Some(c) = &classifier {
            for report in &mut unpacked.reports {
                classify(report, c).await;
            }
        }
        for report in &unpacked.reports {
            if let Report::Aggregate(a) = report {
                if a.truncated {
                    eprintln!(
                        "{label}: report {:?} read only in part ({} records): {}",
                        a.report_id,
                        a.records.len(),
                        a.problem.as_deref().unwrap_or("too many records")
                    );
                }
            }
            let written = match args.format {
                Format::Json => {
                    writeln!(out, "{}", serde_json::to_string(report).unwrap_or_default())
                }
                Format::Text => write!(out, "{}", render_text(report)),
            };
            if written.is_err() {
                // Standard output closed (a pager quit): the rest would go nowhere.
                return ExitCode::from(2);
            }
        }
    }
    if out.flush().is_err() || unreadable {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// A report as text: a header line, then one aligned row per record (or policy).
pub fn render_text(report: &Report) -> String {
    match report {
        Report::Aggregate(a) => aggregate_text(a),
        Report::Failure(f) => failure_text(f),
        Report::TlsRpt(t) => tls_text(t),
    }
}

/// Text from a report is the reporter's: control characters (a terminal escape in an
/// org name) are shown as `?`.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn opt(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_string(), shown)
}

fn range(begin: Option<i64>, end: Option<i64>) -> String {
    let date = |t: Option<i64>| t.map_or_else(|| "?".to_string(), format_epoch);
    format!("{} .. {}", date(begin), date(end))
}

/// Rows as columns padded to the widest cell, each line indented by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn aggregate_text(a: &AggregateReport) -> String {
    let p = &a.policy;
    let mut out = format!(
        "DMARC aggregate report from {} about {} (id {}), {}; p={} sp={} pct={} adkim={} aspf={}; {} records, {} messages{}\n",
        shown(&a.org_name),
        shown(&a.domain),
        shown(&a.report_id),
        range(a.begin, a.end),
        opt(p.p.as_deref()),
        opt(p.sp.as_deref()),
        p.pct.map_or_else(|| "-".to_string(), |n| n.to_string()),
        opt(p.adkim.as_deref()),
        opt(p.aspf.as_deref()),
        a.records.len(),
        a.messages,
        if a.truncated { " (truncated)" } else { "" }
    );
    let classified = a.records.iter().any(|r| r.source.is_some());
    let mut rows = vec![[
        "SOURCE",
        "SOURCE IP",
        "COUNT",
        "DISPOSITION",
        "DKIM",
        "SPF",
        "HEADER FROM",
        "ENVELOPE FROM",
        "AUTH RESULTS",
    ]
    .map(String::from)
    .to_vec()];
    for r in &a.records {
        let mut auth: Vec<String> = r
            .dkim
            .iter()
            .map(|d| {
                format!(
                    "dkim={} d={} s={}",
                    opt(d.result.as_deref()),
                    opt(d.domain.as_deref()),
                    opt(d.selector.as_deref())
                )
            })
            .collect();
        auth.extend(r.spf.iter().map(|s| {
            format!(
                "spf={} {}={}",
                opt(s.result.as_deref()),
                shown(s.scope.as_deref().unwrap_or("domain")),
                opt(s.domain.as_deref())
            )
        }));
        auth.extend(
            r.reasons
                .iter()
                .map(|x| format!("reason={}", opt(x.kind.as_deref()))),
        );
        rows.push(vec![
            opt(r.source.as_deref()),
            shown(&r.source_ip),
            r.count.to_string(),
            opt(r.disposition.as_deref()),
            opt(r.dkim_aligned.as_deref()),
            opt(r.spf_aligned.as_deref()),
            opt(r.header_from.as_deref()),
            opt(r.envelope_from.as_deref()),
            auth.join(" "),
        ]);
    }
    if !classified {
        // Without --config there is no source to show.
        for row in &mut rows {
            row.remove(0);
        }
    }
    out.push_str(&table(&rows));
    out
}

fn failure_text(f: &FailureReport) -> String {
    format!(
        "DMARC failure report about {}: source {}, arrived {}, auth failure {}, delivery {}, mail from {}\n",
        opt(f.reported_domain.as_deref()),
        opt(f.source_ip.as_deref()),
        f.arrival_date.map_or_else(|| "-".to_string(), format_epoch),
        if f.auth_failure.is_empty() {
            "-".to_string()
        } else {
            shown(&f.auth_failure.join(","))
        },
        opt(f.delivery_result.as_deref()),
        opt(f.original_mail_from.as_deref()),
    )
}

fn tls_text(t: &TlsReport) -> String {
    let mut out = format!(
        "TLS report from {} (id {}), {}; {} policies{}\n",
        opt(t.organization_name.as_deref()),
        opt(t.report_id.as_deref()),
        range(t.begin, t.end),
        t.policies.len(),
        if t.truncated { " (truncated)" } else { "" }
    );
    let mut rows = vec![["POLICY", "DOMAIN", "SUCCESSFUL", "FAILED", "FAILURES"]
        .map(String::from)
        .to_vec()];
    for p in &t.policies {
        let failures: Vec<String> = p
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{}×{} ({} -> {} {})",
                    opt(f.result_type.as_deref()),
                    f.count,
                    opt(f.sending_mta_ip.as_deref()),
                    opt(f.receiving_mx_hostname.as_deref()),
                    opt(f.receiving_ip.as_deref()),
                )
            })
            .collect();
        rows.push(vec![
            opt(p.policy_type.as_deref()),
            opt(p.policy_domain.as_deref()),
            p.successful.to_string(),
            p.failed.to_string(),
            if failures.is_empty() {
                "-".to_string()
            } else {
                failures.join(", ")
            },
        ]);
    }
    out.push_str(&table(&rows));
    out
}
