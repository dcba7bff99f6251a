//! Where a probe landed, through the running exporter against a real Dovecot: filed into a
//! junk folder (Dovecot's LMTP saving to the `+Junk` detail's folder, as a Sieve
//! `fileinto` would), or marked spam by the receiver's own fields, with a forged verdict
//! of the sending side below the receiver's hop that must change nothing.

mod util;

use std::path::Path;

use mailauth_exporter::config::Config;
use mailauth_exporter::service::app::App;
use util::http::{has, metrics_until, value};
use util::mailstack::MailStack;

const ZONE: &str = r#"
@       IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
"#;

const AUTHRES: &str = "mx.receiver.test; spf=pass smtp.mailfrom=MAILFROM; dkim=pass header.d=example.test; dmarc=pass header.from=example.test";

/// Dovecot's LMTP saves `probe+Junk@...` into the folder `Junk`.
const DETAIL_DELIVERY: &str = "recipient_delimiter = +\nlmtp_save_to_detail_mailbox = yes\n";

const SUCCESS: &str = r#"mailauth_probe_success{domain="example.test",target="mailbox"}"#;
const SPAM: &str = r#"mailauth_probe_spam{domain="example.test",target="mailbox"}"#;
const SCORE: &str = r#"mailauth_probe_spam_score{domain="example.test",target="mailbox"}"#;

fn config_text(
    stack: &MailStack,
    ns: std::net::SocketAddr,
    to: &str,
    junk: &str,
    target_extra: &str,
) -> String {
    format!(
        "[exporter]\ndns_interval = \"1h\"\nprobe_interval = \"1h\"\n\n[dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n\n\
         [[domain]]\nname = \"example.test\"\n\n[smtp.out]\n{}\n[mailbox.inbox]\n{}junk_folders = {junk}\n\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"30s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"{to}\"\nmailbox = \"inbox\"\n{target_extra}",
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    )
}

/// A Maildir++ folder of the stack's user, made the way Dovecot lays it out.
fn make_folder(stack: &MailStack, name: &str) -> std::path::PathBuf {
    let dir = stack.maildir().join(format!(".{name}"));
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let status = std::process::Command::new("chown")
        .args(["-R", "mail:mail"])
        .arg(stack.dir.path().join("mail"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn files_in(folder: &Path) -> usize {
    ["cur", "new"]
        .iter()
        .filter_map(|s| std::fs::read_dir(folder.join(s)).ok())
        .map(|d| d.count())
        .sum()
}

async fn run_round(text: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let config = Config::parse(text, Path::new("t.toml")).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    let body = metrics_until(&base, what, pred).await;
    app.stop();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_filed_into_junk_arrived_as_spam_and_is_deleted_there() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_full(
        "ok",
        &[
            "--authres",
            AUTHRES,
            "--spam-field",
            "X-Spam-Status: Yes, score=7.10 required=5.0",
        ],
        DETAIL_DELIVERY,
    );
    let junk = make_folder(&stack, "Junk");
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let text = config_text(
        &stack,
        server.addr(),
        "probe+Junk@imap.test",
        "[\"Junk\"]",
        "",
    );
    let body = run_round(&text, "the probe's placement", |b| b.contains(SPAM)).await;
    assert!(has(&body, &format!("{SPAM} 1")), "{body}");
    assert_eq!(value(&body, SCORE), 7.1, "{body}");
    assert!(
        has(
            &body,
            r#"mailauth_probe_delivery_seconds_count{domain="example.test",target="mailbox"} 1"#
        ),
        "the delivery time is measured for a probe in junk too\n{body}"
    );
    // Junk is no failure unless junk_is_failure says so (mailauth_probe_success itself
    // is 0 here for the exporter's own DKIM verdict: the stack does not sign; the rule is
    // unit-tested in mail::probe).
    for stage in ["send", "mailbox", "receive_timeout", "parse", "bounce"] {
        let failures = format!(
            r#"mailauth_probe_failures_total{{domain="example.test",stage="{stage}",target="mailbox"}}"#
        );
        assert_eq!(value(&body, &failures), 0.0, "{stage}\n{body}");
    }
    assert!(
        has(
            &body,
            r#"mailauth_probe_messages_deleted_total{domain="example.test",kind="probe",target="mailbox"} 1"#
        ),
        "{body}"
    );
    assert_eq!(files_in(&junk), 0, "our copy is deleted from Junk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receivers_spam_mark_counts_and_a_forged_one_below_its_hop_does_not() {
    mailauth_exporter::tls::install_crypto_provider();
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();

    // The receiver says spam (in the inbox); the sender claims "not spam" below the hop.
    let stack = MailStack::start_with(
        "ok",
        &[
            "--authres",
            AUTHRES,
            "--spam-field",
            "X-Spam-Status: Yes, score=6.25",
            "--sender-field",
            "X-Spam-Flag: NO",
            "--sender-field",
            "X-Spam-Score: -20",
        ],
    );
    let text = config_text(
        &stack,
        server.addr(),
        "probe@imap.test",
        "[]",
        "junk_is_failure = true\n",
    );
    let body = run_round(&text, "the probe's placement", |b| b.contains(SPAM)).await;
    assert!(has(&body, &format!("{SPAM} 1")), "{body}");
    assert_eq!(value(&body, SCORE), 6.25, "{body}");
    drop(stack);

    // The receiver says "no action" and writes no score; the sender forges spam and a
    // score below the hop: neither is read.
    let stack = MailStack::start_with(
        "ok",
        &[
            "--authres",
            AUTHRES,
            "--spam-field",
            "X-Rspamd-Action: no action",
            "--sender-field",
            "X-Spam-Flag: YES",
            "--sender-field",
            "X-Spam-Score: 99",
        ],
    );
    let text = config_text(&stack, server.addr(), "probe@imap.test", "[]", "");
    let body = run_round(&text, "the probe's placement", |b| b.contains(SPAM)).await;
    assert!(has(&body, &format!("{SPAM} 0")), "{body}");
    assert!(
        !body.contains(SCORE),
        "no score series without the receiver's score\n{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junk_folder_the_server_lacks_is_a_mailbox_failure() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_with("ok", &["--authres", AUTHRES]);
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let text = config_text(
        &stack,
        server.addr(),
        "probe@imap.test",
        "[\"Spam Folder\"]",
        "",
    );
    let body = run_round(&text, "the mailbox failure", |b| {
        has(
            b,
            r#"mailauth_probe_failures_total{domain="example.test",stage="mailbox",target="mailbox"} 1"#,
        )
    })
    .await;
    assert!(has(&body, &format!("{SUCCESS} 0")), "{body}");
    assert!(
        !body.contains(SPAM),
        "no placement without an arrival\n{body}"
    );
}
