//! DKIM key records against a real DNS server on loopback.

mod util;

use mailauth_exporter::checks::dkim;
use mailauth_exporter::findings::Code;
use mailauth_exporter::name::Selector;
use mailauth_exporter::zone_server::Fault;

fn sel(selector: &str) -> Selector {
    Selector::new(selector).unwrap()
}

const ZONE: &str = r#"
short._domainkey   IN TXT "v=DKIM1; k=rsa; t=y; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDoK35svDpaaUUzrBLCwLJY+XalAUBg0Mpv4sMXeSJ14a21J5l1eSYriza37eZKG/2bHEki5zSLxNo5lZEP2EJi65nUx8R9yvPFMYYKOEjwvakcUSC64H76dE5AhsOvcPoSGx4AAwQJ7ZjHjoCkiiud2mgLJwshqsItKT8/c2jPlQIDAQAB"
split._domainkey   IN TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDoK35svDpaaUUzrBLCwLJY+XalAUBg0Mpv4sMXeSJ14a21J5l1eSYriza37eZK" "G/2bHEki5zSLxNo5lZEP2EJi65nUx8R9yvPFMYYKOEjwvakcUSC64H76dE5AhsOvcPoSGx4AAwQJ7ZjHjoCkiiud2mgLJwshqsItKT8/c2jPlQIDAQAB"
weak._domainkey    IN TXT "v=DKIM1; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL1t3zHEQfB9jkhbEdTG7uJoQQRoFBgPD8oPa3VreSsluwOLS47T6jzH4pjDJLsFE6Zf+WfYrpq7vlaQyfeFfvsCAwEAAQ=="
ed._domainkey      IN TXT "v=DKIM1; k=ed25519; p=8LG20Oes8YbLwMLn5S8O+mZ9snEd3THdVdDceOlzTPk="
revoked._domainkey IN TXT "v=DKIM1; k=rsa; p="
bad._domainkey     IN TXT "v=DKIM1; k=dsa; p=AAAA"
sha1._domainkey    IN TXT "v=DKIM1; h=sha1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDoK35svDpaaUUzrBLCwLJY+XalAUBg0Mpv4sMXeSJ14a21J5l1eSYriza37eZKG/2bHEki5zSLxNo5lZEP2EJi65nUx8R9yvPFMYYKOEjwvakcUSC64H76dE5AhsOvcPoSGx4AAwQJ7ZjHjoCkiiud2mgLJwshqsItKT8/c2jPlQIDAQAB"
two._domainkey     IN TXT "some verification token"
two._domainkey     IN TXT "v=DKIM1; k=ed25519; p=8LG20Oes8YbLwMLn5S8O+mZ9snEd3THdVdDceOlzTPk="
"#;

fn codes(r: &dkim::DkimReport) -> Vec<Code> {
    let mut c: Vec<Code> = r.findings.iter().map(|f| f.code).collect();
    c.sort();
    c
}

#[tokio::test]
async fn selectors_and_their_findings() {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let (dns, _) = util::client(&server);
    let check = |sel: &str| {
        let dns = dns.clone();
        let sel = Selector::new(sel).unwrap();
        async move { dkim::check(dns.as_ref(), "example.test", &[sel]).await }
    };

    let r = check("short").await;
    assert_eq!(codes(&r), [Code::DkimTesting, Code::DkimShortKey]);
    assert_eq!(
        (
            r.keys[0].key_type.map(|k| k.as_str()),
            r.keys[0].key_bits,
            r.keys[0].testing
        ),
        (Some("rsa"), Some(1024), true)
    );

    let r = check("split").await;
    assert_eq!(
        codes(&r),
        [Code::DkimShortKey],
        "a key split over two strings is joined"
    );
    assert_eq!(r.keys[0].key_bits, Some(1024));

    assert_eq!(codes(&check("weak").await), [Code::DkimWeakKey]);
    let r = check("ed").await;
    assert_eq!(codes(&r), []);
    assert_eq!(
        (r.keys[0].key_type.map(|k| k.as_str()), r.keys[0].key_bits),
        (Some("ed25519"), Some(256))
    );
    assert_eq!(codes(&check("revoked").await), [Code::DkimRevoked]);
    assert_eq!(codes(&check("bad").await), [Code::DkimSyntax]);
    assert_eq!(
        codes(&check("sha1").await),
        [Code::DkimShortKey, Code::DkimSha1Only]
    );
    let r = check("two").await;
    assert_eq!(codes(&r), [], "the record that parses is used");
    assert_eq!(r.keys[0].key_bits, Some(256));
    let r = check("absent").await;
    assert_eq!(codes(&r), [Code::DkimMissing]);
    assert!(r.answered);

    // Several selectors in one check.
    let r = dkim::check(dns.as_ref(), "example.test", &[sel("ed"), sel("weak")]).await;
    assert_eq!(r.keys.len(), 2);
    assert_eq!(codes(&r), [Code::DkimWeakKey]);
}

