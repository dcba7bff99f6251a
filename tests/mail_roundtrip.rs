//! Probe mail against real servers on loopback: submission with STARTTLS and AUTH
//! (aiosmtpd relay), delivery into Dovecot, reading and deleting over IMAP with TLS.

mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use mailauth_exporter::config::{Config, MailboxConfig, SmtpConfig};
use mailauth_exporter::mail::mailbox::{Fetched, Mailbox};
use mailauth_exporter::mail::send::{new_token, send, ProbeMessage, SendError};
use util::mailstack::{MailStack, PASSWORD};

fn configs(stack: &MailStack, imap_tls: &str) -> (SmtpConfig, MailboxConfig) {
    let text = format!(
        "[[domain]]\nname = \"example.test\"\n\n[smtp.out]\n{}\n[mailbox.inbox]\n{}",
        stack.smtp_toml(),
        stack.mailbox_toml(imap_tls)
    );
    let config = Config::parse(&text, Path::new("test.toml")).unwrap();
    (config.smtp["out"].clone(), config.mailbox["inbox"].clone())
}

fn probe(token: &str) -> ProbeMessage {
    ProbeMessage {
        from: "probe@example.test".into(),
        to: "probe@imap.test".into(),
        token: token.into(),
        domain: "example.test".into(),
    }
}

/// Every message in the mailbox, by UID, as raw bytes.
fn snapshot(mb: &mut Mailbox, uids: &[u32]) -> Vec<Fetched> {
    uids.iter().filter_map(|&u| mb.fetch(u).unwrap()).collect()
}

