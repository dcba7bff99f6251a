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
