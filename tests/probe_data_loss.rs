//! The exporter deletes its own messages and nothing else, also across a restart, and
//! never takes a bounce for the verifier's report. Real Dovecot on loopback (`util::mailstack`),
//! real messages delivered into it over LMTP.
//!
//! - A probe copy that arrives after the exporter was restarted is deleted by the new
//!   process (the token ledger lives in `[exporter] state_dir`), and only that.
//! - Cleanup judges a verifier reply by its sender, its decoded body and the exact token it
//!   echoes: a person forwarding a report inline keeps their mail, a base64 report is
//!   cleaned up, a report cut at `max_message_bytes` and a DSN stay.
//! - A DSN is a `bounce`, a delay notice is waited through.

mod util;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailauth_exporter::config::{Config, TargetKind};
use mailauth_exporter::mail::ledger::TokenLedger;
use mailauth_exporter::mail::mailbox::Mailbox;
use mailauth_exporter::mail::probe::cleanup;
use mailauth_exporter::service::app::App;
use mailauth_exporter::state::StateStore;
use util::attachments::base64_lines;
use util::http::{at_least, has, metrics_until, value};
use util::mailstack::{MailStack, PASSWORD};

const ZONE: &str = r#"
@       IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  IN TXT "v=DMARC1; p=reject"
"#;

