//! The real binary's `check` and `config check` commands: output shape and exit codes,
//! against the demo zones on a loopback DNS server.

mod util;

use std::process::Command;

use mailauth_exporter::commands::demo;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
}

/// Runs `check` in a blocking thread so the in-process DNS server keeps answering.
async fn check(args: Vec<String>) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || bin().arg("check").args(args).output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(server: &str, rest: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    v.extend([
        "--nameserver".to_string(),
        server.to_string(),
        "--timeout".into(),
        "1s".into(),
    ]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_json_lists_exactly_the_expected_findings() {
    let zones = demo::start_zone_server().await.unwrap();
    let ns = zones.addr().to_string();

    let (code, out, err) = check(args(
        &ns,
        &[
            "healthy.demo.test",
            "--dkim-selector",
            "s1",
            "--sending-ip",
            "192.0.2.10",
            "--helo",
            "mail.healthy.demo.test",
            "--format",
            "json",
        ],
    ))
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["domain"], "healthy.demo.test");
    assert_eq!(v["findings"], serde_json::json!([]), "{out}");
    assert_eq!(v["spf"]["all"], "-all");
    assert_eq!(v["spf"]["dns_lookups"], 1);
    assert_eq!(v["spf"]["void_lookups"], 0);
    assert_eq!(v["dkim"][0]["selector"], "s1");
    assert_eq!(v["dkim"][0]["key_type"], "rsa");
    assert_eq!(v["dkim"][0]["key_bits"], 2048);
    assert_eq!(v["dkim"][0]["testing"], false);
    assert_eq!(v["dmarc"]["p"], "reject");
    assert_eq!(v["dmarc"]["found_at"], "_dmarc.healthy.demo.test");
    assert_eq!(v["dmarc"]["pct"], 100);
    assert_eq!(v["mx"][0]["host"], "mx1.healthy.demo.test");
    assert_eq!(v["mx"][0]["addresses"], serde_json::json!(["127.0.0.1"]));

    // lookups.demo.test, counted by hand from the zone in src/commands/demo.rs: include:a, include:b,
    // include:g (3); in a: include:c, include:d, a, mx (4); in b: include:e, include:f,
    // exists (3); in f: include:_spf.provider (1); in g: a:x (1) = 12. Void: a.lookups has
    // no A and no MX for its `a` and `mx` terms = 2.
    let (code, out, _) = check(args(&ns, &["lookups.demo.test", "--format", "json"])).await;
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(v["spf"]["dns_lookups"], 12, "{out}");
    assert_eq!(v["spf"]["void_lookups"], 2, "{out}");
    assert_eq!(v["spf"]["all"], "~all");
    assert_eq!(codes, ["spf.too_many_lookups"], "{out}");
    assert_eq!(code, 1);

    let (code, out, _) = check(args(&ns, &["open.demo.test", "--format", "json"])).await;
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let mut codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [
            "dmarc.org_domain_fallback",
            "mx.host_unresolvable",
            "spf.multiple_records"
        ],
        "{out}"
    );
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exit_codes_and_text_output() {
    let zones = demo::start_zone_server().await.unwrap();
    let ns = zones.addr().to_string();
    // A DNS failure leaves checks unanswered: exit 2, dns.error, never "missing".
    let (code, out, _) = check(args(&ns, &["dnsfail.demo.test"])).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("dns.error"), "{out}");
    assert!(!out.contains("spf.missing"), "{out}");
    // Text for people: the table, findings with why and fix, no colour when piped.
    let (code, out, _) = check(args(
        &ns,
        &[
            "weak.demo.test",
            "--dkim-selector",
            "s1",
            "--sending-ip",
            "192.0.2.31",
        ],
    ))
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("weak.demo.test\n"), "{out}");
    assert!(
        out.contains("dkim.short_key") && out.contains("dkim.testing"),
        "{out}"
    );
    assert!(out.contains("why: ") && out.contains("fix: "), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "no colour codes when not on a terminal"
    );
    // Bad usage.
    let (code, _, err) = check(vec!["--format".into(), "yaml".into(), "x.test".into()]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = check(vec!["bad domain".into()]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid domain name \"bad domain\""), "{err}");
    // A selector is checked before any query: no lookup of "bad sel._domainkey...".
    let (code, _, err) = check(args(&ns, &["x.test", "--dkim-selector", "bad sel"])).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid DKIM selector \"bad sel\""), "{err}");
    let (code, _, err) = check(args(&ns, &["x.test", "--expect-dmarc-policy", "block"])).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"block\" is not a DMARC policy"), "{err}");
}

#[test]
fn config_check_names_file_line_and_key() {
    let bad = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/configs/bad/bad-ip.toml");
    let out = bin()
        .args(["config", "check", "--config", bad])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-ip.toml:3:16: key `domain.sending_ips`"),
        "{err}"
    );
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let out = bin()
        .args(["config", "check", "--config", good])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("example.com"));
    // serve with a bad config exits 2.
    let out = bin().args(["--config", bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The real binary as a service: serves, reloads on SIGHUP (a bad config keeps the old
/// one), and exits 0 on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_on_sighup_and_stops_on_sigterm() {
    let zones = demo::start_zone_server().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    std::fs::write(&path, demo::demo_config_text(zones.addr(), &listen)).unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = bin()
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let scrape_until = |what: &'static str, pred: fn(&str) -> bool| {
        let base = base.clone();
        let log = log.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                if tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
                    .await
                    .is_ok()
                {
                    let (_, body) = util::http::get(&format!("{base}/metrics")).await;
                    if pred(&body) {
                        return body;
                    }
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "timed out waiting for {what}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    scrape_until("7 domains", |b| {
        b.lines().any(|l| l == "mailauth_domains 7")
    })
    .await;
    let pid = child.id().to_string();
    let kill = |sig: &str| {
        let status = Command::new("kill")
            .args(["-s", sig, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };

    std::fs::write(&path, "[exporter]\nnot_a_key = 1\n").unwrap();
    kill("HUP");
    let body = scrape_until("failed reload", |b| {
        b.lines()
            .any(|l| l == "mailauth_config_last_reload_successful 0")
    })
    .await;
    assert!(
        body.lines().any(|l| l == "mailauth_domains 7"),
        "the old config keeps running"
    );

    let mut text = demo::demo_config_text(zones.addr(), &listen);
    text = text.replace("[[domain]]\nname = \"dnsfail.demo.test\"\n", "");
    std::fs::write(&path, text).unwrap();
    kill("HUP");
    scrape_until("good reload", |b| {
        b.lines()
            .any(|l| l == "mailauth_config_last_reload_successful 1")
            && b.lines().any(|l| l == "mailauth_domains 6")
    })
    .await;

    kill("TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean shutdown exits 0");
}
