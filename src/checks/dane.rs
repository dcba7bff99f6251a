//! DANE for SMTP (RFC 7672): the TLSA records at `_25._tcp.<mx>` checked against the
//! certificate the MX really presents after STARTTLS on port 25, and that certificate's
//! expiry (an expired MX certificate also breaks MTA-STS in enforce mode).
//!
//! Usages 3 (DANE-EE) and 2 (DANE-TA) are the ones SMTP uses (§3.1.3); PKIX usages 0 and
//! 1 are reported as unusable. Selector 0 is the whole certificate, 1 its public key;
//! matching 0 is exact, 1 SHA-256, 2 SHA-512.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::destination::Destinations;

use crate::checks::mx::MxReport;
use crate::findings::{Check, Code, Finding};
use crate::resolver::{Dns, DnsError, RData, RecordType};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MxTls {
    pub host: String,
    pub tlsa: Vec<Tlsa>,
    /// A TLSA record matched the presented chain.
    pub dane_match: Option<bool>,
    /// notAfter of the presented certificate (Unix seconds).
    pub not_after: Option<i64>,
    /// The resolver set AD on both the TLSA answer and the domain's MX answer, so that
    /// DANE senders use the records (RFC 7672 §2.2); `None` when that was not answered.
    pub dnssec_validated: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DaneReport {
    pub hosts: Vec<MxTls>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub answered: bool,
}

fn digest(matching: u8, data: &[u8]) -> Option<Vec<u8>> {
    match matching {
        0 => Some(data.to_vec()),
        1 => Some(
            ring::digest::digest(&ring::digest::SHA256, data)
                .as_ref()
                .to_vec(),
        ),
        2 => Some(
            ring::digest::digest(&ring::digest::SHA512, data)
                .as_ref()
                .to_vec(),
        ),
        _ => None,
    }
}

/// One TLSA record's fields (RFC 6698 §2.1), borrowed from the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Association<'a> {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218 names).
    pub usage: u8,
    /// 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    pub data: &'a [u8],
}

impl<'a> Association<'a> {
    pub fn of(record: &'a RData) -> Option<Association<'a>> {
        match record {
            RData::Tlsa {
                usage,
                selector,
                matching,
                data,
            } => Some(Association {
                usage: *usage,
                selector: *selector,
                matching: *matching,
                data,
            }),
            _ => None,
        }
    }

    /// RFC 7672 §3.1: SMTP uses DANE-TA(2) and DANE-EE(3) only.
    fn usable_for_smtp(&self) -> bool {
        self.usage == 2 || self.usage == 3
    }

    /// Whether the record matches a certificate of `chain` (DER, end entity first): the end
    /// entity for DANE-EE, an issuer above it for DANE-TA.
    fn matches_chain(&self, chain: &[Vec<u8>]) -> bool {
        let candidates: &[Vec<u8>] = if self.usage == 3 {
            &chain[..1.min(chain.len())]
        } else {
            chain.get(1..).unwrap_or(&[])
        };
        candidates.iter().any(|c| self.matches(c))
    }

    /// Whether the record's data matches the certificate `cert` (DER) by its selector and
    /// matching type; the usage does not enter (which certificate is compared is the
    /// caller's choice).
    pub fn matches(&self, cert: &[u8]) -> bool {
        matches(self.selector, self.matching, self.data, cert)
    }
}

fn matches(selector: u8, matching: u8, association: &[u8], cert: &[u8]) -> bool {
    let selected = match selector {
        0 => Some(cert),
        1 => crate::der::spki(cert),
        _ => None,
    };
    selected
        .and_then(|s| digest(matching, s))
        .is_some_and(|d| d == association)
}

/// Why the MX's certificate chain could not be read (finding `dane.starttls_failed`). Kept
/// as text where the cause is an I/O or TLS error, since failures are cached and shared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartTlsError {
    #[error("{host} ({ip}) port {port}: {reason}")]
    Connect {
        host: String,
        ip: IpAddr,
        port: u16,
        reason: String,
    },
    #[error("{host} ({ip}) port {port}: no answer within {seconds}s")]
    Timeout {
        host: String,
        ip: IpAddr,
        port: u16,
        seconds: u64,
    },
    /// A reply that could not be read (closed, too long, I/O).
    #[error("{0}")]
    Reply(String),
    #[error("{host} greeted with {code}")]
    Greeting { host: String, code: String },
    #[error("{host} does not offer STARTTLS")]
    NotOffered { host: String },
    #[error("{host} refused STARTTLS with {code}")]
    Refused { host: String, code: String },
    /// Plaintext queued after the 220 would be taken as TLS (the STARTTLS injection of
    /// CVE-2011-0411 and its kin): refused rather than read.
    #[error("{host} sent data after STARTTLS before the handshake")]
    DataAfterStartTls { host: String },
    #[error("{host}: {reason}")]
    Write { host: String, reason: String },
    #[error("{host}: {reason}")]
    InvalidName { host: String, reason: String },
    #[error("TLS with {host}: {reason}")]
    Handshake { host: String, reason: String },
    #[error("{host} presented no certificate")]
    NoCertificate { host: String },
}

