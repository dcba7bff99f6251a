//! The HTTP server's security, with the real binary over real TCP on loopback: the web
//! config file (`--web.config.file`) turning on TLS (rustls), client certificates and
//! basic auth; plain HTTP refused on a TLS port; no password in the logs; data endpoints
//! answering GET and HEAD only.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The real binary in demo mode (its own loopback DNS, no config file) with a web config.
struct Exporter {
    child: Child,
    addr: std::net::SocketAddr,
    log: PathBuf,
}

impl Exporter {
    fn start(dir: &Path, web_config: &str, ip: u8) -> Exporter {
        let addr = util::free_addr(ip);
        let web = dir.join("web.yml");
        std::fs::write(&web, web_config).unwrap();
        let log = dir.join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
            .args(["demo", "--web.listen-address", &addr.to_string()])
            .arg("--web.config.file")
            .arg(&web)
            .args(["--log.level", "trace"])
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Exporter { child, addr, log }
    }

    /// Waits until the port accepts connections (a deadline, not a fixed sleep).
    async fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("exporter exited with {status}: {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "not listening: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the whole log.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.log_text()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut std::fs::read(path).unwrap().as_slice())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn pem_key(path: &Path) -> PrivateKeyDer<'static> {
    rustls_pemfile::private_key(&mut std::fs::read(path).unwrap().as_slice())
        .unwrap()
        .unwrap()
}

struct Client {
    ca: PathBuf,
    identity: Option<(PathBuf, PathBuf)>,
    tls12_only: bool,
}

impl Client {
    fn trusting(ca: PathBuf) -> Client {
        Client {
            ca,
            identity: None,
            tls12_only: false,
        }
    }

