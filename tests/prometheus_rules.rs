//! The shipped alert rules and dashboards against a real Prometheus (Debian's package)
//! scraping a running exporter: demo zones with known problems plus live mail probes.
//! Rules are loaded with every `for:` shortened to one second, expressions unchanged.

mod util;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use mailauth_exporter::commands::demo;
use mailauth_exporter::config::Config;
use mailauth_exporter::service::app::App;
use util::mailstack::MailStack;
use util::prometheus::{repo_file, with_short_for, Prometheus};

const PROBE_ZONE: &str = r#"
@       IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
"#;

/// (alert, label, value) that must be firing.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("MailauthFindingError", "code", "spf.too_many_lookups"),
    ("MailauthSpfTooManyLookups", "domain", "lookups.demo.test"),
    ("MailauthDnsCheckFailing", "domain", "open.demo.test"),
    ("MailauthDnsErrors", "domain", "dnsfail.demo.test"),
    ("MailauthDkimKeyTooShort", "domain", "weak.demo.test"),
    ("MailauthDkimTestMode", "domain", "weak.demo.test"),
    (
        "MailauthDmarcPolicyBelowExpected",
        "domain",
        "weak.demo.test",
    ),
    ("MailauthSourcesDisagree", "method", "dkim"),
    ("MailauthProbeNotPassing", "target", "mailbox"),
    ("MailauthProbeFailing", "stage", "send"),
    // A [[reports]] directory that does not exist is never read.
    ("MailauthReportSourceFailing", "source", "broken"),
    // The receiver's filter marks the probe as spam (the stack's spam field).
    ("MailauthProbeInJunk", "target", "mailbox"),
];

/// Alerts that must not fire for this healthy exporter.
const QUIET: &[&str] = &[
    "MailauthExporterDown",
    "MailauthConfigReloadFailed",
    "MailauthProbeStale",
];

fn config_text(
    stack: &MailStack,
    ns: std::net::SocketAddr,
    silent_smtp: u16,
    reports: &Path,
) -> String {
    let mut text = demo::demo_config_text(ns, "127.0.0.1:0")
        .replace(
            "dns_interval = \"30s\"",
            &format!(
                "dns_interval = \"2s\"\nprobe_interval = \"1h\"\nstate_dir = \"{}\"",
                reports.join("state").display()
            ),
        )
        .replace("cache_max_ttl = \"10s\"", "cache_max_ttl = \"1s\"");
    text.push_str(&format!(
        "\n[[domain]]\nname = \"example.test\"\n\n[smtp.out]\n{}\n[smtp.dead]\nhost = \"127.0.0.1\"\nport = {silent_smtp}\ntls = \"none\"\ntimeout = \"3s\"\n\n\
         [mailbox.inbox]\n{}\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"30s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"inbox\"\n\
         [[probe]]\ndomain = \"healthy.demo.test\"\nfrom = \"probe@healthy.demo.test\"\nsmtp = \"dead\"\ntimeout = \"5s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n",
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    ));
    text.push_str(&format!(
        "\n[[reports]]\nname = \"spool\"\ndirectory = \"{}\"\npoll_interval = \"1s\"\n\
         \n[[reports]]\nname = \"broken\"\ndirectory = \"{}\"\npoll_interval = \"1s\"\n",
        reports.join("spool").display(),
        reports.join("does-not-exist").display()
    ));
    text
}

/// An RFC 6591 failure report about example.test (RFC 6591 Appendix B's example, adapted).
const ARF: &str = "From: dmarc@receiver.example\r\n\
To: ruf@example.test\r\n\
Subject: Authentication failure report\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"part1\"\r\n\
\r\n\
--part1\r\n\
Content-Type: text/plain\r\n\
\r\n\
An authentication failure report.\r\n\
--part1\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: auth-failure\r\n\
User-Agent: SomeGenerator/1.0\r\n\
Version: 1\r\n\
Original-Mail-From: <someone@example.test>\r\n\
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\n\
Source-IP: 192.0.2.1\r\n\
Reported-Domain: example.test\r\n\
Auth-Failure: dmarc\r\n\
\r\n\
--part1--\r\n";

/// Reports about example.test in `dir/spool`, for the reports dashboard: a corpus aggregate
/// report (one record from an unknown source failing both), a corpus TLS report and a
/// failure report, their domains rewritten to the watched example.test.
fn drop_reports(dir: &Path) {
    let corpus = |rel: &str| {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/corpus/reports")
                .join(rel),
        )
        .unwrap()
    };
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let aggregate =
        corpus("cry-inc/dmarc-reports/hardfail.xml").replace("mydomain.org", "example.test");
    std::fs::write(spool.join("aggregate.xml"), aggregate).unwrap();
    let tls = corpus("cry-inc/smtp-tls-reports/rfc-example.json")
        .replace("company-y.example", "example.test");
    std::fs::write(spool.join("tls.json"), tls).unwrap();
    std::fs::write(spool.join("failure.eml"), ARF).unwrap();
}

