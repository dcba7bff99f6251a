//! IMAP faults against Dovecot: the connection dropped while the exporter waits in IDLE
//! and in the middle of a message FETCH, a server falling silent mid-FETCH
//! (`util::imap_fault` in front of Dovecot), a
//! mailbox of 10,000 unrelated messages, and a 50 MB probe message of which only the
//! configured bound is read.
//!
//! For each: the fault shows as a failure stage (or the probe completes), the other probe
//! and the DNS checks go on, `/metrics` keeps answering, nothing the exporter did not send
//! is deleted, and after the fault the probe succeeds again by itself.

mod util;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;

use mailauth_exporter::config::Config;
use mailauth_exporter::service::app::App;
use util::http::{above, at_least, has, metrics_until, value};
use util::imap_fault::{ImapFault, Mode};
use util::mailstack::MailStack;

const ZONE: &str = r#"
@       IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  IN TXT "v=DMARC1; p=reject"
"#;

/// Probe a.test reads its mailbox through the fault proxy (plain IMAP), probe b.test
/// reads the same mailbox directly over TLS.
fn config_text(
    stack: &MailStack,
    proxy_port: u16,
    ns: std::net::SocketAddr,
    interval: &str,
    mailbox_timeout: &str,
) -> String {
    let via_proxy = stack
        .mailbox_toml("tls")
        .replace(
            &format!("port = {}", stack.imaps_port),
            &format!("port = {proxy_port}"),
        )
        .replace(
            "tls = \"tls\"",
            "tls = \"none\"\nallow_plaintext_auth = true",
        )
        .replace(
            "timeout = \"10s\"",
            &format!("timeout = \"{mailbox_timeout}\""),
        );
    format!(
        "[exporter]\ndns_interval = \"1s\"\nprobe_interval = \"{interval}\"\n\n\
         [dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\ncache_max_ttl = \"1s\"\n\n\
         [[domain]]\nname = \"a.test\"\n\n[[domain]]\nname = \"b.test\"\n\n\
         [smtp.out]\n{}\n[mailbox.proxied]\n{via_proxy}\n[mailbox.direct]\n{}\n\
         [[probe]]\ndomain = \"a.test\"\nfrom = \"probe@a.test\"\nsmtp = \"out\"\ntimeout = \"30s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"proxied\"\n\
         [[probe]]\ndomain = \"b.test\"\nfrom = \"probe@b.test\"\nsmtp = \"out\"\ntimeout = \"30s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"direct\"\n",
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    )
}

async fn start(
    stack: &MailStack,
    proxy: &ImapFault,
    interval: &str,
    mailbox_timeout: &str,
) -> (
    String,
    std::sync::Arc<App>,
    mailauth_exporter::zone_server::ZoneServer,
) {
    let server = util::server().await;
    for d in ["a.test", "b.test"] {
        server.set_zone(d, &util::zone(d, 1, ZONE)).unwrap();
    }
    let config = Config::parse(
        &config_text(stack, proxy.port, server.addr(), interval, mailbox_timeout),
        Path::new("t.toml"),
    )
    .unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    (base, app, server)
}

const A_MAILBOX: &str =
    r#"mailauth_probe_failures_total{domain="a.test",stage="mailbox",target="mailbox"}"#;
const A_READ: &str = r#"mailauth_probe_delivery_seconds_count{domain="a.test",target="mailbox"}"#;
const B_READ: &str = r#"mailauth_probe_delivery_seconds_count{domain="b.test",target="mailbox"}"#;
const AUTHRES: &str = "mx.receiver.test; spf=pass smtp.mailfrom=MAILFROM; dkim=pass header.d=a.test; dmarc=pass header.from=a.test";

fn unrelated(i: usize) -> String {
    format!(
        "From: someone@example.org\r\nTo: probe@imap.test\r\nSubject: unrelated {i}\r\nMessage-ID: <unrelated-{i}@example.org>\r\n\r\nnot a probe, number {i}\r\n"
    )
}

