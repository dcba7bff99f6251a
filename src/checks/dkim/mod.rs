//! DKIM key records (RFC 6376 §3.6.1) of each configured selector.
//!
//! CONTRACT: keep these public names and fields; add freely.

use serde::Serialize;

pub mod deprecated;
pub mod key;

use crate::findings::{Check, Code, Finding};
use crate::name::{normalize_name, Selector};
use crate::resolver::{Dns, RecordType};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DkimKeyReport {
    pub selector: String,
    /// The key record as published (character-strings joined); `None` when absent/unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// `rsa` or `ed25519`; `None` when there is no usable key.
    pub key_type: Option<key::KeyType>,
    /// Read from the key itself (RSA modulus length; 256 for ed25519).
    pub key_bits: Option<u32>,
    /// `t=y`.
    pub testing: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DkimReport {
    pub keys: Vec<DkimKeyReport>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub answered: bool,
}

/// Looks up and lints one selector's key record.
async fn check_selector(
    dns: &dyn Dns,
    domain: &str,
    selector: &str,
    findings: &mut Vec<Finding>,
) -> (DkimKeyReport, bool) {
    let name = format!("{selector}._domainkey.{domain}");
    let mut report = DkimKeyReport {
        selector: selector.to_string(),
        ..Default::default()
    };
    let answer = match dns.lookup(&name, RecordType::Txt).await {
        Ok(a) => a,
        Err(e) => {
            findings.push(Finding::dns_error(
                Check::Dkim,
                format!("TXT lookup of {name}: {e}"),
            ));
            return (report, false);
        }
    };
    let texts = answer.txt_strings();
    if texts.is_empty() {
        findings.push(Finding::new(
            Code::DkimMissing,
            format!("no key record at {name}"),
        ));
        return (report, true);
    }
    // Several TXT records at the name: the one that parses as a key is what verifiers use
    // (RFC 6376 §3.6.2.2 leaves the choice open; they try each).
    let parsed: Vec<(String, Result<key::KeyRecord, key::KeyRecordError>)> = texts
        .into_iter()
        .map(|t| (t.clone(), key::parse(&t)))
        .collect();
    let chosen = parsed.iter().find(|(_, r)| r.is_ok()).or(parsed.first());
    let Some((text, result)) = chosen else {
        return (report, true);
    };
    report.record = Some(text.clone());
    match result {
        Err(e) => findings.push(Finding::new(Code::DkimSyntax, format!("{name}: {e}"))),
        Ok(k) if k.revoked => {
            report.key_type = Some(k.key_type);
            findings.push(Finding::new(
                Code::DkimRevoked,
                format!("{name} has an empty p=: the key is revoked"),
            ));
        }
        Ok(k) => {
            report.key_type = Some(k.key_type);
            report.key_bits = k.bits;
            report.testing = k.testing;
            if k.testing {
                findings.push(Finding::new(Code::DkimTesting, format!("{name} has t=y")));
            }
            if k.key_type == key::KeyType::Rsa {
                match k.bits {
                    Some(b) if b < 1024 => findings.push(Finding::new(
                        Code::DkimWeakKey,
                        format!("{name}: RSA key of {b} bits"),
                    )),
                    Some(b) if b < 2048 => findings.push(Finding::new(
                        Code::DkimShortKey,
                        format!("{name}: RSA key of {b} bits"),
                    )),
                    _ => {}
                }
            }
            if k.hashes
                .as_ref()
                .is_some_and(|h| !h.is_empty() && h.iter().all(|a| a == "sha1"))
            {
                findings.push(Finding::new(
                    Code::DkimSha1Only,
                    format!("{name} allows only h=sha1"),
                ));
            }
        }
    }
    if parsed.len() > 1 {
        if let Some(last) = findings.last_mut().filter(|f| f.check == Check::Dkim) {
            last.message
                .push_str(&format!(" ({} TXT records at the name)", parsed.len()));
        }
    }
    (report, true)
}

pub async fn check(dns: &dyn Dns, domain: &str, selectors: &[Selector]) -> DkimReport {
    let domain = normalize_name(domain);
    let mut report = DkimReport {
        answered: true,
        ..Default::default()
    };
    for selector in selectors {
        let (key, answered) = check_selector(dns, &domain, selector, &mut report.findings).await;
        report.answered &= answered;
        report.keys.push(key);
    }
    // Never changes `answered`: a failure at these names is not a failure of the keys.
    report
        .findings
        .extend(deprecated::check(dns, &domain).await);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::fake::{block_on as run, FakeDns, Fault};

    const KEY: &str = "v=DKIM1; k=ed25519; p=8LG20Oes8YbLwMLn5S8O+mZ9snEd3THdVdDceOlzTPk=";

    #[test]
    fn deprecated_records_beside_a_good_key() {
        let dns = FakeDns::new()
            .txt("s1._domainkey.example.com", KEY)
            .txt("_domainkey.example.com", "t=y; o=~")
            .txt("_adsp._domainkey.example.com", "dkim=unknown");
        let r = run(check(&dns, "Example.COM.", &[Selector::new("s1").unwrap()]));
        assert!(r.answered);
        let codes: Vec<Code> = r.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, [Code::DkimDomainKeysPolicy, Code::DkimAdspRecord]);
    }

    #[test]
    fn dns_error_at_deprecated_names_does_not_fail_the_check() {
        let dns = FakeDns::new()
            .txt("s1._domainkey.example.com", KEY)
            .fault("_domainkey.example.com", Fault::ServFail)
            .fault("_adsp._domainkey.example.com", Fault::ServFail);
        let r = run(check(&dns, "example.com", &[Selector::new("s1").unwrap()]));
        assert!(r.answered);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.keys[0].key_bits, Some(256));
    }
}
