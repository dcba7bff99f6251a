//! SPF (RFC 7208): the record at the domain, the whole include/redirect tree walked with
//! the receiver's counting, and each configured sending IP evaluated to its real result.
//!
//! CONTRACT (used by the scheduler, metrics, `check` and the mail probe): keep these
//! public names and fields; add freely.

use std::net::IpAddr;

use serde::Serialize;

pub mod eval;
pub mod macros;
pub mod parse;

use crate::findings::{Check, Code, Finding};
use crate::name::normalize_name;
use crate::resolver::{Dns, RecordType};

/// RFC 7208 §2.6 results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

/// Which identity an IP was evaluated for (RFC 7208 §2.3, §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    MailFrom,
    Helo,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfIpResult {
    pub ip: IpAddr,
    pub identity: Identity,
    pub result: SpfResult,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpfReport {
    /// The `v=spf1` record at the domain (`None`: no record, or the lookup failed).
    pub record: Option<String>,
    /// `-all ~all ?all +all`, or `None` when the top-level record has no `all`.
    pub all: Option<&'static str>,
    /// DNS-querying terms over the whole tree (RFC 7208 §4.6.4), for a sender matching nothing.
    pub dns_lookups: u32,
    pub void_lookups: u32,
    pub ip_results: Vec<SpfIpResult>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    /// False when a DNS failure left the check unanswered (`findings` then holds `dns.error`).
    #[serde(skip)]
    pub answered: bool,
}

fn count_message(total: u32, terms: &[String]) -> String {
    let mut counted: Vec<(&str, u32)> = Vec::new();
    for t in terms {
        match counted.iter_mut().find(|(name, _)| name == t) {
            Some((_, n)) => *n += 1,
            None => counted.push((t, 1)),
        }
    }
    let list: Vec<String> = counted.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
    format!("{total} DNS-querying terms (limit 10): {}", list.join(", "))
}

/// Lints the SPF of `domain` and evaluates each sending IP (for `postmaster@domain`, and
/// for the HELO identity too when `helo` is set).
pub async fn check(
    dns: &dyn Dns,
    domain: &str,
    sending_ips: &[IpAddr],
    helo: Option<&str>,
) -> SpfReport {
    let domain = normalize_name(domain);
    let mut report = SpfReport {
        answered: true,
        ..Default::default()
    };
    let answer = match dns.lookup(&domain, RecordType::Txt).await {
        Ok(a) => a,
        Err(e) => {
            report.answered = false;
            report.findings.push(Finding::dns_error(
                Check::Spf,
                format!("TXT lookup of {domain}: {e}"),
            ));
            return report;
        }
    };
    let texts = answer.txt_strings();
    if texts.iter().any(|t| {
        t.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("spf2.0/"))
    }) {
        report.findings.push(Finding::new(
            Code::SpfDeprecatedSenderId,
            format!("{domain} publishes a Sender ID (spf2.0) record"),
        ));
    }
    let records: Vec<&String> = texts.iter().filter(|t| parse::is_spf(t)).collect();
    match records.len() {
        0 => {
            report.findings.push(Finding::new(
                Code::SpfMissing,
                format!("no v=spf1 TXT record at {domain}"),
            ));
            return report;
        }
        1 => {}
        n => {
            let shown: Vec<String> = records.iter().map(|r| format!("{r:?}")).collect();
            report.findings.push(Finding::new(
                Code::SpfMultipleRecords,
                format!("{n} v=spf1 records at {domain}: {}", shown.join(", ")),
            ));
            return report;
        }
    }
    let text = records[0].clone();
    report.record = Some(text.clone());
    match parse::parse(&text) {
        Err(e) => report
            .findings
            .push(Finding::new(Code::SpfSyntax, format!("{domain}: {e}"))),
        Ok(record) => {
            report.all = record.all().map(|q| match q {
                parse::Qualifier::Pass => "+all",
                parse::Qualifier::Fail => "-all",
                parse::Qualifier::SoftFail => "~all",
                parse::Qualifier::Neutral => "?all",
            });
            match (record.all(), &record.redirect) {
                (Some(parse::Qualifier::Pass), _) => report.findings.push(Finding::new(
                    Code::SpfAllPass,
                    format!("{domain} ends with +all: every host may send as it"),
                )),
                (Some(parse::Qualifier::Neutral), _) => report.findings.push(Finding::new(
                    Code::SpfAllNeutral,
                    format!("{domain} ends with ?all"),
                )),
                (None, None) => report.findings.push(Finding::new(
                    Code::SpfNoAll,
                    format!("{domain} has neither all nor redirect="),
                )),
                _ => {}
            }
            if let (Some(_), Some(redirect)) = (record.all(), &record.redirect) {
                report.findings.push(Finding::new(
                    Code::SpfRedirectIgnored,
                    format!("redirect={redirect} is ignored because the record has an all term"),
                ));
            }
            lint_tree(dns, &domain, &mut report).await;
        }
    }
    for &ip in sending_ips {
        evaluate_ip(dns, &domain, ip, Identity::MailFrom, helo, &mut report).await;
        if let Some(helo) = helo {
            evaluate_ip(dns, &domain, ip, Identity::Helo, Some(helo), &mut report).await;
        }
    }
    report
}

