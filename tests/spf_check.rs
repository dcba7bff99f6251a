//! SPF linting and evaluation against a real DNS server on loopback: each finding code,
//! lookup and void counts equal to a hand count, IPv4 and IPv6 senders, DNS failures.

mod util;

use std::net::IpAddr;

use mailauth_exporter::checks::spf::{self, Identity, SpfResult};
use mailauth_exporter::findings::Code;
use mailauth_exporter::zone_server::Fault;

const ZONE: &str = r#"
good            IN TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.good.example.test -all"
_spf.good       IN TXT "v=spf1 a:relay.good.example.test mx -all"
_spf.good       IN MX  10 relay.good
relay.good      IN A   198.51.100.7
helo.good       IN TXT "v=spf1 ip4:192.0.2.10 -all"
helo.good       IN A   192.0.2.10
good            IN TXT "google-site-verification=abc"
plus            IN TXT "v=spf1 +all"
neutral         IN TXT "v=spf1 ?all"
noall           IN TXT "v=spf1 ip4:192.0.2.1"
redir           IN TXT "v=spf1 ip4:192.0.2.1 -all redirect=good.example.test"
onlyredir       IN TXT "v=spf1 redirect=good.example.test"
ptr             IN TXT "v=spf1 ptr -all"
sid             IN TXT "spf2.0/pra ip4:192.0.2.1 -all"
sid             IN TXT "v=spf1 -all"
syntax          IN TXT "v=spf1 ip4:192.0.2.999 -all"
two             IN TXT "v=spf1 -all"
two             IN TXT "v=spf1 ~all"
missinginc      IN TXT "v=spf1 include:nothing.example.test -all"
loop1           IN TXT "v=spf1 include:loop2.example.test -all"
loop2           IN TXT "v=spf1 include:loop1.example.test -all"
voids           IN TXT "v=spf1 a:v1.example.test a:v2.example.test mx:v3.example.test exists:v4.example.test -all"
manymx          IN TXT "v=spf1 mx -all"
manymx          IN MX 1 m1.example.test.
manymx          IN MX 2 m2.example.test.
manymx          IN MX 3 m3.example.test.
manymx          IN MX 4 m4.example.test.
manymx          IN MX 5 m5.example.test.
manymx          IN MX 6 m6.example.test.
manymx          IN MX 7 m7.example.test.
manymx          IN MX 8 m8.example.test.
manymx          IN MX 9 m9.example.test.
manymx          IN MX 10 m10.example.test.
manymx          IN MX 11 m11.example.test.
deep            IN TXT "v=spf1 include:d1.example.test include:d2.example.test include:d3.example.test -all"
d1              IN TXT "v=spf1 a mx exists:%{i}.d1.example.test include:d2.example.test -all"
d2              IN TXT "v=spf1 a:relay.good.example.test a:relay.good.example.test -all"
d3              IN TXT "v=spf1 include:d2.example.test ptr -all"
broken          IN TXT "v=spf1 include:failing.example.test -all"
"#;

async fn setup() -> (
    mailauth_exporter::zone_server::ZoneServer,
    std::sync::Arc<mailauth_exporter::resolver::CachingDns>,
) {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    server
        .set_fault("failing.example.test", Some(Fault::ServFail))
        .unwrap();
    let (dns, _) = util::client(&server);
    (server, dns)
}

