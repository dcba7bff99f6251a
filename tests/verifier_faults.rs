//! Verifier faults, produced by the test relay's verifier (`tests/servers/smtp_relay.py`,
//! switched at run time): it answers twice, answers with garbage, answers for a token the
//! exporter never issued, answers in malformed MIME.
//!
//! For each: the outcome shows in the probe metrics (success, or the failure stage), the
//! other probe and the DNS checks go on, `/metrics` keeps answering, only the exporter's
//! own messages are deleted, and with the verifier healthy again the probe succeeds.

mod util;

use std::path::Path;

use mailauth_exporter::config::Config;
use mailauth_exporter::service::app::App;
use util::http::{above, at_least, has, metrics_until, value};
use util::mailstack::MailStack;

const ZONE: &str = r#"
@       IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  IN TXT "v=DMARC1; p=reject"
"#;

const A_SENT: &str = r#"mailauth_probe_sent_total{domain="a.test",target="verifier"}"#;
const A_OK: &str = r#"mailauth_probe_success{domain="a.test",target="verifier"} 1"#;
const A_PARSE: &str =
    r#"mailauth_probe_failures_total{domain="a.test",stage="parse",target="verifier"}"#;
const A_TIMEOUT: &str =
    r#"mailauth_probe_failures_total{domain="a.test",stage="receive_timeout",target="verifier"}"#;
const A_REPORTS_DELETED: &str =
    r#"mailauth_probe_messages_deleted_total{domain="a.test",kind="report",target="verifier"}"#;
const B_READ: &str = r#"mailauth_probe_delivery_seconds_count{domain="b.test",target="mailbox"}"#;

/// Reports in the Maildir: (echoed probe token, count).
fn reports(stack: &MailStack) -> Vec<String> {
    stack
        .maildir_messages()
        .iter()
        .filter_map(|raw| {
            let text = String::from_utf8_lossy(raw).into_owned();
            if !text.contains("Summary of Results") {
                return None;
            }
            let rest = text.split("X-Mailauth-Probe: ").nth(1)?;
            Some(rest.split_whitespace().next()?.to_string())
        })
        .collect()
}

/// Waits for `rounds` more probes sent with the verifier in its current mode.
async fn rounds(base: &str, what: &str, rounds: f64) -> String {
    let now = metrics_until(base, "a scrape", |_| true).await;
    let sent0 = value(&now, A_SENT);
    metrics_until(base, what, |b| at_least(b, A_SENT, sent0 + rounds)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verifier_answering_twice_garbage_another_token_bad_mime() {
    mailauth_exporter::tls::install_crypto_provider();
    let mut stack = MailStack::start_with(
        "ok",
        &[
            "--authres",
            "mx.receiver.test; spf=pass; dkim=pass; dmarc=pass",
        ],
    );
    stack.deliver(
        b"From: a@example.org\r\nTo: probe@imap.test\r\nSubject: hello\r\n\r\nSummary of Results\r\nnot a report of ours\r\n",
    );
    let server = util::server().await;
    for d in ["a.test", "b.test"] {
        server.set_zone(d, &util::zone(d, 1, ZONE)).unwrap();
    }
    let text = format!(
        "[exporter]\ndns_interval = \"1s\"\nprobe_interval = \"1s\"\n\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\ncache_max_ttl = \"1s\"\n\n\
         [[domain]]\nname = \"a.test\"\n\n[[domain]]\nname = \"b.test\"\n\n\
         [smtp.out]\n{}\n[mailbox.inbox]\n{}\n\
         [[probe]]\ndomain = \"a.test\"\nfrom = \"probe@a.test\"\nsmtp = \"out\"\ntimeout = \"4s\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"inbox\"\n\
         [[probe]]\ndomain = \"b.test\"\nfrom = \"probe@b.test\"\nsmtp = \"out\"\ntimeout = \"20s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n",
        server.addr(),
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    );
    let config = Config::parse(&text, Path::new("t.toml")).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    metrics_until(&base, "a first good round", |b| has(b, A_OK)).await;

    // Twice: the first report counts, both are deleted (they echo our token).
    stack.set_verifier("twice");
    let now = metrics_until(&base, "a scrape", |_| true).await;
    let deleted0 = value(&now, A_REPORTS_DELETED);
    let body = rounds(&base, "three rounds answered twice", 3.0).await;
    assert!(has(&body, A_OK), "{body}");
    // Few reports left is only cleaning if reports came and went: of the three rounds the
    // first may have been answered once, the next two twice each, and a round deletes its
    // own report, so at least 1 + 2 + 1 were deleted (the last duplicate may be in flight).
    let deleted = value(&body, A_REPORTS_DELETED) - deleted0;
    assert!(
        deleted >= 4.0,
        "{deleted} reports deleted in three rounds answered twice:\n{body}"
    );
    let ours = reports(&stack);
    assert!(
        ours.len() <= 2,
        "duplicate reports are cleaned up with the round: {ours:?}"
    );

    // Garbage that mentions our token: stage parse.
    stack.set_verifier("garbage");
    let now = metrics_until(&base, "a scrape", |_| true).await;
    let parse0 = value(&now, A_PARSE);
    metrics_until(&base, "garbage counted as stage=parse", |b| {
        at_least(b, A_PARSE, parse0 + 2.0)
    })
    .await;

    // A report for a token never issued: never taken for ours, never deleted.
    stack.set_verifier("other-token");
    let now = metrics_until(&base, "a scrape", |_| true).await;
    let (timeout0, b0) = (value(&now, A_TIMEOUT), value(&now, B_READ));
    metrics_until(&base, "another token counted as receive_timeout", |b| {
        at_least(b, A_TIMEOUT, timeout0 + 2.0)
    })
    .await;
    let foreign = "f".repeat(32);
    assert!(
        reports(&stack).iter().filter(|t| **t == foreign).count() >= 2,
        "reports for another token stay in the mailbox"
    );
    // The other probe and the DNS checks went on meanwhile.
    let body = metrics_until(&base, "the other probe read meanwhile", |b| {
        above(b, B_READ, b0)
    })
    .await;
    assert!(
        has(
            &body,
            r#"mailauth_dns_check_success{domain="b.test",check="spf"} 1"#
        ),
        "{body}"
    );

    // Malformed MIME around a readable report: still read.
    stack.set_verifier("bad-mime");
    rounds(&base, "two rounds in malformed MIME", 2.0).await;
    let body = rounds(&base, "one more round in malformed MIME", 1.0).await;
    assert!(has(&body, A_OK), "{body}");

    // Healthy again.
    stack.set_verifier("ok");
    let body = rounds(&base, "two healthy rounds", 2.0).await;
    assert!(has(&body, A_OK), "{body}");
    app.stop();

    let left = stack.maildir_messages();
    assert!(
        left.iter()
            .any(|m| String::from_utf8_lossy(m).contains("not a report of ours")),
        "the unrelated message stays"
    );
    assert!(reports(&stack).iter().filter(|t| **t == foreign).count() >= 2);
}
