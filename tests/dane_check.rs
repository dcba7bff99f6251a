//! DANE for SMTP against STARTTLS servers on port 25 of loopback addresses (small SMTP
//! servers written here, certificates from a test CA), with TLSA records computed by
//! openssl from the certificates themselves.

mod util;

use mailauth_exporter::name::DomainName;
use std::sync::Arc;
use std::time::Duration;

use mailauth_exporter::checks::newer_records::Https;
use mailauth_exporter::checks::{check_domain_with, DomainSpec};
use mailauth_exporter::findings::{Check, Code};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn sh(dir: &std::path::Path, cmd: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A minimal SMTP server: greeting, EHLO (with or without STARTTLS), STARTTLS, TLS.
async fn smtp_server(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
                    let caps: &[u8] = if tls.is_some() {
                        b"250-mx.test\r\n250 STARTTLS\r\n"
                    } else {
                        b"250-mx.test\r\n250 8BITMIME\r\n"
                    };
                    let _ = r.get_mut().write_all(caps).await;
                } else if cmd == "STARTTLS" {
                    let _ = r.get_mut().write_all(b"220 go ahead\r\n").await;
                    let Some(config) = tls.clone() else { return };
                    let Ok(mut s) = tokio_rustls::TlsAcceptor::from(config)
                        .accept(r.into_inner())
                        .await
                    else {
                        return;
                    };
                    let mut buf = [0u8; 256];
                    let _ = s.read(&mut buf).await;
                    return;
                } else {
                    let _ = r.get_mut().write_all(b"221 bye\r\n").await;
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlsa_records_against_the_presented_certificate() {
    mailauth_exporter::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sh(d, "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=dane CA' -keyout ca.key -out ca.pem 2>/dev/null");
    sh(d, "openssl req -newkey rsa:2048 -nodes -subj '/CN=mx1.dane.example.test' -keyout mx.key -out mx.csr 2>/dev/null");
    std::fs::write(d.join("ext"), "subjectAltName=DNS:mx1.dane.example.test\n").unwrap();
    sh(d, "openssl x509 -req -days 30 -in mx.csr -CA ca.pem -CAkey ca.key -CAcreateserial -extfile ext -out mx.pem 2>/dev/null");
    let spki256 = sh(d, "openssl x509 -in mx.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1");
    let cert512 = sh(
        d,
        "openssl x509 -in mx.pem -outform DER | openssl dgst -sha512 -r | cut -d' ' -f1",
    );
    let ca256 = sh(
        d,
        "openssl x509 -in ca.pem -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1",
    );

    let certs = rustls_pemfile::certs(
        &mut format!(
            "{}{}",
            std::fs::read_to_string(d.join("mx.pem")).unwrap(),
            std::fs::read_to_string(d.join("ca.pem")).unwrap()
        )
        .as_bytes(),
    )
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    let key = rustls_pemfile::private_key(&mut std::fs::read(d.join("mx.key")).unwrap().as_slice())
        .unwrap()
        .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let with_tls = tokio::net::TcpListener::bind("127.0.0.72:25")
        .await
        .expect("bind 127.0.0.72:25 (tests run as root)");
    let without_tls = tokio::net::TcpListener::bind("127.0.0.73:25")
        .await
        .expect("bind 127.0.0.73:25");
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(smtp_server(with_tls, Some(config), connections.clone()));
    tokio::spawn(smtp_server(without_tls, None, Arc::new(Default::default())));

    // TLSA sets belong to MX host names, so each case has its own host on the server.
    let zone = format!(
        "ee IN MX 10 ee-mx.dane.example.test.\n\
         ta IN MX 10 ta-mx.dane.example.test.\n\
         wrong IN MX 10 wrong-mx.dane.example.test.\n\
         pkix IN MX 10 pkix-mx.dane.example.test.\n\
         plain IN MX 10 mx2.dane.example.test.\n\
         none IN MX 10 mx3.dane.example.test.\n\
         ee-mx.dane IN A 127.0.0.72\nta-mx.dane IN A 127.0.0.72\nwrong-mx.dane IN A 127.0.0.72\n\
         pkix-mx.dane IN A 127.0.0.72\nmx2.dane IN A 127.0.0.73\nmx3.dane IN A 127.0.0.72\n\
         _25._tcp.ee-mx.dane IN TLSA 3 1 1 {spki256}\n\
         _25._tcp.ee-mx.dane IN TLSA 3 0 2 {cert512}\n\
         _25._tcp.ta-mx.dane IN TLSA 2 0 1 {ca256}\n\
         _25._tcp.wrong-mx.dane IN TLSA 3 1 1 {}\n\
         _25._tcp.pkix-mx.dane IN TLSA 1 1 1 {spki256}\n\
         _25._tcp.mx2.dane IN TLSA 3 1 1 {spki256}\n",
        "00".repeat(32)
    );
    let (_s, dns) = util::serve_zone("example.test", &zone).await;
    let https = Https {
        tls: mailauth_exporter::tls::client_config(None, false).unwrap(),
        timeout: Duration::from_secs(3),
        destinations: Default::default(),
    };
    let check = |name: &str| {
        let spec = DomainSpec {
            name: DomainName::new(&format!("{name}.example.test")).unwrap(),
            ..Default::default()
        };
        let (dns, https) = (dns.clone(), https.clone());
        async move { check_domain_with(dns.as_ref(), &spec, &https).await }
    };
    // The zone server does not sign (no AD bit): every host with TLSA gets
    // dane.not_dnssec_validated, asserted once here and left out of the lists below
    // (tests/dane_dnssec.rs covers validation against a validating resolver).
    let dane_codes = |r: &mailauth_exporter::checks::DomainReport| {
        r.findings
            .iter()
            .filter(|f| f.check == Check::Dane && f.code != Code::DaneNotDnssecValidated)
            .map(|f| f.code)
            .collect::<Vec<_>>()
    };

    let ee = check("ee").await;
    assert_eq!(dane_codes(&ee), [], "{:?}", ee.findings);
    assert!(ee
        .findings
        .iter()
        .any(|f| f.code == Code::DaneNotDnssecValidated));
    assert_eq!(ee.dane.hosts[0].dnssec_validated, Some(false));
    assert_eq!(ee.dane.hosts[0].dane_match, Some(true));
    let expiry = ee.dane.hosts[0].not_after.unwrap()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
    assert!(
        (29 * 86_400..=30 * 86_400 + 60).contains(&expiry),
        "the certificate expires in 30 days: {expiry}"
    );
    assert!(ee.outcome(Check::Dane).unwrap().success(&ee.findings));
    // The next run reuses the chain read an instant ago: no new connection to the MX.
    let before = connections.load(std::sync::atomic::Ordering::SeqCst);
    let again = check("ee").await;
    assert_eq!(again.dane.hosts[0].dane_match, Some(true));
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        before
    );

    assert_eq!(
        dane_codes(&check("ta").await),
        [],
        "DANE-TA matches the CA in the chain"
    );
    assert_eq!(dane_codes(&check("wrong").await), [Code::DaneMismatch]);
    assert_eq!(dane_codes(&check("pkix").await), [Code::DaneUnusable]);
    let plain = check("plain").await;
    assert_eq!(dane_codes(&plain), [Code::DaneStarttlsFailed]);
    assert!(plain
        .findings
        .iter()
        .any(|f| f.message.contains("does not offer STARTTLS")));
    // No TLSA records: no DANE check, no connection.
    let none = check("none").await;
    assert!(none.outcome(Check::Dane).is_none() && none.dane.hosts.is_empty());
}