fn unrelated_messages() -> Vec<String> {
    vec![
        "From: alice@example.org\r\nTo: probe@imap.test\r\nSubject: lunch\r\nMessage-ID: <1@example.org>\r\n\r\nsee you at noon\r\n".into(),
        // Looks like a probe by subject and sender, but carries no token of ours.
        "From: probe@example.test\r\nTo: probe@imap.test\r\nSubject: mailauth-exporter probe 0123456789ab\r\nMessage-ID: <2@example.test>\r\n\r\nnot ours\r\n".into(),
        // Carries the header, with a token this exporter never issued.
        "From: probe@example.test\r\nTo: probe@imap.test\r\nSubject: forged\r\nX-Mailauth-Probe: ffffffffffffffffffffffffffffffff\r\n\r\nforged\r\n".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_round_trip_deletes_only_its_own_message() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = std::sync::Arc::new(MailStack::start("ok"));
    for m in unrelated_messages() {
        stack.deliver(m.as_bytes());
    }
    let (smtp, mailbox) = configs(&stack, "starttls");

    // The mailbox as it was before any probe.
    let mb_cfg = mailbox.clone();
    let before = tokio::task::spawn_blocking(move || {
        let mut mb = Mailbox::connect(&mb_cfg, PASSWORD).unwrap();
        assert!(
            mb.has_idle && mb.has_uidplus,
            "Dovecot offers IDLE and UIDPLUS"
        );
        let all: Vec<u32> = (1..=3).collect();
        let snap = snapshot(&mut mb, &all);
        mb.logout();
        snap
    })
    .await
    .unwrap();
    assert_eq!(before.len(), 3);

    let tokens: Vec<String> = (0..3).map(|_| new_token()).collect();
    for token in &tokens {
        send(&smtp, Some(PASSWORD.to_string()), &probe(token))
            .await
            .expect("submission accepted");
    }

    let mb_cfg = mailbox.clone();
    let tokens2 = tokens.clone();
    let stack2 = stack.clone();
    let after = tokio::task::spawn_blocking(move || {
        let mut mb = Mailbox::connect(&mb_cfg, PASSWORD).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut found = Vec::new();
        for token in &tokens2 {
            loop {
                let uids = mb.search_token(token).unwrap();
                if let Some(&uid) = uids.first() {
                    let msg = mb.fetch(uid).unwrap().unwrap();
                    assert!(String::from_utf8_lossy(&msg.raw).contains(token.as_str()));
                    found.push(uid);
                    break;
                }
                assert!(Instant::now() < deadline, "probe {token} never arrived");
                mb.wait_for_change(Duration::from_secs(2)).unwrap();
            }
        }
        // A forged token and the unrelated messages are never deleted.
        let deleted = mb.delete_probes(&[1, 2, 3], &tokens2).unwrap();
        assert_eq!(deleted, 0, "no unrelated message may be deleted");
        // A duplicate arrival of a probe (delivered twice) is found and deleted with it.
        let duplicate = mb.fetch(found[0]).unwrap().unwrap().raw;
        stack2.deliver(&duplicate);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut all = Vec::new();
        while all.len() < 4 {
            all = tokens2
                .iter()
                .flat_map(|t| mb.search_token(t).unwrap())
                .collect();
            assert!(Instant::now() < deadline, "the duplicate never arrived");
            if all.len() < 4 {
                mb.wait_for_change(Duration::from_secs(2)).unwrap();
            }
        }
        let deleted = mb.delete_probes(&all, &tokens2).unwrap();
        assert_eq!(deleted, 4);
        for token in &tokens2 {
            assert!(mb.search_token(token).unwrap().is_empty());
        }
        let snap = snapshot(&mut mb, &[1, 2, 3]);
        mb.logout();
        snap
    })
    .await
    .unwrap();
    assert_eq!(
        after, before,
        "the mailbox's other messages are byte-for-byte unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sees_a_message_delivered_by_another_connection() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = std::sync::Arc::new(MailStack::start("ok"));
    let (_, mailbox) = configs(&stack, "tls");
    let token = new_token();
    let raw = format!("From: a@example.test\r\nTo: probe@imap.test\r\nSubject: x\r\nX-Mailauth-Probe: {token}\r\n\r\nhi\r\n");
    let stack2 = stack.clone();
    let waited = tokio::task::spawn_blocking(move || {
        let mut mb = Mailbox::connect(&mailbox, PASSWORD).unwrap();
        assert!(mb.search_token(&token).unwrap().is_empty());
        // Deliver from another thread once we are idling.
        let deliverer = std::thread::spawn(move || stack2.deliver(raw.as_bytes()));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(20);
        loop {
            mb.wait_for_change(Duration::from_secs(30)).unwrap();
            if !mb.search_token(&token).unwrap().is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "message not seen");
        }
        deliverer.join().unwrap();
        start.elapsed()
    })
    .await
    .unwrap();
    // IDLE returned on arrival rather than at its 30 s timeout.
    assert!(waited < Duration::from_secs(20), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_failures_are_typed_errors_without_the_password() {
    mailauth_exporter::tls::install_crypto_provider();
    let mut stack = MailStack::start("reject-rcpt");
    let (smtp, _) = configs(&stack, "starttls");
    let token = new_token();

    let err = send(&smtp, Some(PASSWORD.to_string()), &probe(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Rejected { code: 550, .. }),
        "{err:?}"
    );

    let err = send(&smtp, Some("wrong-password".into()), &probe(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Rejected { code: 535, .. }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("wrong-password"));

    // The relay's certificate is signed by the test CA: without it, TLS fails.
    let mut untrusted = smtp.clone();
    untrusted.ca_file = None;
    let err = send(&untrusted, Some(PASSWORD.to_string()), &probe(&token))
        .await
        .unwrap_err();
    assert!(!matches!(err, SendError::Rejected { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD));

    stack.stop_relay();
    let err = send(&smtp, Some(PASSWORD.to_string()), &probe(&token))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Transport(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_failures_are_typed_errors() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start("ok");
    let (_, mailbox) = configs(&stack, "tls");
    let result = tokio::task::spawn_blocking(move || {
        let wrong = Mailbox::connect(&mailbox, "not-the-password").err();
        let mut untrusted = mailbox.clone();
        untrusted.ca_file = None;
        let tls = Mailbox::connect(&untrusted, PASSWORD).err();
        let mut down = mailbox.clone();
        down.port = 1;
        let refused = Mailbox::connect(&down, PASSWORD).err();
        (wrong, tls, refused)
    })
    .await
    .unwrap();
    use mailauth_exporter::mail::mailbox::MailboxError;
    assert!(
        matches!(result.0, Some(MailboxError::Login(_))),
        "{:?}",
        result.0
    );
    assert!(
        matches!(result.1, Some(MailboxError::Tls(_))),
        "{:?}",
        result.1
    );
    assert!(
        matches!(result.2, Some(MailboxError::Connect(_))),
        "{:?}",
        result.2
    );
}

/// Implicit TLS (port 465 style) with AUTH, and plain SMTP without TLS or AUTH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_and_plain_submission() {
    mailauth_exporter::tls::install_crypto_provider();
    for (mode, tls, auth) in [("implicit", "tls", true), ("none", "none", false)] {
        let stack = MailStack::start_full("ok", &["--tls-mode", mode], "");
        let (mut smtp, mailbox) = configs(&stack, "tls");
        smtp.tls = match tls {
            "tls" => mailauth_exporter::config::TlsMode::Tls,
            _ => mailauth_exporter::config::TlsMode::None,
        };
        let password = if auth {
            Some(PASSWORD.to_string())
        } else {
            None
        };
        if !auth {
            smtp.username = None;
        }
        let token = new_token();
        send(&smtp, password, &probe(&token))
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let found = tokio::task::spawn_blocking(move || {
            let mut mb = Mailbox::connect(&mailbox, PASSWORD).unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if !mb.search_token(&token).unwrap().is_empty() {
                    return true;
                }
                if Instant::now() > deadline {
                    return false;
                }
                mb.wait_for_change(Duration::from_secs(2)).unwrap();
            }
        })
        .await
        .unwrap();
        assert!(found, "{mode}: the probe did not arrive");
    }
}
