//! The trust boundary (RFC 8601 §5, RFC 7208 §9.1) on real messages: the ARC test suite's
//! messages and real `Received-SPF` fields from `../shared/corpus/` (read where they are),
//! and messages delivered through the real Dovecot and read back over IMAP.

mod util;

use std::path::{Path, PathBuf};

use mailauth_exporter::config::Config;
use mailauth_exporter::mail::mailbox::Mailbox;
use mailauth_exporter::mail::trust::{receiver_view, spf_inputs, SpfIdentity};
use mailauth_exporter::service::app::App;
use util::http::{has, metrics_until};
use util::mailstack::{MailStack, PASSWORD};

fn corpus(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel);
    assert!(
        p.exists(),
        "{} is missing: the corpus lives in ../shared beside the repository",
        p.display()
    );
    p
}

/// Every `message` of the ARC validation suite: the block scalars under `message: |`
/// (read by indentation; the file has duplicate keys a YAML map parser refuses).
fn arc_suite_messages() -> Vec<String> {
    let text = std::fs::read_to_string(corpus(
        "records/arc-test-suite/arc-draft-validation-tests.yml",
    ))
    .unwrap();
    let mut out = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for line in text.lines() {
        if let Some((indent, lines)) = current.as_mut() {
            let spaces = line.len() - line.trim_start().len();
            if line.trim().is_empty() || spaces >= *indent {
                lines.push(line.get(*indent..).unwrap_or("").to_string());
                continue;
            }
            let (_, lines) = current.take().unwrap();
            out.push(lines.join("\n"));
        }
        if line.trim_start().starts_with("message:") && line.trim_end().ends_with('|') {
            let indent = line.len() - line.trim_start().len() + 2;
            current = Some((indent, Vec::new()));
        }
    }
    if let Some((_, lines)) = current {
        out.push(lines.join("\n"));
    }
    out
}

/// The suite's messages were written by `lists.example.org` (Sendmail with milters): its
/// Authentication-Results sits directly *below* its own Received, where a milter inserting
/// at position 1 puts it. Those are the receiver's; one forged at the foot of the header
/// (below the sender's hops) never is.
#[test]
fn arc_suite_messages_receiver_fields_are_read_and_forgeries_below_are_not() {
    let trusted = vec!["lists.example.org".to_string()];
    let messages = arc_suite_messages();
    assert!(messages.len() > 100, "{}", messages.len());
    let mut with_hop = 0;
    let mut read = 0;
    for m in &messages {
        let m = m.replace("\r\n", "\n").replace('\n', "\r\n");
        let Some((head, body)) = m.split_once("\r\n\r\n") else {
            continue;
        };
        // A forgery claiming the receiver's authserv-id, at the very foot of the header.
        let forged = format!(
            "{head}\r\nAuthentication-Results: lists.example.org; spf=fail smtp.mailfrom=x@forged.example; dkim=fail\r\n\r\n{body}"
        );
        let Some(view) = receiver_view(forged.as_bytes(), &trusted) else {
            assert!(
                !head.contains("by lists.example.org"),
                "a message with the receiver's hop must have a view: {head}"
            );
            continue;
        };
        with_hop += 1;
        assert_eq!(
            view.hop.ip,
            Some("72.52.75.15".parse().unwrap()),
            "the receiver's client"
        );
        for f in &view.authentication_results {
            assert_eq!(f.authserv_id.as_deref(), Some("lists.example.org"));
            assert!(
                f.results.iter().all(|r| r.result != "fail"),
                "the forged field at the foot was accepted: {head}"
            );
        }
        if let Some(spf) = view
            .authentication_results
            .first()
            .and_then(|f| f.results.iter().find(|r| r.method == "spf"))
        {
            assert_eq!(spf.result, "pass");
            read += 1;
        }
        // Nothing is trusted for an authserv-id that stamped no Received hop.
        assert_eq!(
            receiver_view(forged.as_bytes(), &["d1.example".to_string()]),
            None
        );
    }
    assert!(
        with_hop > 100,
        "{with_hop} messages with the receiver's hop"
    );
    assert!(
        read * 10 >= with_hop * 9,
        "the receiver's own field is read in (nearly) every message: {read} of {with_hop}"
    );
}