    fn config(&self) -> Arc<rustls::ClientConfig> {
        mailauth_exporter::tls::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        for c in pem_certs(&self.ca) {
            roots.add(c).unwrap();
        }
        let builder = if self.tls12_only {
            rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        } else {
            rustls::ClientConfig::builder()
        }
        .with_root_certificates(roots);
        Arc::new(match &self.identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(pem_certs(cert), pem_key(key))
                .unwrap(),
            None => builder.with_no_client_auth(),
        })
    }

    /// One HTTPS request; `Err` when TLS or the connection fails before an HTTP status.
    async fn request(
        &self,
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<(u16, String), String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(self.config());
        let name = ServerName::IpAddress(addr.ip().into());
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\nContent-Length: 0\r\n\r\n"
        );
        tls.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        // TLS 1.3 reports a refused client certificate only on the first read.
        let read = tls.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok());
        match (status, read) {
            (Some(s), _) => Ok((s, text)),
            (None, Err(e)) => Err(format!("read: {e}")),
            (None, Ok(_)) => Err(format!("no HTTP answer: {text:?}")),
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Polls until an HTTPS request gets an HTTP status (the exporter is up and serving TLS).
async fn first_answer(client: &Client, exporter: &Exporter, auth: Option<&str>) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .request(exporter.addr, "GET", "/-/healthy", auth)
            .await
        {
            Ok(answer) => return answer,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no HTTPS answer: {e}; log: {}",
                exporter.log_text()
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain-HTTP request to `addr`: the raw bytes answered (empty when the server just
/// closed the connection).
async fn plain_http(addr: std::net::SocketAddr) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_and_refuses_plain_http_and_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    util::ca_and_leaf(dir.path(), "web", "IP:127.0.0.81");
    // Relative paths are relative to the web config file, as in exporter-toolkit.
    let mut exporter = Exporter::start(
        dir.path(),
        "tls_server_config:\n  cert_file: web.pem\n  key_file: web.key\n  min_version: TLS13\n",
        81,
    );
    exporter.wait_listening().await;
    let client = Client::trusting(dir.path().join("web-ca.pem"));
    let (status, text) = first_answer(&client, &exporter, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("Healthy\n"), "{text}");
    let (status, text) = client
        .request(exporter.addr, "GET", "/metrics", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("mailauth_build_info"), "{text}");
    // Plain HTTP on the TLS port gets no HTTP answer at all.
    let answer = plain_http(exporter.addr).await;
    assert!(
        !answer.starts_with("HTTP/"),
        "plain HTTP answered: {answer:?}"
    );
    assert!(!answer.contains("mailauth_"), "{answer:?}");
    // min_version TLS13: a TLS 1.2 client is refused.
    let old = Client {
        tls12_only: true,
        ..Client::trusting(dir.path().join("web-ca.pem"))
    };
    let refused = old.request(exporter.addr, "GET", "/metrics", None).await;
    assert!(refused.is_err(), "TLS 1.2 accepted: {refused:?}");
    // A client that does not trust the server's CA does not get through either.
    util::ca_and_leaf(dir.path(), "other", "IP:127.0.0.81");
    let stranger = Client::trusting(dir.path().join("other-ca.pem"));
    assert!(stranger
        .request(exporter.addr, "GET", "/metrics", None)
        .await
        .is_err());
    let log = exporter.stop();
    assert!(log.contains("tls=true"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    util::ca_and_leaf(dir.path(), "web", "IP:127.0.0.82");
    util::ca_and_leaf(dir.path(), "client", "DNS:prometheus.test");
    util::ca_and_leaf(dir.path(), "rogue", "DNS:prometheus.test");
    let mut exporter = Exporter::start(
        dir.path(),
        "tls_server_config:\n  cert_file: web.pem\n  key_file: web.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n",
        82,
    );
    exporter.wait_listening().await;
    let with_cert = Client {
        identity: Some((dir.path().join("client.pem"), dir.path().join("client.key"))),
        ..Client::trusting(dir.path().join("web-ca.pem"))
    };
    let (status, _) = first_answer(&with_cert, &exporter, None).await;
    assert_eq!(status, 200);
    let (status, text) = with_cert
        .request(exporter.addr, "GET", "/metrics", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("mailauth_build_info"));
    let without = Client::trusting(dir.path().join("web-ca.pem"));
    let refused = without
        .request(exporter.addr, "GET", "/metrics", None)
        .await;
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    let rogue = Client {
        identity: Some((dir.path().join("rogue.pem"), dir.path().join("rogue.key"))),
        ..Client::trusting(dir.path().join("web-ca.pem"))
    };
    let refused = rogue.request(exporter.addr, "GET", "/metrics", None).await;
    assert!(
        refused.is_err(),
        "served a certificate of another CA: {refused:?}"
    );
    exporter.stop();
}

const RIGHT: &str = "Right-Horse-Battery-4f1c7a";
const WRONG: &str = "Wrong-Staple-Guess-93bd02";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_refuses_missing_and_wrong_credentials_and_never_logs_them() {
    let dir = tempfile::tempdir().unwrap();
    util::ca_and_leaf(dir.path(), "web", "IP:127.0.0.83");
    let hash = bcrypt::hash(RIGHT, 4).unwrap();
    let other = bcrypt::hash("another-users-password", 4).unwrap();
    let mut exporter = Exporter::start(
        dir.path(),
        &format!(
            "tls_server_config:\n  cert_file: web.pem\n  key_file: web.key\nbasic_auth_users:\n  prometheus: {hash}\n  grafana: '{other}'\n"
        ),
        83,
    );
    exporter.wait_listening().await;
    let client = Client::trusting(dir.path().join("web-ca.pem"));
    let (status, text) = first_answer(&client, &exporter, None).await;
    assert_eq!(status, 401, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{text}"
    );
    let right = basic("prometheus", RIGHT);
    for (auth, want) in [
        (basic("prometheus", WRONG), 401),
        (basic("nobody", RIGHT), 401),
        (basic("grafana", RIGHT), 401),
        (format!("Bearer {RIGHT}"), 401),
        (right.clone(), 200),
        // Again: now from the short-lived cache of successful verifications.
        (right.clone(), 200),
    ] {
        for path in ["/metrics", "/", "/-/healthy"] {
            let (status, text) = client
                .request(exporter.addr, "GET", path, Some(&auth))
                .await
                .unwrap();
            assert_eq!(status, want, "{path}: {text}");
            if want == 200 && path == "/metrics" {
                assert!(text.contains("mailauth_build_info"), "{text}");
            }
        }
    }
    let log = exporter.stop();
    assert!(
        log.contains("request without valid credentials refused"),
        "refusals are logged (at debug): {log}"
    );
    let encoded_wrong = basic("prometheus", WRONG);
    for secret in [RIGHT, WRONG, &right[6..], &encoded_wrong[6..]] {
        assert!(!log.contains(secret), "the log contains {secret}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_web_config_is_refused_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n  client_auth: RequireAndVerifyClientCert\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
        .args(["demo", "--web.listen-address", "127.0.0.1:0"])
        .arg("--web.config.file")
        .arg(&web)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:4:", web.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("key `tls_server_config.client_auth`"),
        "{stderr}"
    );
    // A certificate file that is not there is named.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
        .args(["demo", "--web.listen-address", "127.0.0.1:0"])
        .arg("--web.config.file")
        .arg(&web)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_endpoints_answer_get_and_head_only() {
    let zones = mailauth_exporter::commands::demo::start_zone_server()
        .await
        .unwrap();
    let config = mailauth_exporter::commands::demo::demo_config(&zones, "127.0.0.1:0");
    let app = mailauth_exporter::service::app::App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app, listener));
    for path in [
        "/metrics",
        "/",
        "/domain/healthy.demo.test",
        "/probe?domain=healthy.demo.test",
        "/-/healthy",
        "/-/ready",
    ] {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let (status, _) = util::http::http(&format!("{base}{path}"), method).await;
            assert_eq!(status, 405, "{method} {path}");
        }
        let (status, body) = util::http::http(&format!("{base}{path}"), "HEAD").await;
        assert_eq!(status, 200, "HEAD {path}");
        assert!(body.is_empty(), "HEAD {path} has a body: {body}");
    }
    let (status, _) = util::http::get(&format!("{base}/-/reload")).await;
    assert_eq!(status, 405, "GET /-/reload");
    zones.shutdown().await;
}

/// Writes `text` to `path` through a new file renamed over it, as deploy tools and
/// certificate renewers do (a reader never sees half a file).
fn replace(path: &Path, text: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificate_and_changed_users_apply_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    util::ca_and_leaf(d, "old", "IP:127.0.0.84");
    util::ca_and_leaf(d, "new", "IP:127.0.0.84");
    std::fs::copy(d.join("old.pem"), d.join("web.pem")).unwrap();
    std::fs::copy(d.join("old.key"), d.join("web.key")).unwrap();
    let web = |password: &str| {
        format!(
            "tls_server_config:\n  cert_file: web.pem\n  key_file: web.key\nbasic_auth_users:\n  prometheus: {}\n",
            bcrypt::hash(password, 4).unwrap()
        )
    };
    let mut exporter = Exporter::start(d, &web(RIGHT), 84);
    exporter.wait_listening().await;
    let old_client = Client::trusting(d.join("old-ca.pem"));
    let new_client = Client::trusting(d.join("new-ca.pem"));
    let (status, _) = first_answer(&old_client, &exporter, Some(&basic("prometheus", RIGHT))).await;
    assert_eq!(status, 200);
    assert!(new_client
        .request(exporter.addr, "GET", "/-/healthy", None)
        .await
        .is_err());

    // Renewal: new certificate and key, and a new password.
    replace(
        &d.join("web.key"),
        &std::fs::read(d.join("new.key")).unwrap(),
    );
    replace(
        &d.join("web.pem"),
        &std::fs::read(d.join("new.pem")).unwrap(),
    );
    replace(&d.join("web.yml"), web(WRONG).as_bytes());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((200, _)) = new_client
            .request(
                exporter.addr,
                "GET",
                "/metrics",
                Some(&basic("prometheus", WRONG)),
            )
            .await
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate and password were not taken up: {}",
            exporter.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(old_client
        .request(exporter.addr, "GET", "/metrics", None)
        .await
        .is_err());
    let (status, _) = new_client
        .request(
            exporter.addr,
            "GET",
            "/metrics",
            Some(&basic("prometheus", RIGHT)),
        )
        .await
        .unwrap();
    assert_eq!(status, 401, "the old password still works");

    // A broken web config is reported (files are looked at when requests come) and the
    // last good settings stay.
    replace(
        &d.join("web.yml"),
        b"basic_auth_users:\n  prometheus: not-a-hash\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exporter.log_text().contains("web config reload failed") {
        let (status, _) = new_client
            .request(
                exporter.addr,
                "GET",
                "/metrics",
                Some(&basic("prometheus", WRONG)),
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "{}", exporter.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = new_client
        .request(
            exporter.addr,
            "GET",
            "/metrics",
            Some(&basic("prometheus", WRONG)),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let log = exporter.stop();
    assert!(log.contains("web config reloaded"), "{log}");
    for secret in [RIGHT, WRONG] {
        assert!(!log.contains(secret), "the log contains {secret}");
    }
}
