//! Unit tests of `checks::dane` (kept in their own file, beside dane.rs, while dane.rs's
//! SMTP reader is being reworked): TLSA matching against a fixed certificate, and every
//! decision the check takes on DNS answers, against the in-memory resolver. Matching a
//! certificate presented over STARTTLS is tested in tests/dane_check.rs; here the SMTP
//! side is only ever a loopback listener that refuses before TLS.

use super::*;
use crate::checks::destination::Destinations;
use crate::checks::mx::MxHost;
use crate::resolver::fake::{FakeDns, Fault};
use base64::Engine;

/// A self-signed Ed25519 certificate for mx1.example.com (`openssl req -x509 -newkey
/// ed25519`); the digests below were computed by openssl, not by the code under test.
const CERT: &str = "MIIBSjCB/aADAgECAhRUfHDcIFv2g4xFGlFiqWeUXyRD6zAFBgMrZXAwGjEYMBYGA1UEAwwPbXgxLmV4YW1wbGUuY29tMCAXDTI2MTIwMjAzMTYwN1oYDzIxMjYxMTA4MDMxNjA3WjAaMRgwFgYDVQQDDA9teDEuZXhhbXBsZS5jb20wKjAFBgMrZXADIQCBkhPDPQ482GKTO+0hIWM+PwI3fmsTjrW+du1vCfs7tKNTMFEwHQYDVR0OBBYEFAGKHPr3zqmOcWAzCvMV8tnFZRRRMB8GA1UdIwQYMBaAFAGKHPr3zqmOcWAzCvMV8tnFZRRRMA8GA1UdEwEB/wQFMAMBAf8wBQYDK2VwA0EAoVPJgspIeSxLDaDTngn07/4q0WQW2MHI5v5XbKyRzsOLcm/ET4jK8GJXeW4CoioMt9tp5s7HwzYOB3g8etj/BQ==";
/// `openssl x509 -outform DER | openssl dgst -sha256`
const CERT_SHA256: &str = "7ce76a88f3262fad3e6cd8866659417efcb7f7a3c0a25e01b2b7b4161883be8f";
/// `openssl dgst -sha512` of the DER certificate.
const CERT_SHA512: &str = "23661f27e292bdfb47038311c61889881afd69eb04ef5c19025d7c49970a6e9de651512f7960aa622f6a9099654bfbb8a1acd80017701b2be7ff888488cecea7";
/// `openssl x509 -noout -pubkey | openssl pkey -pubin -outform DER`
const SPKI: &str =
    "302a300506032b6570032100819213c33d0e3cd862933bed2121633e3f02377e6b138eb5be76ed6f09fb3bb4";
/// The same, through `openssl dgst -sha256`.
const SPKI_SHA256: &str = "3ec8be89656ea3184c6e8bd076c38a0cd3e54f2bace75d91e1d9015fb725b719";

const TLSA_AT: &str = "_25._tcp.mx1.example.com";

fn cert() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(CERT)
        .unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn codes(report: &DaneReport) -> Vec<Code> {
    report.findings.iter().map(|f| f.code).collect()
}

/// The MX report of example.com: these hosts, with these addresses.
fn mx(hosts: &[(&str, &[&str])]) -> MxReport {
    MxReport {
        hosts: hosts
            .iter()
            .enumerate()
            .map(|(i, (host, addresses))| MxHost {
                preference: 10 * (i as u16 + 1),
                host: host.to_string(),
                addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            })
            .collect(),
        answered: true,
        ..Default::default()
    }
}

async fn run(dns: &FakeDns, mx: &MxReport) -> DaneReport {
    check(
        dns,
        "example.com",
        mx,
        25,
        Duration::from_secs(5),
        Destinations::Any,
    )
    .await
}

#[test]
fn matching_by_selector_and_matching_type() {
    let cert = cert();
    for (selector, matching, association, expected) in [
        (0, 0, cert.clone(), true),
        (0, 1, hex(CERT_SHA256), true),
        (0, 2, hex(CERT_SHA512), true),
        (1, 0, hex(SPKI), true),
        (1, 1, hex(SPKI_SHA256), true),
        // The right digest under the wrong selector or matching type.
        (1, 1, hex(CERT_SHA256), false),
        (0, 1, hex(SPKI_SHA256), false),
        (0, 2, hex(CERT_SHA256), false),
        // Unknown selector or matching type never match (RFC 6698 §2.1.2-3).
        (2, 0, cert.clone(), false),
        (0, 3, cert.clone(), false),
        (0, 1, Vec::new(), false),
    ] {
        assert_eq!(
            Association {
                usage: 3,
                selector,
                matching,
                data: &association
            }
            .matches(&cert),
            expected,
            "selector {selector} matching {matching}"
        );
    }
}

#[test]
fn the_usage_does_not_change_what_matches() {
    let cert = cert();
    for usage in 0..=3 {
        let spki = hex(SPKI_SHA256);
        let record = Association {
            usage,
            selector: 1,
            matching: 1,
            data: &spki,
        };
        assert!(record.matches(&cert));
    }
}

