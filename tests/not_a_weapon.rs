//! The exporter cannot be turned against its host (issue 14, "Not a weapon"), each fault
//! produced for real on loopback: `/probe` of unwatched domains (no DNS at all by
//! default; with `probe_any_domain`, no connection to non-public addresses and a
//! deadline), a hostile MX streaming an endless SMTP reply, and HTTP clients that hold
//! connections open (half a request head, idle keep-alive, more connections than the cap).

mod util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mailauth_exporter::config::Config;
use mailauth_exporter::server::{HttpLimits, WebSecurity};
use mailauth_exporter::service::app::App;
use mailauth_exporter::zone_server::{Fault, ZoneServer};
use util::http::get;

/// Starts `config_text` and serves it with `limits` on a fresh loopback port.
async fn exporter(config_text: &str, limits: Option<HttpLimits>) -> (String, Arc<App>) {
    let config = Config::parse(config_text, std::path::Path::new("t.toml")).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let limits = limits.unwrap_or_else(|| HttpLimits::of(&app));
    tokio::spawn(mailauth_exporter::server::serve_with_limits(
        app.clone(),
        listener,
        WebSecurity::fixed(Default::default()),
        limits,
        std::future::pending(),
    ));
    (base, app)
}

/// Sum of `mailauth_dns_queries_total` over its results.
fn queries_sent(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("mailauth_dns_queries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Scrapes `/metrics` until `pred` holds (a deadline, not a fixed sleep).
async fn metrics_until(base: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&format!("{base}/metrics")).await;
        if status == 200 && pred(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const ZONE: &str = "\
watched IN TXT \"v=spf1 -all\"\n\
inside IN MX 10 mx.inside.example.test.\n\
mx.inside IN A 127.0.0.1\n\
_25._tcp.mx.inside IN TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000\n\
_mta-sts.inside IN TXT \"v=STSv1; id=1\"\n\
mta-sts.inside IN A 10.0.0.1\n\
slow IN TXT \"v=spf1 -all\"\n";

async fn zones() -> ZoneServer {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    server
}

/// By default `/probe` answers only for watched domains: any other name is 404 and makes
/// the exporter send no DNS query at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_of_an_unwatched_domain_is_404_without_dns() {
    let zones = zones().await;
    let (base, _app) = exporter(
        &format!(
            "[exporter]\ndns_interval = \"1h\"\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\
             [[domain]]\nname = \"watched.example.test\"\n",
            zones.addr()
        ),
        None,
    )
    .await;
    // The watched domain's first run is over once its series are there.
    let before = metrics_until(&base, "the watched domain's first run", |m| {
        m.contains("mailauth_dns_check_last_run_timestamp_seconds{domain=\"watched.example.test\"")
    })
    .await;
    let sent = queries_sent(&before);
    assert!(sent > 0.0, "{before}");

    for name in [
        "inside.example.test",
        "attacker-made-up.example",
        "slow.example.test",
    ] {
        let (status, body) = get(&format!("{base}/probe?domain={name}")).await;
        assert_eq!(status, 404, "{name}: {body}");
        assert!(body.contains("probe_any_domain"), "{body}");
    }
    let after = get(&format!("{base}/metrics")).await.1;
    assert_eq!(
        queries_sent(&after),
        sent,
        "a refused /probe must send no DNS query"
    );
    // The watched domain is still answered (from the caches it already filled).
    let (status, body) = get(&format!("{base}/probe?domain=Watched.Example.Test.")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("domain=\"watched.example.test\""), "{body}");
}

/// With `probe_any_domain`, an unwatched domain whose MTA-STS host and MX resolve to
/// private and loopback addresses gets `*.destination_refused` findings (no connection is
/// attempted, so no `policy_unreachable` / `starttls_failed`), and one whose DNS never
/// answers is cut off at `probe_timeout` with 504.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_domain_probe_refuses_private_destinations_and_has_a_deadline() {
    let zones = zones().await;
    zones
        .set_fault("slow.example.test", Some(Fault::Silence))
        .unwrap();
    let (base, _app) = exporter(
        &format!(
            "[exporter]\ndns_interval = \"1h\"\nprobe_any_domain = true\nprobe_timeout = \"700ms\"\n\
             [dns]\nnameservers = [\"{}\"]\ntimeout = \"5s\"\nattempts = 1\n",
            zones.addr()
        ),
        None,
    )
    .await;
    let (status, body) = get(&format!("{base}/probe?domain=inside.example.test")).await;
    assert_eq!(status, 200, "{body}");
    for code in ["mta_sts.destination_refused", "dane.destination_refused"] {
        assert!(
            body.contains(&format!("code=\"{code}\"")),
            "{code}:\n{body}"
        );
    }
    for code in ["mta_sts.policy_unreachable", "dane.starttls_failed"] {
        assert!(
            !body.contains(&format!("code=\"{code}\"")),
            "{code}:\n{body}"
        );
    }

    let started = Instant::now();
    let (status, body) = get(&format!("{base}/probe?domain=slow.example.test")).await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("probe_timeout"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

/// A hand-written hostile MX (no real server does this): after `prefix`, it streams
/// `filler` for as long as the client reads. Returns its address.
async fn hostile_mx(prefix: &'static [u8], filler: &'static [u8]) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                if tcp.write_all(prefix).await.is_err() {
                    return;
                }
                let chunk = filler.repeat(64 * 1024 / filler.len());
                while tcp.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    addr
}

/// DANE's SMTP reader stops at 512 bytes of one line (RFC 5321 §4.5.3.1.5) and at a
/// bounded reply, long before the connection timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_reply_reader_is_bounded_per_line_and_per_reply() {
    use mailauth_exporter::checks::dane::fetch_chain;
    let timeout = Duration::from_secs(8);

    let endless_line = hostile_mx(b"220-", b"a").await;
    let started = Instant::now();
    let err = fetch_chain(
        "endless-line.test",
        endless_line.ip(),
        endless_line.port(),
        timeout,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("longer than 512 bytes"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4), "{err}");

    let endless_reply = hostile_mx(b"", b"220-mx.example greets you\r\n").await;
    let started = Instant::now();
    let err = fetch_chain(
        "endless-reply.test",
        endless_reply.ip(),
        endless_reply.port(),
        timeout,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("reply of more than"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4), "{err}");
}

/// Reads until the server closes the connection; panics past `within`.
async fn wait_for_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let outcome = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "the server kept the connection open; read so far: {:?}",
        String::from_utf8_lossy(&seen)
    );
    seen
}

