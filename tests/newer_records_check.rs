//! MTA-STS (TXT), TLS-RPT, BIMI and DNS blocklists against a real DNS server on loopback.

mod util;

use mailauth_exporter::checks::{check_domain, DomainSpec};
use mailauth_exporter::findings::{Check, Code};
use mailauth_exporter::zone_server::Fault;

const ZONE: &str = r#"
good                    IN TXT "v=spf1 -all"
_dmarc.good             IN TXT "v=DMARC1; p=reject; rua=mailto:d@example.test"
_mta-sts.good           IN TXT "v=STSv1; id=20241124;"
_smtp._tls.good         IN TXT "v=TLSRPTv1; rua=mailto:tls@example.test,https://tlsrpt.example.test/v1"
default._bimi.good      IN TXT "v=BIMI1; l=https://example.test/logo.svg; a=https://example.test/vmc.pem"
good                    IN MX 0 .
bad                     IN TXT "v=spf1 -all"
_dmarc.bad              IN TXT "v=DMARC1; p=none; rua=mailto:d@example.test"
_mta-sts.bad            IN TXT "v=STSv1; id=not-valid!"
_smtp._tls.bad          IN TXT "v=TLSRPTv1; rua=tls@example.test"
default._bimi.bad       IN TXT "v=BIMI1; l=https://example.test/logo.svg"
bad                     IN MX 0 .
twice                   IN TXT "v=spf1 -all"
_mta-sts.twice          IN TXT "v=STSv1; id=1"
_mta-sts.twice          IN TXT "v=STSv1; id=2"
twice                   IN MX 0 .
"#;

const BLOCKLIST: &str = r#"
99.2.0.192      IN A   127.0.0.2
99.2.0.192      IN TXT "listed for spam, see https://bl.test/99"
98.2.0.192      IN A   127.255.255.254
97.2.0.192      IN A   192.0.2.1
"#;

fn codes(findings: &[mailauth_exporter::findings::Finding]) -> Vec<Code> {
    let mut c: Vec<Code> = findings.iter().map(|f| f.code).collect();
    c.sort();
    c
}

fn spec(name: &str) -> DomainSpec {
    DomainSpec {
        name: mailauth_exporter::name::DomainName::new(name).unwrap(),
        ..Default::default()
    }
}

#[tokio::test]
async fn mta_sts_tls_rpt_and_bimi() {
    let (_s, dns) = util::serve_zone("example.test", ZONE).await;
    let good = check_domain(dns.as_ref(), &spec("good.example.test")).await;
    // The TXT record is fine; its policy host does not exist here (the HTTPS fetch is
    // tested in tests/mta_sts_check.rs), so the policy is unreachable.
    assert_eq!(
        codes(&good.findings),
        [Code::MxNull, Code::MtaStsPolicyUnreachable]
    );
    assert!(good.findings.iter().any(|f| f
        .message
        .contains("mta-sts.good.example.test has no address")));
    assert_eq!(good.newer.mta_sts_id.as_deref(), Some("20241124"));
    assert_eq!(good.newer.tls_rpt_rua.len(), 2);
    assert_eq!(
        good.newer.bimi_authority.as_deref(),
        Some("https://example.test/vmc.pem")
    );
    assert!(good.outcome(Check::MtaSts).unwrap().answered);
    for check in [Check::TlsRpt, Check::Bimi] {
        assert!(
            good.outcome(check).unwrap().success(&good.findings),
            "{check}"
        );
    }

    let bad = check_domain(dns.as_ref(), &spec("bad.example.test")).await;
    // (bad's TXT does not parse, so no policy is fetched.)
    assert_eq!(
        codes(&bad.findings),
        [
            Code::DmarcPolicyNone,
            Code::MxNull,
            Code::MtaStsSyntax,
            Code::TlsRptSyntax,
            Code::BimiDmarcNotEnforced,
            Code::BimiNoCertificate
        ]
    );
    assert!(!bad.outcome(Check::MtaSts).unwrap().success(&bad.findings));

    let twice = check_domain(dns.as_ref(), &spec("twice.example.test")).await;
    assert!(codes(&twice.findings).contains(&Code::MtaStsSyntax));

    // Absent records are no finding and no check.
    let (_s2, dns2) = util::serve_zone("plain.test", "@ IN TXT \"v=spf1 -all\"\n_dmarc IN TXT \"v=DMARC1; p=reject; rua=mailto:a@plain.test\"\n@ IN MX 0 .\n").await;
    let plain = check_domain(dns2.as_ref(), &spec("plain.test")).await;
    assert!(plain.outcome(Check::MtaSts).is_none() && plain.outcome(Check::Bimi).is_none());
    assert_eq!(codes(&plain.findings), [Code::MxNull]);
}

#[tokio::test]
async fn dns_blocklists() {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    server
        .set_zone("bl.test", &util::zone("bl.test", 60, BLOCKLIST))
        .unwrap();
    server
        .set_fault("96.2.0.192.bl.test", Some(Fault::ServFail))
        .unwrap();
    let (dns, _) = util::client(&server);
    let ip = |s: &str| s.parse().unwrap();
    let mut s = spec("good.example.test");
    s.blocklists = vec!["bl.test".into()];

    s.sending_ips = vec![ip("192.0.2.99"), ip("192.0.2.10")];
    let r = check_domain(dns.as_ref(), &s).await;
    let listed: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.code == Code::DnsblListed)
        .collect();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0]
            .message
            .contains("192.0.2.99 is listed on bl.test (127.0.0.2): listed for spam"),
        "{}",
        listed[0].message
    );
    assert_eq!(r.dnsbl.results.len(), 2);
    assert!(r
        .dnsbl
        .results
        .iter()
        .any(|l| l.ip == ip("192.0.2.10") && l.code.is_none()));
    assert!(!r.outcome(Check::Dnsbl).unwrap().success(&r.findings));

    // "Query refused" codes, answers outside 127/8 and server failures are unknowns.
    for addr in ["192.0.2.98", "192.0.2.97", "192.0.2.96"] {
        s.sending_ips = vec![ip(addr)];
        let r = check_domain(dns.as_ref(), &s).await;
        let o = r.outcome(Check::Dnsbl).unwrap();
        assert!(!o.answered, "{addr}");
        assert!(
            r.findings
                .iter()
                .any(|f| f.code == Code::DnsError && f.check == Check::Dnsbl),
            "{addr}"
        );
        assert!(
            !r.findings.iter().any(|f| f.code == Code::DnsblListed),
            "{addr}"
        );
    }
}