/// The whole-tree walk: counts, voids, loops, missing includes, nested errors.
async fn lint_tree(dns: &dyn Dns, domain: &str, report: &mut SpfReport) {
    let mut walk = eval::Walk::new(
        dns,
        eval::Mode::Lint,
        None,
        &format!("postmaster@{domain}"),
        domain,
    );
    walk.check_host(domain.to_string(), Vec::new()).await;
    report.dns_lookups = walk.lookups;
    report.void_lookups = walk.voids;
    let f = &mut report.findings;
    if walk.lookups > 10 {
        f.push(Finding::new(
            Code::SpfTooManyLookups,
            count_message(walk.lookups, &walk.terms),
        ));
    }
    if walk.voids > 2 {
        f.push(Finding::new(
            Code::SpfTooManyVoidLookups,
            format!("{} lookups returned no records (limit 2)", walk.voids),
        ));
    }
    for m in &walk.mx_overflow {
        f.push(Finding::new(Code::SpfTooManyMxHosts, m.clone()));
    }
    for l in &walk.loops {
        f.push(Finding::new(Code::SpfLoop, l.clone()));
    }
    for m in &walk.missing {
        f.push(Finding::new(
            Code::SpfIncludeMissing,
            format!("{m} has no SPF record"),
        ));
    }
    for e in &walk.nested_errors {
        f.push(Finding::new(
            Code::SpfSyntax,
            format!("in an included record: {e}"),
        ));
    }
    if walk.ptr_used {
        f.push(Finding::new(
            Code::SpfPtrUsed,
            "the SPF tree uses the ptr mechanism",
        ));
    }
    if !walk.dns_errors.is_empty() {
        report.answered = false;
        for e in &walk.dns_errors {
            f.push(Finding::dns_error(Check::Spf, e.clone()));
        }
    }
}

async fn evaluate_ip(
    dns: &dyn Dns,
    domain: &str,
    ip: IpAddr,
    identity: Identity,
    helo: Option<&str>,
    report: &mut SpfReport,
) {
    let helo_name = helo
        .map(normalize_name)
        .unwrap_or_else(|| domain.to_string());
    let (target, sender) = match identity {
        Identity::MailFrom => (domain.to_string(), format!("postmaster@{domain}")),
        Identity::Helo => (helo_name.clone(), format!("postmaster@{helo_name}")),
    };
    let result = check_host(dns, ip, &target, &sender, &helo_name).await;
    report.ip_results.push(SpfIpResult {
        ip,
        identity,
        result,
    });
    let which = match identity {
        Identity::MailFrom => format!("MAIL FROM {sender}"),
        Identity::Helo => format!("HELO {helo_name}"),
    };
    match result {
        SpfResult::Pass => {}
        // Publishing SPF for the HELO name is recommended, not required (RFC 7208 §2.3).
        SpfResult::None if identity == Identity::Helo => {}
        SpfResult::TempError => {
            report.answered = false;
            report.findings.push(Finding::dns_error(
                Check::Spf,
                format!("evaluating {ip} for {which}: temperror"),
            ));
        }
        other => report.findings.push(Finding::new(
            Code::SpfIpNotAuthorized,
            format!("{ip} gets SPF {} for {which}", other.as_str()),
        )),
    }
}

/// Whether mail from `ip` for `domain` matches SPF `terms` written as a record body
/// (`include:_spf.google.com ip4:192.0.2.0/24`): check_host() of `v=spf1 <terms> -all` as if
/// published at `domain`, so a `[[sender]]` names a service by the SPF include it publishes
/// and the exporter's own evaluator (limits, macros, voids) decides, not a copy of it.
pub async fn check_terms(dns: &dyn Dns, ip: IpAddr, domain: &str, terms: &str) -> SpfResult {
    let record = format!("v=spf1 {} -all", terms.trim());
    let sender = format!("postmaster@{domain}");
    let mut walk = eval::Walk::new(dns, eval::Mode::Evaluate, Some(ip), &sender, domain);
    walk.evaluate_text(domain.to_string(), &record, Vec::new())
        .await
}

/// RFC 7208 §4 check_host(): the result a receiver would reach for mail from `ip` with
/// MAIL FROM `sender` (or `postmaster@helo` when empty) after HELO `helo`.
pub async fn check_host(
    dns: &dyn Dns,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> SpfResult {
    let sender = if sender.is_empty() {
        format!("postmaster@{helo}")
    } else {
        sender.to_string()
    };
    let sender = if sender.contains('@') {
        sender
    } else {
        format!("postmaster@{sender}")
    };
    let mut walk = eval::Walk::new(dns, eval::Mode::Evaluate, Some(ip), &sender, helo);
    walk.check_host(domain.to_string(), Vec::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::fake::FakeDns;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn terms_are_evaluated_like_a_record_at_the_domain() {
        let dns = FakeDns::new()
            .txt("_spf.mail.test", "v=spf1 ip4:192.0.2.0/24 -all")
            .address("out.example.test", "198.51.100.7");
        let terms = "include:_spf.mail.test";
        assert_eq!(
            check_terms(&dns, ip("192.0.2.9"), "example.test", terms).await,
            SpfResult::Pass
        );
        assert_eq!(
            check_terms(&dns, ip("203.0.113.1"), "example.test", terms).await,
            SpfResult::Fail
        );
        // `a` with no domain is the domain the terms are evaluated for.
        let dns = dns.address("example.test", "198.51.100.8");
        assert_eq!(
            check_terms(&dns, ip("198.51.100.8"), "example.test", "a").await,
            SpfResult::Pass
        );
        assert_eq!(
            check_terms(
                &dns,
                ip("198.51.100.7"),
                "example.test",
                " ip4:198.51.100.7 "
            )
            .await,
            SpfResult::Pass
        );
    }

    #[tokio::test]
    async fn broken_terms_and_missing_includes_are_not_a_pass() {
        let dns = FakeDns::new();
        assert_eq!(
            check_terms(&dns, ip("192.0.2.9"), "example.test", "ip4:999.0.0.0/8").await,
            SpfResult::PermError
        );
        assert_eq!(
            check_terms(
                &dns,
                ip("192.0.2.9"),
                "example.test",
                "include:nothing.test"
            )
            .await,
            SpfResult::PermError
        );
    }
}
