//! `report`: the real binary on the shared corpus's report samples and on a message
//! built here that carries a gzip and a zip attachment, as Google and Microsoft send them;
//! exit status 2 (the unreadable input named on stderr) while the readable ones print.

mod util;

use std::path::PathBuf;

use serde_json::Value;
use util::attachments::{base64_lines, gzip, zip};

fn corpus(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/reports")
        .join(rel)
        .display()
        .to_string()
}

/// (exit status, stdout, stderr) of `mailauth-exporter report ARGS` given `stdin`.
fn run_report(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let args: Vec<&str> = std::iter::once("report")
        .chain(args.iter().copied())
        .collect();
    util::run_binary(&args, stdin)
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn corpus_files_print_one_json_line_each_with_the_design_fields() {
    let files = [
        corpus("cry-inc/dmarc-reports/outlook.xml"),
        corpus("cry-inc/dmarc-reports/yahoo.xml"),
        corpus("cry-inc/smtp-tls-reports/rfc-example.json"),
        corpus("phi-ag/microsoft-2.json"),
    ];
    let args: Vec<&str> = ["--format", "json"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let (code, stdout, stderr) = run_report(&args, b"");
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 4);

    let outlook = &lines[0];
    assert_eq!(outlook["kind"], "dmarc_aggregate");
    assert_eq!(outlook["org_name"], "Outlook.com");
    assert_eq!(outlook["report_id"], "a4f4ef0654474d3faa5dca167a34a86a");
    assert_eq!(outlook["begin"], 1_709_683_200);
    assert_eq!(outlook["end"], 1_709_769_600);
    assert_eq!(outlook["domain"], "random.net");
    assert_eq!(outlook["policy"]["p"], "reject");
    assert_eq!(outlook["policy"]["pct"], 100);
    assert_eq!(outlook["policy"]["adkim"], "r");
    let records = outlook["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let counts: Vec<u64> = records
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2]);
    let r = &records[1];
    for (field, value) in [
        ("source_ip", "1.2.3.4"),
        ("disposition", "none"),
        ("dkim_aligned", "pass"),
        ("spf_aligned", "pass"),
        ("header_from", "random.net"),
        ("envelope_from", "random.net"),
    ] {
        assert_eq!(r[field], value, "{field}");
    }
    assert_eq!(r["dkim"][0]["selector"], "def");
    assert_eq!(r["spf"][0]["scope"], "mfrom");
    assert!(r["reasons"].as_array().unwrap().is_empty());

    // Yahoo publishes no sp: null, not absent.
    assert!(lines[1]["policy"]["sp"].is_null());
    assert!(lines[1]["records"][0]["envelope_from"].is_null());

    let tls = &lines[2];
    assert_eq!(tls["kind"], "tls_rpt");
    assert_eq!(tls["organization_name"], "Company-X");
    assert_eq!(tls["begin"], 1_459_468_800);
    let policy = &tls["policies"][0];
    assert_eq!(policy["policy_type"], "sts");
    assert_eq!(policy["policy_domain"], "company-y.example");
    assert_eq!(policy["successful"], 5326);
    assert_eq!(policy["failed"], 303);
    let failure = &policy["failures"][1];
    assert_eq!(failure["result_type"], "starttls-not-supported");
    assert_eq!(failure["sending_mta_ip"], "2001:db8:abcd:0013::1");
    assert_eq!(
        failure["receiving_mx_hostname"],
        "mx2.mail.company-y.example"
    );
    assert_eq!(failure["receiving_ip"], "203.0.113.56");
    assert_eq!(failure["count"], 200);

    // No Z in Microsoft's dates: read as UTC.
    assert_eq!(lines[3]["begin"], 1_711_411_200);
}

