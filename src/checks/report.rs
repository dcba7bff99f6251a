//! What one run of a domain's checks produced: the typed report the commands print, the
//! metrics turn into series and the pages summarise. Nothing here runs a check.

use std::time::{Duration, SystemTime};

use super::dane::DaneReport;
use super::dkim::DkimReport;
use super::dmarc::DmarcReport;
use super::dnsbl::DnsblReport;
use super::mx::MxReport;
use super::newer_records::NewerRecords;
use super::ptr::PtrReport;
use super::spf::SpfReport;
use crate::findings::{Check, Finding, Severity};

/// The outcome of one check of one domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    pub check: Check,
    /// False when DNS failures left the check unanswered.
    pub answered: bool,
    pub duration: Duration,
}

impl CheckOutcome {
    /// Answered and without error-severity findings (`mailauth_dns_check_success`).
    pub fn success(&self, findings: &[Finding]) -> bool {
        self.answered
            && !findings
                .iter()
                .any(|f| f.check == self.check && f.severity == Severity::Error)
    }

    /// The one verdict that the text report and the HTML pages both show.
    pub fn status(&self, findings: &[Finding]) -> Status {
        if !self.answered {
            Status::Unknown
        } else if !self.success(findings) {
            Status::Fail
        } else if findings
            .iter()
            .any(|f| f.check == self.check && f.severity == Severity::Warning)
        {
            Status::Warn
        } else {
            Status::Ok
        }
    }
}

/// A check's verdict for people: answered and clean, answered with warnings, answered with
/// an error-severity finding, or left unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Unknown,
}

/// Why a check gave no result in a run: not a DNS answer, but the check itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckErrorKind {
    /// The check panicked; the panic was caught and the domain's loop went on.
    Panic,
    /// The check did not finish within the run's deadline.
    Timeout,
}

impl CheckErrorKind {
    pub const ALL: [CheckErrorKind; 2] = [CheckErrorKind::Panic, CheckErrorKind::Timeout];

    /// The `kind` label of `mailauth_check_errors_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckErrorKind::Panic => "panic",
            CheckErrorKind::Timeout => "timeout",
        }
    }
}

/// One check that panicked or timed out in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckError {
    pub check: Check,
    pub kind: CheckErrorKind,
}

/// What the HTML pages show of a domain's latest report: kept per domain for as long as
/// the exporter runs. The full report (SPF evaluation per IP, MX addresses, DANE and
/// blocklist details, the newer records) is turned into series when it arrives and then
/// dropped: with 10,000 domains it was the larger part of the exporter's memory.
#[derive(Clone, Debug)]
pub struct ReportSummary {
    pub domain: String,
    pub checked_at: SystemTime,
    pub outcomes: Box<[CheckOutcome]>,
    pub findings: Box<[Finding]>,
    pub spf_record: Option<Box<str>>,
    pub spf_dns_lookups: u32,
    pub spf_void_lookups: u32,
    pub dkim_keys: Box<[DkimKeySummary]>,
    pub dmarc_record: Option<Box<str>>,
    pub dmarc_found_at: Option<Box<str>>,
    /// (preference, host)
    pub mx_hosts: Box<[(u16, Box<str>)]>,
    pub null_mx: bool,
}

#[derive(Clone, Debug)]
pub struct DkimKeySummary {
    pub selector: Box<str>,
    pub key_type: Option<super::dkim::key::KeyType>,
    pub key_bits: Option<u32>,
    pub testing: bool,
}

