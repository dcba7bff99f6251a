//! The configuration file (TOML): what to watch and how. Parsing is strict, since a typo
//! in a monitoring config silently watches nothing: unknown keys, wrong types, bad
//! durations or addresses and duplicate domains are refused with file, line, column and key.
//!
//! Secrets never live in the file itself: only `password_file` / `password_env` name them.

pub mod domains_file;
mod error;
mod oauth2;
mod secret;

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::checks::dmarc::Policy;
/// Kept here for its callers outside `config` that are being edited elsewhere
/// (server/mod.rs); it lives in [`crate::name`].
use crate::name::is_domain_name;
pub use error::ConfigError;
pub use oauth2::{AuthMethod, Grant, OAuth2Config};
pub use secret::{Secret, SecretError};

pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:9744";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub exporter: ExporterConfig,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default, rename = "domain")]
    pub domains: Vec<DomainConfig>,
    #[serde(default)]
    pub smtp: BTreeMap<String, SmtpConfig>,
    #[serde(default)]
    pub mailbox: BTreeMap<String, MailboxConfig>,
    #[serde(default, rename = "probe")]
    pub probes: Vec<ProbeConfig>,
    #[serde(default)]
    pub mta_sts: MtaStsConfig,
    /// Where DMARC and TLS reports are read from (DESIGN.md § Reports).
    #[serde(default, rename = "reports")]
    pub reports: Vec<ReportsConfig>,
    /// The services allowed to send as the watched domains: a report record's `source`.
    #[serde(default, rename = "sender")]
    pub senders: Vec<SenderConfig>,
}

/// A `[[reports]]` source: an IMAP folder (`mailbox`) or a `directory`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// The `source` label of its metrics.
    pub name: Spanned<String>,
    /// A `[mailbox.NAME]`; its `folder` is read.
    #[serde(default)]
    pub mailbox: Option<Spanned<String>>,
    /// Read reports are moved here, only after their counts are committed.
    #[serde(default = "default_archive_folder")]
    pub archive_folder: String,
    /// Messages holding no readable report are moved here.
    #[serde(default = "default_invalid_folder")]
    pub invalid_folder: String,
    /// Instead of `mailbox`: every file in it; read files move to `archive/`, unreadable
    /// ones to `invalid/` inside it.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// How often the source is looked at when it cannot say that new reports arrived
    /// (a directory; an IMAP server without IDLE), and the longest IDLE wait.
    #[serde(default = "default_report_poll", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Larger messages or files are not read (moved to the invalid folder).
    #[serde(default = "default_max_report_bytes")]
    pub max_report_bytes: u64,
}

impl ReportsConfig {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
}

/// A `[[sender]]`: a service allowed to send as the watched domains.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    pub name: Spanned<String>,
    /// Networks it sends from (`192.0.2.0/24`, `2001:db8::/32`, or an address).
    #[serde(default)]
    pub ip_ranges: Vec<String>,
    /// A record whose DKIM passed for one of these `d=` domains is this sender's.
    #[serde(default)]
    pub dkim_domains: Vec<String>,
    /// SPF terms evaluated for the record's source IP (`include:_spf.google.com`).
    #[serde(default)]
    pub spf: Option<String>,
    /// The watched domains it sends for; empty: all.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// How MTA-STS policies are fetched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtaStsConfig {
    /// A PEM file of extra CA certificates to trust (besides the system's) for policy hosts.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_mta_sts_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        Self {
            ca_file: None,
            timeout: default_mta_sts_timeout(),
        }
    }
}

