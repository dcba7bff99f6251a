//! Helpers shared by the integration tests: a real DNS server on loopback and clients of it.
#![allow(dead_code)]

pub mod attachments;
pub mod browser;
pub mod dns_proxy;
pub mod exposition;
pub mod http;
pub mod imap_fault;
pub mod mailstack;
pub mod oauth2_bed;
pub mod prometheus;
pub mod smtp_fault;

use std::sync::Arc;
use std::time::Duration;

use mailauth_exporter::resolver::{build_stack, CachingDns, QueryCounters, ResolverSettings};
use mailauth_exporter::zone_server::ZoneServer;

/// A zone file with SOA and NS, `$TTL` as given, followed by `body`.
pub fn zone(origin: &str, ttl: u32, body: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL {ttl}\n@ IN SOA ns.{origin}. hostmaster.{origin}. ( 1 3600 600 86400 {ttl} )\n@ IN NS ns.{origin}.\n{body}\n"
    )
}

/// A free address on a loopback IP of its own (127.0.0.N), for a process under test that
/// binds it itself: other tests bind 127.0.0.1 only, so nothing takes the port meanwhile.
pub fn free_addr(n: u8) -> std::net::SocketAddr {
    std::net::TcpListener::bind(
        ("127.0.0.".to_string() + &n.to_string())
            .as_str()
            .to_owned()
            + ":0",
    )
    .unwrap()
    .local_addr()
    .unwrap()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server under test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `probe` every 200 ms until it gives `Some`, for tests without an async runtime.
/// After `limit` (which only bounds a failure) it panics, naming `what` and adding what
/// `context` says of the state at that moment.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "timed out after {limit:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A loopback DNS server holding one zone, and a caching client of it.
pub async fn serve_zone(origin: &str, body: &str) -> (ZoneServer, Arc<CachingDns>) {
    let server = server().await;
    server.set_zone(origin, &zone(origin, 60, body)).unwrap();
    let (dns, _) = client(&server);
    (server, dns)
}

/// Runs openssl in `dir`; its standard output.
pub fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A test CA (`<name>-ca.pem`) and a certificate (`<name>.pem`, key `<name>.key`) for the
/// subjectAltNames `sans` (e.g. `DNS:localhost,IP:127.0.0.1`) signed by it, in `dir`.
pub fn ca_and_leaf(dir: &std::path::Path, name: &str, sans: &str) {
    let (ca_key, ca, key, csr, ext, cert) = (
        format!("{name}-ca.key"),
        format!("{name}-ca.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
        format!("{name}.pem"),
    );
    let subj = format!("/CN={name} test CA");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subj,
            "-keyout", &ca_key, "-out", &ca,
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=test server",
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    std::fs::write(dir.join(&ext), format!("subjectAltName={sans}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-CAcreateserial",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    );
}

pub async fn server() -> ZoneServer {
    ZoneServer::start("127.0.0.1".parse().unwrap())
        .await
        .expect("start zone server")
}

pub fn settings(server: &ZoneServer) -> ResolverSettings {
    ResolverSettings {
        nameservers: vec![server.addr()],
        timeout: Duration::from_millis(400),
        attempts: 1,
        ..ResolverSettings::default()
    }
}

/// A caching client of `server` and the counters of what reached the wire.
pub fn client(server: &ZoneServer) -> (Arc<CachingDns>, Arc<QueryCounters>) {
    let counters = Arc::new(QueryCounters::default());
    let dns = build_stack(
        &settings(server),
        Duration::from_secs(300),
        counters.clone(),
    )
    .expect("resolver");
    (dns, counters)
}

/// (exit status, stdout, stderr) of the exporter binary run with `args` (the subcommand
/// first), `stdin` written to it and then closed.
pub fn run_binary(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Dropped at the end of the statement: the binary sees the end of its input.
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