impl ReportSummary {
    pub fn of(report: DomainReport) -> ReportSummary {
        let boxed = |s: Option<String>| s.map(String::into_boxed_str);
        ReportSummary {
            domain: report.domain,
            checked_at: report.checked_at,
            outcomes: report.outcomes.into_boxed_slice(),
            findings: kept(report.findings),
            spf_record: boxed(report.spf.record),
            spf_dns_lookups: report.spf.dns_lookups,
            spf_void_lookups: report.spf.void_lookups,
            dkim_keys: report
                .dkim
                .keys
                .into_iter()
                .map(|k| DkimKeySummary {
                    selector: k.selector.into_boxed_str(),
                    key_type: k.key_type,
                    key_bits: k.key_bits,
                    testing: k.testing,
                })
                .collect(),
            dmarc_record: boxed(report.dmarc.record),
            dmarc_found_at: boxed(report.dmarc.found_at),
            mx_hosts: report
                .mx
                .hosts
                .into_iter()
                .map(|h| (h.preference, h.host.into_boxed_str()))
                .collect(),
            null_mx: report.mx.null_mx,
        }
    }

    pub fn outcome(&self, check: Check) -> Option<&CheckOutcome> {
        self.outcomes.iter().find(|o| o.check == check)
    }
}

/// Findings as a summary keeps them: each message cut to its length. A message built by
/// `format!` has room to spare (up to half again its length), and the summaries of 10,000
/// domains keep their findings for as long as the exporter runs.
fn kept(findings: Vec<Finding>) -> Box<[Finding]> {
    findings
        .into_iter()
        .map(|mut f| {
            f.message.shrink_to_fit();
            f
        })
        .collect()
}

/// Everything learnt about one domain in one run.
#[derive(Clone, Debug)]
pub struct DomainReport {
    pub domain: String,
    pub checked_at: SystemTime,
    pub outcomes: Vec<CheckOutcome>,
    pub findings: Vec<Finding>,
    pub spf: SpfReport,
    pub dkim: DkimReport,
    pub dmarc: DmarcReport,
    pub mx: MxReport,
    pub ptr: PtrReport,
    pub newer: NewerRecords,
    pub dnsbl: DnsblReport,
    pub dane: DaneReport,
    /// Checks that panicked or overran their deadline in this run
    /// (`mailauth_check_errors_total`); their outcomes are unknown.
    pub errors: Vec<CheckError>,
}

impl DomainReport {
    pub fn outcome(&self, check: Check) -> Option<&CheckOutcome> {
        self.outcomes.iter().find(|o| o.check == check)
    }

    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn fully_answered(&self) -> bool {
        self.outcomes.iter().all(|o| o.answered)
    }

    /// The record texts whose changes are tracked (`mailauth_record_change_timestamp_seconds`).
    pub fn record_texts(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.outcome(Check::Spf).is_some_and(|o| o.answered) {
            out.push((
                "spf".to_string(),
                self.spf.record.clone().unwrap_or_default(),
            ));
        }
        if self.outcome(Check::Dmarc).is_some_and(|o| o.answered) {
            out.push((
                "dmarc".to_string(),
                self.dmarc.record.clone().unwrap_or_default(),
            ));
        }
        if self.outcome(Check::Dkim).is_some_and(|o| o.answered) {
            for key in &self.dkim.keys {
                out.push((
                    format!("dkim:{}", key.selector),
                    key.record.clone().unwrap_or_default(),
                ));
            }
        }
        for (name, text) in [
            ("mta_sts", &self.newer.mta_sts),
            ("tls_rpt", &self.newer.tls_rpt),
            ("bimi", &self.newer.bimi),
        ] {
            if let Some(t) = text {
                out.push((name.to_string(), t.clone()));
            }
        }
        if self.outcome(Check::Mx).is_some_and(|o| o.answered) {
            let mut hosts: Vec<String> = self
                .mx
                .hosts
                .iter()
                .map(|h| format!("{} {}", h.preference, h.host))
                .collect();
            hosts.sort();
            out.push(("mx".to_string(), hosts.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Code;

    #[test]
    fn a_kept_finding_has_no_spare_room() {
        let mut message = String::with_capacity(64);
        message.push_str("the record is 300 bytes");
        let kept = kept(vec![Finding::new(Code::SpfTooManyLookups, message)]);
        assert_eq!(kept[0].message, "the record is 300 bytes");
        assert_eq!(kept[0].message.capacity(), kept[0].message.len());
    }
}
