//! One domain's DNS checks, run together: the table from check to record module, and the
//! `parked` profile that reads the other checks' results. Returns a typed report; nothing
//! here formats output or touches metrics.

pub mod dane;
pub mod destination;
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod mta_sts;
pub mod mx;
pub mod newer_records;
pub mod ptr;
pub mod spf;
pub mod taglist;

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use self::dane::DaneReport;
use self::dkim::DkimReport;
use self::dmarc::{DmarcReport, Policy};
use self::dnsbl::DnsblReport;
use self::mx::MxReport;
use self::newer_records::{Https, NewerRecords};
use self::ptr::PtrReport;
use self::spf::SpfReport;
use crate::findings::{Check, Code, Finding, Severity};
use crate::resolver::{normalize_name, Dns};

/// What to check for one domain (from the config or the `check` command line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainSpec {
    pub name: String,
    pub dkim_selectors: Vec<String>,
    pub sending_ips: Vec<IpAddr>,
    pub helo: Option<String>,
    pub expect_dmarc_policy: Option<Policy>,
    pub parked: bool,
    /// DNS blocklists to look the sending IPs up in (`[dns] blocklists`).
    pub blocklists: Vec<String>,
}

impl From<&crate::config::DomainConfig> for DomainSpec {
    fn from(d: &crate::config::DomainConfig) -> Self {
        DomainSpec {
            name: crate::resolver::to_ascii_name(d.name())
                .unwrap_or_else(|| normalize_name(d.name())),
            dkim_selectors: d.dkim_selectors.clone(),
            sending_ips: d.sending_ips.clone(),
            helo: d.helo.clone(),
            expect_dmarc_policy: d.expect_dmarc_policy,
            parked: d.parked,
            blocklists: Vec::new(),
        }
    }
}

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
}