fn default_mta_sts_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExporterConfig {
    #[serde(default = "default_listen")]
    pub listen_address: String,
    #[serde(default = "default_dns_interval", deserialize_with = "duration")]
    pub dns_interval: Duration,
    #[serde(default = "default_probe_interval", deserialize_with = "duration")]
    pub probe_interval: Duration,
    /// How many domains are checked at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Allow `POST /-/reload` (off by default, like Prometheus's `--web.enable-lifecycle`).
    #[serde(default)]
    pub enable_lifecycle: bool,
    /// More domains, one per line or Prometheus file_sd JSON, re-read when the file changes.
    #[serde(default)]
    pub domains_file: Option<PathBuf>,
    /// How often the domains file is looked at for changes.
    #[serde(default = "default_domains_file_poll", deserialize_with = "duration")]
    pub domains_file_poll: Duration,
    /// Let `/probe?domain=` check any domain, not only the watched ones. Off by default:
    /// an open `/probe` lets anyone who reaches the port make this host send DNS queries
    /// and open HTTPS and SMTP connections to places of their choosing.
    #[serde(default)]
    pub probe_any_domain: bool,
    /// Deadline of one on-demand `/probe` check (504 past it), watched domain or not.
    #[serde(
        default = "default_probe_request_timeout",
        deserialize_with = "duration"
    )]
    pub probe_timeout: Duration,
    /// HTTP connections held open at once; further clients wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Where what must survive a restart is kept (an embedded SQLite database, see
    /// `crate::state`): today the probe token ledger. Unset: kept in memory only, which is
    /// logged at start, and a probe copy arriving after a restart stays in the mailbox.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Reporter label values per domain in the report metrics; later reporters are `other`.
    #[serde(default = "default_max_reporters")]
    pub max_reporters: usize,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        Self {
            listen_address: default_listen(),
            dns_interval: default_dns_interval(),
            probe_interval: default_probe_interval(),
            concurrency: default_concurrency(),
            enable_lifecycle: false,
            domains_file: None,
            domains_file_poll: default_domains_file_poll(),
            probe_any_domain: false,
            probe_timeout: default_probe_request_timeout(),
            max_connections: default_max_connections(),
            state_dir: None,
            max_reporters: default_max_reporters(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// `IP` or `IP:PORT` (port 53 when omitted). Empty: the system resolver configuration.
    #[serde(default, deserialize_with = "nameservers")]
    pub nameservers: Vec<SocketAddr>,
    #[serde(default = "default_dns_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default = "default_attempts")]
    pub attempts: usize,
    /// Longest time an answer is reused, even when its TTL is longer.
    #[serde(default = "default_cache_max_ttl", deserialize_with = "duration")]
    pub cache_max_ttl: Duration,
    /// DNS blocklist zones in which every domain's sending IPs are looked up.
    #[serde(default)]
    pub blocklists: Vec<String>,
    /// Queries sent to one server at once, at most; the others wait their turn within
    /// their timeout (see [`crate::resolver::client::DEFAULT_MAX_IN_FLIGHT`] for the default).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: default_dns_timeout(),
            attempts: default_attempts(),
            cache_max_ttl: default_cache_max_ttl(),
            blocklists: Vec::new(),
            max_in_flight: default_max_in_flight(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    pub name: Spanned<String>,
    #[serde(default)]
    pub dkim_selectors: Vec<String>,
    #[serde(default)]
    pub sending_ips: Vec<IpAddr>,
    #[serde(default)]
    pub helo: Option<String>,
    #[serde(default)]
    pub expect_dmarc_policy: Option<Policy>,
    #[serde(default)]
    pub parked: bool,
}

impl DomainConfig {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_submission_port")]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Accepted by the parser only to be refused with a clear message.
    #[serde(default)]
    password: Option<Spanned<toml::Value>>,
    /// A PEM file of CA certificates to trust for this host (a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification for this host only; logged at start.
    #[serde(default)]
    pub tls_insecure_skip_verify: bool,
    #[serde(default = "default_io_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Permit `tls = "none"` together with credentials (a loopback test bed); without it
    /// such an entry is refused, since the password would cross the network readable.
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    /// `password` (SASL PLAIN), or `xoauth2` / `oauthbearer` (RFC 7628) with a token
    /// from [`SmtpConfig::oauth2`].
    #[serde(default)]
    pub auth: AuthMethod,
    /// `[smtp.NAME.oauth2]`: where tokens come from, for `auth = "xoauth2"` or
    /// `"oauthbearer"`.
    #[serde(default)]
    pub oauth2: Option<OAuth2Config>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    pub host: String,
    #[serde(default = "default_imaps_port")]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    pub username: String,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Accepted by the parser only to be refused with a clear message.
    #[serde(default)]
    password: Option<Spanned<toml::Value>>,
    #[serde(default = "default_folder")]
    pub folder: String,
    /// Folders where the server files mail it judged spam (`["Junk"]`, Gmail's
    /// `"[Gmail]/Spam"`, Microsoft 365's `"Junk Email"`). A probe copy found there, by the
    /// same token rule as in `folder`, arrived, as spam (`mailauth_probe_spam`). Empty:
    /// only `folder` is searched.
    #[serde(default)]
    pub junk_folders: Vec<String>,
    #[serde(default)]
    pub trusted_authserv_ids: Vec<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_insecure_skip_verify: bool,
    #[serde(default = "default_io_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Messages larger than this are not fetched whole.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
    /// Permit `tls = "none"` (IMAP LOGIN sends the password as it is); see
    /// [`SmtpConfig::allow_plaintext_auth`].
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    /// `password` (IMAP LOGIN), `xoauth2` or `oauthbearer` (IMAP AUTHENTICATE with a
    /// token from [`MailboxConfig::oauth2`]).
    #[serde(default)]
    pub auth: AuthMethod,
    /// `[mailbox.NAME.oauth2]`: where tokens come from, for the OAuth2 methods.
    #[serde(default)]
    pub oauth2: Option<OAuth2Config>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub domain: Spanned<String>,
    pub from: String,
    pub smtp: Spanned<String>,
    #[serde(default = "default_probe_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default, rename = "target")]
    pub targets: Vec<ProbeTarget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Mailbox,
    Verifier,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Mailbox => "mailbox",
            TargetKind::Verifier => "verifier",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeTarget {
    pub kind: TargetKind,
    pub to: String,
    pub mailbox: Spanned<String>,
    /// `verifier` only: the address its report comes from (port25 answers
    /// `check-auth@verifier.port25.com` from `auth-results@verifier.port25.com`). Unset:
    /// any address at the domain of `to`. A reply from anyone else is never taken for the
    /// report, nor deleted.
    #[serde(default)]
    pub reply_from: Option<String>,
    /// `mailbox` only: a probe that landed as spam (in one of the mailbox's
    /// `junk_folders`, or marked so by the trusted receiver) counts as a failed round
    /// (`mailauth_probe_success` 0). Default false: delivered is delivered, and
    /// `mailauth_probe_spam` tells the rest. A key of the target, not of the mailbox,
    /// because it says how this probe's outcome is judged: one mailbox can receive the
    /// probes of several domains whose teams judge a junk landing differently.
    #[serde(default)]
    pub junk_is_failure: bool,
}

impl ProbeTarget {
    /// Whether `from` (an address from a `From:` field) is the verifier's reply address.
    pub fn is_reply_from(&self, from: &str) -> bool {
        let from = from.trim().trim_matches(['<', '>']);
        match &self.reply_from {
            Some(expected) => from.eq_ignore_ascii_case(expected.trim()),
            None => {
                let domain = |a: &str| {
                    a.rsplit_once('@')
                        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
                };
                matches!((domain(from), domain(&self.to)), (Some(a), Some(b)) if !a.is_empty() && a == b)
            }
        }
    }
}

fn default_listen() -> String {
    DEFAULT_LISTEN_ADDRESS.to_string()
}
fn default_dns_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_probe_interval() -> Duration {
    Duration::from_secs(1800)
}
fn default_concurrency() -> usize {
    64
}
fn default_probe_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_connections() -> usize {
    512
}
fn default_domains_file_poll() -> Duration {
    Duration::from_secs(10)
}
fn default_dns_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_attempts() -> usize {
    2
}
fn default_max_in_flight() -> usize {
    crate::resolver::client::DEFAULT_MAX_IN_FLIGHT
}
fn default_cache_max_ttl() -> Duration {
    Duration::from_secs(300)
}
fn default_submission_port() -> u16 {
    587
}
fn default_imaps_port() -> u16 {
    993
}
fn default_tls() -> TlsMode {
    TlsMode::Starttls
}
/// What is wrong with a mailbox's `junk_folders`, if anything: an empty name, a control
/// character (the name goes into IMAP SELECT), the inbox folder itself, or a repeat.
fn junk_folder_problem(folder: &str, junk: &[String]) -> Option<String> {
    for (i, name) in junk.iter().enumerate() {
        if name.trim().is_empty() {
            return Some("an empty folder name".to_string());
        }
        if name.chars().any(char::is_control) {
            return Some(format!("{name:?} holds a control character"));
        }
        if name == folder {
            return Some(format!("{name:?} is the mailbox's own folder"));
        }
        if junk[..i].contains(name) {
            return Some(format!("{name:?} is listed twice"));
        }
    }
    None
}

fn default_folder() -> String {
    "INBOX".to_string()
}
fn default_io_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_probe_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_max_message_bytes() -> u64 {
    1024 * 1024
}
fn default_max_reporters() -> usize {
    50
}
fn default_archive_folder() -> String {
    "Archive".to_string()
}
fn default_invalid_folder() -> String {
    "Invalid".to_string()
}
fn default_report_poll() -> Duration {
    Duration::from_secs(300)
}
fn default_max_report_bytes() -> u64 {
    64 * 1024 * 1024
}

/// humantime durations ("5m", "1h 30m"); zero is refused because every interval and
/// timeout here must make progress.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    let value = humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?}: {e} (examples: \"30s\", \"5m\", \"1h\")"
        ))
    })?;
    if value.is_zero() {
        return Err(serde::de::Error::custom(
            "duration must be greater than zero",
        ));
    }
    Ok(value)
}