impl From<ReplyError> for StartTlsError {
    fn from(e: ReplyError) -> Self {
        StartTlsError::Reply(e.to_string())
    }
}

type ChainResult = Result<Vec<Vec<u8>>, StartTlsError>;
type ChainCache = Mutex<HashMap<(String, IpAddr, u16), (Instant, ChainResult)>>;

/// Chains read recently, by (host, address, port): an MX is not connected to on every DNS
/// run of every domain that uses it; once an hour is enough to follow certificate changes
/// (a failure is retried after five minutes).
static CHAINS: std::sync::OnceLock<ChainCache> = std::sync::OnceLock::new();
const CHAIN_TTL: Duration = Duration::from_secs(3600);
const FAILURE_TTL: Duration = Duration::from_secs(300);
/// Chains kept at most (a few KiB each).
const CHAIN_CACHE_LIMIT: usize = 10_000;

/// The chain the MX presents after STARTTLS (end entity first).
pub async fn fetch_chain(host: &str, ip: IpAddr, port: u16, timeout: Duration) -> ChainResult {
    let key = (host.to_ascii_lowercase(), ip, port);
    let cache = CHAINS.get_or_init(Default::default);
    if let Some((at, result)) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
    {
        let ttl = if result.is_ok() {
            CHAIN_TTL
        } else {
            FAILURE_TTL
        };
        if at.elapsed() < ttl {
            return result.clone();
        }
    }
    let result = tokio::time::timeout(timeout, fetch_chain_inner(host, ip, port))
        .await
        .unwrap_or_else(|_| {
            Err(StartTlsError::Timeout {
                host: host.to_string(),
                ip,
                port,
                seconds: timeout.as_secs(),
            })
        });
    let mut map = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Bounded: on-demand probes of arbitrary domains add an entry per MX they name.
    crate::evict::make_room(
        &mut map,
        CHAIN_CACHE_LIMIT,
        |(at, _)| *at,
        |(at, _)| at.elapsed() >= CHAIN_TTL,
    );
    map.insert(key, (Instant::now(), result.clone()));
    result
}

/// The finding's message when DANE senders would not use the TLSA records at `tlsa_name`.
fn not_validated_message(
    domain: &str,
    tlsa_name: &str,
    mx_ok: bool,
    tlsa_ok: bool,
) -> Option<String> {
    let what = match (mx_ok, tlsa_ok) {
        (true, true) => return None,
        (false, false) => format!("the MX records of {domain} and the TLSA records at {tlsa_name}"),
        (false, true) => format!("the MX records of {domain}"),
        (true, false) => format!("the TLSA records at {tlsa_name}"),
    };
    Some(format!(
        "{what} came back without the AD bit: not DNSSEC-validated by the resolver, so DANE senders ignore the TLSA records (RFC 7672 §2.2)"
    ))
}

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets, CRLF included.
pub const MAX_REPLY_LINE: usize = 512;
/// Lines of one (multi-line) reply; an EHLO reply has a dozen or two.
const MAX_REPLY_LINES: usize = 100;
/// One reply in all. Well above any real EHLO reply, far below what a hostile MX could
/// make the exporter hold if only lines were counted.
pub const MAX_REPLY_BYTES: usize = 16 * 1024;