/// The numbers of the unrelated messages still in the Maildir.
fn unrelated_left(stack: &MailStack) -> HashSet<usize> {
    stack
        .maildir_messages()
        .iter()
        .filter_map(|raw| {
            let text = String::from_utf8_lossy(&raw[..raw.len().min(4096)]).into_owned();
            let rest = text.split("Message-ID: <unrelated-").nth(1)?;
            rest.split('@').next()?.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drops_in_idle_and_in_fetch_are_mailbox_failures_and_heal() {
    mailauth_exporter::tls::install_crypto_provider();
    // Delivery a second after acceptance: the exporter's first search finds nothing, so it
    // waits in IDLE, then FETCHes what arrived.
    let stack = MailStack::start_with("ok", &["--authres", AUTHRES, "--deliver-delay", "1"]);
    for i in 0..3 {
        stack.deliver(unrelated(i).as_bytes());
    }
    let proxy = ImapFault::start(format!("127.0.0.1:{}", stack.imap_port).parse().unwrap()).await;
    let (base, app, _zones) = start(&stack, &proxy, "1s", "2s").await;
    metrics_until(&base, "a first round of both probes", |b| {
        at_least(b, A_READ, 1.0) && at_least(b, B_READ, 1.0)
    })
    .await;

    for mode in [Mode::DropInIdle, Mode::DropInFetch, Mode::StallInFetch] {
        let now = metrics_until(&base, "a scrape", |_| true).await;
        let (fail0, b0) = (value(&now, A_MAILBOX), value(&now, B_READ));
        let dropped0 = proxy.dropped.load(Ordering::Relaxed);
        proxy.set(mode);
        let body = metrics_until(&base, &format!("{mode:?} counted as stage=mailbox"), |b| {
            at_least(b, A_MAILBOX, fail0 + 2.0)
        })
        .await;
        assert!(
            proxy.dropped.load(Ordering::Relaxed) >= dropped0 + 2,
            "{mode:?}: the proxy dropped the sessions"
        );
        assert!(
            has(
                &body,
                r#"mailauth_dns_check_success{domain="b.test",check="spf"} 1"#
            ),
            "{body}"
        );
        metrics_until(&base, "the other probe read meanwhile", |b| {
            above(b, B_READ, b0)
        })
        .await;
        proxy.set(Mode::Pass);
        let t = metrics_until(&base, "a scrape", |_| true).await;
        let read0 = value(&t, A_READ);
        metrics_until(&base, &format!("recovery from {mode:?}"), |b| {
            above(b, A_READ, read0)
        })
        .await;
    }
    app.stop();
    assert_eq!(
        unrelated_left(&stack),
        (0..3).collect::<HashSet<_>>(),
        "unrelated mail must stay"
    );
}

/// 10,000 unrelated messages (written into the Maildir directly) and a probe padded to
/// 50 MB by the relay: the probe is found and read, at most the configured bound of it
/// crosses the wire, the probe is deleted and every unrelated message stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_unrelated_messages_and_a_50_mb_probe() {
    const COUNT: usize = 10_000;
    const PAD: usize = 50 * 1024 * 1024;
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_with(
        "ok",
        &["--authres", AUTHRES, "--pad-bytes", &PAD.to_string()],
    );
    let maildir = stack.maildir();
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for i in 0..COUNT {
        std::fs::write(
            maildir
                .join("cur")
                .join(format!("1700000000.M{i}P1.test:2,S")),
            unrelated(i),
        )
        .unwrap();
    }
    let status = std::process::Command::new("chown")
        .args(["-R", "mail:mail"])
        .arg(stack.dir.path().join("mail"))
        .status()
        .unwrap();
    assert!(status.success());

    let proxy = ImapFault::start(format!("127.0.0.1:{}", stack.imap_port).parse().unwrap()).await;
    // One round only (interval 1h): what is in the mailbox afterwards is that round's doing.
    let (base, app, _zones) = start(&stack, &proxy, "1h", "10s").await;
    let body = metrics_until(&base, "both probes read", |b| {
        at_least(b, A_READ, 1.0) && at_least(b, B_READ, 1.0)
    })
    .await;
    app.stop();
    assert_eq!(value(&body, A_MAILBOX), 0.0, "{body}");
    // The receiver's verdicts sit in the header, within the bytes read.
    assert!(
        has(
            &body,
            r#"mailauth_auth_result{domain="a.test",method="spf",result="pass",source="receiver",target="mailbox"} 1"#
        ),
        "{body}"
    );
    let read = proxy.server_bytes.load(Ordering::Relaxed);
    assert!(
        read < 8 * 1024 * 1024,
        "{read} bytes read for a 50 MB message (bound: max_message_bytes, 1 MiB)"
    );
    let left = stack.maildir_messages();
    assert!(
        left.iter().all(|m| m.len() < PAD),
        "the 50 MB probe (ours) was deleted"
    );
    assert_eq!(
        unrelated_left(&stack).len(),
        COUNT,
        "unrelated mail must stay"
    );
}
