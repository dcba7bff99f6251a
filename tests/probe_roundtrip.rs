//! Whole probe rounds through the running exporter: submission (aiosmtpd relay with
//! STARTTLS and AUTH), delivery into Dovecot with the receiver's verdicts stamped, a
//! port25-style verifier answering into the same mailbox, IMAP with IDLE, cleanup, and
//! every probe metric on `/metrics`.

mod util;

use std::path::Path;

use mailauth_exporter::config::Config;
use mailauth_exporter::mail::mailbox::Mailbox;
use mailauth_exporter::service::app::App;
use util::http::{has, metrics_until};
use util::mailstack::{MailStack, PASSWORD};

const ZONE: &str = r#"
@       IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
"#;

fn config_text(stack: &MailStack, ns: std::net::SocketAddr, timeout: &str) -> String {
    format!(
        "[exporter]\ndns_interval = \"1h\"\nprobe_interval = \"1h\"\n\n[dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n\n\
         [[domain]]\nname = \"example.test\"\n\n[smtp.out]\n{}\n[mailbox.inbox]\n{}\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"{timeout}\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"inbox\"\n",
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    )
}

async fn serve(config: Config) -> (String, std::sync::Arc<App>) {
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    (base, app)
}

fn mailbox_uids(stack: &MailStack) -> Vec<Vec<u8>> {
    let text = format!("[mailbox.m]\n{}", stack.mailbox_toml("tls"));
    let config = Config::parse(&text, Path::new("m.toml")).unwrap();
    let mut mb = Mailbox::connect(&config.mailbox["m"], PASSWORD).unwrap();
    let all: Vec<Vec<u8>> = (1..=20)
        .filter_map(|u| mb.fetch(u).unwrap())
        .map(|f| f.raw)
        .collect();
    mb.logout();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_round_updates_every_probe_metric_and_cleans_up() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_with(
        "ok",
        &["--authres", "mx.receiver.test; spf=pass smtp.mailfrom=MAILFROM; dkim=pass header.d=example.test; dmarc=pass header.from=example.test", "--verifier-results", "SPF=pass,DKIM=pass,DMARC=pass,\"iprev\"=pass"],
    );
    // Unrelated mail, one of them forging the receiver's authserv-id, stays untouched.
    stack.deliver(b"From: a@example.org\r\nTo: probe@imap.test\r\nSubject: hello\r\n\r\nhi\r\n");
    stack.deliver(b"From: probe@example.test\r\nTo: probe@imap.test\r\nSubject: mailauth-exporter probe 0000\r\nAuthentication-Results: mx.receiver.test; spf=fail\r\n\r\nnot ours\r\n");
    let before = tokio::task::block_in_place(|| mailbox_uids(&stack));
    assert_eq!(before.len(), 2);

    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let config = Config::parse(
        &config_text(&stack, server.addr(), "30s"),
        Path::new("t.toml"),
    )
    .unwrap();
    let (base, app) = serve(config).await;
    let body = metrics_until(&base, "both targets", |b| {
        b.contains(r#"mailauth_probe_success{domain="example.test",target="mailbox"}"#)
            && b.contains(r#"mailauth_probe_success{domain="example.test",target="verifier"}"#)
    })
    .await;
    app.stop();
    for target in ["mailbox", "verifier"] {
        assert!(
            has(
                &body,
                &format!(
                    r#"mailauth_probe_sent_total{{domain="example.test",target="{target}"}} 1"#
                )
            ),
            "{body}"
        );
        assert!(
            has(
                &body,
                &format!(
                    r#"mailauth_probe_delivery_seconds_count{{domain="example.test",target="{target}"}} 1"#
                )
            ),
            "{body}"
        );
    }
    for method in ["spf", "dkim", "dmarc"] {
        let r = format!(
            r#"mailauth_auth_result{{domain="example.test",method="{method}",result="pass",source="receiver",target="mailbox"}} 1"#
        );
        assert!(has(&body, &r), "missing {r}\n{body}");
        let v = format!(
            r#"mailauth_auth_result{{domain="example.test",method="{method}",result="pass",source="verifier",target="verifier"}} 1"#
        );
        assert!(has(&body, &v), "missing {v}\n{body}");
    }
    assert!(
        has(
            &body,
            r#"mailauth_auth_result{domain="example.test",method="iprev",result="pass",source="verifier",target="verifier"} 1"#
        ),
        "{body}"
    );
    // The exporter's own view: SPF passes for 127.0.0.1, the message carries no DKIM
    // signature, DMARC therefore aligns through SPF.
    assert!(
        has(
            &body,
            r#"mailauth_auth_result{domain="example.test",method="spf",result="pass",source="dns",target="mailbox"} 1"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_auth_result{domain="example.test",method="dkim",result="none",source="dns",target="mailbox"} 1"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_auth_result{domain="example.test",method="dmarc",result="pass",source="dns",target="mailbox"} 1"#
        ),
        "{body}"
    );
    // The receiver says dkim=pass, the exporter's own check none: a disagreement.
    assert!(
        has(
            &body,
            r#"mailauth_auth_disagreement{domain="example.test",method="dkim"} 1"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_auth_disagreement{domain="example.test",method="spf"} 0"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_probe_success{domain="example.test",target="verifier"} 1"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_probe_success{domain="example.test",target="mailbox"} 0"#
        ),
        "{body}"
    );
    assert!(body.contains(
        r#"mailauth_probe_last_success_timestamp_seconds{domain="example.test",target="verifier"} "#
    ));
    assert!(!body.contains(
        r#"mailauth_probe_last_success_timestamp_seconds{domain="example.test",target="mailbox"}"#
    ));
    // Failure counters exist from the start (at 0) and none moved.
    assert!(
        has(
            &body,
            r#"mailauth_probe_failures_total{domain="example.test",stage="send",target="mailbox"} 0"#
        ),
        "{body}"
    );
    assert!(
        body.lines()
            .filter(|l| l.starts_with("mailauth_probe_failures_total{"))
            .all(|l| l.ends_with(" 0")),
        "{body}"
    );

    // Our probe and the verifier's report are gone; everything else is byte-for-byte there.
    let after = tokio::task::block_in_place(|| mailbox_uids(&stack));
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_verifier_and_dead_submission_are_failure_stages() {
    mailauth_exporter::tls::install_crypto_provider();
    let mut stack = MailStack::start_with(
        "silent-verifier",
        &[
            "--authres",
            "mx.receiver.test; spf=pass; dkim=pass; dmarc=pass",
        ],
    );
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let config = Config::parse(
        &config_text(&stack, server.addr(), "2s"),
        Path::new("t.toml"),
    )
    .unwrap();
    let (base, app) = serve(config.clone()).await;
    let body = metrics_until(&base, "the verifier timeout", |b| {
        has(b, r#"mailauth_probe_failures_total{domain="example.test",stage="receive_timeout",target="verifier"} 1"#)
    })
    .await;
    app.stop();
    assert!(
        has(
            &body,
            r#"mailauth_probe_failures_total{domain="example.test",stage="receive_timeout",target="verifier"} 1"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_probe_failures_total{domain="example.test",stage="receive_timeout",target="mailbox"} 0"#
        ),
        "the mailbox target arrived: {body}"
    );
    assert!(has(
        &body,
        r#"mailauth_probe_success{domain="example.test",target="verifier"} 0"#
    ));

    stack.stop_relay();
    let (base, app) = serve(config).await;
    let body = metrics_until(&base, "send failures", |b| {
        has(b, r#"mailauth_probe_failures_total{domain="example.test",stage="send",target="verifier"} 1"#)
    })
    .await;
    app.stop();
    assert!(
        has(
            &body,
            r#"mailauth_probe_failures_total{domain="example.test",stage="send",target="mailbox"} 1"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_probe_sent_total{domain="example.test",target="mailbox"} 0"#
        ),
        "{body}"
    );
}

/// Mailbox login refused → stage `mailbox`; no trusted Authentication-Results → `parse`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_and_parse_failure_stages() {
    mailauth_exporter::tls::install_crypto_provider();
    // No --authres: the receiver writes no verdict the exporter trusts.
    let stack = MailStack::start_with("ok", &[]);
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let text = config_text(&stack, server.addr(), "20s");
    let (base, app) = serve(Config::parse(&text, Path::new("t.toml")).unwrap()).await;
    let body = metrics_until(&base, "the parse failure", |b| {
        has(b, r#"mailauth_probe_failures_total{domain="example.test",stage="parse",target="mailbox"} 1"#)
    })
    .await;
    app.stop();
    assert!(
        has(
            &body,
            r#"mailauth_probe_success{domain="example.test",target="mailbox"} 0"#
        ),
        "{body}"
    );

    let wrong = stack.dir.path().join("wrong-password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let text = text.replace(
        &stack.password_file.display().to_string(),
        &wrong.display().to_string(),
    );
    // The submission server refuses the wrong password too: that is `send`; point the
    // mailbox alone at the wrong one.
    let text = text.replacen(
        &wrong.display().to_string(),
        &stack.password_file.display().to_string(),
        1,
    );
    let (base, app) = serve(Config::parse(&text, Path::new("t.toml")).unwrap()).await;
    let body = metrics_until(&base, "the mailbox failure", |b| {
        has(b, r#"mailauth_probe_failures_total{domain="example.test",stage="mailbox",target="mailbox"} 1"#)
    })
    .await;
    app.stop();
    assert!(!body.contains(PASSWORD), "no secret in the metrics");
    assert!(!body.contains("not-the-password"));
}

/// A server without IDLE (polled instead) and without UIDPLUS (nothing is expunged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_idle_or_uidplus() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_full(
        "ok",
        &["--authres", "mx.receiver.test; spf=pass; dkim=pass; dmarc=pass"],
        "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE SORT\n}\n",
    );
    let caps = tokio::task::block_in_place(|| {
        let text = format!("[mailbox.m]\n{}", stack.mailbox_toml("tls"));
        let config = Config::parse(&text, Path::new("m.toml")).unwrap();
        let mb = Mailbox::connect(&config.mailbox["m"], PASSWORD).unwrap();
        let caps = (mb.has_idle, mb.has_uidplus);
        mb.logout();
        caps
    });
    assert_eq!(
        caps,
        (false, false),
        "the server plays one without IDLE and UIDPLUS"
    );
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let (base, app) = serve(
        Config::parse(
            &config_text(&stack, server.addr(), "30s"),
            Path::new("t.toml"),
        )
        .unwrap(),
    )
    .await;
    let body = metrics_until(&base, "both targets", |b| {
        b.contains(r#"mailauth_probe_success{domain="example.test",target="mailbox"}"#)
            && b.contains(r#"mailauth_probe_success{domain="example.test",target="verifier"}"#)
    })
    .await;
    app.stop();
    assert!(
        has(
            &body,
            r#"mailauth_probe_success{domain="example.test",target="verifier"} 1"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_probe_delivery_seconds_count{domain="example.test",target="mailbox"} 1"#
        ),
        "{body}"
    );
    // Without UIDPLUS the probe and the report stay: nothing was expunged.
    let left = tokio::task::block_in_place(|| mailbox_uids(&stack));
    assert_eq!(left.len(), 2, "the probe and the verifier report remain");
}