/// Everything learnt about one domain in one run.
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
    pub key_type: Option<Box<str>>,
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
            findings: report.findings.into_boxed_slice(),
            spf_record: boxed(report.spf.record),
            spf_dns_lookups: report.spf.dns_lookups,
            spf_void_lookups: report.spf.void_lookups,
            dkim_keys: report
                .dkim
                .keys
                .into_iter()
                .map(|k| DkimKeySummary {
                    selector: k.selector.into_boxed_str(),
                    key_type: boxed(k.key_type),
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
}

impl DomainReport {
    /// The report of a run that did not finish within `deadline`: every check unknown.
    pub fn timed_out(spec: &DomainSpec, deadline: Duration) -> DomainReport {
        let mut checks = vec![Check::Spf, Check::Dmarc, Check::Mx];
        if !spec.dkim_selectors.is_empty() {
            checks.insert(1, Check::Dkim);
        }
        if !spec.sending_ips.is_empty() || spec.helo.is_some() {
            checks.push(Check::Ptr);
        }
        if spec.parked {
            checks.push(Check::Parked);
        }
        let message = format!("the checks did not finish within {}s", deadline.as_secs());
        DomainReport {
            domain: normalize_name(&spec.name),
            checked_at: SystemTime::now(),
            outcomes: checks
                .iter()
                .map(|&check| CheckOutcome {
                    check,
                    answered: false,
                    duration: deadline,
                })
                .collect(),
            findings: checks
                .iter()
                .map(|&check| Finding::dns_error(check, message.clone()))
                .collect(),
            spf: SpfReport::default(),
            dkim: DkimReport::default(),
            dmarc: DmarcReport::default(),
            mx: MxReport::default(),
            ptr: PtrReport::default(),
            newer: NewerRecords::default(),
            dnsbl: DnsblReport::default(),
            dane: DaneReport::default(),
        }
    }

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

async fn timed<T>(fut: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let value = fut.await;
    (value, start.elapsed())
}

/// Runs every check that applies to `spec`, concurrently (they share the DNS cache),
/// fetching over HTTPS with the system's roots.
pub async fn check_domain(dns: &dyn Dns, spec: &DomainSpec) -> DomainReport {
    check_domain_with(dns, spec, &Https::system()).await
}

/// As [`check_domain`], with the HTTPS settings of the config.
pub async fn check_domain_with(dns: &dyn Dns, spec: &DomainSpec, https: &Https) -> DomainReport {
    let domain = normalize_name(&spec.name);
    let helo = spec.helo.as_deref();
    let run_ptr = !spec.sending_ips.is_empty() || helo.is_some();
    let run_dkim = !spec.dkim_selectors.is_empty();
    let (
        (mut spf, spf_t),
        (mut dkim, dkim_t),
        (mut dmarc, dmarc_t),
        (mut mx, mx_t),
        (mut ptr, ptr_t),
    ) = tokio::join!(
        timed(spf::check(dns, &domain, &spec.sending_ips, helo)),
        timed(async {
            if run_dkim {
                dkim::check(dns, &domain, &spec.dkim_selectors).await
            } else {
                DkimReport {
                    answered: true,
                    ..Default::default()
                }
            }
        }),
        timed(dmarc::check(dns, &domain, spec.expect_dmarc_policy)),
        timed(mx::check(dns, &domain)),
        timed(async {
            if run_ptr {
                ptr::check(dns, &spec.sending_ips, helo).await
            } else {
                PtrReport {
                    answered: true,
                    ..Default::default()
                }
            }
        }),
    );

    let run_dnsbl = !spec.blocklists.is_empty() && !spec.sending_ips.is_empty();
    let ((mut newer, newer_t), (mut dane, dane_t), (mut dnsbl, dnsbl_t)) = tokio::join!(
        timed(newer_records::check(dns, &domain, &dmarc, &mx, https)),
        timed(dane::check(
            dns,
            &domain,
            &mx,
            25,
            https.timeout,
            https.destinations
        )),
        timed(async {
            if run_dnsbl {
                dnsbl::check(dns, &spec.sending_ips, &spec.blocklists).await
            } else {
                DnsblReport {
                    answered: true,
                    ..Default::default()
                }
            }
        }),
    );
    let mut outcomes = vec![
        CheckOutcome {
            check: Check::Spf,
            answered: spf.answered,
            duration: spf_t,
        },
        CheckOutcome {
            check: Check::Dmarc,
            answered: dmarc.answered,
            duration: dmarc_t,
        },
        CheckOutcome {
            check: Check::Mx,
            answered: mx.answered,
            duration: mx_t,
        },
    ];
    if run_dkim {
        outcomes.insert(
            1,
            CheckOutcome {
                check: Check::Dkim,
                answered: dkim.answered,
                duration: dkim_t,
            },
        );
    }
    if run_ptr {
        outcomes.push(CheckOutcome {
            check: Check::Ptr,
            answered: ptr.answered,
            duration: ptr_t,
        });
    }
    // Moved, not copied: the report keeps each finding once (10,000 domains' findings
    // are kept for as long as the exporter runs).
    let mut findings: Vec<Finding> = Vec::new();
    findings.append(&mut spf.findings);
    findings.append(&mut dkim.findings);
    findings.append(&mut dmarc.findings);
    findings.append(&mut mx.findings);
    findings.append(&mut ptr.findings);
    findings.append(&mut newer.findings);
    findings.append(&mut dnsbl.findings);
    for (check, answered) in &newer.answered {
        outcomes.push(CheckOutcome {
            check: *check,
            answered: *answered,
            duration: newer_t,
        });
    }
    if run_dnsbl {
        outcomes.push(CheckOutcome {
            check: Check::Dnsbl,
            answered: dnsbl.answered,
            duration: dnsbl_t,
        });
    }
    findings.append(&mut dane.findings);
    if !dane.hosts.is_empty() || !dane.answered {
        outcomes.push(CheckOutcome {
            check: Check::Dane,
            answered: dane.answered,
            duration: dane_t,
        });
    }
    if spec.parked {
        let parked = parked_findings(&spf, &dmarc, &mx);
        let answered = spf.answered && dmarc.answered && mx.answered;
        outcomes.push(CheckOutcome {
            check: Check::Parked,
            answered,
            duration: Duration::ZERO,
        });
        if answered {
            findings.extend(parked);
        }
    }
    findings.shrink_to_fit();
    DomainReport {
        domain,
        checked_at: SystemTime::now(),
        outcomes,
        findings,
        spf,
        dkim,
        dmarc,
        mx,
        ptr,
        newer,
        dnsbl,
        dane,
    }
}

/// The parked-domain profile (a domain that neither sends nor receives mail): SPF exactly
/// `v=spf1 -all`, DMARC `p=reject`, and a null MX (RFC 7505).
pub fn parked_findings(spf: &SpfReport, dmarc: &DmarcReport, mx: &MxReport) -> Vec<Finding> {
    let mut out = Vec::new();
    let spf_ok = spf
        .record
        .as_deref()
        .map(|r| {
            r.split_ascii_whitespace()
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                == ["v=spf1", "-all"]
        })
        .unwrap_or(false);
    if !spf_ok {
        let shown = spf.record.as_deref().unwrap_or("no SPF record");
        out.push(Finding::new(
            Code::ParkedSpfNotFailAll,
            format!("SPF is {shown:?}, expected \"v=spf1 -all\""),
        ));
    }
    if dmarc.p != Some(Policy::Reject) {
        let shown = dmarc.p.map_or("no DMARC policy", Policy::as_str);
        out.push(Finding::new(
            Code::ParkedDmarcNotReject,
            format!("DMARC policy is {shown}, expected reject"),
        ));
    }
    if !mx.null_mx {
        out.push(Finding::new(
            Code::ParkedMxNotNull,
            format!(
                "{} MX record(s) instead of the null MX \"0 .\"",
                mx.hosts.len()
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spf(record: &str) -> SpfReport {
        SpfReport {
            record: Some(record.into()),
            answered: true,
            ..Default::default()
        }
    }

    #[test]
    fn parked_profile_is_clean_only_when_all_three_hold() {
        let dmarc = DmarcReport {
            p: Some(Policy::Reject),
            answered: true,
            ..Default::default()
        };
        let mx = MxReport {
            null_mx: true,
            answered: true,
            ..Default::default()
        };
        assert!(parked_findings(&spf("v=spf1 -all"), &dmarc, &mx).is_empty());
        assert!(parked_findings(&spf("V=SPF1   -ALL"), &dmarc, &mx).is_empty());

        let codes = |f: Vec<Finding>| f.into_iter().map(|f| f.code).collect::<Vec<_>>();
        assert_eq!(
            codes(parked_findings(&spf("v=spf1 ~all"), &dmarc, &mx)),
            [Code::ParkedSpfNotFailAll]
        );
        assert_eq!(
            codes(parked_findings(
                &spf("v=spf1 ip4:192.0.2.1 -all"),
                &dmarc,
                &mx
            )),
            [Code::ParkedSpfNotFailAll]
        );
        let quarantine = DmarcReport {
            p: Some(Policy::Quarantine),
            ..dmarc.clone()
        };
        assert_eq!(
            codes(parked_findings(&spf("v=spf1 -all"), &quarantine, &mx)),
            [Code::ParkedDmarcNotReject]
        );
        let real_mx = MxReport {
            null_mx: false,
            ..mx.clone()
        };
        assert_eq!(
            codes(parked_findings(&spf("v=spf1 -all"), &dmarc, &real_mx)),
            [Code::ParkedMxNotNull]
        );
        let none = SpfReport {
            answered: true,
            ..Default::default()
        };
        assert_eq!(
            codes(parked_findings(&none, &DmarcReport::default(), &real_mx)),
            [
                Code::ParkedSpfNotFailAll,
                Code::ParkedDmarcNotReject,
                Code::ParkedMxNotNull
            ]
        );
    }
}
