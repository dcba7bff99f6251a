//! The web config file (`--web.config.file`), in the YAML shape of Prometheus's
//! exporter-toolkit so that one file serves every exporter on a host:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.pem
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.pem
//!   min_version: TLS12
//! basic_auth_users:
//!   prometheus: $2y$10$...
//! ```
//!
//! Parsing here is pure (text in, settings or a located error out); reading the files it
//! names happens in `tls.rs`. As in exporter-toolkit, unknown keys are errors and relative
//! paths are relative to the directory of the web config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::ConfigError;

/// What the web config file asks for. `Default` is plain HTTP without authentication.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    pub tls: Option<TlsSettings>,
    /// User name → bcrypt hash.
    pub basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsVersion,
}

/// exporter-toolkit's `client_auth_type` values that rustls can honour. rustls verifies
/// every client certificate it asks for, so Go's "ask but do not verify" modes
/// (`RequestClientCert`, `RequireAnyClientCert`) are refused rather than weakened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
}

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::plain(path, &format!("cannot read web config file: {e}")))?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the content of the file at `path` (used for messages and to resolve
    /// relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<WebConfig, ConfigError> {
        // An empty file (or one of comments only) is a valid "nothing configured".
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(WebConfig::default());
        }
        let raw: Raw = serde_yaml::from_str(text).map_err(|e| yaml_error(path, text, &e))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let err = |keys: &[&str], msg: &str| located(path, text, keys, msg);
        let mut config = WebConfig::default();
        if let Some(users) = raw.basic_auth_users {
            for (user, hash) in users {
                if user.contains(':') {
                    return Err(err(
                        &["basic_auth_users", &user],
                        "a user name cannot contain ':' (RFC 7617)",
                    ));
                }
                if hash.parse::<bcrypt::HashParts>().is_err() {
                    return Err(err(
                        &["basic_auth_users", &user],
                        "not a bcrypt hash (create one with `htpasswd -nBC 10 USER`)",
                    ));
                }
                config.basic_auth_users.insert(user, hash);
            }
        }
        if let Some(tls) = raw.tls_server_config {
            config.tls = tls_settings(tls, base, &err)?;
        }
        Ok(config)
    }

    pub fn is_plain(&self) -> bool {
        self.tls.is_none() && self.basic_auth_users.is_empty()
    }
}

fn tls_settings(
    tls: RawTls,
    base: &Path,
    err: &dyn Fn(&[&str], &str) -> ConfigError,
) -> Result<Option<TlsSettings>, ConfigError> {
    const SECTION: &str = "tls_server_config";
    let empty = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
    // exporter-toolkit: a section with nothing set means TLS off.
    if empty(&tls.cert_file)
        && empty(&tls.key_file)
        && empty(&tls.client_auth_type)
        && empty(&tls.client_ca_file)
    {
        return Ok(None);
    }
    let cert_file = match tls.cert_file.filter(|s| !s.is_empty()) {
        Some(f) => base.join(f),
        None => return Err(err(&[SECTION], "cert_file is missing")),
    };
    let key_file = match tls.key_file.filter(|s| !s.is_empty()) {
        Some(f) => base.join(f),
        None => return Err(err(&[SECTION], "key_file is missing")),
    };
    let client_auth = match tls.client_auth_type.as_deref().unwrap_or("") {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
            return Err(err(
                &[SECTION, "client_auth_type"],
                "client certificates that are not verified are not supported; use \
                 VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file",
            ))
        }
        other => {
            return Err(err(
                &[SECTION, "client_auth_type"],
                &format!(
                    "unknown client_auth_type {other:?} (NoClientCert, VerifyClientCertIfGiven, \
                     RequireAndVerifyClientCert)"
                ),
            ))
        }
    };
    let client_ca_file = tls
        .client_ca_file
        .filter(|s| !s.is_empty())
        .map(|f| base.join(f));
    match (&client_ca_file, client_auth) {
        (Some(_), ClientAuth::NoClientCert) => {
            return Err(err(
                &[SECTION, "client_ca_file"],
                "client_ca_file is set but client_auth_type does not ask for client certificates",
            ))
        }
        (None, ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert) => {
            return Err(err(
                &[SECTION, "client_auth_type"],
                "verifying client certificates needs client_ca_file",
            ))
        }
        _ => {}
    }
    let min_version = match tls.min_version.as_deref().unwrap_or("TLS12") {
        "TLS12" => TlsVersion::Tls12,
        "TLS13" => TlsVersion::Tls13,
        "TLS10" | "TLS11" => {
            return Err(err(
                &[SECTION, "min_version"],
                "TLS 1.0 and 1.1 are not offered; use TLS12 or TLS13",
            ))
        }
        other => {
            return Err(err(
                &[SECTION, "min_version"],
                &format!("unknown TLS version {other:?} (TLS12, TLS13)"),
            ))
        }
    };
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        client_auth,
        client_ca_file,
        min_version,
    }))
}

/// A serde_yaml error as `FILE:LINE:COLUMN: key KEY: message`; the key is read from the
/// text at the error's line, with the keys of the lines it is nested under.
fn yaml_error(path: &Path, text: &str, e: &serde_yaml::Error) -> ConfigError {
    let full = e.to_string();
    // serde_yaml appends " at line L column C" and prefixes "parent.path: ".
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full.clone(),
    };
    let message = match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') => rest.to_string(),
        _ => message,
    };
    match e.location() {
        Some(loc) => ConfigError {
            path: path.to_path_buf(),
            line: Some(loc.line()),
            column: Some(loc.column()),
            key: key_path_at(text, loc.line()),
            message,
        },
        None => ConfigError::plain(path, &message),
    }
}

