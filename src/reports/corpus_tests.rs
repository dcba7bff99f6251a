//! Every report sample of the shared corpus (`../shared/corpus/reports/`, MIT, read where
//! it is) through `input::read`, with exact totals.
//!
//! The expected numbers were checked against an independent reading: a short Python
//! script using only the standard library (`xml.etree.ElementTree` for the XML, counting
//! `record` elements and summing `row/count`; `json` for TLS-RPT, reading each policy's
//! summary and failure details; `datetime.fromisoformat` for the epoch seconds), run once
//! on 2026-12-02. Its output agreed with every row below.

use std::path::PathBuf;

use super::{read, Limits, Report};

fn corpus(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/reports")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn one(rel: &str) -> Report {
    let out = read(&corpus(rel), &Limits::default()).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(out.problems.is_empty(), "{rel}: {:?}", out.problems);
    assert_eq!(out.reports.len(), 1, "{rel}");
    out.reports.into_iter().next().unwrap()
}

/// file, org_name, report_id, domain, begin, end, records, messages, sp, pct,
/// per record (dkim_aligned, spf_aligned, disposition).
type AggregateRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    i64,
    usize,
    u64,
    Option<&'static str>,
    Option<u32>,
    &'static [(&'static str, &'static str, &'static str)],
);

const AGGREGATE: &[AggregateRow] = &[
    (
        "acme.xml",
        "acme.com",
        "9391651994964116463",
        "example.com",
        1335571200,
        1335657599,
        1,
        2,
        Some("none"),
        Some(100),
        &[("fail", "pass", "none")],
    ),
    (
        "aol.xml",
        "AOL",
        "website.com_1504828800",
        "website.com",
        1504742400,
        1504828800,
        1,
        1,
        Some("reject"),
        Some(100),
        &[("pass", "pass", "none")],
    ),
    (
        "gmxnet.xml",
        "GMX",
        "6d2be94cbabf4e838a3cf58fb4a42ab5",
        "myserver.com",
        1733184000,
        1733270399,
        1,
        1,
        Some("reject"),
        None,
        &[("pass", "pass", "none")],
    ),
    (
        "google.xml",
        "google.com",
        "3166094538684628578",
        "foo-bar.io",
        1709683200,
        1709769599,
        1,
        1,
        Some("reject"),
        Some(100),
        &[("pass", "pass", "none")],
    ),
    (
        "hardfail.xml",
        "reporting org",
        "abcdef",
        "mydomain.org",
        1727049600,
        1727135999,
        1,
        1,
        Some("quarantine"),
        Some(100),
        &[("fail", "fail", "quarantine")],
    ),
    (
        "mailru.xml",
        "Mail.Ru",
        "28327321193681154911721360800",
        "foobar.de",
        1721260800,
        1721347200,
        1,
        1,
        Some("reject"),
        Some(100),
        &[("fail", "fail", "reject")],
    ),
    (
        "outlook.xml",
        "Outlook.com",
        "a4f4ef0654474d3faa5dca167a34a86a",
        "random.net",
        1709683200,
        1709769600,
        2,
        3,
        Some("reject"),
        Some(100),
        &[("pass", "pass", "none"), ("pass", "pass", "none")],
    ),
    (
        "solamora.xml",
        "solarmora.com",
        "9391651994964116463",
        "bix-business.com",
        1335571200,
        1335657599,
        1,
        2,
        Some("none"),
        Some(100),
        &[("fail", "pass", "none")],
    ),
    (
        "webde.xml",
        "WEB.DE",
        "a3345c7cb5fd4f26aa62144bf449a54b",
        "foobar.com",
        1722816000,
        1722902399,
        1,
        1,
        Some("none"),
        None,
        &[("pass", "pass", "none")],
    ),
    (
        "yahoo.xml",
        "Yahoo",
        "1709600619.487850",
        "random.org",
        1709510400,
        1709596799,
        1,
        1,
        None,
        Some(100),
        &[("pass", "pass", "none")],
    ),
];

