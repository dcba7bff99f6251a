//! The shipped alert rules and dashboards against a real Prometheus (Debian's package)
//! scraping a running exporter: demo zones with known problems plus live mail probes.
//! Rules are loaded with every `for:` shortened to one second, expressions unchanged.

#[path = "util/rule_lint.rs"]
mod rule_lint;
mod util;

use std::collections::{BTreeMap, BTreeSet};
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
    ("MailauthSpfLookupsNearLimit", "domain", "nine.test"),
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

/// Nine DNS-querying terms: one below the limit (MailauthSpfLookupsNearLimit, not
/// MailauthSpfTooManyLookups).
const NINE_LOOKUPS_ZONE: &str = r#"
@   IN TXT "v=spf1 a:h1.nine.test a:h2.nine.test a:h3.nine.test a:h4.nine.test a:h5.nine.test a:h6.nine.test a:h7.nine.test a:h8.nine.test a:h9.nine.test -all"
h1  IN A 192.0.2.1
h2  IN A 192.0.2.2
h3  IN A 192.0.2.3
h4  IN A 192.0.2.4
h5  IN A 192.0.2.5
h6  IN A 192.0.2.6
h7  IN A 192.0.2.7
h8  IN A 192.0.2.8
h9  IN A 192.0.2.9
"#;

/// A domain whose MTA-STS policy host (`POLICY_HOST`, a loopback address) accepts the
/// connection and never answers, as a hung web server or a firewall that swallows the
/// TLS handshake does: with `[mta_sts] timeout` longer than the run's deadline, its
/// mta_sts check overruns the deadline (MailauthCheckErrors, kind="timeout"). It asks for
/// aggregate reports and never gets one (MailauthDmarcReportsStopped, with 3-day-old
/// samples backfilled).
const STUCK_ZONE: &str = r#"
@         IN TXT "v=spf1 ip4:192.0.2.50 -all"
@         IN MX 10 mx.stuck.test.
mx        IN A 192.0.2.50
_dmarc    IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@stuck.test"
_mta-sts  IN TXT "v=STSv1; id=20260101"
mta-sts   IN A POLICY_HOST
"#;

/// A known sending service of the watched domains: its reports' records are `source="relay"`.
const RELAY_RANGE: &str = "198.51.100.0/24";

/// An RFC 7489 Appendix C aggregate report about example.test from the relay's two
/// addresses: `pass` messages aligned on both, `fail` messages aligned on neither (the
/// same dispositions in every report, so that each report adds to the same series).
fn relay_aggregate(report_id: &str, pass: u32, fail: u32) -> String {
    let row = |ip: &str, count: u32, result: &str, disposition: &str| {
        format!(
            "  <record>\n    <row>\n      <source_ip>{ip}</source_ip>\n      <count>{count}</count>\n      \
             <policy_evaluated><disposition>{disposition}</disposition><dkim>{result}</dkim><spf>{result}</spf></policy_evaluated>\n    \
             </row>\n    <identifiers><header_from>example.test</header_from></identifiers>\n    \
             <auth_results><dkim><domain>example.test</domain><selector>s1</selector><result>{result}</result></dkim>\
             <spf><domain>example.test</domain><scope>mfrom</scope><result>{result}</result></spf></auth_results>\n  </record>\n"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <report_metadata>\n    \
         <org_name>receiver.example</org_name>\n    <email>noreply-dmarc@receiver.example</email>\n    \
         <report_id>{report_id}</report_id>\n    <date_range><begin>1764547200</begin><end>1764633599</end></date_range>\n  \
         </report_metadata>\n  <policy_published>\n    <domain>example.test</domain><adkim>r</adkim><aspf>r</aspf>\
         <p>reject</p><sp>reject</sp><pct>100</pct>\n  </policy_published>\n{}{}</feedback>\n",
        row("198.51.100.7", pass, "pass", "none"),
        row("198.51.100.8", fail, "fail", "reject"),
    )
}

/// An RFC 8460 §4 TLS report about example.test's STS policy: `successful` sessions and
/// `expired` failed with certificate-expired (one of the result types of the corpus report
/// the spool starts with, so that it adds to an existing series).
fn tls_report(report_id: &str, successful: u32, expired: u32) -> String {
    serde_json::json!({
        "organization-name": "Sender-Z",
        "date-range": {
            "start-datetime": "2026-12-01T00:00:00Z",
            "end-datetime": "2026-12-01T23:59:59Z"
        },
        "contact-info": "tlsrpt@sender-z.example",
        "report-id": report_id,
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.example.test", "max_age: 86400"],
                "policy-domain": "example.test",
                "mx-host": ["mx1.example.test"]
            },
            "summary": {
                "total-successful-session-count": successful,
                "total-failure-session-count": expired
            },
            "failure-details": [{
                "result-type": "certificate-expired",
                "sending-mta-ip": "198.51.100.9",
                "receiving-mx-hostname": "mx1.example.test",
                "receiving-ip": "192.0.2.25",
                "failed-session-count": expired
            }]
        }]
    })
    .to_string()
}

