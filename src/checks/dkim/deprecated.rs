//! Records of DKIM's two historic neighbours that still sit in old zones: the DomainKeys
//! policy record at `_domainkey.<domain>` (RFC 4870 §3.6.2) and the ADSP record at
//! `_adsp._domainkey.<domain>` (RFC 5617, moved to historic in 2013). No receiver reads
//! either any more, but people reading the zone take them for live policy, so they are
//! reported as info findings.
//!
//! Cost: two TXT questions per domain per interval, answered from the cache most of the
//! time. NXDOMAIN (or NODATA) is the normal answer and says nothing; a DNS error there is
//! not a DKIM failure either (the keys are what DKIM depends on), so it yields no finding.

use crate::checks::taglist;
use crate::findings::{Code, Finding};
use crate::resolver::{Dns, RecordType};

/// The DomainKeys policy record (RFC 4870 §3.6.2.1):
///
/// ```text
/// The tags used in the policy record are: o= (outbound signing policy, "~" or "-"),
/// t= (testing, "y"), r= (reporting address), n= (notes)
/// ```
///
/// A record is taken for one when it is a tag list whose tags are all among these four
/// and there is at least one: a stray verification token or a DKIM key published at the
/// wrong name is not a DomainKeys policy.
pub fn is_domainkeys_policy(text: &str) -> bool {
    let mut any = false;
    for tag in taglist::split(text) {
        match tag {
            Ok(t) if ["o", "t", "r", "n"].contains(&t.name.to_ascii_lowercase().as_str()) => {
                any = true
            }
            _ => return false,
        }
    }
    any
}

/// The ADSP record (RFC 5617 §4.2.1):
///
/// ```text
/// adsp-dkim-tag = %x64.6b.69.6d *WSP "=" *WSP
///                 ("unknown" / "all" / "discardable" / x-adsp-dkim-tag)
/// ```
///
/// Its one required tag is `dkim=`; any record carrying it is an ADSP record, whatever
/// its value (the x-adsp-dkim-tag extension leaves the value open).
pub fn is_adsp_record(text: &str) -> bool {
    taglist::split(text)
        .filter_map(Result::ok)
        .any(|t| t.name.eq_ignore_ascii_case("dkim"))
}

/// The TXT strings at `name`, or nothing on any failure (see the module's doc).
async fn texts_at(dns: &dyn Dns, name: &str) -> Vec<String> {
    match dns.lookup(name, RecordType::Txt).await {
        Ok(answer) => answer.txt_strings(),
        Err(_) => Vec::new(),
    }
}

/// The findings for `domain` (already normalised). The two questions go out together.
pub async fn check(dns: &dyn Dns, domain: &str) -> Vec<Finding> {
    let policy_name = format!("_domainkey.{domain}");
    let adsp_name = format!("_adsp._domainkey.{domain}");
    let (policy, adsp) = tokio::join!(texts_at(dns, &policy_name), texts_at(dns, &adsp_name));
    let mut findings = Vec::new();
    if let Some(text) = policy.iter().find(|t| is_domainkeys_policy(t)) {
        findings.push(Finding::new(
            Code::DkimDomainKeysPolicy,
            format!("{policy_name} publishes the DomainKeys policy \"{text}\""),
        ));
    }
    if let Some(text) = adsp.iter().find(|t| is_adsp_record(t)) {
        findings.push(Finding::new(
            Code::DkimAdspRecord,
            format!("{adsp_name} publishes the ADSP record \"{text}\""),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::fake::{block_on as run, FakeDns, Fault};

    fn codes(f: &[Finding]) -> Vec<Code> {
        f.iter().map(|f| f.code).collect()
    }

    #[test]
    fn domainkeys_policy_forms() {
        assert!(is_domainkeys_policy("o=~"));
        assert!(is_domainkeys_policy("o=-; r=postmaster@example.com"));
        assert!(is_domainkeys_policy("t=y; o=~;"));
        assert!(is_domainkeys_policy("o=~; n=see http://example.com/dk"));
        assert!(is_domainkeys_policy(" O=- "));
    }

    #[test]
    fn not_domainkeys_policy() {
        assert!(!is_domainkeys_policy(""));
        assert!(!is_domainkeys_policy(";"));
        assert!(!is_domainkeys_policy("v=DKIM1; k=rsa; p=MIGf"));
        assert!(!is_domainkeys_policy("google-site-verification=abc"));
        assert!(!is_domainkeys_policy("some verification token"));
        assert!(!is_domainkeys_policy("o=~; p=MIGf"));
    }

    #[test]
    fn adsp_forms() {
        assert!(is_adsp_record("dkim=all"));
        assert!(is_adsp_record("dkim = discardable"));
        assert!(is_adsp_record("dkim=unknown;"));
        assert!(is_adsp_record("DKIM=x-future"));
        assert!(!is_adsp_record(""));
        assert!(!is_adsp_record("v=DKIM1; p=MIGf"));
        assert!(!is_adsp_record("dkim all"));
    }

    #[test]
    fn finds_both_in_a_zone() {
        let dns = FakeDns::new()
            .txt("_domainkey.example.com", "o=-; r=postmaster@example.com")
            .txt("_adsp._domainkey.example.com", "dkim=all");
        let f = run(check(&dns, "example.com"));
        assert_eq!(
            codes(&f),
            [Code::DkimDomainKeysPolicy, Code::DkimAdspRecord]
        );
        assert!(f[0].message.contains("o=-; r=postmaster@example.com"));
        assert!(f[1].message.contains("_adsp._domainkey.example.com"));
        let mut asked = dns.asked();
        asked.sort();
        assert_eq!(
            asked,
            [
                ("_adsp._domainkey.example.com".to_string(), RecordType::Txt),
                ("_domainkey.example.com".to_string(), RecordType::Txt),
            ]
        );
    }

    #[test]
    fn absent_names_and_other_records_say_nothing() {
        // NXDOMAIN at both names: the normal case.
        assert_eq!(codes(&run(check(&FakeDns::new(), "example.com"))), []);
        // `_domainkey` exists only as the parent of selectors (an empty non-terminal).
        let dns = FakeDns::new().txt("s1._domainkey.example.com", "v=DKIM1; p=MIGf");
        assert_eq!(codes(&run(check(&dns, "example.com"))), []);
        let dns = FakeDns::new()
            .txt("_domainkey.example.com", "v=DKIM1; p=MIGf")
            .fault("_adsp._domainkey.example.com", Fault::NoData);
        assert_eq!(codes(&run(check(&dns, "example.com"))), []);
    }

    #[test]
    fn dns_errors_there_are_no_finding() {
        let dns = FakeDns::new()
            .fault("_domainkey.example.com", Fault::ServFail)
            .fault("_adsp._domainkey.example.com", Fault::Timeout);
        assert_eq!(codes(&run(check(&dns, "example.com"))), []);
    }
}
