//! MTA-STS (RFC 8461): the policy behind the `_mta-sts` TXT record, fetched over HTTPS
//! from `https://mta-sts.<domain>/.well-known/mta-sts.txt` with the certificate verified,
//! redirects refused (§3.3), size and time bounded, then checked against the MX hosts.
//!
//! The HTTP exchange is a single GET written here rather than a full client: the host is
//! resolved through the exporter's own DNS (the test zones and the answer cache), and
//! nothing of HTTP beyond one response is needed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::destination::Destinations;
use super::newer_records::Https;
use crate::resolver::{Dns, RData, RecordType};

/// RFC 8461 §3.2 leaves the size to senders; 64 KiB is what they commonly accept.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub mode: Mode,
    pub mx: Vec<String>,
    pub max_age: u32,
}

/// Why a fetched policy text is not a policy (finding `mta_sts.syntax`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("line {0:?} is not key: value")]
    NotKeyValue(String),
    #[error("mode {0:?} is not enforce, testing or none")]
    UnknownMode(String),
    #[error("max_age {0:?} is not a number")]
    MaxAgeNotANumber(String),
    /// §3.2: "max_age: Max lifetime of the policy (plaintext non-negative integer
    /// seconds, maximum value of 31557600)".
    #[error("max_age {0} is over 31557600 (one year)")]
    MaxAgeTooLong(u32),
    #[error("mx {0:?} is not a host name or *.wildcard")]
    InvalidMx(String),
    #[error("the policy must say version: STSv1")]
    NotVersion1,
    #[error("the policy has no mode")]
    NoMode,
    #[error("the policy has no max_age")]
    NoMaxAge,
    /// A policy in `enforce` or `testing` without an `mx` line matches no host at all.
    #[error("the policy lists no mx")]
    NoMx,
}

/// RFC 8461 §3.2: `key: value` lines (CRLF or LF); version STSv1, mode, one or more mx
/// patterns (unless mode none), max_age up to 31557600.
pub fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
    {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| PolicyError::NotKeyValue(line.to_string()))?;
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_string()),
            "mode" => {
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    other => return Err(PolicyError::UnknownMode(other.to_string())),
                })
            }
            "max_age" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| PolicyError::MaxAgeNotANumber(value.to_string()))?;
                if n > 31_557_600 {
                    return Err(PolicyError::MaxAgeTooLong(n));
                }
                max_age = Some(n);
            }
            "mx" => {
                let host = value.trim_end_matches('.').to_ascii_lowercase();
                let bare = host.strip_prefix("*.").unwrap_or(&host);
                if !crate::name::is_domain_name(bare) || bare.contains('*') {
                    return Err(PolicyError::InvalidMx(value.to_string()));
                }
                mx.push(host);
            }
            _ => {} // §3.2: unknown fields are ignored
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err(PolicyError::NotVersion1);
    }
    let mode = mode.ok_or(PolicyError::NoMode)?;
    let max_age = max_age.ok_or(PolicyError::NoMaxAge)?;
    if mx.is_empty() && mode != Mode::None {
        return Err(PolicyError::NoMx);
    }
    Ok(Policy { mode, mx, max_age })
}

/// §4.1: an mx pattern matches the host exactly, or `*.example.com` matches exactly one
/// label in place of the `*`.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => host == pattern,
    }
}

/// Why a policy could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The policy host has addresses, but only ones the destination policy refuses.
    #[error("https://{host}/: not connected to: {ip} is {range} (on-demand probes of unwatched domains reach public addresses only)")]
    DestinationRefused {
        host: String,
        ip: IpAddr,
        range: &'static str,
    },
    /// DNS, TCP or TLS failed, or no answer came in time.
    #[error("{0}")]
    Unreachable(String),
    /// The connection ended before the end of the response head.
    #[error("{host}: no complete HTTP response")]
    IncompleteResponse { host: String },
    /// Any status but 200; a 3xx is named, since redirects are refused (§3.3).
    #[error("https://{host}/.well-known/mta-sts.txt answered HTTP {status}{}", redirect_note(.status))]
    HttpStatus { host: String, status: String },
    /// The response or the policy in it is over [`MAX_POLICY_BYTES`].
    #[error("https://{host}/.well-known/mta-sts.txt is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge { host: String },
}

fn redirect_note(status: &str) -> &'static str {
    if status.starts_with('3') {
        " (redirects are not followed, RFC 8461 §3.3)"
    } else {
        ""
    }
}

/// Fetches the policy text of `domain` with `https`'s trust, deadline and destinations.
pub async fn fetch(dns: &dyn Dns, domain: &str, https: &Https) -> Result<String, FetchError> {
    let host = format!("mta-sts.{}", domain.trim_end_matches('.'));
    let timeout = https.timeout;
    tokio::time::timeout(
        timeout,
        fetch_inner(dns, &host, https.tls.clone(), https.destinations),
    )
    .await
    .unwrap_or_else(|_| {
        Err(FetchError::Unreachable(format!(
            "https://{host}/: no answer within {}s",
            timeout.as_secs()
        )))
    })
}