#[test]
fn every_aggregate_sample_with_exact_totals() {
    let mut messages = 0;
    for &(file, org, id, domain, begin, end, records, msgs, sp, pct, rows) in AGGREGATE {
        let Report::Aggregate(r) = one(&format!("cry-inc/dmarc-reports/{file}")) else {
            panic!("{file}: not an aggregate report");
        };
        assert_eq!(r.org_name, org, "{file}");
        assert_eq!(r.report_id, id, "{file}");
        assert_eq!(r.domain, domain, "{file}");
        assert_eq!((r.begin, r.end), (Some(begin), Some(end)), "{file}");
        assert_eq!(r.records.len(), records, "{file}");
        assert_eq!(r.messages, msgs, "{file}");
        assert_eq!(r.policy.sp.as_deref(), sp, "{file}");
        assert_eq!(r.policy.pct, pct, "{file}");
        assert!(!r.truncated && r.problem.is_none(), "{file}");
        let got: Vec<(&str, &str, &str)> = r
            .records
            .iter()
            .map(|rec| {
                (
                    rec.dkim_aligned.as_deref().unwrap(),
                    rec.spf_aligned.as_deref().unwrap(),
                    rec.disposition.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, rows, "{file}");
        messages += r.messages;
    }
    assert_eq!(messages, 14);
}

#[test]
fn aggregate_sample_details() {
    let Report::Aggregate(r) = one("cry-inc/dmarc-reports/hardfail.xml") else {
        panic!()
    };
    let rec = &r.records[0];
    assert_eq!(rec.spf[0].result.as_deref(), Some("hardfail"));
    // `<domain></domain>` and `<selector></selector>` say nothing.
    assert_eq!(rec.dkim[0].domain, None);
    assert_eq!(rec.dkim[0].selector, None);
    let Report::Aggregate(r) = one("cry-inc/dmarc-reports/acme.xml") else {
        panic!()
    };
    assert_eq!(r.errors, ["There was a sample error."]);
    let reason = &r.records[0].reasons[0];
    assert_eq!(reason.kind.as_deref(), Some("other"));
    assert_eq!(
        reason.comment.as_deref(),
        Some("DMARC Policy overridden for incoherent example.")
    );
    assert_eq!(r.records[0].spf[0].scope.as_deref(), Some("helo"));
    assert_eq!(r.records[0].envelope_to.as_deref(), Some("acme.com"));
    let Report::Aggregate(r) = one("cry-inc/dmarc-reports/gmxnet.xml") else {
        panic!()
    };
    assert_eq!(r.policy.testing.as_deref(), Some("n"));
    assert_eq!(r.policy.discovery_method.as_deref(), Some("psl"));
    assert_eq!(r.records[0].dkim[0].selector.as_deref(), Some("abc123"));
    let Report::Aggregate(r) = one("cry-inc/dmarc-reports/mailru.xml") else {
        panic!()
    };
    assert!(r.records[0].dkim.is_empty());
    assert_eq!(r.records[0].spf[0].result.as_deref(), Some("softfail"));
}

/// file, organization_name, report_id, begin, end, per policy (type, domain,
/// successful, failed, failure details (result_type, count)).
type TlsRow = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    i64,
    &'static [(
        &'static str,
        &'static str,
        u64,
        u64,
        &'static [(&'static str, u64)],
    )],
);

const RFC_FAILURES: &[(&str, u64)] = &[
    ("certificate-expired", 100),
    ("starttls-not-supported", 200),
    ("validation-failure", 3),
];

const TLS: &[TlsRow] = &[
    (
        "cry-inc/smtp-tls-reports/google.json",
        "Google Inc.",
        "2025-05-22T00:00:00Z_foo-bar.io",
        1747872000,
        1747958399,
        &[("sts", "foo-bar.io", 1, 0, &[])],
    ),
    (
        "cry-inc/smtp-tls-reports/microsoft.json",
        "Microsoft Corporation",
        "133925885310113267+random.net",
        1747958400,
        1748044799,
        &[
            ("sts", "random.net", 2, 0, &[]),
            ("tlsa", "random.net", 2, 0, &[]),
        ],
    ),
    (
        "cry-inc/smtp-tls-reports/no-contact.json",
        "server.com",
        "123_456",
        1768089600,
        1768176000,
        &[("sts", "server.com", 1, 0, &[])],
    ),
    (
        "cry-inc/smtp-tls-reports/no-policy.json",
        "Google Inc.",
        "2025-03-27T00:00:00Z_foo-bar.io",
        1743033600,
        1743119999,
        &[("no-policy-found", "foo-bar.io", 1, 0, &[])],
    ),
    (
        "cry-inc/smtp-tls-reports/no_ip_and_mx.json",
        "Microsoft Corporation",
        "1234567890+",
        1749859200,
        1749945599,
        &[("sts", "xxxxxxxx.xx", 0, 3, &[("sts-policy-fetch-error", 3)])],
    ),
    (
        "cry-inc/smtp-tls-reports/rfc-example.json",
        "Company-X",
        "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
        1459468800,
        1459555199,
        &[("sts", "company-y.example", 5326, 303, RFC_FAILURES)],
    ),
    (
        "phi-ag/google.json",
        "Google Inc.",
        "2024-02-17T00:00:00Z_example.com",
        1708128000,
        1708214399,
        &[("sts", "example.com", 53, 0, &[])],
    ),
    (
        "phi-ag/microsoft-2.json",
        "Microsoft Corporation",
        "133561180919336230+example.com",
        1711411200,
        1711497599,
        &[("sts", "example.com", 7, 0, &[])],
    ),
    (
        "phi-ag/microsoft.json",
        "Microsoft Corporation",
        "133526718584528772+example.com",
        1708041600,
        1708127999,
        &[("sts", "example.com", 18, 0, &[])],
    ),
    (
        "phi-ag/rfc-errata-6241.json",
        "Company-X",
        "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
        1459468800,
        1459555199,
        &[("sts", "company-y.example", 5326, 303, RFC_FAILURES)],
    ),
    (
        "phi-ag/rfc.json",
        "Company-X",
        "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
        1459468800,
        1459555199,
        &[("sts", "company-y.example", 5326, 303, RFC_FAILURES)],
    ),
];