/// An error about the key path `keys` (outermost first), located where that key is
/// written (or at its deepest written parent).
fn located(path: &Path, text: &str, keys: &[&str], message: &str) -> ConfigError {
    let line = find_key_line(text, keys);
    ConfigError {
        path: path.to_path_buf(),
        line: line.map(|(l, _)| l),
        column: line.map(|(_, c)| c),
        key: Some(keys.join(".")),
        message: message.to_string(),
    }
}

/// (indent, key) of a block-mapping line `  key: value`, if it is one.
fn line_key(line: &str) -> Option<(usize, &str)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
        return None;
    }
    let indent = line.len() - trimmed.len();
    let (key, _) = trimmed.split_once(':')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then_some((indent, key))
}

/// The dotted key path of the key on line `line` (1-based).
fn key_path_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = line.checked_sub(1)?;
    let this = lines.get(idx)?;
    // A line that is not `key: value` (a list item) belongs to the key above it.
    let (mut indent, mut path) = match line_key(this) {
        Some((i, k)) => (i, vec![k]),
        None => (this.len() - this.trim_start().len(), vec![]),
    };
    for l in lines[..idx].iter().rev() {
        if let Some((i, k)) = line_key(l) {
            if i < indent {
                path.push(k);
                indent = i;
            }
        }
    }
    path.reverse();
    (!path.is_empty()).then(|| path.join("."))
}

/// Line and column (1-based) of the deepest key of `keys` that is written in `text`.
fn find_key_line(text: &str, keys: &[&str]) -> Option<(usize, usize)> {
    let mut found = None;
    let mut parent_indent: Option<usize> = None;
    let mut start = 0;
    let lines: Vec<&str> = text.lines().collect();
    'keys: for key in keys {
        for (n, l) in lines.iter().enumerate().skip(start) {
            let Some((indent, k)) = line_key(l) else {
                continue;
            };
            if parent_indent.is_some_and(|p| indent <= p) {
                break; // left the parent's block
            }
            if k == *key {
                found = Some((n + 1, indent + 1));
                parent_indent = Some(indent);
                start = n + 1;
                continue 'keys;
            }
        }
        break;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, ConfigError> {
        WebConfig::parse(text, Path::new("/etc/web.yml"))
    }

    #[test]
    fn empty_file_is_plain_http() {
        assert!(parse("").unwrap().is_plain());
        assert!(parse("# nothing\n\n").unwrap().is_plain());
        assert!(parse("tls_server_config:\nbasic_auth_users:\n")
            .unwrap()
            .is_plain());
    }

    #[test]
    fn full_config_with_relative_paths() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let c = parse(&format!(
            "tls_server_config:\n  cert_file: s.pem\n  key_file: /k/s.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\nbasic_auth_users:\n  prom: {hash}\n"
        ))
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert_file, Path::new("/etc/s.pem"));
        assert_eq!(tls.key_file, Path::new("/k/s.key"));
        assert_eq!(
            tls.client_ca_file.as_deref(),
            Some(Path::new("/etc/ca.pem"))
        );
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(c.basic_auth_users["prom"], hash);
    }

    #[test]
    fn unknown_key_named_with_line_and_path() {
        let e = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  cert_fil: c\n")
            .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert_eq!(e.key.as_deref(), Some("tls_server_config.cert_fil"), "{e}");
        assert!(e.message.contains("unknown field `cert_fil`"), "{e}");
        assert!(e.to_string().starts_with("/etc/web.yml:4:"), "{e}");
        let e = parse("basic_auth_users: {}\nhttp_server_config:\n  http2: true\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("http_server_config"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let e = parse("tls_server_config:\n  cert_file: a\n").unwrap_err();
        assert!(e.message.contains("key_file is missing"), "{e}");
        assert_eq!(e.line, Some(1));
        let e = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n")
            .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert_eq!(e.key.as_deref(), Some("tls_server_config.min_version"));
        let e = parse("basic_auth_users:\n  alice: x\n  bob: notahash\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert_eq!(e.key.as_deref(), Some("basic_auth_users.alice"));
        assert!(!e.to_string().contains("notahash"), "{e}");
        let e = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
        )
        .unwrap_err();
        assert!(e.message.contains("client_ca_file"), "{e}");
        let e =
            parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca.pem\n")
                .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        let e = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
        )
        .unwrap_err();
        assert!(e.message.contains("not supported"), "{e}");
    }

    #[test]
    fn shipped_example_parses_and_its_hash_is_change_me() {
        let text = include_str!("../../examples/web-config.yml");
        let c = parse(text).unwrap();
        assert!(c.tls.is_some());
        assert!(bcrypt::verify("change-me", &c.basic_auth_users["prometheus"]).unwrap());
    }

    #[test]
    fn wrong_type_is_located() {
        let e = parse("basic_auth_users:\n  - alice\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(
            e.key
                .as_deref()
                .unwrap_or("")
                .starts_with("basic_auth_users"),
            "{e}"
        );
    }
}
