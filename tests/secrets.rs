//! Secrets never leak: the real binary with debug logging, distinctive passwords given by
//! file and by environment variable, logins that succeed and logins that fail. No log
//! line, metric, landing page or error message may contain a password (nor its base64,
//! as SMTP AUTH PLAIN would carry it).

mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use mailauth_exporter::commands::demo;
use util::http::get;
use util::mailstack::{MailStack, PASSWORD};

const ENV_SECRET: &str = "Env-Secret-9b1d7e33-leakcheck";

fn forbidden() -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        PASSWORD.to_string(),
        ENV_SECRET.to_string(),
        b64(&format!("\0probe\0{PASSWORD}")),
        b64(&format!("\0probe\0{ENV_SECRET}")),
        b64(PASSWORD),
        b64(ENV_SECRET),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_in_logs_metrics_or_pages() {
    let stack = MailStack::start_with(
        "ok",
        &[
            "--authres",
            "mx.receiver.test; spf=pass; dkim=pass; dmarc=pass",
        ],
    );
    let zones = demo::start_zone_server().await.unwrap();
    zones
        .set_zone(
            "example.test",
            &util::zone("example.test", 60, "@ IN TXT \"v=spf1 ip4:127.0.0.1 -all\""),
        )
        .unwrap();
    let listen = util::free_addr(62).to_string();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, format!("{ENV_SECRET}\n")).unwrap();
    // Probe 1 logs in with the right password (from a file); probe 2's submission uses the
    // env secret (refused) and its mailbox the same wrong secret from a file (refused).
    let config = format!(
        "[exporter]\nlisten_address = \"{listen}\"\ndns_interval = \"1h\"\nprobe_interval = \"1h\"\n\
         [dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n\
         [[domain]]\nname = \"example.test\"\n[[domain]]\nname = \"healthy.demo.test\"\n\
         [smtp.good]\n{smtp}\n[smtp.bad]\n{smtp_bad}\n[mailbox.good]\n{mbox}\n[mailbox.bad]\n{mbox_bad}\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"good\"\ntimeout = \"20s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"good\"\n\
         [[probe]]\ndomain = \"healthy.demo.test\"\nfrom = \"probe@healthy.demo.test\"\nsmtp = \"bad\"\ntimeout = \"5s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"bad\"\n",
        ns = zones.addr(),
        smtp = stack.smtp_toml(),
        smtp_bad = stack.smtp_toml().replace(&format!("password_file = \"{}\"", stack.password_file.display()), "password_env = \"MAILAUTH_TEST_SMTP_SECRET\""),
        mbox = stack.mailbox_toml("tls"),
        mbox_bad = stack.mailbox_toml("starttls").replace(&stack.password_file.display().to_string(), &wrong.display().to_string()),
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config).unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
        .arg("--config")
        .arg(&config_path)
        .args(["--log.level", "trace"])
        .env("MAILAUTH_TEST_SMTP_SECRET", ENV_SECRET)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let metrics = loop {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            let (_, body) = get(&format!("{base}/metrics")).await;
            let good =
                body.contains(r#"mailauth_probe_success{domain="example.test",target="mailbox"}"#);
            let bad = body.contains(r#"mailauth_probe_failures_total{domain="healthy.demo.test",stage="send",target="mailbox"} 1"#);
            if good && bad {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "probes did not finish: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let landing = get(&format!("{base}/")).await.1;
    let detail = get(&format!("{base}/domain/example.test")).await.1;
    // A bad config mentioning a password is refused without echoing it.
    std::fs::write(
        dir.path().join("inline.toml"),
        format!("[smtp.x]\nhost = \"h\"\npassword = \"{ENV_SECRET}\"\n"),
    )
    .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
        .args(["config", "check", "--config"])
        .arg(dir.path().join("inline.toml"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let _ = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("probe submission failed"),
        "the failed login is logged: {log}"
    );
    let texts = [
        ("log", log),
        ("metrics", metrics),
        ("landing page", landing),
        ("domain page", detail),
        (
            "config check error",
            String::from_utf8_lossy(&refused.stderr).into_owned(),
        ),
    ];
    for (what, text) in &texts {
        for secret in forbidden() {
            assert!(
                !text.contains(&secret),
                "{what} contains a secret ({secret})"
            );
        }
    }
}

const WRONG_CLIENT_SECRET: &str = "Wrong-Client-Secret-77c2e1d0-leakcheck";

/// OAuth2: the client secret, the configured and rotated refresh tokens and every access
/// token (raw, and inside the base64 of the XOAUTH2 / OAUTHBEARER strings) stay out of
/// the log, the metrics and the pages, for grants that succeed and one that the token
/// endpoint refuses (a wrong client secret from an environment variable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_oauth2_secret_or_token_in_logs_metrics_or_pages() {
    use util::oauth2_bed::{OAuthBed, CLIENT_SECRET, REFRESH_TOKEN, USER};
    let bed = tokio::task::block_in_place(|| OAuthBed::start(3600));
    let zones = demo::start_zone_server().await.unwrap();
    zones
        .set_zone(
            "example.test",
            &util::zone("example.test", 60, "@ IN TXT \"v=spf1 ip4:127.0.0.1 -all\""),
        )
        .unwrap();
    let listen = util::free_addr(63).to_string();
    let dir = tempfile::tempdir().unwrap();
    let cc = bed.oauth2_toml("client_credentials");
    // Another scope: tokens are shared per token URL, client, scope and grant, so the
    // same scope would reuse the good section's token.
    let bad = cc
        .replace(
            &format!(
                "client_secret_file = \"{}\"",
                bed.client_secret_file.display()
            ),
            "client_secret_env = \"MAILAUTH_TEST_OAUTH_SECRET\"",
        )
        .replace("scope = \"mail\"", "scope = \"mail.send\"");
    assert_ne!(cc, bad);
    let config = format!(
        "[exporter]\nlisten_address = \"{listen}\"\ndns_interval = \"1h\"\nprobe_interval = \"1h\"\nstate_dir = \"{state}\"\n\
         [dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n\
         [[domain]]\nname = \"example.test\"\n[[domain]]\nname = \"healthy.demo.test\"\n\
         [smtp.good]\n{smtp}[smtp.good.oauth2]\n{cc}[smtp.bad]\n{smtp}[smtp.bad.oauth2]\n{bad}\
         [mailbox.inbox]\n{mbox}[mailbox.inbox.oauth2]\n{rt}\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"good\"\ntimeout = \"20s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n\
         [[probe]]\ndomain = \"healthy.demo.test\"\nfrom = \"probe@healthy.demo.test\"\nsmtp = \"bad\"\ntimeout = \"5s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n",
        state = dir.path().join("state").display(),
        ns = zones.addr(),
        smtp = bed.smtp_toml("xoauth2"),
        mbox = bed.mailbox_toml("oauthbearer"),
        rt = bed.oauth2_toml("refresh_token"),
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config).unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
        .arg("--config")
        .arg(&config_path)
        .args(["--log.level", "trace"])
        .env("MAILAUTH_TEST_OAUTH_SECRET", WRONG_CLIENT_SECRET)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            let (_, body) = get(&format!("{base}/metrics")).await;
            let good = body
                .contains(r#"mailauth_probe_sent_total{domain="example.test",target="mailbox"} 1"#)
                && body
                    .contains(r#"mailauth_probe_success{domain="example.test",target="mailbox"}"#);
            let bad = body.contains(r#"mailauth_oauth2_token_refresh_failures_total{server="smtp.bad"} 1"#)
                && body.contains(r#"mailauth_probe_failures_total{domain="healthy.demo.test",stage="send",target="mailbox"} 1"#);
            if good && bad {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "probes did not finish: {}\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default(),
            bed.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        metrics
            .contains(r#"mailauth_oauth2_token_refresh_failures_total{server="mailbox.inbox"} 0"#),
        "{metrics}"
    );
    let landing = get(&format!("{base}/")).await.1;
    let detail = get(&format!("{base}/domain/example.test")).await.1;
    let _ = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("invalid_client"),
        "the refused grant is logged by its code: {log}"
    );
    let issued = bed.issued_tokens();
    assert!(issued.len() >= 3, "{issued:?}\n{}", bed.token_log());
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut secrets = vec![
        CLIENT_SECRET.to_string(),
        WRONG_CLIENT_SECRET.to_string(),
        REFRESH_TOKEN.to_string(),
    ];
    for token in &issued {
        secrets.push(token.clone());
        secrets.push(b64(&format!("user={USER}\x01auth=Bearer {token}\x01\x01")));
        secrets.push(b64(&format!(
            "n,a={USER},\x01host=127.0.0.1\x01port={}\x01auth=Bearer {token}\x01\x01",
            bed.stack.imaps_port
        )));
    }
    for (what, text) in [
        ("log", &log),
        ("metrics", &metrics),
        ("landing page", &landing),
        ("domain page", &detail),
    ] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} contains a secret ({secret})"
            );
        }
    }
}
