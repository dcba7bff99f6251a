//! Whether TLSA answers were DNSSEC-validated, with real parts on loopback: Knot DNS
//! serving a zone it signs itself (`signed.test`) and an unsigned one (`unsigned.test`),
//! unbound validating them with a trust anchor made from the DS records knot generated,
//! an SMTP server offering STARTTLS with the certificate the TLSA records describe, and
//! the real exporter binary pointed at unbound.

mod util;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType as HRecordType};
use mailauth_exporter::resolver::{HickoryDns, QueryCounters, RecordType, ResolverSettings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A child process killed (by its PID) and reaped when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(what: &'static str, cmd: &mut Command, log: &Path) -> Daemon {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} (tests/run.sh installs it): {e}"));
    Daemon(child)
}

fn zone(origin: &str, body: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 60\n@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n@ IN NS ns.test.\n{body}\n"
    )
}

/// Whether `server` answers `name` SOA with an RRSIG (knot has signed the zone).
async fn answers_signed(server: std::net::SocketAddr, name: &str) -> bool {
    let mut m = Message::query();
    m.metadata.recursion_desired = false;
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true).set_max_payload(1232);
    m.edns = Some(edns);
    m.queries.push(Query::query(
        Name::from_ascii(name).unwrap(),
        HRecordType::SOA,
    ));
    let Ok(socket) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
        return false;
    };
    if socket.send_to(&m.to_vec().unwrap(), server).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf)).await
    else {
        return false;
    };
    Message::from_vec(&buf[..n]).is_ok_and(|r| {
        r.metadata.id == m.metadata.id
            && r.answers
                .iter()
                .any(|rec| rec.record_type() == HRecordType::RRSIG)
    })
}

/// A minimal SMTP server on `listener`: greeting, EHLO with STARTTLS, STARTTLS, TLS.
async fn smtp_server(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut r = BufReader::new(tcp);
            let _ = r.get_mut().write_all(b"220 mx.test ESMTP\r\n").await;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let cmd = line.trim().to_ascii_uppercase();
                if cmd.starts_with("EHLO") {
                    let _ = r
                        .get_mut()
                        .write_all(b"250-mx.test\r\n250 STARTTLS\r\n")
                        .await;
                } else if cmd == "STARTTLS" {
                    let _ = r.get_mut().write_all(b"220 go ahead\r\n").await;
                    if let Ok(mut s) = tokio_rustls::TlsAcceptor::from(tls)
                        .accept(r.into_inner())
                        .await
                    {
                        let mut buf = [0u8; 256];
                        let _ = s.read(&mut buf).await;
                    }
                    return;
                } else {
                    let _ = r.get_mut().write_all(b"221 bye\r\n").await;
                    return;
                }
            }
        });
    }
}

