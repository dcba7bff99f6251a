//! MTA-STS policy fetches against a real HTTPS server on loopback (port 443 of
//! 127.0.0.70/71, certificates from a test CA): a good policy, testing mode, an MX not
//! covered, a redirect, an oversized policy, a server that never answers, a broken policy,
//! and a certificate from a CA that is not trusted.

mod util;

use mailauth_exporter::name::DomainName;
use std::sync::Arc;
use std::time::Duration;

use mailauth_exporter::checks::newer_records::Https;
use mailauth_exporter::checks::{check_domain_with, DomainSpec};
use mailauth_exporter::findings::Code;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOMAINS: &[&str] = &[
    "good",
    "testing",
    "uncovered",
    "redirect",
    "big",
    "slow",
    "broken",
    "wrongcert",
];

/// A CA (`name`-ca.pem) and a server certificate for `sans` signed by it.
fn pki(dir: &std::path::Path, name: &str, sans: &str) {
    util::ca_and_leaf(dir, name, sans);
}

fn server_config(dir: &std::path::Path, name: &str) -> Arc<rustls::ServerConfig> {
    let certs = rustls_pemfile::certs(
        &mut std::fs::read(dir.join(format!("{name}.pem")))
            .unwrap()
            .as_slice(),
    )
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    let key = rustls_pemfile::private_key(
        &mut std::fs::read(dir.join(format!("{name}.key")))
            .unwrap()
            .as_slice(),
    )
    .unwrap()
    .unwrap();
    Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

fn policy_for(host: &str) -> Option<String> {
    let d = host
        .trim_start_matches("mta-sts.")
        .trim_end_matches(".example.test");
    let ok = |mode: &str, mx: &str| {
        format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 604800\r\n")
    };
    Some(match d {
        "good" | "wrongcert" => ok(
            "enforce",
            "*.good.example.test\r\nmx: mx1.wrongcert.example.test",
        ),
        "testing" => ok("testing", "mx1.testing.example.test"),
        "uncovered" => ok("enforce", "mail.elsewhere.example"),
        "big" => format!(
            "{}{}",
            ok("enforce", "mx1.big.example.test"),
            "x: y\r\n".repeat(20_000)
        ),
        "broken" => "version: STSv2\r\nmode: enforce\r\n".to_string(),
        _ => return None,
    })
}

async fn serve(listener: tokio::net::TcpListener, config: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req).to_string();
            let host = text
                .lines()
                .find_map(|l| l.strip_prefix("Host: "))
                .unwrap_or("")
                .trim()
                .to_string();
            let response = if host.starts_with("mta-sts.slow.") {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            } else if host.starts_with("mta-sts.redirect.") {
                "HTTP/1.1 301 Moved Permanently\r\nLocation: https://mta-sts.good.example.test/.well-known/mta-sts.txt\r\nContent-Length: 0\r\n\r\n".to_string()
            } else if let Some(body) = policy_for(&host) {
                format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
            };
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_fetched_over_https() {
    mailauth_exporter::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let sans: Vec<String> = DOMAINS
        .iter()
        .filter(|d| **d != "wrongcert")
        .map(|d| format!("DNS:mta-sts.{d}.example.test"))
        .collect();
    pki(dir.path(), "trusted", &sans.join(","));
    pki(dir.path(), "other", "DNS:mta-sts.wrongcert.example.test");
    let good = tokio::net::TcpListener::bind("127.0.0.70:443")
        .await
        .expect("bind 127.0.0.70:443 (tests run as root)");
    let other = tokio::net::TcpListener::bind("127.0.0.71:443")
        .await
        .expect("bind 127.0.0.71:443");
    tokio::spawn(serve(good, server_config(dir.path(), "trusted")));
    tokio::spawn(serve(other, server_config(dir.path(), "other")));

    let mut zone = String::new();
    for d in DOMAINS {
        let ip = if *d == "wrongcert" {
            "127.0.0.71"
        } else {
            "127.0.0.70"
        };
        zone.push_str(&format!(
            "{d} IN MX 10 mx1.{d}.example.test.\nmx1.{d} IN A 127.0.0.1\n_mta-sts.{d} IN TXT \"v=STSv1; id=1\"\nmta-sts.{d} IN A {ip}\n"
        ));
    }
    let (_s, dns) = util::serve_zone("example.test", &zone).await;
    let https = Https {
        tls: mailauth_exporter::tls::client_config(Some(&dir.path().join("trusted-ca.pem")), false)
            .unwrap(),
        timeout: Duration::from_secs(2),
        destinations: Default::default(),
    };
    let mta_sts_codes = |r: &mailauth_exporter::checks::DomainReport| {
        let mut c: Vec<Code> = r
            .findings
            .iter()
            .filter(|f| f.code.as_str().starts_with("mta_sts"))
            .map(|f| f.code)
            .collect();
        c.sort();
        c
    };
    let check = |d: &str| {
        let spec = DomainSpec {
            name: DomainName::new(&format!("{d}.example.test")).unwrap(),
            ..Default::default()
        };
        let (dns, https) = (dns.clone(), https.clone());
        async move { check_domain_with(dns.as_ref(), &spec, &https).await }
    };

    let r = check("good").await;
    assert_eq!(mta_sts_codes(&r), [], "{:?}", r.findings);
    let p = r.newer.mta_sts_policy.as_ref().unwrap();
    assert_eq!((p.mode.as_str(), p.max_age), ("enforce", 604800));

    assert_eq!(
        mta_sts_codes(&check("testing").await),
        [Code::MtaStsTesting]
    );
    let r = check("uncovered").await;
    assert_eq!(mta_sts_codes(&r), [Code::MtaStsMxNotCovered]);
    assert!(r
        .findings
        .iter()
        .any(|f| f.message.contains("mx1.uncovered.example.test")));
    for (d, why) in [
        ("redirect", "redirects"),
        ("big", "larger than"),
        ("slow", "no answer"),
        ("wrongcert", "TLS"),
    ] {
        let r = check(d).await;
        assert_eq!(
            mta_sts_codes(&r),
            [Code::MtaStsPolicyUnreachable],
            "{d}: {:?}",
            r.findings
        );
        let msg = &r
            .findings
            .iter()
            .find(|f| f.code == Code::MtaStsPolicyUnreachable)
            .unwrap()
            .message;
        assert!(msg.contains(why), "{d}: {msg}");
        assert!(r.newer.mta_sts_policy.is_none());
    }
    assert_eq!(mta_sts_codes(&check("broken").await), [Code::MtaStsSyntax]);
}