#[test]
fn every_corpus_sample_is_read() {
    let mut files = Vec::new();
    for dir in [
        "cry-inc/dmarc-reports",
        "cry-inc/smtp-tls-reports",
        "phi-ag",
    ] {
        for entry in std::fs::read_dir(corpus(dir)).unwrap() {
            let path = entry.unwrap().path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("xml" | "json")
            ) {
                files.push(path.display().to_string());
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 21);
    let mut args = vec!["--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let (code, stdout, stderr) = run_report(&args, b"");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let lines = json_lines(&stdout);
    let kinds = |k: &str| lines.iter().filter(|l| l["kind"] == k).count();
    assert_eq!((kinds("dmarc_aggregate"), kinds("tls_rpt")), (10, 11));
    // Totals from the independent count (see src/reports/corpus_tests.rs).
    let messages: u64 = lines
        .iter()
        .flat_map(|l| l["records"].as_array().into_iter().flatten())
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(messages, 14);
    let sessions: (u64, u64) = lines
        .iter()
        .flat_map(|l| l["policies"].as_array().into_iter().flatten())
        .fold((0, 0), |(s, f), p| {
            (
                s + p["successful"].as_u64().unwrap(),
                f + p["failed"].as_u64().unwrap(),
            )
        });
    assert_eq!(sessions, (16_063, 912));
}

#[test]
fn a_message_with_gzip_and_zip_attachments_from_standard_input() {
    let google = std::fs::read(corpus("cry-inc/dmarc-reports/google.xml")).unwrap();
    let outlook = std::fs::read(corpus("cry-inc/dmarc-reports/outlook.xml")).unwrap();
    let tls = std::fs::read(corpus("phi-ag/google.json")).unwrap();
    let message = format!(
        "From: noreply-dmarc-support@google.com\r\n\
To: rua@example.com\r\n\
Subject: Report domain: foo-bar.io Submitter: google.com\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\
\r\n\
--=_b\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
This is an aggregate report from google.com.\r\n\
--=_b\r\n\
Content-Type: application/gzip; name=\"google.com!foo-bar.io!1709683200!1709769599.xml.gz\"\r\n\
Content-Disposition: attachment\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{}\r\n\
--=_b\r\n\
Content-Type: application/zip; name=\"protection.outlook.com!random.net!1709683200!1709769600.zip\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{}\r\n\
--=_b\r\n\
Content-Type: application/tlsrpt+gzip; name=\"google.com!example.com!1708128000!1708214399!001.json.gz\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{}\r\n\
--=_b--\r\n",
        base64_lines(&gzip(&google)),
        base64_lines(&zip(&[("outlook.xml", &outlook)])),
        base64_lines(&gzip(&tls)),
    );
    let (code, stdout, stderr) = run_report(&["--format", "json", "-"], message.as_bytes());
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stdout);
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["report_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "3166094538684628578",
            "a4f4ef0654474d3faa5dca167a34a86a",
            "2024-02-17T00:00:00Z_example.com"
        ]
    );
    assert_eq!(lines[1]["records"].as_array().unwrap().len(), 2);
    assert_eq!(lines[2]["policies"][0]["successful"], 53);

    // The same message as text: a header line per report, a row per record.
    let (code, text, _) = run_report(&["-"], message.as_bytes());
    assert_eq!(code, 0);
    assert!(
        text.contains("DMARC aggregate report from google.com about foo-bar.io"),
        "{text}"
    );
    assert!(text.contains("TLS report from Google Inc."), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  1.2.3.4 ")).count(),
        3,
        "{text}"
    );
}

#[test]
fn an_unreadable_input_is_named_and_the_others_still_print() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.zip");
    std::fs::write(&bomb, zip(&[("report.xml", &vec![b' '; 80 * 1024 * 1024])])).unwrap();
    let not_a_report = dir.path().join("notes.txt");
    std::fs::write(&not_a_report, "nothing to see here\n").unwrap();
    let empty = dir.path().join("empty.xml");
    std::fs::write(&empty, "").unwrap();
    let good = corpus("cry-inc/dmarc-reports/mailru.xml");
    let args = [
        "--format",
        "json",
        bomb.to_str().unwrap(),
        good.as_str(),
        not_a_report.to_str().unwrap(),
        empty.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = run_report(&args, b"");
    assert_eq!(code, 2);
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["org_name"], "Mail.Ru");
    assert!(
        stderr.contains("bomb.zip: zip member \"report.xml\""),
        "{stderr}"
    );
    assert!(stderr.contains("zip bomb guard"), "{stderr}");
    assert!(stderr.contains("notes.txt: not a report"), "{stderr}");
    assert!(stderr.contains("empty.xml: the input is empty"), "{stderr}");
}