async fn fetch_inner(
    dns: &dyn Dns,
    host: &str,
    tls: Arc<rustls::ClientConfig>,
    destinations: Destinations,
) -> Result<String, FetchError> {
    let fail = |m: String| FetchError::Unreachable(m);
    let mut addrs: Vec<IpAddr> = Vec::new();
    for rtype in [RecordType::A, RecordType::Aaaa] {
        match dns.lookup(host, rtype).await {
            Ok(a) => addrs.extend(a.records().iter().filter_map(|r| match r {
                RData::A(v4) => Some(IpAddr::V4(*v4)),
                RData::Aaaa(v6) => Some(IpAddr::V6(*v6)),
                _ => None,
            })),
            Err(e) => return Err(fail(format!("{host}: {e}"))),
        }
    }
    let first = *addrs
        .first()
        .ok_or_else(|| fail(format!("{host} has no address")))?;
    // The address checked is the address connected to: no second resolution in between
    // that a hostile DNS server could answer differently.
    let ip = addrs
        .iter()
        .copied()
        .find(|ip| destinations.refuses(*ip).is_none())
        .ok_or_else(|| FetchError::DestinationRefused {
            host: host.to_string(),
            ip: first,
            range: destinations.refuses(first).unwrap_or("refused"),
        })?;
    let tcp = tokio::net::TcpStream::connect(SocketAddr::new(ip, 443))
        .await
        .map_err(|e| fail(format!("{host} ({ip}) port 443: {e}")))?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| fail(format!("{host}: {e}")))?;
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| fail(format!("TLS with {host}: {e}")))?;
    let request = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mailauth-exporter\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| fail(format!("{host}: {e}")))?;
    // The whole response (head and body) is bounded: a server streaming an endless head
    // or body is cut off here, and the caller's deadline bounds a slow one.
    let buf = match crate::tls::read_to_end_bounded(&mut stream, MAX_POLICY_BYTES + 16 * 1024).await
    {
        Ok(buf) => buf,
        Err(crate::tls::BoundedReadError::TooLarge) => {
            return Err(FetchError::TooLarge {
                host: host.to_string(),
            })
        }
        Err(crate::tls::BoundedReadError::Io(e)) => return Err(fail(format!("{host}: {e}"))),
    };
    parse_response(host, &buf)
}

/// The body of a 200 response, or why there is none (redirects are refused, §3.3).
fn parse_response(host: &str, raw: &[u8]) -> Result<String, FetchError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) =
        text.split_once("\r\n\r\n")
            .ok_or_else(|| FetchError::IncompleteResponse {
                host: host.to_string(),
            })?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(FetchError::HttpStatus {
            host: host.to_string(),
            status: status.to_string(),
        });
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    if body.len() > MAX_POLICY_BYTES {
        return Err(FetchError::TooLarge {
            host: host.to_string(),
        });
    }
    Ok(body)
}

/// The body of a `Transfer-Encoding: chunked` message (RFC 9112 §7.1), up to the last
/// whole chunk; also used by the OAuth2 token client (`mail::oauth2`).
pub(crate) fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some(i) = s.find("\r\n") {
        let Ok(size) = usize::from_str_radix(s[..i].trim(), 16) else {
            break;
        };
        if size == 0 || s.len() < i + 2 + size {
            break;
        }
        out.push_str(s.get(i + 2..i + 2 + size).unwrap_or(""));
        s = s.get(i + 2 + size + 2..).unwrap_or("");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let p = parse_policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n").unwrap();
        assert_eq!((p.mode, p.max_age, p.mx.len()), (Mode::Enforce, 604800, 2));
        assert_eq!(
            parse_policy("version: STSv1\nmode: none\nmax_age: 86400\n")
                .unwrap()
                .mode,
            Mode::None
        );
        use PolicyError::*;
        let refused = [
            (
                "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1",
                NotVersion1,
            ),
            ("mode: enforce\nmx: a.example\nmax_age: 1", NotVersion1),
            (
                "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1",
                UnknownMode("strict".into()),
            ),
            ("version: STSv1\nmode: enforce\nmax_age: 1", NoMx),
            ("version: STSv1\nmx: a.example\nmax_age: 1", NoMode),
            ("version: STSv1\nmode: enforce\nmx: a.example", NoMaxAge),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 99999999",
                MaxAgeTooLong(99_999_999),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1",
                MaxAgeNotANumber("-1".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1",
                InvalidMx("a.*.example".into()),
            ),
            ("garbage", NotKeyValue("garbage".into())),
        ];
        for (text, want) in refused {
            assert_eq!(parse_policy(text), Err(want), "{text:?}");
        }
        // The boundary itself is allowed.
        assert!(
            parse_policy("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 31557600").is_ok()
        );
        assert_eq!(NoMx.to_string(), "the policy lists no mx");
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(mx_matches("mail.example.com", "MAIL.example.com."));
        assert!(mx_matches("*.example.com", "mx1.example.com"));
        assert!(!mx_matches("*.example.com", "example.com"));
        assert!(!mx_matches("*.example.com", "a.b.example.com"));
        assert!(!mx_matches("mail.example.com", "mail2.example.com"));
    }

    #[test]
    fn responses() {
        assert_eq!(
            parse_response(
                "h",
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nversion: STSv1\r\n"
            )
            .unwrap(),
            "version: STSv1\r\n"
        );
        let moved =
            parse_response("h", b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\n\r\n").unwrap_err();
        assert_eq!(
            moved.to_string(),
            "https://h/.well-known/mta-sts.txt answered HTTP 301 (redirects are not followed, RFC 8461 §3.3)"
        );
        assert_eq!(
            parse_response("h", b"HTTP/1.1 404 Not Found\r\n\r\n")
                .unwrap_err()
                .to_string(),
            "https://h/.well-known/mta-sts.txt answered HTTP 404"
        );
        let big = format!(
            "HTTP/1.1 200 OK\r\n\r\n{}",
            "x".repeat(MAX_POLICY_BYTES + 1)
        );
        assert_eq!(
            parse_response("h", big.as_bytes()),
            Err(FetchError::TooLarge { host: "h".into() })
        );
        assert_eq!(
            parse_response(
                "h",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            )
            .unwrap(),
            "hello"
        );
        assert_eq!(
            parse_response("h", b"garbage"),
            Err(FetchError::IncompleteResponse { host: "h".into() })
        );
    }
}
