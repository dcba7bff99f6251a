//! A real browser for the page tests: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver) with `fantoccini`, and what the tests ask of a page.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills a process this test started when the test ends, passing or not.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where screenshots go: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free loopback port.
pub fn start_chromedriver(scratch: &Path) -> (KillOnDrop, String) {
    let port = super::free_port();
    let log = scratch.join("chromedriver.log");
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{CHROMEDRIVER} (Debian's chromium-driver): {e}"));
    let driver = KillOnDrop(child);
    let url = format!("http://127.0.0.1:{port}");
    // Listening is enough: the session request that follows is the real test of it.
    // (chromedriver keeps a connection open after `Connection: close`, so the tests'
    // one-shot HTTP client cannot read its /status.)
    super::wait_for(
        "chromedriver to listen",
        Duration::from_secs(30),
        || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    (driver, url)
}

/// A headless Chromium session with a fresh profile. Without the networking flags Chromium
/// reaches out to the internet on its own, and those connections are refused here.
pub async fn browser(driver: &str, profile: &Path) -> Client {
    let args = [
        "--headless".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--disable-quic".to_string(),
        "--no-first-run".to_string(),
        "--disable-background-networking".to_string(),
        "--disable-component-update".to_string(),
        "--disable-sync".to_string(),
        "--disable-dev-shm-usage".to_string(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a WebDriver session with chromium")
}

/// A screenshot of the window scrolled to what `css` selects (a section below the fold).
pub async fn screenshot_of(client: &Client, css: &str, name: &str) {
    client
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView();",
            vec![serde_json::json!(css)],
        )
        .await
        .unwrap();
    screenshot(client, name).await;
}

pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

/// The texts of the elements `css` selects.
pub async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in client.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

/// The text of `domain`'s row in the overview table.
pub async fn overview_row(client: &Client, domain: &str) -> String {
    client
        .find(Locator::XPath(&format!(
            "//table[@class='overview']//tr[td/a[text()='{domain}']]"
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Clicks the link that reads `text` and checks that the browser went to `url`.
pub async fn follow(client: &Client, text: &str, url: &str) {
    client
        .find(Locator::LinkText(text))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(client.current_url().await.unwrap().as_str(), url);
}

/// The page is no wider than the window: wide tables scroll inside their own box, so a
/// phone shows the page at its width with readable text.
pub async fn fits_the_window(client: &Client) -> bool {
    let fits = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    fits.as_bool().unwrap()
}

/// For tests without a runtime: starts chromedriver (its files and the Chromium profile
/// under `scratch`) and runs `walk` in a session of its own on a runtime of its own.
pub fn browse<F, Fut>(scratch: &Path, walk: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (_driver, driver_url) = start_chromedriver(scratch);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(with_session(&driver_url, &scratch.join("profile"), walk));
}

/// Runs `walk` in a fresh browser session and ends the session whatever happens: a failed
/// assertion must not leave Chromium running (killing chromedriver does not stop it).
pub async fn with_session<F, Fut>(driver: &str, profile: &Path, walk: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::FutureExt;
    let client = browser(driver, profile).await;
    let outcome = std::panic::AssertUnwindSafe(walk(client.clone()))
        .catch_unwind()
        .await;
    let _ = client.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