#[test]
fn a_truncated_certificate_matches_no_public_key() {
    let cert = cert();
    for n in 0..cert.len() {
        let spki = hex(SPKI_SHA256);
        let record = Association {
            usage: 3,
            selector: 1,
            matching: 1,
            data: &spki,
        };
        assert!(!record.matches(&cert[..n]), "{n}");
    }
}

#[test]
fn the_not_validated_message_names_what_lacked_the_ad_bit() {
    let msg = |mx, tlsa| not_validated_message("example.com", TLSA_AT, mx, tlsa);
    assert_eq!(msg(true, true), None);
    let both = msg(false, false).unwrap();
    assert!(
        both.starts_with("the MX records of example.com and the TLSA records at _25._tcp.mx1.example.com came back without the AD bit"),
        "{both}"
    );
    assert!(msg(false, true)
        .unwrap()
        .starts_with("the MX records of example.com came back"));
    assert!(msg(true, false)
        .unwrap()
        .starts_with("the TLSA records at _25._tcp.mx1.example.com came back"));
    assert!(both.ends_with("(RFC 7672 §2.2)"));
}

#[tokio::test]
async fn no_mx_hosts_ask_nothing() {
    let dns = FakeDns::new();
    let r = run(&dns, &MxReport::default()).await;
    assert!(r.answered && r.hosts.is_empty() && r.findings.is_empty());
    assert!(dns.asked().is_empty());
}

#[tokio::test]
async fn hosts_without_tlsa_are_not_dane_hosts() {
    let dns = FakeDns::new()
        .address("mx1.example.com", "192.0.2.1")
        .fault_for("_25._tcp.mx2.example.com", RecordType::Tlsa, Fault::NoData);
    let r = run(
        &dns,
        &mx(&[
            ("mx1.example.com", &["192.0.2.1"]),
            ("mx2.example.com", &[]),
        ]),
    )
    .await;
    assert!(r.answered);
    assert!(r.hosts.is_empty() && r.findings.is_empty());
    assert_eq!(
        dns.asked(),
        [
            (TLSA_AT.to_string(), RecordType::Tlsa),
            ("_25._tcp.mx2.example.com".to_string(), RecordType::Tlsa)
        ],
        "the MX's DNSSEC status is asked only when some host has TLSA records"
    );
}

#[tokio::test]
async fn a_failed_tlsa_lookup_is_unknown_and_the_other_hosts_are_still_checked() {
    let dns = FakeDns::new()
        .fault(TLSA_AT, Fault::ServFail)
        .tlsa("_25._tcp.mx2.example.com", 1, 1, 1, &hex(SPKI_SHA256))
        .mx("example.com", 10, "mx1.example.com")
        .secure("example.com")
        .secure("_25._tcp.mx2.example.com");
    let r = run(
        &dns,
        &mx(&[("mx1.example.com", &[]), ("mx2.example.com", &[])]),
    )
    .await;
    assert!(!r.answered);
    assert_eq!(codes(&r), [Code::DnsError, Code::DaneUnusable]);
    assert_eq!(r.findings[0].check, Check::Dane);
    assert_eq!(
        r.findings[0].message,
        "TLSA lookup of _25._tcp.mx1.example.com: SERVFAIL"
    );
    assert_eq!(r.hosts.len(), 1);
    assert_eq!(r.hosts[0].host, "mx2.example.com");
}

#[tokio::test]
async fn pkix_usages_alone_are_unusable_for_smtp_and_nothing_is_connected() {
    let dns = FakeDns::new()
        .mx("example.com", 10, "mx1.example.com")
        .tlsa(TLSA_AT, 0, 0, 1, &hex(CERT_SHA256))
        .tlsa(TLSA_AT, 1, 1, 1, &[0xab, 0x01])
        .secure("example.com")
        .secure(TLSA_AT);
    // The address is a documentation address: connecting to it would hang, not fail.
    let r = run(&dns, &mx(&[("mx1.example.com", &["192.0.2.1"])])).await;
    assert!(r.answered);
    assert_eq!(codes(&r), [Code::DaneUnusable]);
    let host = &r.hosts[0];
    assert_eq!(host.dnssec_validated, Some(true));
    assert_eq!(host.dane_match, None);
    assert_eq!(
        host.tlsa,
        [
            Tlsa {
                usage: 0,
                selector: 0,
                matching: 1,
                data: CERT_SHA256.to_string()
            },
            Tlsa {
                usage: 1,
                selector: 1,
                matching: 1,
                data: "ab01".to_string()
            }
        ]
    );
}

#[tokio::test]
async fn records_without_the_ad_bit_are_reported_by_what_lacked_it() {
    for (mx_secure, tlsa_secure, says) in [
        (false, true, "the MX records of example.com came back"),
        (
            true,
            false,
            "the TLSA records at _25._tcp.mx1.example.com came back",
        ),
        (
            false,
            false,
            "the MX records of example.com and the TLSA records",
        ),
    ] {
        let mut dns = FakeDns::new()
            .mx("example.com", 10, "mx1.example.com")
            .tlsa(TLSA_AT, 3, 1, 1, &hex(SPKI_SHA256));
        if mx_secure {
            dns = dns.secure("example.com");
        }
        if tlsa_secure {
            dns = dns.secure(TLSA_AT);
        }
        // No address: the check stops before STARTTLS.
        let r = run(&dns, &mx(&[("mx1.example.com", &[])])).await;
        assert!(r.answered);
        assert_eq!(codes(&r), [Code::DaneNotDnssecValidated]);
        assert!(
            r.findings[0].message.starts_with(says),
            "{}",
            r.findings[0].message
        );
        assert_eq!(r.hosts[0].dnssec_validated, Some(false));
    }
}

