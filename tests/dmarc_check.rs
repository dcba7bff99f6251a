//! DMARC against a real DNS server on loopback.

mod util;

use mailauth_exporter::checks::dmarc::{self, Policy};
use mailauth_exporter::findings::Code;
use mailauth_exporter::zone_server::Fault;

const ZONE: &str = r#"
_dmarc              IN TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:agg@example.test"
_dmarc.strict       IN TXT "v=DMARC1; p=reject; rua=mailto:agg@example.test; ruf=mailto:f@example.test"
_dmarc.weak         IN TXT "v=DMARC1; p=none; pct=20"
_dmarc.two          IN TXT "v=DMARC1; p=none"
_dmarc.two          IN TXT "v=DMARC1; p=reject"
_dmarc.other-txt    IN TXT "google-site-verification=abc"
_dmarc.other-txt    IN TXT "v=DMARC1; p=quarantine; rua=mailto:a@example.test"
_dmarc.broken       IN TXT "v=DMARC1; p=block; rua=mailto:agg@example.test, agg@example.test"
_dmarc.ext          IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@reports.test,mailto:x@unauth.test"
_dmarc.subweak      IN TXT "v=DMARC1; p=reject; sp=none; rua=mailto:a@example.test"
"#;

const REPORTS: &str = r#"ext.example.test._report._dmarc IN TXT "v=DMARC1""#;

async fn setup() -> (
    mailauth_exporter::zone_server::ZoneServer,
    std::sync::Arc<mailauth_exporter::resolver::CachingDns>,
) {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    server
        .set_zone("reports.test", &util::zone("reports.test", 60, REPORTS))
        .unwrap();
    server
        .set_zone("unauth.test", &util::zone("unauth.test", 60, ""))
        .unwrap();
    let (dns, _) = util::client(&server);
    (server, dns)
}

fn codes(r: &dmarc::DmarcReport) -> Vec<Code> {
    let mut c: Vec<Code> = r.findings.iter().map(|f| f.code).collect();
    c.sort();
    c
}

#[tokio::test]
async fn records_tags_and_findings() {
    let (_s, dns) = setup().await;
    let d = dns.as_ref();

    let strict = dmarc::check(d, "strict.example.test", Some(Policy::Reject)).await;
    assert!(strict.answered);
    assert_eq!(codes(&strict), []);
    assert_eq!(
        strict.found_at.as_deref(),
        Some("_dmarc.strict.example.test")
    );
    assert_eq!(
        (strict.p, strict.effective_policy, strict.pct),
        (Some(Policy::Reject), Some(Policy::Reject), Some(100))
    );

    let weak = dmarc::check(d, "weak.example.test", Some(Policy::Quarantine)).await;
    assert_eq!(
        codes(&weak),
        [
            Code::DmarcPolicyNone,
            Code::DmarcPctPartial,
            Code::DmarcNoRua,
            Code::DmarcPolicyBelowExpected
        ]
    );
    assert_eq!(weak.pct, Some(20));

    let two = dmarc::check(d, "two.example.test", None).await;
    assert_eq!(codes(&two), [Code::DmarcMultipleRecords]);
    assert_eq!(two.record, None);

    let other = dmarc::check(d, "other-txt.example.test", None).await;
    assert_eq!(
        codes(&other),
        [],
        "a non-DMARC TXT beside the record is ignored"
    );

    let broken = dmarc::check(d, "broken.example.test", None).await;
    assert_eq!(
        codes(&broken),
        [
            Code::DmarcSyntax,
            Code::DmarcPolicyNone,
            Code::DmarcInvalidUri
        ]
    );
    assert!(broken
        .findings
        .iter()
        .any(|f| f.message.contains("p=\"block\"")));
    assert_eq!(
        broken.effective_policy,
        Some(Policy::None),
        "RFC 7489 §6.6.3: invalid p with rua is p=none"
    );

    let ext = dmarc::check(d, "ext.example.test", None).await;
    assert_eq!(codes(&ext), [Code::DmarcExternalReportUnauthorized]);
    assert!(ext.findings[0].message.contains("x@unauth.test"));

    let subweak = dmarc::check(d, "subweak.example.test", None).await;
    assert_eq!(codes(&subweak), [Code::DmarcSubdomainPolicyWeaker]);
}

#[tokio::test]
async fn organisational_domain_fallback_and_missing() {
    let (_s, dns) = setup().await;
    // host.example.test has no record: example.test's applies, with its sp=quarantine.
    let sub = dmarc::check(dns.as_ref(), "host.example.test", Some(Policy::Reject)).await;
    assert_eq!(
        codes(&sub),
        [
            Code::DmarcSubdomainPolicyWeaker,
            Code::DmarcOrgDomainFallback,
            Code::DmarcPolicyBelowExpected
        ]
    );
    assert_eq!(sub.found_at.as_deref(), Some("_dmarc.example.test"));
    assert_eq!(sub.effective_policy, Some(Policy::Quarantine));
    assert_eq!(sub.p, Some(Policy::Reject));

    let none = dmarc::check(dns.as_ref(), "unauth.test", None).await;
    assert_eq!(codes(&none), [Code::DmarcMissing]);
    assert!(none.answered);
}

#[tokio::test]
async fn dns_failure_is_dns_error_not_missing() {
    let (s, dns) = setup().await;
    s.set_fault("_dmarc.strict.example.test", Some(Fault::ServFail))
        .unwrap();
    let r = dmarc::check(dns.as_ref(), "strict.example.test", None).await;
    assert!(!r.answered);
    assert_eq!(codes(&r), [Code::DnsError]);
    s.set_fault(
        "ext.example.test._report._dmarc.reports.test",
        Some(Fault::Refused),
    )
    .unwrap();
    let r = dmarc::check(dns.as_ref(), "ext.example.test", None).await;
    assert!(!r.answered);
    assert!(codes(&r).contains(&Code::DnsError));
}