/// Puts `text` into the spool under `name` whole: written beside the spool and renamed
/// into it, as a mail delivery agent does, so the reader never sees half a report.
fn deliver_report(dir: &Path, name: &str, text: &str) {
    let staged = dir.join(name);
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, dir.join("spool").join(name)).unwrap();
}

/// One sample every five minutes from an hour before to twenty minutes after `then`, so
/// that `[1h] offset` finds one for as long as the test runs.
fn around(then: u64) -> Vec<u64> {
    (then - 3_300..=then + 1_200).step_by(300).collect()
}

/// What Prometheus would have scraped in the past: three days ago from the main exporter
/// (`target`), stuck.test's DMARC policy and the spool source's reads; a day ago from the
/// stale exporter (`stale`), its rua source's reads. OpenMetrics, timestamps in seconds.
fn history(target: &str, stale: &str, now: u64) -> String {
    let times = around(now - 3 * 86_400);
    let mut text = String::from("# TYPE mailauth_dmarc_policy gauge\n");
    for t in &times {
        text.push_str(&format!(
            "mailauth_dmarc_policy{{domain=\"stuck.test\",instance=\"{target}\",job=\"mailauth\",policy=\"reject\"}} 1 {t}\n"
        ));
    }
    text.push_str("# TYPE mailauth_reports_last_read_timestamp_seconds gauge\n");
    for t in &times {
        text.push_str(&format!(
            "mailauth_reports_last_read_timestamp_seconds{{instance=\"{target}\",job=\"mailauth\",source=\"spool\"}} {t} {t}\n"
        ));
    }
    for t in around(now - 86_400) {
        text.push_str(&format!(
            "mailauth_reports_last_read_timestamp_seconds{{instance=\"{stale}\",job=\"mailauth\",source=\"rua\"}} {t} {t}\n"
        ));
    }
    text.push_str("# EOF\n");
    text
}

/// A firing alert named with its instance and all its other labels but the severity.
type ExactAlert<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// Alerts that must not fire for the main exporter (the auxiliary ones raise the last two
/// on purpose).
const QUIET: &[&str] = &[
    "MailauthExporterDown",
    "MailauthConfigReloadFailed",
    "MailauthProbeStale",
];

/// A second exporter whose DNS server is a closed port, so that every query it asks fails
/// (MailauthDnsQueryFailureRate); it is started from a file, which is then broken and
/// reloaded (MailauthConfigReloadFailed).
fn blind_config(dead_dns: std::net::SocketAddr) -> String {
    format!(
        "[exporter]\nlisten_address = \"127.0.0.1:0\"\ndns_interval = \"1s\"\n\n\
         [dns]\nnameservers = [\"{dead_dns}\"]\ntimeout = \"200ms\"\nattempts = 1\n\n\
         [[domain]]\nname = \"blind.test\"\n"
    )
}

/// A third exporter probing every two seconds (the verifier target, which passes): after
/// deliveries that Prometheus saw happen (MailauthDeliverySlow over a real histogram's
/// rate) it is reloaded with a submission server that never answers, so
/// its last success grows older than two intervals (MailauthProbeStale).
///
/// It also reads a report directory (`spool`, source "rua") that already holds the relay's
/// first report when it starts, and it read reports a day ago too (backfilled): the first
/// report's series is new within the day and counts in full, the recording rules' second
/// branch (an increase alone never sees a series that appears once).
fn stale_config(ns: std::net::SocketAddr, smtp: &str, mailbox: &str, dir: &Path) -> String {
    format!(
        "[exporter]\nlisten_address = \"127.0.0.1:0\"\ndns_interval = \"1h\"\nprobe_interval = \"2s\"\n\
         state_dir = \"{}\"\n\n\
         [dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\nattempts = 1\n\n\
         [[domain]]\nname = \"example.test\"\n\n[smtp.out]\n{smtp}\n[mailbox.inbox]\n{mailbox}\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"30s\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"inbox\"\n\
         [[reports]]\nname = \"rua\"\ndirectory = \"{}\"\npoll_interval = \"1s\"\n\n\
         [[sender]]\nname = \"relay\"\nip_ranges = [\"{RELAY_RANGE}\"]\n",
        dir.join("state").display(),
        dir.join("spool").display(),
    )
}

