//! MX and PTR/FCrDNS/HELO checks against a real DNS server on loopback.

mod util;

use std::net::IpAddr;

use mailauth_exporter::checks::{mx, ptr};
use mailauth_exporter::findings::Code;
use mailauth_exporter::zone_server::Fault;

const FORWARD: &str = r#"
good        IN MX 10 mx1.good.example.test.
good        IN MX 20 mx2.good.example.test.
mx1.good    IN A 127.0.0.1
mx2.good    IN AAAA ::1
null        IN MX 0 .
mixed       IN MX 0 .
mixed       IN MX 10 mx1.good.example.test.
nomx        IN A 127.0.0.1
gone        IN MX 10 nowhere.example.test.
alias       IN MX 10 alias-mx.example.test.
alias-mx    IN CNAME mx1.good.example.test.
literal     IN MX 10 192.0.2.1.
flaky       IN MX 10 mx1.good.example.test.
flaky       IN MX 20 broken-mx.example.test.
mail        IN A 192.0.2.10
mail        IN AAAA 2001:db8::10
other       IN A 192.0.2.99
"#;

const REVERSE4: &str = r#"
10 IN PTR mail.example.test.
11 IN PTR other.example.test.
"#;

const REVERSE6: &str =
    "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 IN PTR mail.example.test.\n";

async fn setup() -> (
    mailauth_exporter::zone_server::ZoneServer,
    std::sync::Arc<mailauth_exporter::resolver::CachingDns>,
) {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, FORWARD))
        .unwrap();
    server
        .set_zone(
            "2.0.192.in-addr.arpa",
            &util::zone("2.0.192.in-addr.arpa", 60, REVERSE4),
        )
        .unwrap();
    server
        .set_zone(
            "8.b.d.0.1.0.0.2.ip6.arpa",
            &util::zone("8.b.d.0.1.0.0.2.ip6.arpa", 60, REVERSE6),
        )
        .unwrap();
    server
        .set_fault("broken-mx.example.test", Some(Fault::ServFail))
        .unwrap();
    let (dns, _) = util::client(&server);
    (server, dns)
}

fn codes(findings: &[mailauth_exporter::findings::Finding]) -> Vec<Code> {
    let mut c: Vec<Code> = findings.iter().map(|f| f.code).collect();
    c.sort();
    c
}

#[tokio::test]
async fn mx_hosts_and_their_problems() {
    let (_s, dns) = setup().await;
    let good = mx::check(dns.as_ref(), "good.example.test").await;
    assert!(
        good.answered && good.findings.is_empty(),
        "{:?}",
        good.findings
    );
    assert_eq!(good.hosts.len(), 2);
    assert_eq!(
        (good.hosts[0].preference, good.hosts[0].host.as_str()),
        (10, "mx1.good.example.test")
    );
    assert_eq!(
        good.hosts[0].addresses,
        ["127.0.0.1".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(good.hosts[1].addresses, ["::1".parse::<IpAddr>().unwrap()]);

    let null = mx::check(dns.as_ref(), "null.example.test").await;
    assert!(null.null_mx && null.hosts.is_empty());
    assert_eq!(codes(&null.findings), [Code::MxNull]);

    let mixed = mx::check(dns.as_ref(), "mixed.example.test").await;
    assert_eq!(codes(&mixed.findings), [Code::MxNull]);
    assert!(mixed.findings[0].message.contains("must be the only one"));

    assert_eq!(
        codes(&mx::check(dns.as_ref(), "nomx.example.test").await.findings),
        [Code::MxMissing]
    );
    assert_eq!(
        codes(
            &mx::check(dns.as_ref(), "nxdomain.example.test")
                .await
                .findings
        ),
        [Code::MxMissing]
    );
    let gone = mx::check(dns.as_ref(), "gone.example.test").await;
    assert_eq!(codes(&gone.findings), [Code::MxHostUnresolvable]);
    assert!(gone.findings[0].message.contains("nowhere.example.test"));
    let alias = mx::check(dns.as_ref(), "alias.example.test").await;
    assert_eq!(codes(&alias.findings), [Code::MxHostIsCname]);
    assert_eq!(
        alias.hosts[0].addresses,
        ["127.0.0.1".parse::<IpAddr>().unwrap()]
    );
    let literal = mx::check(dns.as_ref(), "literal.example.test").await;
    assert_eq!(codes(&literal.findings), [Code::MxHostUnresolvable]);
    assert!(literal.findings[0].message.contains("IP address literal"));

    // A server failure on one host's lookup is unknown, not "unresolvable".
    let flaky = mx::check(dns.as_ref(), "flaky.example.test").await;
    assert!(!flaky.answered);
    assert_eq!(codes(&flaky.findings), [Code::DnsError]);
    assert!(flaky.findings[0].message.contains("broken-mx.example.test"));
}

#[tokio::test]
async fn mx_lookup_failure_is_dns_error() {
    let (s, dns) = setup().await;
    s.set_fault("good.example.test", Some(Fault::Refused))
        .unwrap();
    let r = mx::check(dns.as_ref(), "good.example.test").await;
    assert!(!r.answered);
    assert_eq!(codes(&r.findings), [Code::DnsError]);
}

#[tokio::test]
async fn ptr_fcrdns_and_helo() {
    let (_s, dns) = setup().await;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();

    let good = ptr::check(
        dns.as_ref(),
        &[ip("192.0.2.10"), ip("2001:db8::10")],
        Some("MAIL.example.test."),
    )
    .await;
    assert!(
        good.answered && good.findings.is_empty(),
        "{:?}",
        good.findings
    );
    assert_eq!(good.ips[0].ptr_names, ["mail.example.test"]);
    assert_eq!(
        good.ips[0].forward_confirmed.as_deref(),
        Some("mail.example.test")
    );
    assert_eq!(
        good.ips[1].forward_confirmed.as_deref(),
        Some("mail.example.test")
    );

    let missing = ptr::check(dns.as_ref(), &[ip("192.0.2.12")], None).await;
    assert_eq!(codes(&missing.findings), [Code::PtrMissing]);

    // 192.0.2.11's PTR name resolves to another address.
    let unconfirmed = ptr::check(dns.as_ref(), &[ip("192.0.2.11")], None).await;
    assert_eq!(codes(&unconfirmed.findings), [Code::PtrNotForwardConfirmed]);
    assert_eq!(unconfirmed.ips[0].ptr_names, ["other.example.test"]);

    // HELO resolving elsewhere, and HELO resolving right but differing from the PTR name.
    let wrong_helo = ptr::check(
        dns.as_ref(),
        &[ip("192.0.2.10")],
        Some("other.example.test"),
    )
    .await;
    assert_eq!(codes(&wrong_helo.findings), [Code::HeloMismatch]);
    assert!(wrong_helo.findings[0].message.contains("does not resolve"));
    let no_helo = ptr::check(dns.as_ref(), &[], Some("nothing.example.test")).await;
    assert_eq!(codes(&no_helo.findings), [Code::HeloMismatch]);
}

#[tokio::test]
async fn ptr_server_failure_is_dns_error() {
    let (s, dns) = setup().await;
    s.set_fault("10.2.0.192.in-addr.arpa", Some(Fault::ServFail))
        .unwrap();
    let r = ptr::check(dns.as_ref(), &["192.0.2.10".parse().unwrap()], None).await;
    assert!(!r.answered);
    assert_eq!(codes(&r.findings), [Code::DnsError]);
}