const HOP: &str = "Received: from mail.example.test (mail.example.test [192.0.2.10]) by mx.receiver.test (Postfix) with ESMTPS id 4F1A2; Tue, 1 Dec 2026 09:22:13 +0000\r\n";
const SENDER_HOP: &str = "Received: from laptop (unknown [10.0.0.5]) by mail.example.test (Postfix) with ESMTPSA id 77AB; Tue, 1 Dec 2026 09:22:12 +0000\r\n";

/// Real receivers' Received-SPF fields: accepted above the receiver's hop, never right
/// under it (where the sending relay's own policyd-spf stamp would sit).
#[test]
fn real_received_spf_fields_count_only_above_the_hop() {
    let trusted = vec!["mx.receiver.test".to_string()];
    let dir = corpus("auth-results/received-spf");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let field = std::fs::read_to_string(&path).unwrap();
        let field = field.trim_end().replace("\r\n", "\n").replace('\n', "\r\n") + "\r\n";
        let tail = "From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n";
        let above = format!("{field}{HOP}{SENDER_HOP}{tail}");
        let below = format!("{HOP}{field}{SENDER_HOP}{tail}");
        let v = receiver_view(above.as_bytes(), &trusted).unwrap();
        assert_eq!(v.received_spf.len(), 1, "{}: {field}", path.display());
        let v = receiver_view(below.as_bytes(), &trusted).unwrap();
        assert!(v.received_spf.is_empty(), "{}", path.display());
        n += 1;
    }
    assert!(n >= 10, "{n} fields");
}

/// Messages delivered into Dovecot (which adds Return-Path, Delivered-To and its own LMTP
/// Received on top) and read back over IMAP, one per layout.
#[test]
fn delivered_messages_through_dovecot() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start("ok");
    let tail = "From: probe@example.test\r\nTo: probe@imap.test\r\nSubject: layout\r\n\r\nbody\r\n";
    let layouts = [
        // 0: rspamd behind Postfix: its A-R directly below the receiver's Received.
        format!("{HOP}Authentication-Results: mx.receiver.test; spf=pass smtp.mailfrom=bounce@example.test; dkim=pass header.d=example.test\r\n{SENDER_HOP}X-Layout: rspamd\r\n{tail}"),
        // 1: the sending relay's policyd-spf stamp right under the receiver's hop, and a
        // forged trusted A-R below the sender's hop; the receiver wrote nothing itself.
        format!("{HOP}Received-SPF: pass (mail.example.test: 10.0.0.5 is authorised) client-ip=10.0.0.5; envelope-from=\"probe@example.test\"; helo=laptop;\r\n{SENDER_HOP}Authentication-Results: mx.receiver.test; spf=pass smtp.mailfrom=probe@forged.test; dkim=pass; dmarc=pass\r\nX-Layout: sender-stamps\r\n{tail}"),
        // 2: receiver prepends (Gmail, OpenDKIM, policyd-spf on the receiver): above its hop,
        // with a domain-only smtp.mailfrom.
        format!("Received-SPF: pass (mx.receiver.test: ok) client-ip=192.0.2.10; envelope-from=\"bounces.example.test\"; helo=mail.example.test;\r\nAuthentication-Results: mx.receiver.test; spf=pass smtp.mailfrom=bounces.example.test\r\n{HOP}X-Layout: prepended\r\n{tail}"),
    ];
    for l in &layouts {
        stack.deliver(l.as_bytes());
    }
    let text = format!("[mailbox.m]\n{}", stack.mailbox_toml("tls"));
    let config = Config::parse(&text, Path::new("m.toml")).unwrap();
    let mut mb = Mailbox::connect(&config.mailbox["m"], PASSWORD).unwrap();
    let fetched: Vec<Vec<u8>> = (1..=3)
        .map(|u| mb.fetch(u).unwrap().expect("delivered").raw)
        .collect();
    mb.logout();
    let trusted = config.mailbox["m"].trusted_authserv_ids.clone();
    let find = |tag: &str| {
        fetched
            .iter()
            .find(|m| String::from_utf8_lossy(m).contains(&format!("X-Layout: {tag}")))
            .unwrap()
            .clone()
    };
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();

    let raw = find("rspamd");
    assert!(String::from_utf8_lossy(&raw).starts_with("Return-Path:"));
    let v = receiver_view(&raw, &trusted).unwrap();
    assert_eq!(v.authentication_results.len(), 1);
    let i = spf_inputs(&raw, &trusted).unwrap();
    assert_eq!(i.ip, ip("192.0.2.10"));
    assert_eq!(i.identity.domain, "example.test");
    assert_eq!(
        i.identity.sender, "bounce@example.test",
        "smtp.mailfrom of the receiver's field"
    );

    let raw = find("sender-stamps");
    let v = receiver_view(&raw, &trusted).unwrap();
    assert!(
        v.authentication_results.is_empty(),
        "the forged field below the sender's hop"
    );
    assert!(v.received_spf.is_empty(), "the sender-side stamp");
    let i = spf_inputs(&raw, &trusted).unwrap();
    assert_eq!(
        i.ip,
        ip("192.0.2.10"),
        "the receiver's client, not the stamp's 10.0.0.5"
    );
    // No trusted smtp.mailfrom: the envelope sender of the final delivery (Return-Path).
    assert_eq!(i.identity.domain, "example.test");
    assert_eq!(i.identity.sender, "sender@example.test");

    let raw = find("prepended");
    let v = receiver_view(&raw, &trusted).unwrap();
    assert_eq!(
        (v.authentication_results.len(), v.received_spf.len()),
        (1, 1)
    );
    let i = spf_inputs(&raw, &trusted).unwrap();
    assert_eq!(
        i.identity,
        SpfIdentity {
            sender: "postmaster@bounces.example.test".into(),
            domain: "bounces.example.test".into()
        },
        "a domain-only envelope sender is that domain, not the From domain"
    );
}

