//! The reports reader end to end, from a `[[reports]] directory`: real report samples
//! (../shared/corpus/reports) dropped into the directory are counted into the state
//! database, shown on `/metrics`, moved to `archive/` (or `invalid/`), counted once however
//! often they arrive, and their counts survive a restart. `[[sender]]` classification asks
//! the exporter's own SPF evaluator, against a real DNS server on loopback.

mod util;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailauth_exporter::config::Config;
use mailauth_exporter::service::app::App;
use util::attachments::gzip;
use util::http::{at_least, has, metrics_until, value};

fn corpus(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/reports")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `bytes` as `name` the way a delivery agent should: under a temporary name, then
/// renamed, so the reader never sees half a file.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

struct Exporter {
    base: String,
    app: Arc<App>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Exporter {
    fn stop(self) {
        self.app.stop();
        self.server.abort();
    }
}

async fn start(config_text: &str) -> Exporter {
    let config = Config::parse(config_text, "reports.toml".as_ref()).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    Exporter { base, app, server }
}

fn config(ns: std::net::SocketAddr, state: &Path, spool: &Path) -> String {
    format!(
        r#"
[exporter]
state_dir = "{state}"
dns_interval = "1h"

[dns]
nameservers = ["{ns}"]
timeout = "2s"

[[domain]]
name = "mydomain.org"

[[domain]]
name = "company-y.example"

[[reports]]
name = "spool"
directory = "{spool}"
poll_interval = "1s"

[[sender]]
name = "office"
spf = "include:_spf.example.test"
"#,
        state = state.display(),
        spool = spool.display(),
    )
}

const MESSAGES: &str = r#"mailauth_dmarc_report_messages_total{domain="mydomain.org",source="office",disposition="quarantine",dkim="fail",spf="fail"}"#;
const REPORTS: &str =
    r#"mailauth_dmarc_reports_total{domain="mydomain.org",reporter="reporting org"}"#;
const LAST_END: &str = r#"mailauth_dmarc_report_last_end_timestamp_seconds{domain="mydomain.org",reporter="reporting org"} 1727135999"#;
const TLS_EXPIRED: &str = r#"mailauth_tlsrpt_sessions_total{domain="company-y.example",policy_type="sts",result="certificate-expired"}"#;
const TLS_SUCCESS: &str = r#"mailauth_tlsrpt_sessions_total{domain="company-y.example",policy_type="sts",result="success"}"#;
const TLS_SUMMARY: &str = r#"mailauth_tlsrpt_failed_sessions_summary_total{domain="company-y.example",policy_type="sts"}"#;

fn read_total(outcome: &str) -> String {
    format!(r#"mailauth_reports_read_total{{outcome="{outcome}",source="spool"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_counted_once_moved_after_commit_and_survive_a_restart() {
    // 42.42.42.42 (the sample's only source) is in the sender's SPF include.
    let (server, _) = util::serve_zone(
        "example.test",
        "_spf IN TXT \"v=spf1 ip4:42.42.42.0/24 -all\"\n",
    )
    .await;
    server
        .set_zone(
            "42.in-addr.arpa",
            &util::zone(
                "42.in-addr.arpa",
                60,
                "42.42.42 IN PTR mail.example.test.\n",
            ),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state: PathBuf = dir.path().join("state");
    let spool: PathBuf = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let text = config(server.addr(), &state, &spool);

    let hardfail = corpus("cry-inc/dmarc-reports/hardfail.xml");
    drop_file(&spool, "hardfail.xml", &hardfail);
    // The same report again, gzipped, as reporters resend: counted once.
    drop_file(&spool, "hardfail.xml.gz", &gzip(&hardfail));
    // About example.com, which nobody here watches.
    drop_file(
        &spool,
        "acme.xml",
        &corpus("cry-inc/dmarc-reports/acme.xml"),
    );
    drop_file(
        &spool,
        "tls.json.gz",
        &gzip(&corpus("cry-inc/smtp-tls-reports/rfc-example.json")),
    );
    drop_file(&spool, "note.txt", b"Hello, this is not a report.\n");
    // A file still being written is not touched.
    std::fs::write(spool.join("late.xml.part"), &hardfail[..100]).unwrap();

    let e = start(&text).await;
    let body = metrics_until(&e.base, "the spool read", |b| {
        at_least(b, &read_total("counted"), 2.0)
            && at_least(b, &read_total("duplicate"), 1.0)
            && at_least(b, &read_total("ignored_domain"), 1.0)
            && at_least(b, &read_total("invalid"), 1.0)
    })
    .await;
    assert!(has(&body, &format!("{MESSAGES} 1")), "{body}");
    assert!(has(&body, &format!("{REPORTS} 1")), "{body}");
    assert!(has(&body, LAST_END), "{body}");
    assert!(has(&body, &format!("{TLS_SUCCESS} 5326")), "{body}");
    assert!(has(&body, &format!("{TLS_EXPIRED} 100")), "{body}");
    assert!(has(&body, &format!("{TLS_SUMMARY} 303")), "{body}");
    assert!(
        !body.contains("example.com"),
        "no series for an unwatched domain:\n{body}"
    );
    assert_eq!(value(&body, &read_total("counted")), 2.0, "{body}");
    assert!(
        value(
            &body,
            r#"mailauth_reports_last_read_timestamp_seconds{source="spool"}"#
        ) > 0.0
    );
    assert_eq!(files(&spool), ["late.xml.part"]);
    assert_eq!(
        files(&spool.join("archive")),
        ["acme.xml", "hardfail.xml", "hardfail.xml.gz", "tls.json.gz"]
    );
    assert_eq!(files(&spool.join("invalid")), ["note.txt"]);

    // The domain page lists the sources of the last 7 days: the corpus report is from 2024,
    // so the same report, dated today under another id, is what shows.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = String::from_utf8(hardfail.clone())
        .unwrap()
        .replace("<report_id>abcdef<", "<report_id>fresh-1<")
        .replace("1727049600", &(now - 86_400).to_string())
        .replace("1727135999", &now.to_string());
    drop_file(&spool, "fresh.xml", fresh.as_bytes());
    metrics_until(&e.base, "the fresh report counted", |b| {
        at_least(b, &read_total("counted"), 3.0)
    })
    .await;
    let (status, page) = util::http::get(&format!("{}/domain/mydomain.org", e.base)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Sources (last 7 days"), "{page}");
    // The overview's pass rate over the same week: the fresh report's one message from
    // the office failed DMARC.
    let (status, overview) = util::http::get(&format!("{}/", e.base)).await;
    assert_eq!(status, 200);
    assert!(overview.contains(">DMARC pass (7 d)</th>"), "{overview}");
    assert!(
        overview.contains("<td>0.0 % <span class=\"note\">of 1 messages</span></td>"),
        "{overview}"
    );
    assert!(
        page.contains(
            "<td>office</td><td>1</td><td>0.0 %</td><td>0.0 %</td><td>0</td><td>1</td><td>0</td>"
        ),
        "{page}"
    );
    assert!(
        page.contains("42.42.42.42 (mail.example.test) 1"),
        "the IP with its reverse name: {page}"
    );
    e.stop();

    // A restart shows the counts from the state database, and the same report arriving
    // once more counts nothing.
    let e = start(&text).await;
    let body = metrics_until(&e.base, "the counts after a restart", |b| {
        has(b, &format!("{MESSAGES} 2"))
    })
    .await;
    assert!(has(&body, &format!("{TLS_EXPIRED} 100")), "{body}");
    drop_file(&spool, "again.xml", &hardfail);
    let body = metrics_until(&e.base, "the resent report read", |b| {
        at_least(b, &read_total("duplicate"), 1.0)
    })
    .await;
    assert!(has(&body, &format!("{MESSAGES} 2")), "{body}");
    assert!(has(&body, &format!("{REPORTS} 2")), "{body}");
    assert_eq!(files(&spool), ["late.xml.part"]);
    e.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_from_no_known_sender_is_unknown_and_a_zip_bomb_is_invalid() {
    // No SPF include answers: the sender's terms cannot pass.
    let (server, _) = util::serve_zone("example.test", "").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    drop_file(
        &spool,
        "hardfail.xml",
        &corpus("cry-inc/dmarc-reports/hardfail.xml"),
    );
    // 80 MiB of zeros in an 80 KB gzip: refused by the decompression guard (past 1:200 and
    // past 64 MiB), not read into memory.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..80 {
        bomb.write_all(&zeros).unwrap();
    }
    drop_file(&spool, "bomb.xml.gz", &bomb.finish().unwrap());
    let e = start(&config(server.addr(), &state, &spool)).await;
    let body = metrics_until(&e.base, "the spool read", |b| {
        at_least(b, &read_total("counted"), 1.0) && at_least(b, &read_total("invalid"), 1.0)
    })
    .await;
    assert!(
        has(
            &body,
            r#"mailauth_dmarc_report_messages_total{domain="mydomain.org",source="unknown",disposition="quarantine",dkim="fail",spf="fail"} 1"#
        ),
        "{body}"
    );
    assert_eq!(files(&spool.join("invalid")), ["bomb.xml.gz"]);
    e.stop();
}