fn demo_text(zones: &ZoneServer) -> String {
    mailauth_exporter::commands::demo::demo_config_text(zones.addr(), "127.0.0.1:0")
}

/// Half a request head is not waited for beyond the header-read timeout, and an idle
/// keep-alive connection is closed after it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_http_clients_are_disconnected() {
    let zones = mailauth_exporter::commands::demo::start_zone_server()
        .await
        .unwrap();
    let limits = HttpLimits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 16,
    };
    let (base, _app) = exporter(&demo_text(&zones), Some(limits)).await;
    let addr = base.strip_prefix("http://").unwrap().to_string();

    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    wait_for_close(&mut half, Duration::from_secs(5)).await;

    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = wait_for_close(&mut idle, Duration::from_secs(5)).await;
    assert!(
        String::from_utf8_lossy(&answered).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answered)
    );
}

/// At most `max_connections` are served at once: a client beyond the cap is answered
/// only once a held connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let zones = mailauth_exporter::commands::demo::start_zone_server()
        .await
        .unwrap();
    let limits = HttpLimits {
        header_read_timeout: Duration::from_secs(60),
        max_connections: 2,
    };
    let (base, _app) = exporter(&demo_text(&zones), Some(limits)).await;
    let addr = base.strip_prefix("http://").unwrap().to_string();

    // Two clients hold the two slots with half a head each; each is answered once the
    // server has taken it, so both are known to be held before the third comes.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\nGET /-/healthy HTTP/1.1\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a client within the cap is served")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }

    let mut third = TcpStream::connect(&addr).await.unwrap();
    third
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf))
            .await
            .is_err(),
        "a third connection was served while two held the cap of two"
    );
    drop(held.pop());
    let answer = wait_for_close(&mut third, Duration::from_secs(5)).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

