//! A minimal HTTP/1.1 client (one request per connection), enough for the tests.

pub async fn get(url: &str) -> (u16, String) {
    http(url, "GET").await
}

pub async fn http(url: &str, method: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (host, req) = request(url, method);
    // A connection that fails or closes without an answer is status 0, so that polling
    // loops simply try again.
    let Ok(mut stream) = tokio::net::TcpStream::connect(host).await else {
        return (0, String::new());
    };
    if stream.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    if stream.read_to_end(&mut buf).await.is_err() {
        return (0, String::new());
    }
    response(&buf)
}

/// [`get`] for tests that run without an async runtime (the e2e scenarios); a server that
/// does not finish answering within 10 s is status 0 too.
pub fn get_blocking(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let (host, req) = request(url, "GET");
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    if stream.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    if stream.read_to_end(&mut buf).is_err() {
        return (0, String::new());
    }
    response(&buf)
}

/// The `host:port` of an `http://` URL and the request for it (one per connection).
fn request<'a>(url: &'a str, method: &str) -> (&'a str, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    (host, req)
}

/// Status and body (de-chunked) of a whole HTTP/1.1 response; status 0 if it is not one.
fn response(buf: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(buf).into_owned();
    let Some(status) = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return (0, String::new());
    };
    let body_start = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    let head = &text[..body_start];
    let mut body = text[body_start..].to_string();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some(i) = s.find("\r\n") {
        let size = usize::from_str_radix(s[..i].trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&s[i + 2..i + 2 + size]);
        s = &s[i + 2 + size + 2..];
    }
    out
}

/// Whether the exposition text has exactly this line.
pub fn has(body: &str, line: &str) -> bool {
    body.lines().any(|l| l == line)
}

/// The value of `series` (name and labels as exposed), or `None` when the scrape does not
/// have it: absent and zero are different answers.
pub fn find_value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The value of `series`, which must be in the scrape: a test that compares a counter
/// with 0 or with an earlier reading must not pass because the series vanished (a renamed
/// metric or label, a family no longer rendered).
#[track_caller]
pub fn value(body: &str, series: &str) -> f64 {
    find_value(body, series)
        .unwrap_or_else(|| panic!("series {series} is absent from the scrape:\n{body}"))
}

/// Whether `series` is in the scrape with a value of at least `min` (for polling: a series
/// not there yet is not an answer either way).
pub fn at_least(body: &str, series: &str, min: f64) -> bool {
    find_value(body, series).is_some_and(|v| v >= min)
}

/// Whether `series` is in the scrape with a value above `than`.
pub fn above(body: &str, series: &str, than: f64) -> bool {
    find_value(body, series).is_some_and(|v| v > than)
}

/// Polls `{base}/metrics`, which must answer 200 every time, until `pred` holds (90 s at
/// most; the deadline only bounds a failure).
pub async fn metrics_until(base: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (status, body) = get(&format!("{base}/metrics")).await;
        assert_eq!(status, 200, "/metrics must keep answering");
        if pred(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