fn nameservers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| parse_nameserver(t).map_err(serde::de::Error::custom))
        .collect()
}

/// A nameserver (in `[dns] nameservers` or `--nameserver`) that is not an address: names
/// are refused, since resolving the resolver would need a resolver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid nameserver {0:?}: expected IP or IP:PORT")]
pub struct InvalidNameserver(pub String);

/// `IP`, `IP:PORT` or `[IPv6]:PORT`.
pub fn parse_nameserver(text: &str) -> Result<SocketAddr, InvalidNameserver> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| InvalidNameserver(text.to_string()))
}

/// A config name that is also a label value (`[[reports]]`, `[[sender]]`): short, and of
/// characters that need no escaping anywhere it is shown.
fn is_label_value_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A `[[sender]]` entry's values, checked: ranges parsed, names canonical, SPF terms
/// parsed as the body of a record. (`reports::sender` builds its table from these.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderParts {
    pub ip_ranges: Vec<crate::ip_range::IpRange>,
    pub dkim_domains: Vec<String>,
    pub spf: Option<String>,
    pub domains: Vec<String>,
}

/// Why a `[[sender]]` entry's values are not usable (shown after `[[sender]] "name": `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    #[error(transparent)]
    IpRange(#[from] crate::ip_range::IpRangeError),
    /// An entry of `dkim_domains` or `domains` (`key`) that is not a host name.
    #[error("{key}: {name:?} is not a domain name")]
    NotADomainName { key: &'static str, name: String },
    /// `spf` is empty or starts with `v=spf1`: it takes the terms of a record, not a record.
    #[error("spf: give the terms without v=spf1 (\"include:_spf.example.net\")")]
    SpfNotTerms,
    /// `spf` does not parse as the body of an SPF record.
    #[error("spf {terms:?}: {syntax}")]
    SpfSyntax {
        terms: String,
        syntax: crate::checks::spf::parse::SyntaxError,
    },
}

impl SenderConfig {
    /// The entry's values, checked (see [`SenderParts`]); the reason when one is not usable.
    pub fn parts(&self) -> Result<SenderParts, SenderError> {
        let ip_ranges = self
            .ip_ranges
            .iter()
            .map(|r| r.parse::<crate::ip_range::IpRange>())
            .collect::<Result<Vec<_>, _>>()?;
        let names = |list: &[String], key: &'static str| -> Result<Vec<String>, SenderError> {
            list.iter()
                .map(|d| {
                    let c = crate::name::canonical(d);
                    if is_domain_name(&c) {
                        Ok(c)
                    } else {
                        Err(SenderError::NotADomainName {
                            key,
                            name: d.clone(),
                        })
                    }
                })
                .collect()
        };
        let spf = match self.spf.as_deref().map(str::trim) {
            None => None,
            Some(terms) => {
                let record = format!("v=spf1 {terms}");
                if terms.is_empty() || terms.to_ascii_lowercase().starts_with("v=spf1") {
                    return Err(SenderError::SpfNotTerms);
                }
                crate::checks::spf::parse::parse(&record).map_err(|syntax| {
                    SenderError::SpfSyntax {
                        terms: terms.to_string(),
                        syntax,
                    }
                })?;
                Some(terms.to_string())
            }
        };
        Ok(SenderParts {
            ip_ranges,
            dkim_domains: names(&self.dkim_domains, "dkim_domains")?,
            spf,
            domains: names(&self.domains, "domains")?,
        })
    }
}