#[test]
fn no_file_is_a_usage_error() {
    let (code, _, stderr) = run_report(&[], b"");
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run_report(&["/nonexistent/report.xml"], b"");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("/nonexistent/report.xml: cannot read: "),
        "{stderr}"
    );
}

#[test]
fn an_arf_failure_report_prints_the_design_fields() {
    let arf = "From: dmarc-noreply@receiver.example\r\n\
To: ruf@example.com\r\n\
Subject: DMARC failure report for example.com\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n\
\r\n\
--arf\r\n\
Content-Type: text/plain\r\n\
\r\n\
A message from 192.0.2.9 failed DMARC.\r\n\
--arf\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: auth-failure\r\n\
Version: 1\r\n\
Original-Mail-From: <a@example.com>\r\n\
Arrival-Date: Tue, 14 Nov 2023 22:15:00 +0000\r\n\
Source-IP: 192.0.2.9\r\n\
Reported-Domain: example.com\r\n\
Auth-Failure: DKIM\r\n\
Delivery-Result: reject\r\n\
\r\n\
--arf\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: a@example.com\r\n\
Subject: hello\r\n\
--arf--\r\n";
    let (code, stdout, stderr) = run_report(&["--format", "json", "-"], arf.as_bytes());
    assert_eq!(code, 0, "{stderr}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 1);
    let f = &lines[0];
    assert_eq!(f["kind"], "dmarc_failure");
    assert_eq!(f["reported_domain"], "example.com");
    assert_eq!(f["source_ip"], "192.0.2.9");
    assert_eq!(f["arrival_date"], 1_700_000_100);
    assert_eq!(f["auth_failure"], serde_json::json!(["dkim"]));
    assert_eq!(f["original_mail_from"], "a@example.com");
    assert_eq!(f["delivery_result"], "reject");
    let (code, text, _) = run_report(&["-"], arf.as_bytes());
    assert_eq!(code, 0);
    assert_eq!(
        text,
        "DMARC failure report about example.com: source 192.0.2.9, arrived 2023-11-14T22:15:00Z, \
         auth failure dkim, delivery reject, mail from a@example.com\n"
    );
}

#[test]
fn with_a_config_each_record_gets_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("senders.toml");
    // Ranges only: nothing is asked of DNS (the nameserver is a closed port).
    std::fs::write(
        &config,
        "[dns]\nnameservers = [\"127.0.0.1:9\"]\n\n[[sender]]\nname = \"office\"\nip_ranges = [\"42.42.42.0/24\"]\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let hardfail = corpus("cry-inc/dmarc-reports/hardfail.xml");
    let (code, stdout, stderr) =
        run_report(&["--format", "json", "--config", &config, &hardfail], b"");
    assert_eq!(code, 0, "{stderr}");
    let report = &json_lines(&stdout)[0];
    assert_eq!(report["records"][0]["source_ip"], "42.42.42.42");
    assert_eq!(report["records"][0]["source"], "office");

    let acme = corpus("cry-inc/dmarc-reports/acme.xml");
    let (code, stdout, _) = run_report(&["--format", "json", "--config", &config, &acme], b"");
    assert_eq!(code, 0);
    let report = &json_lines(&stdout)[0];
    assert!(report["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["source"] == "unknown"));

    let (code, stdout, _) = run_report(&["--config", &config, &hardfail], b"");
    assert_eq!(code, 0);
    assert!(stdout.contains("  SOURCE  SOURCE IP"), "{stdout}");
    assert!(stdout.contains("office"), "{stdout}");

    // Without a config there is no source at all.
    let (_, stdout, _) = run_report(&["--format", "json", &hardfail], b"");
    assert!(json_lines(&stdout)[0]["records"][0].get("source").is_none());
    let (_, stdout, _) = run_report(&[&hardfail], b"");
    assert!(!stdout.contains("SOURCE  SOURCE IP"), "{stdout}");
    assert!(stdout.contains("  SOURCE IP"), "{stdout}");

    // A config that does not load is exit 2, before anything is read.
    let (code, _, stderr) = run_report(&["--config", "/nonexistent.toml", &hardfail], b"");
    assert_eq!(code, 2);
    assert!(stderr.contains("nonexistent"), "{stderr}");
}
