//! The landing pages in a real browser: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver) against the real binary in `demo` mode. What a new user does:
//! open the overview, see every check as a column, follow a failing domain's link to its
//! findings and their fixes, and come back. Screenshots of each page, at desktop and at
//! phone width, are written to `target/screenshots/` for people to look at.

mod util;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, Locator};
use mailauth_exporter::checks::TABLE;
use mailauth_exporter::config::Config;
use mailauth_exporter::findings::Code;
use mailauth_exporter::service::app::App;
use util::browser::{
    browse, fits_the_window, follow, overview_row, screenshot, screenshot_of, start_chromedriver,
    texts, with_session, KillOnDrop,
};
use util::http::metrics_until;
use util::mailstack::MailStack;

/// The demo on a free port, once every demo domain has been checked (the overview then
/// says "not checked yet" of none).
fn start_demo(scratch: &Path) -> (KillOnDrop, String) {
    let listen = util::free_addr(71);
    let log = scratch.join("demo.log");
    let child = Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
        .args(["demo", "--web.listen-address", &listen.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let demo = KillOnDrop(child);
    let base = format!("http://{listen}");
    util::wait_for(
        "every demo domain to be checked",
        Duration::from_secs(60),
        || {
            let (status, page) = util::http::get_blocking(&format!("{base}/"));
            (status == 200 && page.contains("weak.demo.test") && !page.contains("not checked yet"))
                .then_some(())
        },
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    (demo, base)
}

#[test]
fn demo_pages_in_a_browser() {
    let scratch = tempfile::tempdir().unwrap();
    let (_demo, base) = start_demo(scratch.path());
    browse(scratch.path(), |client| async move {
        walk_the_demo(&client, &base).await
    });
}

async fn walk_the_demo(client: &Client, base: &str) {
    client.set_window_size(1280, 900).await.unwrap();
    client.goto(&format!("{base}/")).await.unwrap();

    // The overview: a column per check of the one check table.
    let headers = texts(client, "table.overview th").await;
    for check in TABLE {
        assert!(
            headers.iter().any(|h| h == check.as_str()),
            "no column for {}: {headers:?}",
            check.as_str()
        );
    }
    // The introduction names the newer checks and the probe mails.
    let intro = client
        .find(Locator::Css("p"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for words in [
        "MTA-STS",
        "TLS-RPT",
        "BIMI",
        "DANE",
        "DNS blocklists",
        "probe mails",
    ] {
        assert!(intro.contains(words), "{intro}");
    }
    // weak.demo.test fails, and its failing cells say since when.
    let weak_row = overview_row(client, "weak.demo.test").await;
    assert!(weak_row.contains("FAIL"), "{weak_row}");
    assert!(weak_row.contains("since"), "{weak_row}");
    screenshot(client, "overview.png").await;

    // Its link leads to its page, with findings and their fixes.
    follow(
        client,
        "weak.demo.test",
        &format!("{base}/domain/weak.demo.test"),
    )
    .await;
    let heading = client
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "weak.demo.test");
    let rows = client
        .find_all(Locator::Css("table.findings tr"))
        .await
        .unwrap();
    let mut fixes = 0;
    for row in rows.iter().skip(1) {
        let cells = row.find_all(Locator::Css("td")).await.unwrap();
        let code = cells[1].text().await.unwrap();
        let fix = cells[4].text().await.unwrap();
        let known = Code::ALL
            .iter()
            .find(|c| c.as_str() == code)
            .unwrap_or_else(|| panic!("{code} is not a finding code"));
        assert_eq!(fix, known.fix().trim(), "the fix of {code}");
        fixes += 1;
    }
    assert!(fixes > 0, "weak.demo.test shows no finding");
    assert!(
        !rows.is_empty()
            && texts(client, "table.findings td")
                .await
                .iter()
                .any(|t| t == "error"),
        "weak.demo.test has an error-severity finding"
    );
    screenshot(client, "domain-weak.png").await;
    screenshot_of(client, "table.findings", "domain-weak-findings.png").await;

    // And back, to the overview.
    follow(client, "← all domains", &format!("{base}/")).await;
    client.back().await.unwrap();
    assert_eq!(
        client.current_url().await.unwrap().as_str(),
        format!("{base}/domain/weak.demo.test")
    );
    client.back().await.unwrap();
    assert!(client.find(Locator::Css("table.overview")).await.is_ok());

    // At a phone's width the page fits, and its tables scroll on their own.
    client.set_window_size(390, 844).await.unwrap();
    client.goto(&format!("{base}/")).await.unwrap();
    assert!(
        fits_the_window(client).await,
        "the overview is wider than a phone"
    );
    screenshot(client, "overview-phone.png").await;
    client
        .goto(&format!("{base}/domain/weak.demo.test"))
        .await
        .unwrap();
    assert!(
        fits_the_window(client).await,
        "the domain page is wider than a phone"
    );
    screenshot(client, "domain-weak-phone.png").await;
}

const PROBED_ZONE: &str = r#"
@       IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
"#;

/// An exporter with a `[[probe]]` of both kinds through a real submission server and
/// Dovecot (tests/util/mailstack.rs), served in this process.
async fn serve_probed(stack: &MailStack, ns: std::net::SocketAddr) -> (String, Arc<App>) {
    let text = format!(
        "[exporter]\ndns_interval = \"1h\"\nprobe_interval = \"1h\"\n\n[dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n\n\
         [[domain]]\nname = \"example.test\"\n\n[smtp.out]\n{}\n[mailbox.inbox]\n{}\n\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"30s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n\
         [[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"inbox\"\n",
        stack.smtp_toml(),
        stack.mailbox_toml("tls"),
    );
    let config = Config::parse(&text, Path::new("probed.toml")).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    (base, app)
}

/// A probed domain: the overview has a column per probe target with its latest round
/// trip, and the domain page puts the receiver's, the verifier's and the exporter's own
/// results side by side, marking where they disagree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_columns_and_sources_in_a_browser() {
    mailauth_exporter::tls::install_crypto_provider();
    // The receiver says DKIM passed; the message carries no signature, so the exporter's
    // own check cannot agree.
    let stack = MailStack::start_with(
        "ok",
        &["--authres", "mx.receiver.test; spf=pass smtp.mailfrom=MAILFROM; dkim=pass header.d=example.test; dmarc=pass header.from=example.test", "--verifier-results", "SPF=pass,DKIM=pass,DMARC=pass"],
    );
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, PROBED_ZONE))
        .unwrap();
    let (base, app) = serve_probed(&stack, server.addr()).await;
    metrics_until(&base, "a round of both targets", |b| {
        b.contains(r#"mailauth_probe_success{domain="example.test",target="mailbox"}"#)
            && b.contains(r#"mailauth_probe_success{domain="example.test",target="verifier"}"#)
    })
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let (_driver, driver_url) = tokio::task::block_in_place(|| start_chromedriver(scratch.path()));
    let profile = scratch.path().join("profile");
    let walk = with_session(&driver_url, &profile, |client| async move {
        walk_the_probed_domain(&client, &base).await
    });
    walk.await;
    app.stop();
}

async fn walk_the_probed_domain(client: &Client, base: &str) {
    client.set_window_size(1280, 900).await.unwrap();
    client.goto(&format!("{base}/")).await.unwrap();
    let headers = texts(client, "table.overview th").await;
    for target in ["probe mailbox", "probe verifier"] {
        assert!(headers.iter().any(|h| h == target), "{headers:?}");
    }
    let row = overview_row(client, "example.test").await;
    // The verifier's round passed; its cell says how long delivery took.
    assert!(row.contains("delivered in"), "{row}");
    assert!(row.contains("last success"), "{row}");
    screenshot(client, "overview-probed.png").await;

    follow(
        client,
        "example.test",
        &format!("{base}/domain/example.test"),
    )
    .await;
    let headings = texts(client, "table.methods th").await;
    for source in ["receiver", "verifier", "own check", "spf", "dkim", "dmarc"] {
        assert!(headings.iter().any(|h| h == source), "{headings:?}");
    }
    let spf = client
        .find(Locator::XPath("//table[@class='methods']//tr[th='spf']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(spf, "spf pass pass pass yes");
    let dkim = client
        .find(Locator::XPath("//table[@class='methods']//tr[th='dkim']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dkim.starts_with("dkim pass pass "), "{dkim}");
    assert!(dkim.ends_with("no: they disagree"), "{dkim}");
    screenshot(client, "domain-probed.png").await;
    screenshot_of(client, "table.probes", "domain-probed-sources.png").await;
}