/// Why an SMTP reply could not be read. Every bound is enforced while reading, so a peer
/// streaming bytes without a line end costs at most one line's worth of memory.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("{host}: {source}")]
    Io {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} closed the connection")]
    Closed { host: String },
    #[error("{host} sent a reply line longer than {MAX_REPLY_LINE} bytes (RFC 5321 §4.5.3.1.5)")]
    LineTooLong { host: String },
    #[error("{host} sent a reply of more than {MAX_REPLY_LINES} lines or {MAX_REPLY_BYTES} bytes")]
    ReplyTooLong { host: String },
}

/// One line (up to and including LF), at most [`MAX_REPLY_LINE`] bytes; nothing past the
/// line end is consumed, so that no plaintext is taken for the TLS handshake.
async fn read_bounded_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    host: &str,
) -> Result<Vec<u8>, ReplyError> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await.map_err(|source| ReplyError::Io {
            host: host.to_string(),
            source,
        })?;
        if available.is_empty() {
            return Err(ReplyError::Closed {
                host: host.to_string(),
            });
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong {
                host: host.to_string(),
            });
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            return Ok(line);
        }
    }
}

/// One SMTP reply: its code and its lines (trimmed), bounded in line length, line count
/// and total size.
async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    host: &str,
) -> Result<(String, Vec<String>), ReplyError> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let raw = read_bounded_line(reader, host).await?;
        total += raw.len();
        if total > MAX_REPLY_BYTES || lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::ReplyTooLong {
                host: host.to_string(),
            });
        }
        let line = String::from_utf8_lossy(&raw);
        let code = line.get(..3).unwrap_or("").to_string();
        let last = raw.get(3) != Some(&b'-');
        lines.push(line.trim_end().to_string());
        if last {
            return Ok((code, lines));
        }
    }
}

async fn fetch_chain_inner(host: &str, ip: IpAddr, port: u16) -> ChainResult {
    let owned = || host.to_string();
    let write_failed = |e: std::io::Error| StartTlsError::Write {
        host: owned(),
        reason: e.to_string(),
    };
    let tcp = tokio::net::TcpStream::connect(SocketAddr::new(ip, port))
        .await
        .map_err(|e| StartTlsError::Connect {
            host: owned(),
            ip,
            port,
            reason: e.to_string(),
        })?;
    let mut reader = BufReader::new(tcp);
    let (code, _) = read_reply(&mut reader, host).await?;
    if code != "220" {
        return Err(StartTlsError::Greeting {
            host: owned(),
            code,
        });
    }
    reader
        .get_mut()
        .write_all(b"EHLO mailauth-exporter.invalid\r\n")
        .await
        .map_err(write_failed)?;
    let (code, lines) = read_reply(&mut reader, host).await?;
    if code != "250"
        || !lines.iter().any(|l| {
            l.get(4..)
                .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
        })
    {
        return Err(StartTlsError::NotOffered { host: owned() });
    }
    reader
        .get_mut()
        .write_all(b"STARTTLS\r\n")
        .await
        .map_err(write_failed)?;
    let (code, _) = read_reply(&mut reader, host).await?;
    if code != "220" {
        return Err(StartTlsError::Refused {
            host: owned(),
            code,
        });
    }
    if !reader.buffer().is_empty() {
        return Err(StartTlsError::DataAfterStartTls { host: owned() });
    }
    let tcp = reader.into_inner();
    let name = ServerName::try_from(host.to_string()).map_err(|e| StartTlsError::InvalidName {
        host: owned(),
        reason: e.to_string(),
    })?;
    let tls = tokio_rustls::TlsConnector::from(crate::tls::capture_config())
        .connect(name, tcp)
        .await
        .map_err(|e| StartTlsError::Handshake {
            host: owned(),
            reason: e.to_string(),
        })?;
    let (_, conn) = tls.get_ref();
    let chain = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect::<Vec<_>>();
    if chain.is_empty() {
        return Err(StartTlsError::NoCertificate { host: owned() });
    }
    Ok(chain)
}