/// The `source` of report records no `[[sender]]` matches, so no sender may be named so.
pub const UNKNOWN_SENDER: &str = "unknown";

macro_rules! secret_accessors {
    ($t:ty) => {
        impl $t {
            pub fn secret(&self) -> Secret {
                Secret { password_file: self.password_file.clone(), password_env: self.password_env.clone() }
            }
            fn secret_problem(&self) -> Option<(std::ops::Range<usize>, &'static str)> {
                if let Some(p) = &self.password {
                    return Some((p.span(), "a password in the config file is not accepted: use password_file or password_env"));
                }
                None
            }
        }
    };
}
secret_accessors!(SmtpConfig);
secret_accessors!(MailboxConfig);

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        config.validate(text, path)?;
        Ok(config)
    }

    fn validate(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let at = |span: std::ops::Range<usize>, msg: String| ConfigError::at(path, text, span, msg);
        if self.exporter.max_connections == 0 {
            return Err(ConfigError::plain(
                path,
                "[exporter] max_connections must be at least 1",
            ));
        }
        if self.exporter.concurrency == 0 {
            return Err(ConfigError::plain(
                path,
                "[exporter] concurrency must be at least 1",
            ));
        }
        let mut seen = HashSet::new();
        for domain in &self.domains {
            // The same constructors as `domain_spec`, so a valid config's every entry
            // becomes a spec.
            let Ok(name) = crate::name::DomainName::from_unicode(domain.name()) else {
                return Err(at(
                    domain.name.span(),
                    format!("invalid domain name {:?}", domain.name()),
                ));
            };
            if !seen.insert(name.clone()) {
                return Err(at(domain.name.span(), format!("duplicate domain {name:?}")));
            }
            for selector in &domain.dkim_selectors {
                if crate::name::Selector::new(selector).is_err() {
                    return Err(at(
                        domain.name.span(),
                        format!("domain {name:?}: invalid DKIM selector {selector:?}"),
                    ));
                }
            }
        }
        for (name, smtp) in &self.smtp {
            if let Some((span, msg)) = smtp.secret_problem() {
                return Err(at(span, msg.to_string()));
            }
            if smtp.password_file.is_some() && smtp.password_env.is_some() {
                return Err(ConfigError::plain(
                    path,
                    &format!("[smtp.{name}]: give password_file or password_env, not both"),
                ));
            }
            check_auth(
                path,
                text,
                &format!("smtp.{name}"),
                smtp.auth,
                smtp.oauth2.as_ref(),
                smtp.secret().is_set(),
                smtp.username.is_some(),
            )?;
            let credentials =
                smtp.username.is_some() || smtp.secret().is_set() || smtp.oauth2.is_some();
            if smtp.tls == TlsMode::None && credentials && !smtp.allow_plaintext_auth {
                return Err(plaintext_auth_error(path, text, "smtp", name));
            }
        }
        for (name, mailbox) in &self.mailbox {
            if let Some((span, msg)) = mailbox.secret_problem() {
                return Err(at(span, msg.to_string()));
            }
            check_auth(
                path,
                text,
                &format!("mailbox.{name}"),
                mailbox.auth,
                mailbox.oauth2.as_ref(),
                mailbox.secret().is_set(),
                true,
            )?;
            if mailbox.auth == AuthMethod::Password
                && mailbox.password_file.is_some() == mailbox.password_env.is_some()
            {
                return Err(ConfigError::plain(
                    path,
                    &format!("[mailbox.{name}]: give exactly one of password_file or password_env"),
                ));
            }
            if mailbox.tls == TlsMode::None && !mailbox.allow_plaintext_auth {
                return Err(plaintext_auth_error(path, text, "mailbox", name));
            }
            if let Some(problem) = junk_folder_problem(&mailbox.folder, &mailbox.junk_folders) {
                return Err(ConfigError::plain(
                    path,
                    &format!("[mailbox.{name}] junk_folders: {problem}"),
                ));
            }
        }
        if self.dns.max_in_flight == 0 {
            return Err(ConfigError::plain(
                path,
                "[dns] max_in_flight: at least 1 query must be allowed in flight",
            ));
        }
        for list in &self.dns.blocklists {
            if !is_domain_name(list) {
                return Err(ConfigError::plain(
                    path,
                    &format!("[dns] blocklists: {list:?} is not a DNS zone name"),
                ));
            }
        }
        for probe in &self.probes {
            if !self.smtp.contains_key(probe.smtp.get_ref()) {
                return Err(at(
                    probe.smtp.span(),
                    format!("no [smtp.{}] section", probe.smtp.get_ref()),
                ));
            }
            let domain = crate::name::to_ascii_name(probe.domain.get_ref()).unwrap_or_default();
            if !seen.contains(domain.as_str()) {
                return Err(at(
                    probe.domain.span(),
                    format!("probe domain {domain:?} has no [[domain]] entry"),
                ));
            }
            for target in &probe.targets {
                if let Some(reply_from) = &target.reply_from {
                    if target.kind != TargetKind::Verifier {
                        return Err(at(
                            target.mailbox.span(),
                            "reply_from is for kind = \"verifier\" targets only".to_string(),
                        ));
                    }
                    if reply_from
                        .rsplit_once('@')
                        .is_none_or(|(l, d)| l.is_empty() || !is_domain_name(d))
                    {
                        return Err(at(
                            target.mailbox.span(),
                            format!("reply_from {reply_from:?} is not an email address"),
                        ));
                    }
                }
                if target.junk_is_failure && target.kind != TargetKind::Mailbox {
                    return Err(at(
                        target.mailbox.span(),
                        "junk_is_failure is for kind = \"mailbox\" targets only".to_string(),
                    ));
                }
                if !self.mailbox.contains_key(target.mailbox.get_ref()) {
                    return Err(at(
                        target.mailbox.span(),
                        format!("no [mailbox.{}] section", target.mailbox.get_ref()),
                    ));
                }
            }
        }
        self.validate_reports(text, path)?;
        Ok(())
    }

    /// `[[reports]]` and `[[sender]]`: names usable as label values, one kind of source
    /// each, a `state_dir` to count into, ranges and SPF terms that parse.
    fn validate_reports(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let at = |span: std::ops::Range<usize>, msg: String| ConfigError::at(path, text, span, msg);
        let mut names = HashSet::new();
        for source in &self.reports {
            let name = source.name();
            if !is_label_value_name(name) {
                return Err(at(
                    source.name.span(),
                    format!("[[reports]] name {name:?}: use 1-64 letters, digits, '.', '-' or '_'"),
                ));
            }
            if !names.insert(name) {
                return Err(at(
                    source.name.span(),
                    format!("duplicate [[reports]] name {name:?}"),
                ));
            }
            if self.exporter.state_dir.is_none() {
                return Err(at(
                    source.name.span(),
                    "[[reports]] needs [exporter] state_dir: the reports counted are kept there, so that a restart neither loses nor repeats counts".to_string(),
                ));
            }
            match (&source.mailbox, &source.directory) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(at(
                        source.name.span(),
                        format!("[[reports]] {name:?}: give exactly one of mailbox or directory"),
                    ));
                }
                (Some(mailbox), None) => {
                    if !self.mailbox.contains_key(mailbox.get_ref()) {
                        return Err(at(
                            mailbox.span(),
                            format!("no [mailbox.{}] section", mailbox.get_ref()),
                        ));
                    }
                    let folder = &self.mailbox[mailbox.get_ref()].folder;
                    for (key, other) in [
                        ("archive_folder", &source.archive_folder),
                        ("invalid_folder", &source.invalid_folder),
                    ] {
                        if other.trim().is_empty() || other.eq_ignore_ascii_case(folder) {
                            return Err(at(
                                source.name.span(),
                                format!("[[reports]] {name:?}: {key} {other:?} must be a folder other than the one read ({folder:?})"),
                            ));
                        }
                    }
                }
                (None, Some(_)) => {}
            }
            if source.max_report_bytes == 0 {
                return Err(at(
                    source.name.span(),
                    format!("[[reports]] {name:?}: max_report_bytes must be at least 1"),
                ));
            }
        }
        if self.exporter.max_reporters == 0 {
            return Err(ConfigError::plain(
                path,
                "[exporter] max_reporters must be at least 1",
            ));
        }
        let mut names = HashSet::new();
        for sender in &self.senders {
            let name = sender.name.get_ref();
            let problem = if !is_label_value_name(name) {
                Some(format!(
                    "[[sender]] name {name:?}: use 1-64 letters, digits, '.', '-' or '_'"
                ))
            } else if name == UNKNOWN_SENDER {
                Some(
                    "[[sender]] name \"unknown\" is the source of records no sender matches"
                        .to_string(),
                )
            } else if !names.insert(name.as_str()) {
                Some(format!("duplicate [[sender]] name {name:?}"))
            } else if sender.ip_ranges.is_empty()
                && sender.dkim_domains.is_empty()
                && sender.spf.is_none()
            {
                Some(format!(
                    "[[sender]] {name:?}: give ip_ranges, dkim_domains or spf"
                ))
            } else {
                None
            };
            if let Some(msg) = problem {
                return Err(at(sender.name.span(), msg));
            }
            if let Err(msg) = sender.parts() {
                return Err(at(
                    sender.name.span(),
                    format!("[[sender]] {name:?}: {msg}"),
                ));
            }
        }
        Ok(())
    }

    pub fn domain(&self, name: &str) -> Option<&DomainConfig> {
        let ascii = |n: &str| crate::name::canonical(n);
        let name = ascii(name);
        self.domains.iter().find(|d| ascii(d.name()) == name)
    }

    /// What to check for a `[[domain]]` entry: its own keys and the `[dns] blocklists`.
    /// The one place a configured domain becomes a spec (the scheduler and `/probe` both
    /// use it, so that they check the same things). `None` for an entry whose name or a
    /// selector is invalid, which validation has already refused.
    pub fn domain_spec(&self, d: &DomainConfig) -> Option<crate::checks::DomainSpec> {
        let name = crate::name::DomainName::from_unicode(d.name()).ok()?;
        let dkim_selectors = d
            .dkim_selectors
            .iter()
            .map(|s| crate::name::Selector::new(s).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(crate::checks::DomainSpec {
            dkim_selectors,
            sending_ips: d.sending_ips.clone(),
            helo: d.helo.clone(),
            expect_dmarc_policy: d.expect_dmarc_policy,
            parked: d.parked,
            blocklists: self.dns.blocklists.clone(),
            ..crate::checks::DomainSpec::named(name)
        })
    }

    /// The specs of every configured domain, in config order.
    pub fn domain_specs(&self) -> Vec<crate::checks::DomainSpec> {
        self.domains
            .iter()
            .filter_map(|d| self.domain_spec(d))
            .collect()
    }
}