/// Serves `app` on a free loopback port; its `host:port`.
async fn serve(app: &std::sync::Arc<App>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    target
}

/// The rules as the test loads them: every `for:` shortened, and MailauthDeliverySlow's
/// threshold of 300 s lowered to 0, so that the real delivery histogram of a loopback
/// probe (seconds, not minutes) fires it; the rest of each expression is unchanged.
fn test_rules(rules: &str) -> String {
    let slow = "rate(mailauth_probe_delivery_seconds_bucket[6h]))) > 300";
    assert!(
        rules.contains(slow),
        "MailauthDeliverySlow's expression changed: update the test"
    );
    with_short_for(&rules.replace(
        slow,
        "rate(mailauth_probe_delivery_seconds_bucket[6h]))) > 0",
    ))
}

/// Every rule of the shipped files: (name, expr, text of its labels and annotations,
/// whether it records).
fn shipped_rules(text: &str) -> Vec<(String, String, String, bool)> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let record = rule["record"].as_str();
            let name = record.or(rule["alert"].as_str()).unwrap().to_string();
            let templates = serde_yaml::to_string(&rule["annotations"]).unwrap()
                + &serde_yaml::to_string(&rule["labels"]).unwrap();
            out.push((
                name,
                rule["expr"].as_str().unwrap().to_string(),
                templates,
                record.is_some(),
            ));
        }
    }
    out
}

