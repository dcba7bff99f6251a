//! The parked-domain profile (`checks::parked_findings`, run by `check_domain` for a
//! domain marked `parked`) over whole domains served by the in-memory resolver: which
//! records make a parked domain clean, and that DNS failures make the profile unknown
//! rather than failed. No sockets: the zone is `resolver::fake::FakeDns`.

use mailauth_exporter::checks::{check_domain, DomainReport, DomainSpec};
use mailauth_exporter::findings::{Check, Code};
use mailauth_exporter::name::DomainName;
use mailauth_exporter::resolver::fake::{FakeDns, Fault};
use mailauth_exporter::resolver::RecordType;

const DOMAIN: &str = "parked.example";

fn spec(parked: bool) -> DomainSpec {
    DomainSpec {
        name: DomainName::new(DOMAIN).unwrap(),
        parked,
        ..Default::default()
    }
}

fn parked_codes(r: &DomainReport) -> Vec<Code> {
    r.findings
        .iter()
        .filter(|f| f.check == Check::Parked)
        .map(|f| f.code)
        .collect()
}

/// The profile done right: `v=spf1 -all`, DMARC p=reject, null MX.
fn parked_zone() -> FakeDns {
    FakeDns::new()
        .txt(DOMAIN, "v=spf1 -all")
        .txt(&format!("_dmarc.{DOMAIN}"), "v=DMARC1; p=reject")
        .mx(DOMAIN, 0, ".")
}

#[tokio::test]
async fn the_profile_done_right_is_clean() {
    let r = check_domain(&parked_zone(), &spec(true)).await;
    let parked = r.outcome(Check::Parked).expect("a parked outcome");
    assert!(parked.answered);
    assert!(parked_codes(&r).is_empty(), "{:?}", r.findings);
}

#[tokio::test]
async fn each_part_of_the_profile_is_its_own_finding() {
    let cases: [(FakeDns, &[Code]); 4] = [
        (
            FakeDns::new()
                .txt(DOMAIN, "v=spf1 ~all")
                .txt(&format!("_dmarc.{DOMAIN}"), "v=DMARC1; p=reject")
                .mx(DOMAIN, 0, "."),
            &[Code::ParkedSpfNotFailAll],
        ),
        (
            FakeDns::new()
                .txt(DOMAIN, "v=spf1 -all")
                .txt(&format!("_dmarc.{DOMAIN}"), "v=DMARC1; p=quarantine")
                .mx(DOMAIN, 0, "."),
            &[Code::ParkedDmarcNotReject],
        ),
        (
            FakeDns::new()
                .txt(DOMAIN, "v=spf1 -all")
                .txt(&format!("_dmarc.{DOMAIN}"), "v=DMARC1; p=reject")
                .mx(DOMAIN, 10, "mx.example.net"),
            &[Code::ParkedMxNotNull],
        ),
        (
            // Nothing published at all: NXDOMAIN everywhere is not a parked profile.
            FakeDns::new(),
            &[
                Code::ParkedSpfNotFailAll,
                Code::ParkedDmarcNotReject,
                Code::ParkedMxNotNull,
            ],
        ),
    ];
    for (dns, want) in cases {
        let r = check_domain(&dns, &spec(true)).await;
        assert!(r.outcome(Check::Parked).unwrap().answered);
        assert_eq!(parked_codes(&r), want, "{:?}", r.findings);
    }
}

#[tokio::test]
async fn a_dns_failure_leaves_the_profile_unknown_not_failed() {
    for dns in [
        parked_zone().fault_for(DOMAIN, RecordType::Mx, Fault::ServFail),
        parked_zone().fault_for(DOMAIN, RecordType::Txt, Fault::Timeout),
        parked_zone().fault(&format!("_dmarc.{DOMAIN}"), Fault::ServFail),
    ] {
        let r = check_domain(&dns, &spec(true)).await;
        assert!(!r.outcome(Check::Parked).unwrap().answered);
        assert!(parked_codes(&r).is_empty(), "{:?}", r.findings);
        assert!(r.findings.iter().any(|f| f.code == Code::DnsError));
    }
}

#[tokio::test]
async fn a_domain_not_marked_parked_is_not_judged_by_the_profile() {
    let dns = FakeDns::new().txt(DOMAIN, "v=spf1 ~all");
    let r = check_domain(&dns, &spec(false)).await;
    assert!(r.outcome(Check::Parked).is_none());
    assert!(parked_codes(&r).is_empty());
}