/// The rules tying `auth` to the keys around it: an OAuth2 method needs the `oauth2`
/// table and a username and takes no password; `password` takes no `oauth2` table.
fn check_auth(
    path: &Path,
    text: &str,
    section: &str,
    auth: AuthMethod,
    oauth2: Option<&OAuth2Config>,
    has_password: bool,
    has_username: bool,
) -> Result<(), ConfigError> {
    let plain = |m: String| Err(ConfigError::plain(path, &format!("[{section}]: {m}")));
    match (auth, oauth2) {
        (AuthMethod::Password, Some(_)) => plain(format!(
            "an [{section}.oauth2] table needs auth = \"xoauth2\" or \"oauthbearer\" (auth is \"password\")"
        )),
        (AuthMethod::Password, None) => Ok(()),
        (method, None) => plain(format!(
            "auth = \"{}\" needs an [{section}.oauth2] table (token_url, client_id, ...)",
            method.as_str()
        )),
        (method, Some(o)) => {
            if has_password {
                return plain(format!(
                    "auth = \"{}\" takes no password_file / password_env (the token from [{section}.oauth2] is the credential)",
                    method.as_str()
                ));
            }
            if !has_username {
                return plain(format!(
                    "auth = \"{}\" needs username (the mailbox the token acts for)",
                    method.as_str()
                ));
            }
            match o.problem(section) {
                None => Ok(()),
                Some((Some(span), m)) => Err(ConfigError::at(path, text, span, m)),
                Some((None, m)) => Err(ConfigError::plain(path, &m)),
            }
        }
    }
}