/// A hand-written hostile IMAP server (no real server does this): its greeting is one
/// endless line. The reader gives up after a bounded number of bytes instead of growing
/// its buffer for as long as the bytes come (the read timeout never fires: data keeps
/// arriving).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_reader_is_bounded_against_an_endless_line() {
    let server = hostile_mx(b"* OK ", b"a").await;
    let text = format!(
        "[mailbox.m]\nhost = \"{}\"\nport = {}\ntls = \"none\"\nallow_plaintext_auth = true\n\
         username = \"u\"\npassword_env = \"UNUSED\"\ntimeout = \"5s\"\nmax_message_bytes = 65536\n",
        server.ip(),
        server.port()
    );
    let config = Config::parse(&text, std::path::Path::new("m.toml")).unwrap();
    let cfg = config.mailbox["m"].clone();
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            mailauth_exporter::mail::mailbox::Mailbox::connect(&cfg, "pw").map(|_| ())
        }),
    )
    .await
    .expect("an endless IMAP line must not be read for ever")
    .unwrap();
    let err = outcome.unwrap_err().to_string();
    assert!(err.contains("more than"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
}

/// The web config file is looked at by a background task on a blocking thread, never in
/// the request path: with the file replaced by a FIFO nobody writes (as a hung mount
/// would behave), every request is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_web_config_file_does_not_hold_up_requests() {
    let zones = mailauth_exporter::commands::demo::start_zone_server()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "").unwrap(); // plain HTTP, through the authentication layer
    let security = WebSecurity::load(&web).unwrap();
    let config = Config::parse(&demo_text(&zones), std::path::Path::new("t.toml")).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let limits = HttpLimits::of(&app);
    tokio::spawn(mailauth_exporter::server::serve_with_limits(
        app,
        listener,
        security,
        limits,
        std::future::pending(),
    ));
    assert_eq!(get(&format!("{base}/-/healthy")).await.0, 200);

    // The FIFO keeps a second name, so that it can be opened for writing at the end to
    // release whatever reader is stuck in it.
    let fifo = dir.path().join("web.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let swap = dir.path().join("web.swap");
    std::fs::hard_link(&fifo, &swap).unwrap();
    std::fs::rename(&swap, &web).unwrap();
    // Requests for three seconds (the files are looked at once a second): each answered.
    let until = Instant::now() + Duration::from_secs(3);
    let mut stuck = false;
    while Instant::now() < until && !stuck {
        let answered =
            tokio::time::timeout(Duration::from_secs(2), get(&format!("{base}/-/healthy"))).await;
        stuck = !matches!(answered, Ok((200, _)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A regular file again, then the stuck reader released (an empty web config), so that
    // no thread stays blocked when the runtime shuts down.
    std::fs::write(&swap, "").unwrap();
    std::fs::rename(&swap, &web).unwrap();
    // The thread owns the directory, so that the FIFO outlives the test body until a
    // reader has taken the write.
    std::thread::spawn(move || {
        let _ = std::fs::write(&fifo, "");
        drop(dir);
    });
    assert!(!stuck, "a request waited on the web config file");
}

/// `--web.probe-any-domain` on the real binary opens `/probe` to unwatched domains, as
/// `probe_any_domain = true` does; without it the same request is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_any_domain_flag_opens_probe_on_the_binary() {
    let zones = mailauth_exporter::commands::demo::start_zone_server()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[exporter]\ndns_interval = \"1h\"\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n",
            zones.addr()
        ),
    )
    .unwrap();
    for (flag, expected) in [(false, 404), (true, 200)] {
        let addr = util::free_addr(1);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"));
        cmd.arg("--config")
            .arg(&config)
            .args(["--web.listen-address", &addr.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if flag {
            cmd.arg("--web.probe-any-domain");
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (status, body) = loop {
            let (status, body) = get(&format!("http://{addr}/probe?domain=parked.demo.test")).await;
            if status != 0 {
                break (status, body);
            }
            assert!(Instant::now() < deadline, "the exporter never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(status, expected, "flag {flag}: {body}");
    }
}