fn codes(r: &spf::SpfReport) -> Vec<Code> {
    let mut c: Vec<Code> = r.findings.iter().map(|f| f.code).collect();
    c.sort();
    c.dedup();
    c
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn healthy_record_counts_and_sending_ips() {
    let (_s, dns) = setup().await;
    let ips = [ip("192.0.2.10"), ip("2001:db8::25"), ip("198.51.100.7")];
    let r = spf::check(
        dns.as_ref(),
        "good.example.test",
        &ips,
        Some("helo.good.example.test"),
    )
    .await;
    assert!(r.answered);
    assert_eq!(codes(&r), [Code::SpfIpNotAuthorized], "{:?}", r.findings);
    assert_eq!(
        r.record.as_deref(),
        Some("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.good.example.test -all")
    );
    assert_eq!(r.all, Some("-all"));
    // include (1) + a:relay (1) + mx (1) = 3; no void lookups.
    assert_eq!((r.dns_lookups, r.void_lookups), (3, 0));
    let result = |addr: &str, id: Identity| {
        r.ip_results
            .iter()
            .find(|x| x.ip == ip(addr) && x.identity == id)
            .unwrap()
            .result
    };
    assert_eq!(result("192.0.2.10", Identity::MailFrom), SpfResult::Pass);
    assert_eq!(result("2001:db8::25", Identity::MailFrom), SpfResult::Pass);
    assert_eq!(
        result("198.51.100.7", Identity::MailFrom),
        SpfResult::Pass,
        "via include → a:relay"
    );
    assert_eq!(result("192.0.2.10", Identity::Helo), SpfResult::Pass);
    // The HELO record lists only 192.0.2.10: the other IPs fail for the HELO identity.
    assert_eq!(result("198.51.100.7", Identity::Helo), SpfResult::Fail);
    assert!(
        r.findings.iter().all(|f| f.message.contains("HELO")),
        "{:?}",
        r.findings
    );
}

#[tokio::test]
async fn each_finding_code() {
    let (_s, dns) = setup().await;
    let check = |d: &'static str| {
        let dns = dns.clone();
        async move { spf::check(dns.as_ref(), d, &[], None).await }
    };
    assert_eq!(codes(&check("plus.example.test").await), [Code::SpfAllPass]);
    assert_eq!(
        codes(&check("neutral.example.test").await),
        [Code::SpfAllNeutral]
    );
    assert_eq!(codes(&check("noall.example.test").await), [Code::SpfNoAll]);
    assert_eq!(
        codes(&check("redir.example.test").await),
        [Code::SpfRedirectIgnored]
    );
    assert_eq!(codes(&check("onlyredir.example.test").await), []);
    let r = check("ptr.example.test").await;
    assert_eq!(codes(&r), [Code::SpfPtrUsed]);
    assert_eq!(r.dns_lookups, 1);
    assert_eq!(
        codes(&check("sid.example.test").await),
        [Code::SpfDeprecatedSenderId]
    );
    let r = check("syntax.example.test").await;
    assert_eq!(codes(&r), [Code::SpfSyntax]);
    assert!(
        r.findings[0].message.contains("ip4:192.0.2.999"),
        "{}",
        r.findings[0].message
    );
    let r = check("two.example.test").await;
    assert_eq!(codes(&r), [Code::SpfMultipleRecords]);
    assert_eq!(r.record, None);
    assert_eq!(
        codes(&check("missinginc.example.test").await),
        [Code::SpfIncludeMissing]
    );
    assert_eq!(codes(&check("loop1.example.test").await), [Code::SpfLoop]);
    let r = check("nothing.example.test").await;
    assert_eq!(codes(&r), [Code::SpfMissing]);
    assert!(r.answered);
    let r = check("voids.example.test").await;
    assert_eq!(codes(&r), [Code::SpfTooManyVoidLookups]);
    assert_eq!((r.dns_lookups, r.void_lookups), (4, 4));
    let r = check("manymx.example.test").await;
    assert_eq!(codes(&r), [Code::SpfTooManyMxHosts]);
}

/// deep: include d1, d2, d3 (3); d1: a, mx, exists (not queried: needs the sender's IP),
/// include d2 (4); d2 twice via d1 and directly: a, a each time (2 × 3 = 6); d3: include d2
/// (1), ptr (1). Total 3 + 4 + 6 + 2 = 15.
#[tokio::test]
async fn lookups_over_the_limit_are_counted_in_full() {
    let (_s, dns) = setup().await;
    let r = spf::check(dns.as_ref(), "deep.example.test", &[], None).await;
    assert_eq!(r.dns_lookups, 15);
    assert_eq!(codes(&r), [Code::SpfTooManyLookups, Code::SpfPtrUsed]);
    let msg = &r
        .findings
        .iter()
        .find(|f| f.code == Code::SpfTooManyLookups)
        .unwrap()
        .message;
    assert!(
        msg.starts_with("15 DNS-querying terms (limit 10): include:d1.example.test ×1"),
        "{msg}"
    );
    assert!(msg.contains("a:relay.good.example.test ×6"), "{msg}");
    // A receiver stops at the 11th term: any sender gets permerror.
    let res = spf::check_host(
        dns.as_ref(),
        ip("198.51.100.7"),
        "deep.example.test",
        "x@deep.example.test",
        "h.example.test",
    )
    .await;
    assert_eq!(res, SpfResult::PermError);
}

#[tokio::test]
async fn dns_failures_are_unknown_not_missing() {
    let (s, dns) = setup().await;
    let r = spf::check(
        dns.as_ref(),
        "broken.example.test",
        &[ip("192.0.2.1")],
        None,
    )
    .await;
    assert!(!r.answered);
    assert!(codes(&r).contains(&Code::DnsError));
    assert!(!codes(&r).contains(&Code::SpfIncludeMissing));
    s.set_fault("good.example.test", Some(Fault::Silence))
        .unwrap();
    let r = spf::check(dns.as_ref(), "good.example.test", &[], None).await;
    assert!(!r.answered);
    assert_eq!(codes(&r), [Code::DnsError]);
    assert_eq!(r.record, None);
}