/// Every metric and label of every shipped rule exists in what the exporters served.
fn lint_rules(rules: &str, scrapes: &[String]) {
    let mut served: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for body in scrapes {
        for (name, labels) in rule_lint::served(body) {
            served.entry(name).or_default().extend(labels);
        }
    }
    let all = shipped_rules(rules);
    let recorded: BTreeMap<String, BTreeSet<String>> = all
        .iter()
        .filter(|r| r.3)
        .map(|(name, expr, _, _)| (name.clone(), rule_lint::recorded_labels(expr, &served)))
        .collect();
    let problems: Vec<String> = all
        .iter()
        .flat_map(|(name, expr, templates, _)| {
            rule_lint::problems(name, expr, templates, &served, &recorded)
        })
        .collect();
    assert!(
        problems.is_empty(),
        "rules that cannot fire:\n{}",
        problems.join("\n")
    );
    assert!(all.len() >= 27, "only {} rules read", all.len());
}

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
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n\
         [[domain]]\nname = \"nine.test\"\n",
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    ));
    // The policy host's timeout is longer than the run's deadline (5 s for a 2 s
    // interval), so a host that never answers makes the check overrun it.
    text.push_str(&format!(
        "\n[[domain]]\nname = \"stuck.test\"\n\n[mta_sts]\ntimeout = \"30s\"\n\n\
         [[sender]]\nname = \"relay\"\nip_ranges = [\"{RELAY_RANGE}\"]\n"
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
    // The relay's first day: the series its later reports add to.
    std::fs::write(
        spool.join("relay-1.xml"),
        relay_aggregate("relay-day-1", 10, 1),
    )
    .unwrap();
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
    zones
        .set_zone("nine.test", &util::zone("nine.test", 60, NINE_LOOKUPS_ZONE))
        .unwrap();
    // The stuck policy host: a port 443 on a loopback address of its own that accepts
    // connections and never answers (the first free one: another run of this test may
    // hold one).
    let (policy_host, _silent_https) = (1..=250u8)
        .find_map(|n| {
            let ip = std::net::Ipv4Addr::new(127, 0, 8, n);
            std::net::TcpListener::bind((ip, 443)).ok().map(|l| (ip, l))
        })
        .expect("no free port 443 on 127.0.8.x (the tests run as root)");
    zones
        .set_zone(
            "stuck.test",
            &util::zone(
                "stuck.test",
                60,
                &STUCK_ZONE.replace("POLICY_HOST", &policy_host.to_string()),
            ),
        )
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
    let target = serve(&app).await;

    // The blind exporter: a UDP port bound and released answers every query with ICMP
    // "port unreachable".
    let dead_dns = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let blind_path = reports.path().join("blind.toml");
    std::fs::write(&blind_path, blind_config(dead_dns)).unwrap();
    let blind = App::start(
        Config::load(&blind_path).unwrap(),
        Some(blind_path.clone()),
        false,
    )
    .unwrap();
    let blind_target = serve(&blind).await;
    let stale_path = reports.path().join("stale.toml");
    let stale_dir = reports.path().join("stale");
    std::fs::create_dir_all(stale_dir.join("spool")).unwrap();
    // 150 of 180 messages aligned, in the first report from the relay.
    std::fs::write(
        stale_dir.join("spool/relay-1.xml"),
        relay_aggregate("relay-new", 150, 30),
    )
    .unwrap();
    let stale_text = stale_config(
        zones.addr(),
        &stack.smtp_toml(),
        &stack.mailbox_toml("tls"),
        &stale_dir,
    );
    std::fs::write(&stale_path, &stale_text).unwrap();
    let stale = App::start(
        Config::load(&stale_path).unwrap(),
        Some(stale_path.clone()),
        false,
    )
    .unwrap();
    let stale_target = serve(&stale).await;

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
    let scrape = format!(
        "  - job_name: mailauth\n    static_configs:\n      - targets: ['{target}', '{blind_target}', '{stale_target}']\n"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let prom = Prometheus::start_backfilled(
        &scrape,
        &test_rules(&rules),
        Some(&history(&target, &stale_target, now)),
    )
    .await;

    // The relay's second day of reports, and another TLS report, once Prometheus has seen
    // the first day's counts: only then is what they add an increase over the day.
    let first_day = format!(
        "mailauth_dmarc_report_messages_total{{instance=\"{target}\",source=\"relay\"}} \
         or mailauth_tlsrpt_sessions_total{{instance=\"{target}\",result=\"certificate-expired\"}}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while prom.query(&first_day).await["data"]["result"]
        .as_array()
        .map_or(0, Vec::len)
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "the first reports were never scraped: {}",
            util::http::get(&format!("http://{target}/metrics")).await.1
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // 150 of 180 messages aligned: 83 %, under the 95 % of at least 100; 100 of 1,100
    // sessions expired: 9 %, over 1 %.
    deliver_report(
        reports.path(),
        "relay-2.xml",
        &relay_aggregate("relay-day-2", 150, 30),
    );
    deliver_report(
        reports.path(),
        "tls-2.json",
        &tls_report("sender-z-day-2", 1_000, 100),
    );

    // Deliveries of the stale exporter's probe seen by Prometheus as they happen (a rate),
    // and a success, then its submission server replaced by one that never greets.
    let deadline = Instant::now() + Duration::from_secs(90);
    let delivered = format!(
        "increase(mailauth_probe_delivery_seconds_count{{instance=\"{stale_target}\",domain=\"example.test\"}}[1m]) > 0 \
         and on (instance, domain, target) mailauth_probe_last_success_timestamp_seconds"
    );
    while prom.query(&delivered).await["data"]["result"]
        .as_array()
        .map_or(0, Vec::len)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the stale exporter's probe never delivered and passed twice: {}",
            util::http::get(&format!("http://{stale_target}/metrics"))
                .await
                .1
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let dead_smtp =
        format!("host = \"127.0.0.1\"\nport = {silent_port}\ntls = \"none\"\ntimeout = \"3s\"\n");
    std::fs::write(
        &stale_path,
        stale_text.replace(&stack.smtp_toml(), &dead_smtp),
    )
    .unwrap();
    stale
        .reload()
        .expect("the stale exporter's second config is valid");
    // The blind exporter's file broken: the reload fails and the old config keeps running.
    std::fs::write(&blind_path, "[exporter\n").unwrap();
    assert!(blind.reload().is_err());

    // Alerts with all their labels but the severity (MailauthCheckErrors keeps no job).
    let exact: [ExactAlert; 5] = [
        (
            "MailauthCheckErrors",
            &target,
            &[("check", "mta_sts"), ("kind", "timeout")],
        ),
        (
            "MailauthDmarcPassRateDropped",
            &target,
            &[
                ("job", "mailauth"),
                ("domain", "example.test"),
                ("source", "relay"),
            ],
        ),
        (
            "MailauthDmarcPassRateDropped",
            &stale_target,
            &[
                ("job", "mailauth"),
                ("domain", "example.test"),
                ("source", "relay"),
            ],
        ),
        (
            "MailauthTlsRptFailures",
            &target,
            &[
                ("job", "mailauth"),
                ("domain", "example.test"),
                ("policy_type", "sts"),
                ("result", "certificate-expired"),
            ],
        ),
        (
            "MailauthDmarcReportsStopped",
            &target,
            &[("job", "mailauth"), ("domain", "stuck.test")],
        ),
    ];
    // (alert, instance) that the auxiliary exporters must raise.
    let aux: [(&str, &str); 4] = [
        ("MailauthDnsQueryFailureRate", &blind_target),
        ("MailauthConfigReloadFailed", &blind_target),
        ("MailauthProbeStale", &stale_target),
        ("MailauthDeliverySlow", ""),
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    let firing = loop {
        let firing = prom.firing().await;
        let have = |(name, label, value): &(&str, &str, &str)| {
            firing
                .iter()
                .any(|a| a["labels"]["alertname"] == *name && a["labels"][*label] == *value)
        };
        let have_aux = |(name, instance): &(&str, &str)| {
            firing.iter().any(|a| {
                a["labels"]["alertname"] == *name
                    && (instance.is_empty() || a["labels"]["instance"] == *instance)
            })
        };
        let have_exact = |(name, instance, labels): &ExactAlert| {
            firing.iter().any(|a| {
                let mut want: BTreeMap<&str, &str> = labels.iter().copied().collect();
                want.insert("alertname", name);
                want.insert("instance", instance);
                let have: BTreeMap<&str, &str> = a["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| *k != "severity")
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                    .collect();
                have == want
            })
        };
        if EXPECTED.iter().all(have) && aux.iter().all(have_aux) && exact.iter().all(have_exact) {
            break firing;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = EXPECTED.iter().filter(|e| !have(e)).collect();
            let missing_aux: Vec<_> = aux.iter().filter(|e| !have_aux(e)).collect();
            let missing_exact: Vec<_> = exact.iter().filter(|e| !have_exact(e)).collect();
            panic!(
                "alerts not firing: {missing:?} {missing_aux:?} {missing_exact:?}\nfiring: {firing:#?}\nprometheus log: {}",
                prom.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let names: BTreeSet<&str> = firing
        .iter()
        .filter(|a| a["labels"]["instance"] == target.as_str())
        .filter_map(|a| a["labels"]["alertname"].as_str())
        .collect();
    // Nine lookups warn and do not page; the stale probe's DeliverySlow is the stale
    // exporter's (the main exporter delivers once an hour: no rate to take).
    assert!(
        !firing
            .iter()
            .any(|a| a["labels"]["alertname"] == "MailauthSpfTooManyLookups"
                && a["labels"]["domain"] == "nine.test"),
        "{firing:#?}"
    );
    for quiet in QUIET {
        assert!(!names.contains(quiet), "{quiet} fired: {firing:#?}");
    }
    // Only what went wrong fires: the result types the second TLS report did not add to,
    // the domains with no 3-day-old samples, the checks that finish.
    for a in &firing {
        let name = a["labels"]["alertname"].as_str().unwrap_or("");
        let alone = match name {
            "MailauthTlsRptFailures" => a["labels"]["result"] == "certificate-expired",
            "MailauthDmarcReportsStopped" => a["labels"]["domain"] == "stuck.test",
            "MailauthCheckErrors" => a["labels"]["check"] == "mta_sts",
            "MailauthDmarcPassRateDropped" => a["labels"]["source"] == "relay",
            _ => true,
        };
        assert!(alone, "{name} fired for more than it should: {firing:#?}");
    }
    // A new series counts in full, not extrapolated: exactly 150 of 180 aligned.
    let new_series = firing
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == "MailauthDmarcPassRateDropped"
                && a["labels"]["instance"] == stale_target.as_str()
        })
        .unwrap();
    let rate: f64 = new_series["value"].as_str().unwrap().parse().unwrap();
    assert!((rate - 150.0 / 180.0).abs() < 1e-9, "{new_series:#?}");
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

    // A record edited: the change annotation gets its data, and the alert fires.
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
    while !prom.firing().await.iter().any(|a| {
        a["labels"]["alertname"] == "MailauthRecordChanged"
            && a["labels"]["domain"] == "healthy.demo.test"
            && a["labels"]["record"] == "spf"
    }) {
        assert!(
            Instant::now() < deadline,
            "MailauthRecordChanged never fired: {:#?}",
            prom.firing().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every metric and label the rules use is served.
    let mut scrapes = Vec::new();
    for t in [&target, &blind_target, &stale_target] {
        let (status, body) = util::http::get(&format!("http://{t}/metrics")).await;
        assert_eq!(status, 200);
        scrapes.push(body);
    }
    lint_rules(&rules, &scrapes);

    // Every query of every shipped dashboard returns data.
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards"))
            .unwrap()
            .map(|e| format!("dashboards/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|f| f.ends_with(".json"))
            .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        for (title, expr) in dashboard_exprs(&repo_file(file)) {
            let v = prom.query(&expr).await;
            let n = v["data"]["result"].as_array().map_or(0, Vec::len);
            assert!(n > 0, "{file}: panel {title:?}: no data for {expr}");
        }
    }
    app.stop();
    blind.stop();
    stale.stop();
}