/// The metric line for `family` with `labels` (in their output order), if present.
fn series<'a>(metrics: &'a str, family: &str, labels: &str) -> Option<&'a str> {
    let prefix = format!("{family}{{{labels}}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlsa_validated_only_in_a_signed_zone_behind_a_validating_resolver() {
    mailauth_exporter::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The MX certificate and its DANE-EE SPKI SHA-256 association.
    util::ca_and_leaf(d, "mx", "DNS:mx.signed.test,DNS:mx.unsigned.test");
    let chain: Vec<_> =
        rustls_pemfile::certs(&mut std::fs::read(d.join("mx.pem")).unwrap().as_slice())
            .collect::<Result<_, _>>()
            .unwrap();
    let spki = mailauth_exporter::der::spki(chain[0].as_ref()).unwrap();
    let spki256: String = ring::digest::digest(&ring::digest::SHA256, spki)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = rustls_pemfile::private_key(&mut std::fs::read(d.join("mx.key")).unwrap().as_slice())
        .unwrap()
        .unwrap();
    let tls = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let smtp = tokio::net::TcpListener::bind("127.0.0.93:25")
        .await
        .expect("bind 127.0.0.93:25 (tests run as root)");
    tokio::spawn(smtp_server(smtp, tls));

    // Knot: signed.test signed by knot itself; unsigned.test not; test. above both.
    let knot_addr = util::free_addr(91);
    let mx_zone = format!("@ IN MX 10 mx\nmx IN A 127.0.0.93\n_25._tcp.mx IN TLSA 3 1 1 {spki256}");
    std::fs::write(d.join("signed.test.zone"), zone("signed.test", &mx_zone)).unwrap();
    std::fs::write(
        d.join("unsigned.test.zone"),
        zone(
            "unsigned.test",
            // via: an insecure MX RRset pointing at the signed zone's MX host.
            &format!("{mx_zone}\nvia IN MX 10 mx.signed.test."),
        ),
    )
    .unwrap();
    std::fs::write(d.join("test.zone"), zone("test", "ns IN A 127.0.0.91")).unwrap();
    std::fs::create_dir_all(d.join("knot-db")).unwrap();
    std::fs::create_dir_all(d.join("knot-run")).unwrap();
    let knot_conf = d.join("knot.conf");
    std::fs::write(
        &knot_conf,
        format!(
            "server:\n  rundir: \"{dir}/knot-run\"\n  listen: {ip}@{port}\n\
             database:\n  storage: \"{dir}/knot-db\"\n\
             log:\n  - target: \"{dir}/knot.log\"\n    any: info\n\
             policy:\n  - id: test\n    algorithm: ecdsap256sha256\n    single-type-signing: on\n\
             template:\n  - id: default\n    storage: \"{dir}\"\n    file: \"%s.zone\"\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n\
             zone:\n  - domain: test\n  - domain: signed.test\n    dnssec-signing: on\n    dnssec-policy: test\n  - domain: unsigned.test\n",
            dir = d.display(),
            ip = knot_addr.ip(),
            port = knot_addr.port()
        ),
    )
    .unwrap();
    let _knot = spawn(
        "knotd",
        Command::new("knotd").arg("-c").arg(&knot_conf),
        &d.join("knotd.stderr"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !answers_signed(knot_addr, "signed.test.").await {
        assert!(
            Instant::now() < deadline,
            "knot did not serve signed.test signed: {}",
            std::fs::read_to_string(d.join("knot.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !answers_signed(knot_addr, "unsigned.test.").await,
        "unsigned.test must stay unsigned"
    );

    // The trust anchor: the DS records of the key knot generated.
    let ds = Command::new("keymgr")
        .arg("-c")
        .arg(&knot_conf)
        .args(["signed.test", "ds"])
        .output()
        .expect("keymgr");
    assert!(
        ds.status.success(),
        "{}",
        String::from_utf8_lossy(&ds.stderr)
    );
    let anchor: String = String::from_utf8_lossy(&ds.stdout)
        .lines()
        .filter(|l| l.contains(" DS "))
        .map(|l| l.replacen(" DS ", " 3600 IN DS ", 1) + "\n")
        .collect();
    assert!(anchor.contains("signed.test. 3600 IN DS "), "{anchor}");
    std::fs::write(d.join("anchor.ds"), &anchor).unwrap();

    // unbound: validating, with that anchor; everything under test. from knot.
    let unbound_addr = util::free_addr(92);
    let stub = |zone: &str| {
        format!(
            "stub-zone:\n  name: \"{zone}\"\n  stub-addr: {}@{}\n",
            knot_addr.ip(),
            knot_addr.port()
        )
    };
    let unbound_conf = d.join("unbound.conf");
    std::fs::write(
        &unbound_conf,
        format!(
            "server:\n  interface: {ip}\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n\
             \x20 directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"{dir}/unbound.log\"\n\
             \x20 verbosity: 1\n  val-log-level: 2\n  access-control: 127.0.0.0/8 allow\n\
             \x20 do-not-query-localhost: no\n  do-ip6: no\n  module-config: \"validator iterator\"\n\
             \x20 trust-anchor-file: \"{dir}/anchor.ds\"\n  local-zone: \"test.\" nodefault\n\
             remote-control:\n  control-enable: no\n{}{}{}",
            stub("test"),
            stub("signed.test"),
            stub("unsigned.test"),
            ip = unbound_addr.ip(),
            port = unbound_addr.port(),
            dir = d.display(),
        ),
    )
    .unwrap();
    let _unbound = spawn(
        "unbound",
        Command::new("unbound").arg("-c").arg(&unbound_conf),
        &d.join("unbound.stderr"),
    );

    // The library's view first: the AD bit read from unbound's answers.
    let dns = HickoryDns::new(
        &ResolverSettings {
            nameservers: vec![unbound_addr],
            timeout: Duration::from_secs(2),
            attempts: 1,
            ..ResolverSettings::default()
        },
        Arc::new(QueryCounters::default()),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let signed = loop {
        let a = dns
            .query_authenticated("_25._tcp.mx.signed.test", RecordType::Tlsa)
            .await;
        if a.result.is_ok() {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "unbound did not answer: {:?}; {}",
            a.result,
            std::fs::read_to_string(d.join("unbound.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(signed.authenticated, "signed zone not validated");
    assert_eq!(signed.result.unwrap().records().len(), 1);
    let unsigned = dns
        .query_authenticated("_25._tcp.mx.unsigned.test", RecordType::Tlsa)
        .await;
    assert_eq!(unsigned.result.unwrap().records().len(), 1);
    assert!(
        !unsigned.authenticated,
        "an unsigned zone cannot be validated"
    );

    // The exporter pointed at unbound.
    let listen = util::free_addr(94);
    let config = d.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[exporter]\nlisten_address = \"{listen}\"\ndns_interval = \"1h\"\n\
             [dns]\nnameservers = [\"{unbound_addr}\"]\ntimeout = \"2s\"\nattempts = 1\n\
             [[domain]]\nname = \"signed.test\"\n[[domain]]\nname = \"unsigned.test\"\n\
             [[domain]]\nname = \"via.unsigned.test\"\n"
        ),
    )
    .unwrap();
    let _exporter = spawn(
        "mailauth-exporter",
        Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
            .arg("--config")
            .arg(&config),
        &d.join("exporter.stderr"),
    );
    let family = "mailauth_dane_dnssec_validated";
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let (status, body) = util::http::get(&format!("http://{listen}/metrics")).await;
        if status == 200
            && ["signed.test", "unsigned.test", "via.unsigned.test"]
                .iter()
                .all(|dom| body.contains(&format!("{family}{{domain=\"{dom}\"")))
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no {family} for every domain; last scrape:\n{body}\nexporter log:\n{}",
            std::fs::read_to_string(d.join("exporter.stderr")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at = |dom: &str, mx: &str| format!("domain=\"{dom}\",mx=\"{mx}\"");
    assert_eq!(
        series(&metrics, family, &at("signed.test", "mx.signed.test")),
        Some("1")
    );
    assert_eq!(
        series(&metrics, family, &at("unsigned.test", "mx.unsigned.test")),
        Some("0")
    );
    // Secure TLSA reached through an insecure MX RRset: not used (RFC 7672 §2.2.1).
    assert_eq!(
        series(&metrics, family, &at("via.unsigned.test", "mx.signed.test")),
        Some("0")
    );
    // The certificate matches everywhere; only validation differs.
    for (dom, mx) in [
        ("signed.test", "mx.signed.test"),
        ("unsigned.test", "mx.unsigned.test"),
        ("via.unsigned.test", "mx.signed.test"),
    ] {
        assert_eq!(
            series(&metrics, "mailauth_dane_match", &at(dom, mx)),
            Some("1"),
            "{dom}"
        );
    }
    let dane_findings = |dom: &str| -> Vec<&str> {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("mailauth_finding{")
                    && l.contains(&format!("domain=\"{dom}\""))
                    && l.contains("check=\"dane\"")
            })
            .collect()
    };
    assert_eq!(dane_findings("signed.test"), Vec::<&str>::new());
    for dom in ["unsigned.test", "via.unsigned.test"] {
        let found = dane_findings(dom);
        assert_eq!(found.len(), 1, "{dom}: {found:?}");
        assert!(
            found[0].contains("code=\"dane.not_dnssec_validated\"")
                && found[0].contains("severity=\"warning\""),
            "{dom}: {found:?}"
        );
    }
    assert_eq!(
        series(
            &metrics,
            "mailauth_dns_check_success",
            "domain=\"unsigned.test\",check=\"dane\""
        ),
        Some("1"),
        "a warning does not fail the check"
    );
}
