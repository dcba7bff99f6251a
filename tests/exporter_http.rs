//! The running exporter over real HTTP on loopback, checking the demo zones served by a
//! real DNS server: metric names, labels and values, the landing page, reload.

mod util;

use util::http::{get, has, http, metrics_until, value};

use std::path::Path;
use std::sync::Arc;

use mailauth_exporter::commands::demo;
use mailauth_exporter::config::Config;
use mailauth_exporter::service::app::App;
use mailauth_exporter::zone_server::ZoneServer;

struct Running {
    base: String,
    _zones: ZoneServer,
    _app: Arc<App>,
}

async fn start(
    config_text: impl FnOnce(&ZoneServer) -> (Config, Option<std::path::PathBuf>),
    lifecycle: bool,
) -> Running {
    let zones = demo::start_zone_server().await.unwrap();
    let (config, path) = config_text(&zones);
    let app = App::start(config, path, lifecycle).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    Running {
        base,
        _zones: zones,
        _app: app,
    }
}

fn demo(zones: &ZoneServer) -> (Config, Option<std::path::PathBuf>) {
    (demo::demo_config(zones, "127.0.0.1:0"), None)
}

/// The body of the first scrape that shows a run of every one of the demo's 7 domains.
async fn all_demo_domains(base: &str) -> String {
    metrics_until(base, "all 7 domains", |b| {
        b.matches("mailauth_dns_check_last_run_timestamp_seconds{domain=")
            .count()
            >= 7 * 3
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_every_domain_with_build_info_and_pass_promtool() {
    let r = start(demo, false).await;
    let body = all_demo_domains(&r.base).await;
    assert!(body.contains("mailauth_build_info{revision=\""), "{body}");
    assert!(has(&body, "mailauth_config_last_reload_successful 1"));
    assert!(has(&body, "mailauth_domains 7"));
    assert!(has(&body, "mailauth_dns_interval_seconds 30"));
    // dnsfail.demo.test answers SERVFAIL: its checks are unknown, never "missing".
    assert!(
        has(
            &body,
            r#"mailauth_dns_check_success{domain="dnsfail.demo.test",check="spf"} 0"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_finding{domain="dnsfail.demo.test",check="spf",code="dns.error",severity="error"} 1"#
        ),
        "{body}"
    );
    assert!(!body.contains(r#"domain="dnsfail.demo.test",check="spf",code="spf.missing""#));
    // Both outcomes counted: the series must be there and above 0 (a missing series is
    // not "not zero").
    for result in ["servfail", "ok"] {
        let series = format!(r#"mailauth_dns_queries_total{{result="{result}"}}"#);
        assert!(value(&body, &series) > 0.0, "{series}:\n{body}");
    }
    // The parked domain done right has no parked finding; the sloppy one has all three.
    assert!(
        has(
            &body,
            r#"mailauth_dns_check_success{domain="parked.demo.test",check="parked"} 1"#
        ),
        "{body}"
    );
    for code in [
        "parked.spf_not_fail_all",
        "parked.dmarc_not_reject",
        "parked.mx_not_null",
    ] {
        let series = format!(r#"domain="sloppy-parked.demo.test",check="parked",code="{code}""#);
        assert!(body.contains(&series), "missing {series}");
    }
    promtool_check_metrics(&body);
}

/// One raw request; the response's head (lower-cased) and its body bytes.
async fn raw(base: &str, method: &str, path: &str) -> (String, Vec<u8>) {
    raw_with(base, method, path, "").await
}

/// [`raw`] with `extra` header lines (each ending in CRLF).
async fn raw_with(base: &str, method: &str, path: &str, extra: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    (head, buf[split..].to_vec())
}

fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The body is streamed from the stored series, yet announces its exact length up front
/// (no chunked encoding), and HEAD gets the same length without a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_streamed_with_their_exact_length() {
    let r = start(demo, false).await;
    all_demo_domains(&r.base).await;
    let (head, body) = raw(&r.base, "GET", "/metrics").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert_eq!(content_length(&head), Some(body.len()), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("# TYPE mailauth_finding gauge\n"));
    assert!(text.ends_with('\n'));
    let (head, body) = raw(&r.base, "HEAD", "/metrics").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.is_empty());
    assert!(content_length(&head).is_some_and(|n| n > 1000), "{head}");
}

/// The body of a `Transfer-Encoding: chunked` response, de-chunked.
fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = chunked.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_field = std::str::from_utf8(&chunked[..line_end]).unwrap();
        let size = usize::from_str_radix(size_field.split(';').next().unwrap().trim(), 16).unwrap();
        chunked = &chunked[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunked[..size]);
        assert_eq!(&chunked[size..size + 2], b"\r\n");
        chunked = &chunked[size + 2..];
    }
}

/// A client that accepts gzip gets the same text compressed; one that refuses it (q=0) or
/// does not ask gets it plain. Both are told the response varies with Accept-Encoding.
/// (That Prometheus reads the compressed body is shown by the tests that scrape with a
/// real Prometheus, which always asks for gzip: tests/sharding.rs, tests/e2e_mail.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_gzipped_for_clients_that_accept_it() {
    use std::io::Read;
    let r = start(demo, false).await;
    let body = all_demo_domains(&r.base).await;
    // Stop the checks so that scrapes in a row see the same state; a run that was being
    // polled as they stopped may still land, so wait until two plain scrapes agree.
    r._app.stop();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = raw_with(&r.base, "GET", "/metrics", "").await.1;
    let (plain_head, plain) = loop {
        let (head, now) = raw_with(&r.base, "GET", "/metrics", "").await;
        if now == last {
            break (head, now);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the state never settled"
        );
        last = now;
    };
    assert!(plain_head.contains("vary: accept-encoding"), "{plain_head}");
    assert!(!plain_head.contains("content-encoding"), "{plain_head}");
    let (head, chunked) = raw_with(
        &r.base,
        "GET",
        "/metrics",
        "Accept-Encoding: deflate, GZip;q=0.8\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("vary: accept-encoding"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let compressed = dechunk(&chunked);
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut text)
        .unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        String::from_utf8(plain).unwrap()
    );
    assert!(
        compressed.len() * 4 < body.len(),
        "{} compressed of {}",
        compressed.len(),
        body.len()
    );
    let (head, refused) = raw_with(
        &r.base,
        "GET",
        "/metrics",
        "Accept-Encoding: gzip;q=0, identity\r\n",
    )
    .await;
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(String::from_utf8(refused).unwrap().starts_with("# HELP"));
}

/// `promtool check metrics` (Debian package prometheus; tests/run.sh installs it).
fn promtool_check_metrics(body: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool not found: run tests/run.sh, which installs the prometheus package");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The one lint promtool raises is about a name DESIGN.md fixes as a contract
    // (`mailauth_dkim_key_bits`: bits are this metric's natural unit); anything else fails.
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !l.starts_with("mailauth_dkim_key_bits use base unit \"bytes\" instead of \"bits\"")
        })
        .collect();
    assert!(
        problems.is_empty(),
        "promtool check metrics found problems:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_page_lists_domains_and_links_details() {
    let r = start(demo, false).await;
    metrics_until(&r.base, "a checked domain", |b| {
        b.contains("healthy.demo.test")
    })
    .await;
    let (status, page) = get(&format!("{}/", r.base)).await;
    assert_eq!(status, 200);
    for d in [
        "healthy.demo.test",
        "lookups.demo.test",
        "sloppy-parked.demo.test",
        "dnsfail.demo.test",
    ] {
        assert!(
            page.contains(&format!("<a href=\"/domain/{d}\">{d}</a>")),
            "{d} missing from landing page"
        );
    }
    assert!(page.contains("href=\"/metrics\""));
    let (status, detail) = get(&format!("{}/domain/sloppy-parked.demo.test", r.base)).await;
    assert_eq!(status, 200);
    assert!(detail.contains("parked.dmarc_not_reject"), "{detail}");
    let (status, _) = get(&format!("{}/domain/unknown.example", r.base)).await;
    assert_eq!(status, 404);
    assert_eq!(get(&format!("{}/-/healthy", r.base)).await.0, 200);
    assert_eq!(get(&format!("{}/-/ready", r.base)).await.0, 200);
    // Lifecycle API off by default.
    assert_eq!(http(&format!("{}/-/reload", r.base), "POST").await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_good_config_and_keeps_old_on_bad() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let path2 = path.clone();
    let r = start(
        move |zones| {
            let text = demo::demo_config_text(zones.addr(), "127.0.0.1:0");
            std::fs::write(&path2, &text).unwrap();
            (Config::load(&path2).unwrap(), Some(path2.clone()))
        },
        true,
    )
    .await;
    metrics_until(&r.base, "open.demo.test", |b| {
        b.contains(r#"domain="open.demo.test""#)
    })
    .await;

    // Drop open.demo.test: its series vanish.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("name = \"open.demo.test\"", "name = \"other.demo.test\"");
    std::fs::write(&path, text).unwrap();
    assert_eq!(http(&format!("{}/-/reload", r.base), "POST").await.0, 200);
    let body = metrics_until(&r.base, "other.demo.test", |b| {
        b.contains(r#"domain="other.demo.test""#)
    })
    .await;
    assert!(!body.contains(r#"domain="open.demo.test""#));

    // A broken config is refused; the running one stays and the failure is visible.
    std::fs::write(&path, "[exporter]\nbogus = 1\n").unwrap();
    let (status, msg) = http(&format!("{}/-/reload", r.base), "POST").await;
    assert_eq!(status, 500);
    assert!(msg.contains("bogus"), "{msg}");
    let body = get(&format!("{}/metrics", r.base)).await.1;
    assert!(has(&body, "mailauth_config_last_reload_successful 0"));
    assert!(has(&body, "mailauth_domains 7"));
    assert!(Path::new(&path).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_endpoint_checks_one_domain_on_demand() {
    let r = start(demo, false).await;
    let (status, body) = get(&format!("{}/probe?domain=Parked.Demo.Test.", r.base)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#"mailauth_dns_check_success{domain="parked.demo.test",check="parked"} 1"#),
        "{body}"
    );
    assert!(body.contains("mailauth_probe_duration_seconds "));
    assert!(
        !body.contains("mailauth_build_info"),
        "only the probed domain's series"
    );
    // A domain that is not configured is checked with default settings.
    let (status, body) = get(&format!("{}/probe?domain=lookups.demo.test", r.base)).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"domain="lookups.demo.test""#));
    assert!(!body.contains(r#"domain="parked.demo.test""#));
    assert_eq!(get(&format!("{}/probe", r.base)).await.0, 400);
    assert_eq!(
        get(&format!("{}/probe?domain=bad%20name", r.base)).await.0,
        400
    );
}

/// An exporter started before its resolver (a normal boot order: unbound after it) sees
/// "connection refused", counts it as `unreachable` (not the REFUSED rcode), and checks
/// again within seconds once the resolver is up, not a whole `dns_interval` (here 1 h)
/// later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_before_its_resolver_it_checks_again_within_seconds() {
    let addr = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let text = demo::demo_config_text(addr, "127.0.0.1:0")
        .replace("dns_interval = \"30s\"", "dns_interval = \"1h\"");
    assert!(text.contains("dns_interval = \"1h\""));
    let config = Config::parse(&text, Path::new("boot.toml")).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    let spf = r#"mailauth_dns_check_success{domain="healthy.demo.test",check="spf"}"#;
    let body = metrics_until(&base, "a first run against no DNS server", |b| {
        b.contains(&format!("{spf} 0"))
    })
    .await;
    assert!(
        value_of(&body, r#"mailauth_dns_queries_total{result="unreachable"}"#).unwrap_or(0.0) > 0.0,
        "{body}"
    );
    assert_eq!(
        value_of(&body, r#"mailauth_dns_queries_total{result="refused"}"#),
        Some(0.0),
        "connection refused is not the REFUSED rcode"
    );
    let _zones = demo::start_zone_server_on(addr).await.unwrap();
    metrics_until(&base, "the retry after the DNS server came up", |b| {
        b.contains(&format!("{spf} 1"))
    })
    .await;
}

/// `/probe?domain=` for a configured domain checks what the scheduler checks, `[dns]
/// blocklists` included: the two agree series for series (durations and timestamps
/// aside). They used to build their specs apart, and `/probe` never ran DNSBL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_and_metrics_agree_for_a_configured_domain() {
    let r = start(demo, false).await;
    let domain = "weak.demo.test";
    let body = metrics_until(&r.base, "weak.demo.test's blocklist check", |b| {
        b.contains(&format!(
            r#"mailauth_dns_check_success{{domain="{domain}",check="dnsbl"}}"#
        ))
    })
    .await;
    let stable = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains(&format!(r#"domain="{domain}""#)))
            .filter(|l| !l.contains("_seconds"))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let (status, probed) = get(&format!("{}/probe?domain={domain}", r.base)).await;
    assert_eq!(status, 200, "{probed}");
    assert!(
        probed.contains(r#"mailauth_dnsbl_listed{domain="weak.demo.test",ip="192.0.2.31",list="bl.demo.test"} 1"#),
        "{probed}"
    );
    assert_eq!(stable(&probed), stable(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_file_is_reread_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("domains.txt");
    std::fs::write(&list, "# generated\nhealthy.demo.test\nweak.demo.test\n").unwrap();
    let list2 = list.clone();
    let r = start(
        move |zones| {
            let text = format!(
                "[exporter]\ndns_interval = \"1h\"\ndomains_file = {:?}\ndomains_file_poll = \"50ms\"\n\n\
                 [dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n\n[[domain]]\nname = \"parked.demo.test\"\nparked = true\n",
                list2.display().to_string(),
                zones.addr()
            );
            (Config::parse(&text, Path::new("test.toml")).unwrap(), None)
        },
        false,
    )
    .await;
    let body = metrics_until(&r.base, "three domains", |b| {
        ["healthy", "weak", "parked"]
            .iter()
            .all(|d| b.contains(&format!("domain=\"{d}.demo.test\"")))
    })
    .await;
    assert!(has(&body, "mailauth_domains 3"));
    assert!(has(&body, "mailauth_domains_file_last_read_successful 1"));
    // Domains of the file are on the landing page and have their own page.
    let (_, page) = get(&format!("{}/", r.base)).await;
    assert!(
        page.contains("<a href=\"/domain/weak.demo.test\">weak.demo.test</a>"),
        "{page}"
    );
    assert_eq!(
        get(&format!("{}/domain/weak.demo.test", r.base)).await.0,
        200
    );

    std::fs::write(
        &list,
        r#"[{"targets": ["healthy.demo.test", "open.demo.test"]}]"#,
    )
    .unwrap();
    let body = metrics_until(&r.base, "open.demo.test to replace weak.demo.test", |b| {
        b.contains("domain=\"open.demo.test\"") && !b.contains("domain=\"weak.demo.test\"")
    })
    .await;
    assert!(has(&body, "mailauth_domains 3"));

    std::fs::write(&list, "[not json").unwrap();
    let body = metrics_until(&r.base, "the read failure", |b| {
        has(b, "mailauth_domains_file_last_read_successful 0")
    })
    .await;
    assert!(
        body.contains("domain=\"open.demo.test\""),
        "a broken file keeps the running list"
    );
}

fn value_of(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

/// A record edited between two runs: the change timestamp moves, the findings follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_changes_are_seen_on_the_next_run() {
    let zones = std::sync::Arc::new(demo::start_zone_server().await.unwrap());
    let addr = zones.addr();
    let text = format!(
        "[exporter]\ndns_interval = \"200ms\"\n[dns]\nnameservers = [\"{addr}\"]\ntimeout = \"1s\"\ncache_max_ttl = \"100ms\"\n\
         [[domain]]\nname = \"healthy.demo.test\"\nexpect_dmarc_policy = \"reject\"\n"
    );
    let config = Config::parse(&text, Path::new("t.toml")).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    let spf_change =
        r#"mailauth_record_change_timestamp_seconds{domain="healthy.demo.test",record="spf"}"#;
    let body = metrics_until(&base, "first run", |b| value_of(b, spf_change).is_some()).await;
    let first = value_of(&body, spf_change).unwrap();
    let dmarc_change =
        r#"mailauth_record_change_timestamp_seconds{domain="healthy.demo.test",record="dmarc"}"#;
    let dmarc_first = value_of(&body, dmarc_change).unwrap();
    assert!(
        has(
            &body,
            r#"mailauth_dmarc_policy{domain="healthy.demo.test",policy="reject"} 1"#
        ),
        "{body}"
    );

    let edited = demo::DEMO_ZONE
        .replace(
            "v=spf1 ip4:192.0.2.10 include:_spf.provider.demo.test -all",
            "v=spf1 ip4:192.0.2.10 include:_spf.provider.demo.test ?all",
        )
        .replace(
            "v=DMARC1; p=reject; rua=mailto:dmarc@healthy.demo.test; adkim=s",
            "v=DMARC1; p=none; rua=mailto:dmarc@healthy.demo.test",
        );
    zones.set_zone("demo.test", &edited).unwrap();
    let body = metrics_until(&base, "the edit", |b| {
        value_of(b, spf_change).is_some_and(|t| t > first)
            && value_of(b, dmarc_change).is_some_and(|t| t > dmarc_first)
    })
    .await;
    assert!(
        has(
            &body,
            r#"mailauth_spf_all_qualifier{domain="healthy.demo.test",qualifier="?all"} 1"#
        ),
        "{body}"
    );
    assert!(
        !body.contains(r#"qualifier="-all""#),
        "the old qualifier's series is gone"
    );
    assert!(
        has(
            &body,
            r#"mailauth_dmarc_policy{domain="healthy.demo.test",policy="none"} 1"#
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"code="dmarc.policy_below_expected",severity="error"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"code="spf.all_neutral",severity="warning"} 1"#),
        "{body}"
    );
    app.stop();
}
