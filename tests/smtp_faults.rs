//! Submission-server faults, each produced for real by `util::smtp_fault` in front of the
//! real relay: 421 at the greeting, 451/550 to MAIL, 451/554 after DATA, the connection
//! dropped in the middle of DATA, STARTTLS offered and then no TLS.
//!
//! One probe goes through the faulty server, another through the real one. For every
//! fault: the faulty probe counts `stage="send"` and nothing as sent, the other probe and
//! the DNS checks go on, `/metrics` keeps answering, the unrelated mail in the mailbox is
//! untouched, and once the fault ends the faulty probe succeeds again by itself.

mod util;

use std::path::Path;

use mailauth_exporter::config::Config;
use mailauth_exporter::mail::mailbox::Mailbox;
use mailauth_exporter::service::app::App;
use util::http::{above, at_least, has, metrics_until, value};
use util::mailstack::{MailStack, PASSWORD};
use util::smtp_fault::{Mode, SmtpFault};

const ZONE: &str = r#"
@       IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  IN TXT "v=DMARC1; p=reject"
"#;

fn config_text(stack: &MailStack, fault_port: u16, ns: std::net::SocketAddr) -> String {
    let faulty = stack
        .smtp_toml()
        .replace(
            &format!("port = {}", stack.smtp_port),
            &format!("port = {fault_port}"),
        )
        .replace("timeout = \"10s\"", "timeout = \"5s\"");
    format!(
        "[exporter]\ndns_interval = \"1s\"\nprobe_interval = \"1s\"\n\n\
         [dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\ncache_max_ttl = \"1s\"\n\n\
         [[domain]]\nname = \"a.test\"\n\n[[domain]]\nname = \"b.test\"\n\n\
         [smtp.faulty]\n{faulty}\n[smtp.direct]\n{}\n[mailbox.inbox]\n{}\n\
         [[probe]]\ndomain = \"a.test\"\nfrom = \"probe@a.test\"\nsmtp = \"faulty\"\ntimeout = \"20s\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"inbox\"\n\
         [[probe]]\ndomain = \"b.test\"\nfrom = \"probe@b.test\"\nsmtp = \"direct\"\ntimeout = \"20s\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"inbox\"\n",
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    )
}

/// The first `n` messages by UID, raw (the unrelated ones delivered before the exporter
/// started hold UIDs 1..=n).
fn first_messages(stack: &MailStack, n: u32) -> Vec<Option<Vec<u8>>> {
    let text = format!("[mailbox.m]\n{}", stack.mailbox_toml("tls"));
    let config = Config::parse(&text, Path::new("m.toml")).unwrap();
    let mut mb = Mailbox::connect(&config.mailbox["m"], PASSWORD).unwrap();
    let all = (1..=n)
        .map(|u| mb.fetch(u).unwrap().map(|f| f.raw))
        .collect();
    mb.logout();
    all
}

const A_SEND: &str =
    r#"mailauth_probe_failures_total{domain="a.test",stage="send",target="verifier"}"#;
const A_SENT: &str = r#"mailauth_probe_sent_total{domain="a.test",target="verifier"}"#;
const A_OK: &str = r#"mailauth_probe_success{domain="a.test",target="verifier"} 1"#;
const B_DELIVERED: &str =
    r#"mailauth_probe_delivery_seconds_count{domain="b.test",target="verifier"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_submission_fault_is_a_send_failure_and_heals() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_with("ok", &["--authres", "mx.receiver.test; spf=pass"]);
    let unrelated: &[&[u8]] = &[
        b"From: a@example.org\r\nTo: probe@imap.test\r\nSubject: hello\r\n\r\nhi\r\n",
        b"From: probe@a.test\r\nTo: probe@imap.test\r\nSubject: mailauth-exporter probe 0000\r\nX-Mailauth-Probe: 00000000000000000000000000000000\r\n\r\nnot from this run\r\n",
    ];
    for m in unrelated {
        stack.deliver(m);
    }
    let before = tokio::task::block_in_place(|| first_messages(&stack, 2));
    assert!(before.iter().all(Option::is_some));

    let fault = SmtpFault::start(
        format!("127.0.0.1:{}", stack.smtp_port).parse().unwrap(),
        &stack.pki.cert,
        &stack.pki.key,
    )
    .await;
    let server = util::server().await;
    for d in ["a.test", "b.test"] {
        server.set_zone(d, &util::zone(d, 1, ZONE)).unwrap();
    }
    let config = Config::parse(
        &config_text(&stack, fault.port, server.addr()),
        Path::new("t.toml"),
    )
    .unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));

    // Through the pass-through first: both probes succeed.
    metrics_until(&base, "the first round through the pass-through", |b| {
        has(b, A_OK) && at_least(b, B_DELIVERED, 1.0)
    })
    .await;

    for mode in [
        Mode::Greeting421,
        Mode::Mail451,
        Mode::Mail550,
        Mode::Data451,
        Mode::Data554,
        Mode::DropMidData,
        Mode::StartTlsBroken,
    ] {
        let now = metrics_until(&base, "a scrape", |_| true).await;
        let (send0, b0) = (value(&now, A_SEND), value(&now, B_DELIVERED));
        fault.set(mode);
        // Two failed rounds: the second certainly went through the fault server.
        let body = metrics_until(&base, &format!("{mode:?} counted as stage=send"), |b| {
            at_least(b, A_SEND, send0 + 2.0)
        })
        .await;
        let sent_during = value(&body, A_SENT);
        let body = metrics_until(&base, &format!("one more failed round ({mode:?})"), |b| {
            at_least(b, A_SEND, send0 + 3.0)
        })
        .await;
        assert_eq!(
            value(&body, A_SENT),
            sent_during,
            "{mode:?}: a refused message is not counted as sent\n{body}"
        );
        assert!(
            has(
                &body,
                r#"mailauth_probe_success{domain="a.test",target="verifier"} 0"#
            ),
            "{mode:?}\n{body}"
        );
        // The other probe and the DNS checks carry on.
        let body = metrics_until(&base, "the other probe delivered meanwhile", |b| {
            above(b, B_DELIVERED, b0)
        })
        .await;
        assert!(
            has(
                &body,
                r#"mailauth_dns_check_success{domain="b.test",check="spf"} 1"#
            ),
            "{body}"
        );
        // The fault ends: the probe succeeds again by itself.
        fault.set(Mode::Pass);
        let t = metrics_until(&base, "a scrape", |_| true).await;
        let sent0 = value(&t, A_SENT);
        metrics_until(&base, &format!("recovery from {mode:?}"), |b| {
            above(b, A_SENT, sent0) && has(b, A_OK)
        })
        .await;
    }
    assert!(
        *fault.received.lock().unwrap() >= 2,
        "the DATA faults got whole messages"
    );
    app.stop();

    // The exporter deleted its own probes and reports only: the unrelated mail is intact.
    let after = tokio::task::block_in_place(|| first_messages(&stack, 2));
    assert_eq!(after, before, "an unrelated message was deleted or changed");
}