/// Every PromQL expression of a dashboard, with Grafana's variables filled in.
fn dashboard_exprs(json: &str) -> Vec<(String, String)> {
    let d: serde_json::Value = serde_json::from_str(json).unwrap();
    let fill = |e: &str| {
        e.replace("$domain", ".*")
            .replace("$__rate_interval", "1m")
            .replace("$__range", "5m")
    };
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push((
                p["title"].as_str().unwrap().to_string(),
                fill(t["expr"].as_str().unwrap()),
            ));
        }
    }
    for a in d["annotations"]["list"].as_array().unwrap() {
        if let Some(e) = a["expr"].as_str() {
            out.push((a["name"].as_str().unwrap().to_string(), fill(e)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_and_dashboard_queries_return_data() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_with(
        "ok",
        &["--authres", "mx.receiver.test; spf=pass smtp.mailfrom=MAILFROM; dkim=pass header.d=example.test; dmarc=pass", "--verifier-results", "SPF=pass,DKIM=pass,DMARC=pass", "--spam-field", "X-Spam-Status: Yes, score=7.10"],
    );
    let zones = demo::start_zone_server().await.unwrap();
    zones
        .set_zone("example.test", &util::zone("example.test", 60, PROBE_ZONE))
        .unwrap();
    // A submission server that accepts connections and never greets: the dead probe fails
    // seconds after start, after Prometheus has seen its failure counter at 0.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let reports = tempfile::tempdir().unwrap();
    drop_reports(reports.path());
    let config = Config::parse(
        &config_text(&stack, zones.addr(), silent_port, reports.path()),
        Path::new("t.toml"),
    )
    .unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));

    // Both rule files, as one (the report rules' groups appended to the first file's).
    let reports_rules = repo_file("alerts/mailauth-reports.rules.yml");
    let reports_groups = reports_rules
        .split_once("\ngroups:\n")
        .expect("a groups: list")
        .1;
    let rules = format!(
        "{}\n{reports_groups}",
        repo_file("alerts/mailauth.rules.yml")
    );
    let prom = Prometheus::start(&target, &with_short_for(&rules)).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let firing = loop {
        let firing = prom.firing().await;
        let have = |(name, label, value): &(&str, &str, &str)| {
            firing
                .iter()
                .any(|a| a["labels"]["alertname"] == *name && a["labels"][*label] == *value)
        };
        if EXPECTED.iter().all(have) {
            break firing;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = EXPECTED.iter().filter(|e| !have(e)).collect();
            panic!(
                "alerts not firing: {missing:?}\nfiring: {firing:#?}\nprometheus log: {}",
                prom.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let names: BTreeSet<&str> = firing
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str())
        .collect();
    for quiet in QUIET {
        assert!(!names.contains(quiet), "{quiet} fired: {firing:#?}");
    }
    // The source that is read does not count as failing.
    assert!(
        !firing.iter().any(
            |a| a["labels"]["alertname"] == "MailauthReportSourceFailing"
                && a["labels"]["source"] == "spool"
        ),
        "{firing:#?}"
    );
    // The healthy demo domain raises nothing but the alerts of its deliberately dead probe.
    assert!(
        !firing
            .iter()
            .any(|a| a["labels"]["domain"] == "healthy.demo.test"
                && !a["labels"]["alertname"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("MailauthProbe")),
        "{firing:#?}"
    );

    // A record edited: the change annotation gets its data.
    zones
        .set_zone(
            "demo.test",
            &demo::DEMO_ZONE.replace(
                "v=spf1 ip4:192.0.2.10 include",
                "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 include",
            ),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let change = "changes(mailauth_record_change_timestamp_seconds[5m]) > 0";
    while prom.query(change).await["data"]["result"]
        .as_array()
        .map_or(0, Vec::len)
        == 0
    {
        assert!(Instant::now() < deadline, "the record change never showed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every dashboard query returns data.
    for file in [
        "dashboards/mailauth-overview.json",
        "dashboards/mailauth-reports.json",
    ] {
        for (title, expr) in dashboard_exprs(&repo_file(file)) {
            let v = prom.query(&expr).await;
            let n = v["data"]["result"].as_array().map_or(0, Vec::len);
            assert!(n > 0, "{file}: panel {title:?}: no data for {expr}");
        }
    }
    app.stop();
}