#[test]
fn every_tls_sample_with_exact_totals() {
    let (mut successful, mut failed) = (0, 0);
    for &(file, org, id, begin, end, policies) in TLS {
        let Report::TlsRpt(r) = one(file) else {
            panic!("{file}: not a TLS report");
        };
        assert_eq!(r.organization_name.as_deref(), Some(org), "{file}");
        assert_eq!(r.report_id.as_deref(), Some(id), "{file}");
        assert_eq!((r.begin, r.end), (Some(begin), Some(end)), "{file}");
        assert!(!r.truncated, "{file}");
        assert_eq!(r.policies.len(), policies.len(), "{file}");
        for (p, &(ty, domain, ok, bad, details)) in r.policies.iter().zip(policies) {
            assert_eq!(p.policy_type.as_deref(), Some(ty), "{file}");
            assert_eq!(p.policy_domain.as_deref(), Some(domain), "{file}");
            assert_eq!((p.successful, p.failed), (ok, bad), "{file}");
            let got: Vec<(&str, u64)> = p
                .failures
                .iter()
                .map(|f| (f.result_type.as_deref().unwrap(), f.count))
                .collect();
            assert_eq!(got, details, "{file}");
            successful += p.successful;
            failed += p.failed;
        }
    }
    assert_eq!((successful, failed), (16_063, 912));
}

#[test]
fn mx_host_before_and_after_erratum_6241_reads_the_same() {
    let (Report::TlsRpt(rfc), Report::TlsRpt(erratum)) =
        (one("phi-ag/rfc.json"), one("phi-ag/rfc-errata-6241.json"))
    else {
        panic!()
    };
    assert_eq!(rfc.policies[0].mx_host, ["*.mail.company-y.example"]);
    assert_eq!(rfc.policies[0].mx_host, erratum.policies[0].mx_host);
    let Report::TlsRpt(no_contact) = one("cry-inc/smtp-tls-reports/no-contact.json") else {
        panic!()
    };
    assert_eq!(no_contact.contact_info, None);
    let detail = &rfc.policies[0].failures[2];
    assert_eq!(detail.receiving_ip.as_deref(), Some("203.0.113.58"));
    assert_eq!(
        detail.failure_reason_code.as_deref(),
        Some("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED")
    );
}

/// Every prefix of two samples (a report cut off anywhere) and a few thousand seeded
/// random mutations of each sample, raw and gzipped, end without a panic. A cheap
/// stand-in between runs of the `report_input` fuzz target.
#[test]
fn cut_and_mutated_samples_never_panic() {
    let limits = Limits::default();
    let samples: Vec<Vec<u8>> = [
        "cry-inc/dmarc-reports/acme.xml",
        "cry-inc/dmarc-reports/gmxnet.xml",
        "cry-inc/smtp-tls-reports/rfc-example.json",
        "phi-ag/rfc-errata-6241.json",
    ]
    .iter()
    .map(|f| corpus(f))
    .collect();
    for sample in &samples[..2] {
        for end in 0..sample.len() {
            let _ = read(&sample[..end], &limits);
        }
    }
    // xorshift64: deterministic, so a failure reproduces.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let interesting = b"<>&;/\"'{}[],:0-\x00\xff\x1fPK";
    for sample in &samples {
        for _ in 0..1500 {
            let mut bytes = sample.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[at] = interesting[(next() as usize) % interesting.len()],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => {
                        let end = (at + (next() as usize) % 64).min(bytes.len());
                        let copy = bytes[at..end].to_vec();
                        bytes.splice(at..at, copy);
                    }
                }
            }
            let _ = read(&bytes, &limits);
        }
    }
}