/// Whether the resolver vouched for `domain`'s MX RRset: TLSA records of an MX host reached
/// through an insecure MX answer are not used either (RFC 7672 §2.2.1).
async fn mx_secure(dns: &dyn Dns, domain: &str) -> Result<bool, DnsError> {
    let answer = dns.lookup_authenticated(domain, RecordType::Mx).await;
    answer.result.map(|_| answer.authenticated)
}

/// Checks every MX host of `domain` that publishes TLSA records.
pub async fn check(
    dns: &dyn Dns,
    domain: &str,
    mx: &MxReport,
    port: u16,
    timeout: Duration,
    destinations: Destinations,
) -> DaneReport {
    let mut report = DaneReport {
        answered: true,
        ..Default::default()
    };
    let mut mx_validated: Option<Result<bool, DnsError>> = None;
    for host in &mx.hosts {
        let name = format!("_25._tcp.{}", host.host);
        let secure = dns.lookup_authenticated(&name, RecordType::Tlsa).await;
        let answer = match secure.result {
            Ok(a) => a,
            Err(e) => {
                report.answered = false;
                report.findings.push(Finding::dns_error(
                    Check::Dane,
                    format!("TLSA lookup of {name}: {e}"),
                ));
                continue;
            }
        };
        let tlsa: Vec<Association> = answer
            .records()
            .iter()
            .filter_map(Association::of)
            .collect();
        if tlsa.is_empty() {
            continue;
        }
        let mut entry = MxTls {
            host: host.host.clone(),
            tlsa: tlsa
                .iter()
                .map(|a| Tlsa {
                    usage: a.usage,
                    selector: a.selector,
                    matching: a.matching,
                    data: a.data.iter().map(|b| format!("{b:02x}")).collect(),
                })
                .collect(),
            ..Default::default()
        };
        if mx_validated.is_none() {
            mx_validated = Some(mx_secure(dns, domain).await);
        }
        match mx_validated.as_ref().expect("set above") {
            Err(e) => {
                report.answered = false;
                report.findings.push(Finding::dns_error(
                    Check::Dane,
                    format!("MX lookup of {domain} with DNSSEC: {e}"),
                ));
            }
            Ok(mx_ok) => {
                entry.dnssec_validated = Some(*mx_ok && secure.authenticated);
                if let Some(message) =
                    not_validated_message(domain, &name, *mx_ok, secure.authenticated)
                {
                    report
                        .findings
                        .push(Finding::new(Code::DaneNotDnssecValidated, message));
                }
            }
        }
        let usable: Vec<&Association> = tlsa.iter().filter(|a| a.usable_for_smtp()).collect();
        if usable.is_empty() {
            report.findings.push(Finding::new(
                Code::DaneUnusable,
                format!("{name} has only PKIX-TA/PKIX-EE (usage 0/1) records, which SMTP does not use (RFC 7672 §3.1.3)"),
            ));
            report.hosts.push(entry);
            continue;
        }
        let Some(first) = host.addresses.first().copied() else {
            report.hosts.push(entry);
            continue;
        };
        // The address judged is the one connected to (no second lookup in between).
        let Some(ip) = host
            .addresses
            .iter()
            .copied()
            .find(|ip| destinations.refuses(*ip).is_none())
        else {
            let range = destinations.refuses(first).unwrap_or("refused");
            report.findings.push(Finding::new(
                Code::DaneDestinationRefused,
                format!(
                    "{} ({first}) port {port}: not connected to: {first} is {range} (on-demand probes of unwatched domains reach public addresses only)",
                    host.host
                ),
            ));
            report.hosts.push(entry);
            continue;
        };
        match fetch_chain(&host.host, ip, port, timeout).await {
            Err(e) => report
                .findings
                .push(Finding::new(Code::DaneStarttlsFailed, e.to_string())),
            Ok(chain) => {
                entry.not_after = crate::der::not_after(&chain[0]);
                let matched = usable.iter().any(|a| a.matches_chain(&chain));
                entry.dane_match = Some(matched);
                if !matched {
                    report.findings.push(Finding::new(
                        Code::DaneMismatch,
                        format!(
                            "no TLSA record at {name} matches the certificate {} presents",
                            host.host
                        ),
                    ));
                }
            }
        }
        report.hosts.push(entry);
    }
    report
}

#[cfg(test)]
#[path = "dane_tests.rs"]
mod tests;
