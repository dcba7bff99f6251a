//! DMARC (RFC 7489, with RFC 9989's `np`/`psd`/`t` where present): the record at `_dmarc`,
//! organisational-domain fallback, every tag validated, report URIs and their authorisation.
//!
//! CONTRACT: keep these public names and fields; add freely.

use serde::{Deserialize, Serialize};

pub mod parse;

impl Default for DmarcReport {
    fn default() -> Self {
        DmarcReport {
            record: None,
            found_at: None,
            p: None,
            sp: None,
            pct: None,
            adkim: 'r',
            aspf: 'r',
            effective_policy: None,
            findings: Vec::new(),
            answered: false,
        }
    }
}

use crate::findings::{Check, Code, Finding};
use crate::name::normalize_name;
use crate::resolver::{Dns, DnsError, RecordType};

/// A DMARC policy; ordered from weakest to strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcReport {
    pub record: Option<String>,
    /// The name the record was found at (`_dmarc.<domain>` or `_dmarc.<org domain>`).
    pub found_at: Option<String>,
    pub p: Option<Policy>,
    pub sp: Option<Policy>,
    pub pct: Option<u8>,
    /// DKIM and SPF identifier alignment: `s` strict, `r` relaxed (the default).
    pub adkim: char,
    pub aspf: char,
    /// The policy that applies to mail from the domain itself (`sp`/`np` when found at the
    /// organisational domain for a subdomain, else `p`).
    #[serde(skip)]
    pub effective_policy: Option<Policy>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub answered: bool,
}

/// RFC 7489 §3.1: an authenticated domain is aligned with the From domain when equal
/// (strict, `s`) or sharing the organisational domain (relaxed, `r`).
pub fn aligned(mode: char, authenticated: &str, from_domain: &str) -> bool {
    let (a, f) = (normalize_name(authenticated), normalize_name(from_domain));
    if mode == 's' {
        a == f
    } else {
        organizational_domain(&a) == organizational_domain(&f)
    }
}

/// The organisational domain (RFC 7489 §3.2) from the public suffix list.
pub fn organizational_domain(domain: &str) -> String {
    let domain = normalize_name(domain);
    psl::domain_str(&domain)
        .map(str::to_string)
        .unwrap_or(domain)
}

enum Lookup {
    Found(String),
    Multiple(usize),
    Absent,
}

async fn lookup_record(dns: &dyn Dns, name: &str) -> Result<Lookup, DnsError> {
    let answer = dns.lookup(name, RecordType::Txt).await?;
    let records: Vec<String> = answer
        .txt_strings()
        .into_iter()
        .filter(|t| parse::is_dmarc(t))
        .collect();
    Ok(match records.len() {
        0 => Lookup::Absent,
        1 => Lookup::Found(records.into_iter().next().unwrap_or_default()),
        n => Lookup::Multiple(n),
    })
}