/// Through the running exporter: the receiver writes no Received-SPF of its own, the
/// sending relay's policyd-spf stamp (client 10.0.0.5, which the domain's SPF does not
/// authorise) sits right under the receiver's hop. The exporter's own SPF verdict is for
/// the client the receiver's hop names (127.0.0.1, authorised): pass, not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_evaluates_spf_for_the_receivers_client_not_the_senders_stamp() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_with(
        "ok",
        &[
            "--authres",
            "mx.receiver.test; spf=pass smtp.mailfrom=MAILFROM; dkim=none; dmarc=pass header.from=example.test",
            "--sender-received-spf",
        ],
    );
    let server = util::server().await;
    server
        .set_zone(
            "example.test",
            &util::zone(
                "example.test",
                60,
                "@ IN TXT \"v=spf1 ip4:127.0.0.1 -all\"\n_dmarc IN TXT \"v=DMARC1; p=reject\"\n",
            ),
        )
        .unwrap();
    let text = format!(
        "[exporter]\ndns_interval = \"1h\"\nprobe_interval = \"1h\"\n\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n\n\
         [[domain]]\nname = \"example.test\"\n\n[smtp.out]\n{}\n[mailbox.inbox]\n{}\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"20s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n",
        server.addr(),
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    );
    let app = App::start(
        Config::parse(&text, Path::new("t.toml")).unwrap(),
        None,
        false,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    let body = metrics_until(&base, "the exporter's own SPF verdict", |b| {
        b.contains(r#"mailauth_auth_result{domain="example.test",method="spf","#)
            && b.contains(r#"source="dns""#)
    })
    .await;
    app.stop();
    assert!(
        has(
            &body,
            r#"mailauth_auth_result{domain="example.test",method="spf",result="pass",source="dns",target="mailbox"} 1"#
        ),
        "SPF evaluated for 127.0.0.1 from the receiver's hop, not 10.0.0.5 from the sender's stamp:\n{body}"
    );
}