#[tokio::test]
async fn dns_failure_is_dns_error_not_missing() {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    server
        .set_fault("ed._domainkey.example.test", Some(Fault::ServFail))
        .unwrap();
    let (dns, _) = util::client(&server);
    let r = dkim::check(dns.as_ref(), "example.test", &[sel("ed")]).await;
    assert!(!r.answered);
    assert_eq!(codes(&r), [Code::DnsError]);
}

/// An old zone: a good key, and beside it a DomainKeys policy and an ADSP record.
const OLD_ZONE: &str = r#"
ed._domainkey      IN TXT "v=DKIM1; k=ed25519; p=8LG20Oes8YbLwMLn5S8O+mZ9snEd3THdVdDceOlzTPk="
_domainkey         IN TXT "t=y; o=~; r=postmaster@old.test"
_adsp._domainkey   IN TXT "dkim=all"
"#;

#[tokio::test]
async fn deprecated_records_in_a_real_zone() {
    let server = util::server().await;
    server
        .set_zone("old.test", &util::zone("old.test", 60, OLD_ZONE))
        .unwrap();
    server
        .set_zone("example.test", &util::zone("example.test", 60, ZONE))
        .unwrap();
    let (dns, _) = util::client(&server);
    let r = dkim::check(dns.as_ref(), "old.test", &[sel("ed")]).await;
    assert!(r.answered);
    assert_eq!(
        codes(&r),
        [Code::DkimDomainKeysPolicy, Code::DkimAdspRecord]
    );
    let policy = r
        .findings
        .iter()
        .find(|f| f.code == Code::DkimDomainKeysPolicy)
        .unwrap();
    assert!(
        policy.message.contains("_domainkey.old.test") && policy.message.contains("o=~"),
        "{}",
        policy.message
    );
    // example.test has selectors under _domainkey but no record at it (an empty
    // non-terminal) and no _adsp name (NXDOMAIN): the normal case, no finding.
    let r = dkim::check(dns.as_ref(), "example.test", &[sel("ed")]).await;
    assert_eq!(codes(&r), []);
}

#[tokio::test]
async fn dns_failure_at_deprecated_names_is_not_a_dkim_failure() {
    let server = util::server().await;
    server
        .set_zone("old.test", &util::zone("old.test", 60, OLD_ZONE))
        .unwrap();
    server
        .set_fault("_domainkey.old.test", Some(Fault::ServFail))
        .unwrap();
    server
        .set_fault("_adsp._domainkey.old.test", Some(Fault::ServFail))
        .unwrap();
    let (dns, _) = util::client(&server);
    let r = dkim::check(dns.as_ref(), "old.test", &[sel("ed")]).await;
    assert!(r.answered);
    assert_eq!(codes(&r), []);
    assert_eq!(r.keys[0].key_bits, Some(256));
}

/// The findings reach `check`'s text output and the running exporter's domain page and
/// metrics without anything special: they are ordinary DKIM findings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprecated_records_reach_check_output_and_domain_page() {
    let server = util::server().await;
    server
        .set_zone("old.test", &util::zone("old.test", 60, OLD_ZONE))
        .unwrap();
    let ns = server.addr().to_string();

    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
            .args([
                "check",
                "old.test",
                "--dkim-selector",
                "ed",
                "--nameserver",
                &ns,
                "--timeout",
                "1s",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for code in ["dkim.domainkeys_policy", "dkim.adsp_record"] {
        assert!(
            text.contains(code),
            "{code} missing from check output:\n{text}"
        );
    }
    assert!(text.contains("RFC 5617"), "meaning missing:\n{text}");

    let config = format!(
        r#"[exporter]
listen_address = "127.0.0.1:0"
dns_interval = "30s"

[dns]
nameservers = ["{}"]
timeout = "1s"
attempts = 1

[[domain]]
name = "old.test"
dkim_selectors = ["ed"]
"#,
        server.addr()
    );
    let config = mailauth_exporter::config::Config::parse(&config, "test".as_ref()).unwrap();
    let app = mailauth_exporter::service::app::App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    util::http::metrics_until(&base, "the adsp finding", |b| {
        b.contains(r#"code="dkim.adsp_record",severity="info"} 1"#)
    })
    .await;
    let (status, page) = util::http::get(&format!("{base}/domain/old.test")).await;
    assert_eq!(status, 200);
    for code in ["dkim.domainkeys_policy", "dkim.adsp_record"] {
        assert!(
            page.contains(&format!("<code>{code}</code>")),
            "{code} missing from the domain page:\n{page}"
        );
    }
}