pub async fn check(dns: &dyn Dns, domain: &str, expected: Option<Policy>) -> DmarcReport {
    let domain = normalize_name(domain);
    let mut report = DmarcReport {
        answered: true,
        ..Default::default()
    };
    let org = organizational_domain(&domain);
    let mut names = vec![format!("_dmarc.{domain}")];
    if org != domain {
        names.push(format!("_dmarc.{org}"));
    }
    let mut found = None;
    for name in &names {
        match lookup_record(dns, name).await {
            Err(e) => {
                report.answered = false;
                report.findings.push(Finding::dns_error(
                    Check::Dmarc,
                    format!("TXT lookup of {name}: {e}"),
                ));
                return report;
            }
            Ok(Lookup::Multiple(n)) => {
                report.findings.push(Finding::new(
                    Code::DmarcMultipleRecords,
                    format!("{n} v=DMARC1 records at {name}; receivers apply no DMARC policy"),
                ));
                return report;
            }
            Ok(Lookup::Absent) => continue,
            Ok(Lookup::Found(text)) => {
                found = Some((name.clone(), text));
                break;
            }
        }
    }
    let Some((found_at, text)) = found else {
        let message = if org != domain {
            format!(
                "no DMARC record at _dmarc.{domain} nor at the organisational domain _dmarc.{org}"
            )
        } else {
            format!("no DMARC record at _dmarc.{domain}")
        };
        report
            .findings
            .push(Finding::new(Code::DmarcMissing, message));
        return report;
    };
    let fallback = found_at != format!("_dmarc.{domain}");
    if fallback {
        report.findings.push(Finding::new(
            Code::DmarcOrgDomainFallback,
            format!("no record at _dmarc.{domain}; the record at {found_at} applies"),
        ));
    }
    let record = parse::parse(&text);
    for error in &record.errors {
        report.findings.push(Finding::new(
            Code::DmarcSyntax,
            format!("{found_at}: {error}"),
        ));
    }
    for bad in &record.invalid_uris {
        report
            .findings
            .push(Finding::new(Code::DmarcInvalidUri, bad.clone()));
    }
    report.p = record.p;
    report.sp = record.sp;
    report.adkim = record.adkim.unwrap_or('r');
    report.aspf = record.aspf.unwrap_or('r');
    report.pct = Some(record.pct.unwrap_or(100));
    // RFC 7489 §6.6.3: a record whose p= is missing or invalid but that has a valid rua
    // is treated as p=none; without rua it is no policy at all.
    let base = record
        .p
        .or_else(|| (!record.rua.is_empty()).then_some(Policy::None));
    report.effective_policy = if fallback { record.sp.or(base) } else { base };
    if let Some(policy) = report.effective_policy {
        if policy == Policy::None {
            report.findings.push(Finding::new(
                Code::DmarcPolicyNone,
                format!("the policy for {domain} is none"),
            ));
        }
        if let Some(expected) = expected.filter(|e| policy < *e) {
            report.findings.push(Finding::new(
                Code::DmarcPolicyBelowExpected,
                format!(
                    "the policy for {domain} is {}, expected {}",
                    policy.as_str(),
                    expected.as_str()
                ),
            ));
        }
    } else if let Some(expected) = expected {
        report.findings.push(Finding::new(
            Code::DmarcPolicyBelowExpected,
            format!(
                "no valid DMARC policy applies to {domain}, expected {}",
                expected.as_str()
            ),
        ));
    }
    if let (Some(p), Some(sp)) = (record.p, record.sp) {
        if sp < p {
            report.findings.push(Finding::new(
                Code::DmarcSubdomainPolicyWeaker,
                format!("sp={} is weaker than p={}", sp.as_str(), p.as_str()),
            ));
        }
    }
    if record.pct.is_some_and(|pct| pct < 100) {
        report.findings.push(Finding::new(
            Code::DmarcPctPartial,
            format!(
                "pct={}: the policy applies to only part of the failing mail",
                record.pct.unwrap_or(100)
            ),
        ));
    }
    if record.rua.is_empty() {
        report.findings.push(Finding::new(
            Code::DmarcNoRua,
            format!("{found_at} has no rua= for aggregate reports"),
        ));
    }
    let policy_domain = found_at.trim_start_matches("_dmarc.").to_string();
    if !check_external_reports(dns, &policy_domain, &record, &mut report).await {
        report.answered = false;
    }
    report.record = Some(text);
    report.found_at = Some(found_at);
    report
}

/// RFC 7489 §7.1: reports to another organisational domain need that domain's consent,
/// a `v=DMARC1` TXT at `<policy domain>._report._dmarc.<report domain>`. Returns false
/// when a DNS failure left a question unanswered.
async fn check_external_reports(
    dns: &dyn Dns,
    policy_domain: &str,
    record: &parse::DmarcRecord,
    report: &mut DmarcReport,
) -> bool {
    let own_org = organizational_domain(policy_domain);
    let mut asked = std::collections::HashSet::new();
    let mut answered = true;
    for uri in record.rua.iter().chain(record.ruf.iter()) {
        if organizational_domain(&uri.domain) == own_org || !asked.insert(uri.domain.clone()) {
            continue;
        }
        let name = format!("{policy_domain}._report._dmarc.{}", uri.domain);
        match dns.lookup(&name, RecordType::Txt).await {
            Err(e) => {
                answered = false;
                report.findings.push(Finding::dns_error(
                    Check::Dmarc,
                    format!("TXT lookup of {name}: {e}"),
                ));
            }
            Ok(answer) if answer.txt_strings().iter().any(|t| parse::is_dmarc(t)) => {}
            Ok(_) => report.findings.push(Finding::new(
                Code::DmarcExternalReportUnauthorized,
                format!(
                    "reports go to {} but {name} has no v=DMARC1 record",
                    uri.address
                ),
            )),
        }
    }
    answered
}

#[cfg(test)]
mod alignment_tests {
    use super::aligned;

    #[test]
    fn strict_and_relaxed() {
        assert!(aligned('r', "mail.example.com", "example.com"));
        assert!(!aligned('s', "mail.example.com", "example.com"));
        assert!(aligned('s', "Example.COM.", "example.com"));
        assert!(!aligned('r', "example.net", "example.com"));
        assert!(
            !aligned('r', "a.co.uk", "b.co.uk"),
            "public suffixes are not organisations"
        );
    }
}