/// `tls = "none"` with credentials in `[<table>.<name>]`, located at its `tls` line (or
/// the table's header when the line cannot be found, e.g. an inline table).
fn plaintext_auth_error(path: &Path, text: &str, table: &str, name: &str) -> ConfigError {
    let message = format!(
        "[{table}.{name}]: tls = \"none\" with credentials would send the password in clear \
         text; use tls = \"starttls\" or \"tls\", or set allow_plaintext_auth = true \
         (only for a loopback test bed)"
    );
    match table_key_span(text, table, name, "tls") {
        Some(span) => ConfigError::at(path, text, span, message),
        None => ConfigError::plain(path, &message),
    }
}

/// Byte range of the line `key = ...` inside the `[table.name]` section of `text` (the
/// header itself when the key is not written there). The value is not `Spanned` because
/// the rest of the program reads it plainly; finding the line in the text is enough for
/// an error message.
fn table_key_span(
    text: &str,
    table: &str,
    name: &str,
    key: &str,
) -> Option<std::ops::Range<usize>> {
    let headers = [format!("[{table}.{name}]"), format!("[{table}.\"{name}\"]")];
    let mut offset = 0;
    let mut header_at = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let start = offset + (line.len() - line.trim_start().len());
        offset += line.len();
        if trimmed.starts_with('[') {
            if header_at.is_some() {
                break; // the next table: the key is not written in ours
            }
            let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
            if headers.iter().any(|h| compact.starts_with(h.as_str())) {
                header_at = Some(start);
            }
            continue;
        }
        if header_at.is_some()
            && trimmed
                .split('=')
                .next()
                .is_some_and(|k| k.trim() == key && trimmed.contains('='))
        {
            return Some(start..start + trimmed.len());
        }
    }
    header_at.map(|at| at..at + 1)
}