/// Every message in the Maildir, as text.
fn maildir_texts(stack: &MailStack) -> Vec<String> {
    stack
        .maildir_messages()
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

/// The probe token in a message's own header, if it is a probe copy.
fn probe_token(text: &str) -> Option<String> {
    let head = text.split("\r\n\r\n").next()?;
    head.lines()
        .find_map(|l| l.strip_prefix("X-Mailauth-Probe: "))
        .map(|t| t.trim().to_string())
}

/// Waits (bounded) until `pred` holds for the Maildir's messages.
fn wait_maildir(stack: &MailStack, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let texts = maildir_texts(stack);
        if pred(&texts) {
            return texts;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn serve(config: Config) -> (String, Arc<App>) {
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    (base, app)
}

const M_SENT: &str = r#"mailauth_probe_sent_total{domain="example.test",target="mailbox"}"#;
const M_TIMEOUT: &str = r#"mailauth_probe_failures_total{domain="example.test",stage="receive_timeout",target="mailbox"}"#;
const M_READ: &str =
    r#"mailauth_probe_delivery_seconds_count{domain="example.test",target="mailbox"}"#;

/// Task: a late probe reply after a restart is cleaned up. The first exporter sends a
/// probe that the receiver delivers only after the round gave up; the exporter is
/// restarted (a new process state: new App, same state_dir); the late copy is in the
/// mailbox; the new exporter's round deletes it, and leaves an unrelated message alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_probe_copy_is_deleted_after_a_restart() {
    mailauth_exporter::tls::install_crypto_provider();
    let mut stack = MailStack::start_with(
        "ok",
        &[
            "--authres",
            "mx.receiver.test; spf=pass; dkim=pass; dmarc=pass",
            "--deliver-delay",
            "2",
        ],
    );
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let text = format!(
        "[exporter]\ndns_interval = \"1h\"\nprobe_interval = \"1h\"\nstate_dir = \"{}\"\n\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n\n[[domain]]\nname = \"example.test\"\n\n\
         [smtp.out]\n{}\n[mailbox.inbox]\n{}\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"1s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n",
        state.path().display(),
        server.addr(),
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    );
    let config = Config::parse(&text, Path::new("t.toml")).unwrap();

    let (base, first) = serve(config.clone()).await;
    metrics_until(&base, "the first round giving up", |b| {
        at_least(b, M_TIMEOUT, 1.0)
    })
    .await;
    first.stop();
    drop(first);
    // The late copy lands after the first exporter is gone.
    let late = tokio::task::block_in_place(|| {
        wait_maildir(&stack, "the late probe copy", |t| {
            t.iter().any(|m| probe_token(m).is_some())
        })
    });
    let late_token = late.iter().find_map(|m| probe_token(m)).unwrap();
    stack.deliver(
        format!(
            "From: a@example.org\r\nTo: probe@imap.test\r\nSubject: about {late_token}\r\n\r\nunrelated, mentions {late_token}\r\n"
        )
        .as_bytes(),
    );

    // Restart: a new exporter on the same state_dir, the receiver prompt again.
    stack.set_deliver_delay(0.0);
    let (base, second) = serve(config).await;
    let body = metrics_until(&base, "the second exporter's round", |b| {
        at_least(b, M_READ, 1.0)
    })
    .await;
    second.stop();
    assert!(has(&body, &format!("{M_SENT} 1")), "{body}");
    assert!(
        has(
            &body,
            r#"mailauth_probe_messages_deleted_total{domain="example.test",kind="probe",target="mailbox"} 2"#
        ),
        "its own copy and the first exporter's late one: {body}"
    );
    let left = maildir_texts(&stack);
    assert!(
        !left
            .iter()
            .any(|m| probe_token(m).as_deref() == Some(&late_token)),
        "the late copy of the first exporter's probe is deleted"
    );
    assert!(
        left.iter().any(|m| m.contains("unrelated, mentions")),
        "a message merely mentioning the token stays"
    );
    assert_eq!(left.len(), 1, "only the unrelated message is left");
}

const TOKEN_UNISSUED: &str = "ffffffffffffffffffffffffffffffff";

fn report_body(token: &str, marker: &str) -> String {
    format!(
        "This is an automatic response. {marker}\r\n\r\n==========================================================\r\n\
         Summary of Results\r\n==========================================================\r\n\
         SPF check:          pass\r\nDKIM check:         pass\r\nDMARC check:        pass\r\n\r\n\
         ==========================================================\r\nOriginal Email\r\n\
         ==========================================================\r\n\r\n\
         From: probe@example.test\r\nX-Mailauth-Probe: {token}\r\nSubject: mailauth-exporter probe\r\n\r\nbody\r\n"
    )
}

fn verifier_reply(token: &str, marker: &str) -> String {
    format!(
        "From: auth-results@verifier.test\r\nTo: probe@example.test\r\nSubject: Authentication Report\r\n\r\n{}",
        report_body(token, marker)
    )
}

/// Task: forwarded/quoted verifier reports are never expunged; base64 reports are; a
/// truncated one stays. The ledger is read from the state_dir by a *new* ledger, as after
/// a restart.
#[test]
fn cleanup_deletes_our_reports_and_nothing_that_only_looks_like_one() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start("ok");
    let state = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (report_token, probe_token_issued) = rt.block_on(async {
        let ledger = Arc::new(TokenLedger::persistent(
            StateStore::open(state.path()).unwrap(),
        ));
        let life = Duration::from_secs(3600);
        (
            ledger
                .issue("m", "example.test", TargetKind::Verifier, life)
                .await,
            ledger
                .issue("m", "example.test", TargetKind::Mailbox, life)
                .await,
        )
    });
    let t = &report_token;

    // Ours: the verifier's plain report, its base64 report, a probe copy.
    stack.deliver(verifier_reply(t, "MARK-plain").as_bytes());
    stack.deliver(
        format!(
            "From: auth-results@verifier.test\r\nTo: probe@example.test\r\nSubject: Authentication Report\r\n\
             X-Test: MARK-base64\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64_lines(report_body(t, "MARK-base64").as_bytes())
        )
        .as_bytes(),
    );
    stack.deliver(
        format!(
            "From: probe@example.test\r\nTo: probe@imap.test\r\nX-Mailauth-Probe: {probe_token_issued}\r\nSubject: probe\r\n\r\nMARK-probe\r\n"
        )
        .as_bytes(),
    );
    // Not ours: a person forwarding our report inline (Gmail style, no '>'), with an
    // attachment; a report cut at max_message_bytes; a DSN quoting the probe; a report
    // for a token never issued; an unrelated mail.
    stack.deliver(
        format!(
            "From: Alice <alice@example.org>\r\nTo: probe@imap.test\r\nSubject: Fwd: Authentication Report\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"F\"\r\n\r\n--F\r\nContent-Type: text/plain\r\n\r\n\
             Look at this. KEEP-forward\r\n\r\n---------- Forwarded message ---------\r\nFrom: auth-results@verifier.test\r\n\
             Subject: Authentication Report\r\n\r\n{}\r\n--F\r\nContent-Type: application/pdf; name=\"notes.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--F--\r\n",
            report_body(t, "")
        )
        .as_bytes(),
    );
    let mut big = verifier_reply(t, "KEEP-truncated");
    big.push_str(&"padding padding padding padding padding padding padding\r\n".repeat(200));
    stack.deliver(big.as_bytes());
    stack.deliver(
        format!(
            "From: MAILER-DAEMON@mail.example.test\r\nTo: probe@example.test\r\nSubject: Delayed Mail\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"D\"\r\n\r\n--D\r\n\
             Content-Type: text/plain\r\n\r\nKEEP-dsn\r\n--D\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mail.example.test\r\n\r\nFinal-Recipient: rfc822; check-auth@verifier.test\r\n\
             Action: delayed\r\nStatus: 4.4.1\r\n\r\n--D\r\nContent-Type: text/rfc822-headers\r\n\r\n\
             From: probe@example.test\r\nX-Mailauth-Probe: {t}\r\n\r\n--D--\r\n"
        )
        .as_bytes(),
    );
    stack.deliver(verifier_reply(TOKEN_UNISSUED, "KEEP-unissued").as_bytes());
    stack.deliver(
        format!("From: bob@example.org\r\nTo: probe@imap.test\r\nSubject: hi\r\n\r\nKEEP-unrelated {t}\r\n")
            .as_bytes(),
    );
    assert_eq!(stack.maildir_messages().len(), 8);

    // "Restart": a new ledger reading the same state_dir, then one cleanup pass.
    let ledger = TokenLedger::persistent(StateStore::open(state.path()).unwrap());
    let tokens = ledger.tokens_blocking("m", "example.test");
    assert_eq!(tokens.len(), 2);
    let text = format!(
        "[mailbox.m]\n{}max_message_bytes = 4096\n\n[smtp.s]\nhost = \"127.0.0.1\"\n\n[[domain]]\nname = \"example.test\"\n\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"s\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"m\"\n",
        stack.mailbox_toml("tls")
    );
    let config = Config::parse(&text, Path::new("m.toml")).unwrap();
    let verifiers = config.probes[0].targets.clone();
    let mut mb = Mailbox::connect(&config.mailbox["m"], PASSWORD).unwrap();
    let done = cleanup(&mut mb, &tokens, &verifiers);
    mb.logout();

    let left = maildir_texts(&stack);
    let gone = |mark: &str| !left.iter().any(|m| m.contains(mark));
    assert!(gone("MARK-plain"), "the verifier's report is deleted");
    assert!(gone("MARK-base64"), "the base64 report is deleted");
    assert!(gone("MARK-probe"), "the probe copy is deleted");
    for keep in [
        "KEEP-forward",
        "KEEP-truncated",
        "KEEP-dsn",
        "KEEP-unissued",
        "KEEP-unrelated",
    ] {
        assert!(!gone(keep), "{keep} must stay: {done:?}");
    }
    assert_eq!(left.len(), 5);
    assert_eq!(
        done,
        mailauth_exporter::mail::probe::Cleanup {
            probes: 1,
            reports: 2
        }
    );
}

const V_OK: &str = r#"mailauth_probe_success{domain="example.test",target="verifier"} 1"#;
const V_SENT: &str = r#"mailauth_probe_sent_total{domain="example.test",target="verifier"}"#;
const V_BOUNCE: &str =
    r#"mailauth_probe_failures_total{domain="example.test",stage="bounce",target="verifier"}"#;
const V_PARSE: &str =
    r#"mailauth_probe_failures_total{domain="example.test",stage="parse",target="verifier"}"#;

/// Task: a DSN or delay notice is not the verifier's reply. A real multipart/report DSN
/// (as Postfix writes one) arrives instead of the report: stage `bounce`, not `parse`. A
/// delay notice arriving before the report: the round waits for the report and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsn_is_a_bounce_and_a_delay_notice_is_waited_through() {
    mailauth_exporter::tls::install_crypto_provider();
    let mut stack = MailStack::start("ok");
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let text = format!(
        "[exporter]\ndns_interval = \"1h\"\nprobe_interval = \"1s\"\n\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n\n[[domain]]\nname = \"example.test\"\n\n\
         [smtp.out]\n{}\n[mailbox.inbox]\n{}\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"5s\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"inbox\"\n\
         reply_from = \"auth-results@verifier.test\"\n",
        server.addr(),
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    );
    let (base, app) = serve(Config::parse(&text, Path::new("t.toml")).unwrap()).await;
    metrics_until(&base, "a first good round", |b| has(b, V_OK)).await;

    stack.set_verifier("dsn-failed");
    let body = metrics_until(&base, "a bounce", |b| at_least(b, V_BOUNCE, 1.0)).await;
    assert_eq!(
        value(&body, V_PARSE),
        0.0,
        "a DSN is no parse failure: {body}"
    );

    stack.set_verifier("delayed");
    let now = metrics_until(&base, "a scrape", |_| true).await;
    let sent0 = value(&now, V_SENT);
    let bounces = value(&now, V_BOUNCE);
    let body = metrics_until(&base, "two rounds with a delay notice first", |b| {
        at_least(b, V_SENT, sent0 + 3.0)
    })
    .await;
    app.stop();
    assert!(
        has(&body, V_OK),
        "the report after the delay notice counts: {body}"
    );
    assert_eq!(value(&body, V_PARSE), 0.0, "{body}");
    assert!(
        value(&body, V_BOUNCE) <= bounces + 1.0,
        "a delay notice is not a bounce (at most the round in flight when the mode changed): {body}"
    );
    // The DSNs stay in the mailbox: they are the operator's evidence, not ours to delete.
    let left = maildir_texts(&stack);
    assert!(left
        .iter()
        .any(|m| m.contains("report-type=delivery-status")));
}