#[tokio::test]
async fn a_failed_mx_dnssec_lookup_is_unknown_and_asked_once() {
    let dns = FakeDns::new()
        .tlsa(TLSA_AT, 3, 1, 1, &hex(SPKI_SHA256))
        .tlsa("_25._tcp.mx2.example.com", 3, 1, 1, &hex(SPKI_SHA256))
        .fault_for("example.com", RecordType::Mx, Fault::Timeout)
        .secure(TLSA_AT);
    let r = run(
        &dns,
        &mx(&[("mx1.example.com", &[]), ("mx2.example.com", &[])]),
    )
    .await;
    assert!(!r.answered);
    assert_eq!(codes(&r), [Code::DnsError, Code::DnsError]);
    assert_eq!(
        r.findings[0].message,
        "MX lookup of example.com with DNSSEC: timed out"
    );
    assert!(r.hosts.iter().all(|h| h.dnssec_validated.is_none()));
    let mx_asked = dns
        .asked()
        .iter()
        .filter(|(_, t)| *t == RecordType::Mx)
        .count();
    assert_eq!(mx_asked, 1);
}

#[tokio::test]
async fn a_dane_host_without_an_address_is_listed_unconnected() {
    let dns = FakeDns::new()
        .mx("example.com", 10, "mx1.example.com")
        .tlsa(TLSA_AT, 3, 1, 1, &hex(SPKI_SHA256))
        .secure("example.com")
        .secure(TLSA_AT);
    let r = run(&dns, &mx(&[("mx1.example.com", &[])])).await;
    assert!(r.answered);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.hosts[0].dnssec_validated, Some(true));
    assert_eq!((r.hosts[0].dane_match, r.hosts[0].not_after), (None, None));
}

/// A one-connection SMTP server on loopback that says `greeting`, then answers EHLO
/// with `ehlo` (if any) and closes. Its port.
async fn refusing_server(greeting: &'static [u8], ehlo: Option<&'static [u8]>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut r = BufReader::new(tcp);
        r.get_mut().write_all(greeting).await.unwrap();
        if let Some(ehlo) = ehlo {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            r.get_mut().write_all(ehlo).await.unwrap();
        }
    });
    port
}

#[tokio::test]
async fn starttls_failures_are_reported_as_such() {
    for (greeting, ehlo, says) in [
        (
            &b"554 go away\r\n"[..],
            None,
            "mx1.example.com greeted with 554",
        ),
        (
            &b"220 mx ESMTP\r\n"[..],
            Some(&b"250-mx\r\n250 8BITMIME\r\n"[..]),
            "mx1.example.com does not offer STARTTLS",
        ),
    ] {
        let port = refusing_server(greeting, ehlo).await;
        let dns = FakeDns::new()
            .mx("example.com", 10, "mx1.example.com")
            .tlsa(TLSA_AT, 3, 1, 1, &hex(SPKI_SHA256))
            .secure("example.com")
            .secure(TLSA_AT);
        let mx = mx(&[("mx1.example.com", &["127.0.0.1"])]);
        let r = check(
            &dns,
            "example.com",
            &mx,
            port,
            Duration::from_secs(10),
            Destinations::Any,
        )
        .await;
        assert!(r.answered, "a refusal is a finding, not a DNS failure");
        assert_eq!(codes(&r), [Code::DaneStarttlsFailed]);
        assert_eq!(r.findings[0].message, says);
        assert_eq!(r.hosts[0].dane_match, None);
    }
}

#[test]
fn dane_ee_compares_the_end_entity_and_dane_ta_the_issuers() {
    let cert = cert();
    let spki = hex(SPKI_SHA256);
    let record = |usage| Association {
        usage,
        selector: 1,
        matching: 1,
        data: &spki,
    };
    let as_end_entity = vec![cert.clone(), b"issuer".to_vec()];
    let as_issuer = vec![b"leaf".to_vec(), cert.clone()];
    assert!(record(3).matches_chain(&as_end_entity));
    assert!(!record(3).matches_chain(&as_issuer));
    assert!(record(2).matches_chain(&as_issuer));
    assert!(!record(2).matches_chain(&as_end_entity));
    // A chain of one has no issuer; an empty chain matches nothing (and does not panic).
    assert!(!record(2).matches_chain(&as_end_entity[..1]));
    assert!(!record(3).matches_chain(&[]));
    assert!(record(3).usable_for_smtp() && record(2).usable_for_smtp());
    assert!(!record(1).usable_for_smtp() && !record(0).usable_for_smtp());
}