#[cfg(test)]
mod tests;

/// A human summary of what a config will do (for `config check`).
pub fn describe(config: &Config) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "listen {}; DNS checks every {}, probes every {}",
        config.exporter.listen_address,
        humantime::format_duration(config.exporter.dns_interval),
        humantime::format_duration(config.exporter.probe_interval)
    );
    let ns: Vec<String> = config
        .dns
        .nameservers
        .iter()
        .map(|n| n.to_string())
        .collect();
    let _ = writeln!(
        out,
        "DNS: {}",
        if ns.is_empty() {
            "system resolver".to_string()
        } else {
            ns.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "state: {}",
        config.exporter.state_dir.as_ref().map_or_else(
            || "in memory only (no state_dir): late probe copies after a restart stay".to_string(),
            |d| format!("{}/{}", d.display(), crate::state::FILE_NAME)
        )
    );
    let _ = writeln!(out, "{} domain(s):", config.domains.len());
    for d in &config.domains {
        let mut parts = Vec::new();
        if !d.dkim_selectors.is_empty() {
            parts.push(format!("DKIM selectors {}", d.dkim_selectors.join(", ")));
        }
        if !d.sending_ips.is_empty() {
            let ips: Vec<String> = d.sending_ips.iter().map(|i| i.to_string()).collect();
            parts.push(format!("sending IPs {}", ips.join(", ")));
        }
        if let Some(h) = &d.helo {
            parts.push(format!("HELO {h}"));
        }
        if let Some(p) = d.expect_dmarc_policy {
            parts.push(format!("expects DMARC {}", p.as_str()));
        }
        if d.parked {
            parts.push("parked".to_string());
        }
        let _ = writeln!(
            out,
            "  {} {}",
            d.name(),
            if parts.is_empty() {
                String::new()
            } else {
                format!("({})", parts.join("; "))
            }
        );
    }
    let _ = writeln!(out, "{} probe(s):", config.probes.len());
    for p in &config.probes {
        let _ = writeln!(
            out,
            "  from {} via [smtp.{}], timeout {}",
            p.from,
            p.smtp.get_ref(),
            humantime::format_duration(p.timeout)
        );
        for t in &p.targets {
            let _ = writeln!(
                out,
                "    {} → {} (read in [mailbox.{}]{})",
                t.kind.as_str(),
                t.to,
                t.mailbox.get_ref(),
                t.reply_from
                    .as_ref()
                    .map_or(String::new(), |r| format!(", report from {r}"))
            );
        }
    }
    out
}
