//! OAuth 2.0 access tokens for SMTP and IMAP (`auth = "xoauth2" | "oauthbearer"`), and the
//! SASL strings that carry them.
//!
//! - **Token requests** (RFC 6749 §4.4 client credentials, §6 refresh token): a
//!   form-encoded POST to the configured `https://` endpoint over the same hand-written
//!   HTTP/1.1-over-rustls client the MTA-STS fetch uses (certificate verified, private CA
//!   through `ca_file`), redirects refused, the answer bounded to [`MAX_RESPONSE_BYTES`]
//!   and the whole exchange to the table's `timeout`. The client authenticates with
//!   `client_id` / `client_secret` in the body (RFC 6749 §2.3.1), which Microsoft's and
//!   Google's endpoints take.
//! - **Errors** name the endpoint's RFC 6749 §5.2 `error` code (and a cut, sanitised
//!   `error_description`), never the secret or the refresh token: both are blanked out of
//!   anything the endpoint sends back, in case it echoes the request.
//! - **Cache** ([`TokenCache`]): one token per set of credentials (token URL, client,
//!   scope, grant), shared by every server section using them, requested again shortly
//!   before it expires; one request at a time per credentials. A refresh token the
//!   endpoint rotates replaces the configured one, in memory and in `state_dir`, never in
//!   the secret file.
//!
//! Not here: deciding which mechanism a server gets (config) or speaking SMTP/IMAP
//! (`send`, `mailbox`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;

use crate::config::{Grant, OAuth2Config, SecretError};
use crate::state::StateStore;

/// Largest token-endpoint answer read (head and body); a token response is a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Longest `error` / `error_description` text shown from an endpoint's answer.
const MAX_ERROR_TEXT: usize = 256;

/// Token lifetime assumed when the endpoint leaves out `expires_in` (RFC 6749 §5.1 makes
/// it only RECOMMENDED): short, so that a token of unknown life is renewed early.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// A token is requested again this long before it expires: a tenth of its lifetime, at
/// most a minute, and at least 5 s (half the lifetime of a shorter-lived token), so that
/// a token handed out still lives through a slow TLS set-up and login that follow (an
/// hour-long token is renewed at 59 minutes, a 10-second one after 5, a 6-second one
/// after 3).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    let floor = (lifetime / 2).min(Duration::from_secs(5));
    (lifetime / 10).clamp(floor, Duration::from_secs(60))
}

/// Why no token could be had. Never holds the client secret or the refresh token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// RFC 6749 §5.2: the endpoint answered with an `error` code.
    #[error("token endpoint refused the request: {code}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        code: String,
        description: Option<String>,
    },
    #[error("token endpoint answered HTTP {0} without an OAuth2 error")]
    HttpStatus(u16),
    #[error("token endpoint answered HTTP {0}: a redirect, which is not followed")]
    Redirect(u16),
    #[error("token endpoint's answer is not a token response: {0}")]
    Malformed(String),
    #[error("token endpoint's answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("token endpoint unreachable: {0}")]
    Unreachable(String),
    #[error("token endpoint gave no answer within {0:?}")]
    Timeout(Duration),
    #[error("token_url: {0}")]
    Url(String),
    #[error("oauth2 credentials: {0}")]
    Secret(String),
}

impl From<SecretError> for TokenError {
    fn from(e: SecretError) -> Self {
        // The secret module's messages name the key `password_file`; say what it is here.
        TokenError::Secret(
            e.to_string()
                .replace("password_file", "secret file")
                .replace("(password_env)", "(oauth2 secret)"),
        )
    }
}

/// The parts of an `https://host[:port][/path][?query]` token URL a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUrl {
    /// Host name or IP address (without IPv6 brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub target: String,
}

impl TokenUrl {
    /// Parses an https URL; anything else (another scheme, user info, a fragment, an
    /// empty host or a bad port) is refused.
    pub fn parse(url: &str) -> Result<TokenUrl, TokenError> {
        let bad = |why: &str| TokenError::Url(format!("{url:?}: {why}"));
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
            _ => return Err(bad("not an https:// URL")),
        };
        if url.contains('#') {
            return Err(bad("a fragment is not allowed"));
        }
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(bad("user information is not allowed"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || target
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_control())
        {
            return Err(bad("empty host or a space in the URL"));
        }
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        Ok(TokenUrl {
            host: host.to_string(),
            port,
            target,
        })
    }

    /// The `Host` header value (RFC 9110 §7.2): the port only when it is not 443.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// `application/x-www-form-urlencoded` (the WHATWG URL standard's serializer, which RFC
/// 6749 Appendix B refers to): `*-._` and alphanumerics as they are, space as `+`, every
/// other byte of the UTF-8 form as `%XX`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(out: &mut String, s: &str) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    out.push(char::from(b))
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(&mut out, k);
        out.push('=');
        enc(&mut out, v);
    }
    out
}

/// The secrets one token request carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_secret: Option<String>,
    /// For `grant = "refresh_token"`: the refresh token to present.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

impl Credentials {
    /// Blanks every secret out of `text` (an endpoint may echo the request).
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in [&self.client_secret, &self.refresh_token]
            .into_iter()
            .flatten()
        {
            if !secret.is_empty() {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// The body of a token request.
///
/// RFC 6749 §4.4.2: `grant_type=client_credentials` [`&scope=`]; §6:
/// `grant_type=refresh_token&refresh_token=...` [`&scope=`]; client authentication by
/// `client_id` (and `client_secret` for a confidential client) in the body (§2.3.1).
pub fn request_body(cfg: &OAuth2Config, creds: &Credentials) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("grant_type", cfg.grant.as_str())];
    if cfg.grant == Grant::RefreshToken {
        pairs.push((
            "refresh_token",
            creds.refresh_token.as_deref().unwrap_or(""),
        ));
    }
    pairs.push(("client_id", cfg.client_id.as_str()));
    if let Some(secret) = &creds.client_secret {
        pairs.push(("client_secret", secret.as_str()));
    }
    if let Some(scope) = cfg.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        pairs.push(("scope", scope));
    }
    form_encode(&pairs)
}

/// The HTTP/1.1 request for `body`, closing the connection after the answer.
pub fn http_request(url: &TokenUrl, body: &str) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mailauth-exporter\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        url.target,
        url.host_header(),
        body.len()
    )
}

/// Status code and body of a complete HTTP/1.1 response (`Content-Length`, chunked, or
/// up to the end of the connection).
pub fn parse_http_response(raw: &[u8]) -> Result<(u16, String), TokenError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| TokenError::Malformed("no complete HTTP response head".into()))?;
    let mut status_line = head.lines().next().unwrap_or("").split_whitespace();
    let version = status_line.next().unwrap_or("");
    let status = status_line
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s) && version.starts_with("HTTP/1."))
        .ok_or_else(|| TokenError::Malformed("no HTTP status line".into()))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let body = if header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        crate::checks::mta_sts::dechunk(body)
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.get(..len).unwrap_or(body).to_string()
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// What a successful token response (RFC 6749 §5.1) gives.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    /// `expires_in`, when given.
    pub expires_in: Option<Duration>,
    /// A new refresh token (§6: the server MAY issue one; the old one may then be void).
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// RFC 6750 §2.1, the form a bearer token must have to travel in a SASL string:
///
/// ```text
/// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
/// ```
pub fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// RFC 6749 §5.2 `error` and `error_description` characters:
///
/// ```text
/// error = 1*( %x20-21 / %x23-5B / %x5D-7E )
/// ```
///
/// Anything else is dropped and the text is cut to [`MAX_ERROR_TEXT`] bytes, so that an
/// endpoint cannot write control characters or pages of text into a log line or metric.
fn clean_error_text(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| matches!(*c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        .collect();
    if out.len() > MAX_ERROR_TEXT {
        out.truncate(MAX_ERROR_TEXT);
        out.push_str("...");
    }
    out.trim().to_string()
}

/// Reads a token endpoint's answer: a §5.1 token response on 200, a §5.2 error otherwise.
/// `creds` are blanked out of every text taken from the answer.
pub fn parse_token_response(
    status: u16,
    body: &str,
    creds: &Credentials,
) -> Result<TokenResponse, TokenError> {
    if (300..400).contains(&status) {
        return Err(TokenError::Redirect(status));
    }
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| json.as_ref().and_then(|j| j.get(name));
    if status != 200 {
        return match field("error").and_then(|e| e.as_str()) {
            Some(code) => Err(TokenError::Refused {
                code: clean_error_text(&creds.redact(code)),
                description: field("error_description")
                    .and_then(|d| d.as_str())
                    .map(|d| clean_error_text(&creds.redact(d)))
                    .filter(|d| !d.is_empty()),
            }),
            None => Err(TokenError::HttpStatus(status)),
        };
    }
    if json.as_ref().is_none_or(|j| !j.is_object()) {
        return Err(TokenError::Malformed(
            "the body is not a JSON object".into(),
        ));
    }
    let access_token = field("access_token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| TokenError::Malformed("no access_token".into()))?;
    if !is_b64token(access_token) {
        return Err(TokenError::Malformed(
            "access_token is not a bearer token (RFC 6750 b64token)".into(),
        ));
    }
    if let Some(kind) = field("token_type").and_then(|t| t.as_str()) {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Malformed(format!(
                "token_type {:?} is not Bearer",
                clean_error_text(kind)
            )));
        }
    }
    // A number, or (as some endpoints send it) a string of digits.
    let expires_in = match field("expires_in") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(Duration::from_secs(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| {
                    TokenError::Malformed("expires_in is not a number of seconds".into())
                })?,
        )),
    };
    let refresh_token = field("refresh_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(TokenResponse {
        access_token: access_token.to_string(),
        expires_in,
        refresh_token,
    })
}

/// The XOAUTH2 initial client response (Google's and Microsoft's documented format):
/// `user=<user>^Aauth=Bearer <token>^A^A`.
pub fn xoauth2_response(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// The OAUTHBEARER initial client response, RFC 7628 §3.1:
///
/// ```text
/// client-resp   = (gs2-header kvsep *kvpair kvsep) / kvsep
/// gs2-header    = gs2-cb-flag "," [ authzid ] ","    ; RFC 5801, with gs2-cb-flag "n"
/// authzid       = "a=" saslname                      ; "," as "=2C", "=" as "=3D"
/// kvsep         = %x01
/// kvpair        = key "=" value kvsep                ; host, port, auth
/// ```
pub fn oauthbearer_response(user: &str, host: &str, port: u16, token: &str) -> String {
    let saslname = user.replace('=', "=3D").replace(',', "=2C");
    format!("n,a={saslname},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
}

/// The client side of a bearer-token SASL exchange, XOAUTH2 or OAUTHBEARER, for IMAP
/// `AUTHENTICATE` (RFC 3501 §6.2.2) and SMTP `AUTH` (RFC 4954) alike: the initial response
/// carrying the token, and the answer to the one further challenge a server sends, which
/// is its JSON error status. That answer only ends the exchange so that the server can
/// send its failure reply: an empty response for XOAUTH2 (Google's documentation), a lone
/// `^A` for OAUTHBEARER (RFC 7628 §3.2.3).
pub struct BearerAuthenticator {
    initial: String,
    oauthbearer: bool,
    /// Whether the initial response went out (an atomic, not a `Cell`, so that the SMTP
    /// exchange can hold it across an `.await` in a task that may move between threads).
    sent: std::sync::atomic::AtomicBool,
}

impl BearerAuthenticator {
    /// `mechanism` is `XOAUTH2` when `oauthbearer` is false; `host`/`port` are the
    /// server's, which OAUTHBEARER names.
    pub fn new(oauthbearer: bool, user: &str, host: &str, port: u16, token: &str) -> Self {
        let initial = if oauthbearer {
            oauthbearer_response(user, host, port, token)
        } else {
            xoauth2_response(user, token)
        };
        Self {
            initial,
            oauthbearer,
            sent: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn mechanism(&self) -> &'static str {
        if self.oauthbearer {
            "OAUTHBEARER"
        } else {
            "XOAUTH2"
        }
    }

    /// The initial client response, unencoded: it holds the token.
    pub fn initial_response(&self) -> &[u8] {
        self.initial.as_bytes()
    }

    /// The client's answer to the server's error challenge, unencoded.
    pub fn error_challenge_answer(&self) -> &'static [u8] {
        if self.oauthbearer {
            b"\x01"
        } else {
            b""
        }
    }
}

impl imap::Authenticator for BearerAuthenticator {
    type Response = Vec<u8>;

    fn process(&self, _challenge: &[u8]) -> Vec<u8> {
        if !self.sent.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return self.initial_response().to_vec();
        }
        self.error_challenge_answer().to_vec()
    }
}

/// What a server's error challenge says, for the error text: the `status` of the JSON
/// the challenge carries in base64 (RFC 7628 §3.2.2; XOAUTH2 servers send the same form),
/// cleaned and cut like an endpoint's error text; the whole decoded text when it holds no
/// status, the raw challenge when it is not base64 of UTF-8. Never the token: a server's
/// challenge does not repeat the client's response.
///
/// ```text
/// server-error-value = "{" "\"status\":" DQUOTE status DQUOTE
///                      [ ",\"scope\":" DQUOTE scope DQUOTE ]
///                      [ ",\"openid-configuration\":" DQUOTE uri DQUOTE ] "}"
/// ```
pub fn error_challenge_status(challenge: &str) -> String {
    use base64::Engine;
    let Some(decoded) = base64::engine::general_purpose::STANDARD
        .decode(challenge.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return clean_error_text(challenge);
    };
    let status = serde_json::from_str::<serde_json::Value>(&decoded)
        .ok()
        .and_then(|json| json.get("status")?.as_str().map(str::to_string));
    clean_error_text(status.as_deref().unwrap_or(&decoded))
}

/// Sends one token request for `cfg` with `creds`, bounded by `cfg.timeout`.
pub async fn request_token(
    cfg: &OAuth2Config,
    creds: &Credentials,
) -> Result<TokenResponse, TokenError> {
    let url = TokenUrl::parse(&cfg.token_url)?;
    let (status, body) =
        tokio::time::timeout(cfg.timeout, exchange(cfg, &url, &request_body(cfg, creds)))
            .await
            .map_err(|_| TokenError::Timeout(cfg.timeout))??;
    parse_token_response(status, &body, creds)
}

/// Connect, TLS (verified against the system's roots and `ca_file`), POST, read at most
/// [`MAX_RESPONSE_BYTES`].
async fn exchange(
    cfg: &OAuth2Config,
    url: &TokenUrl,
    body: &str,
) -> Result<(u16, String), TokenError> {
    let unreachable = |m: String| TokenError::Unreachable(m);
    let ca_file = cfg.ca_file.clone();
    // Reading the system's roots (hundreds of files) and ca_file stays off the runtime.
    let tls =
        tokio::task::spawn_blocking(move || crate::tls::client_config(ca_file.as_deref(), false))
            .await
            .map_err(|e| unreachable(format!("TLS setup task: {e}")))?
            .map_err(|e| unreachable(e.to_string()))?;
    let where_ = format!("{}:{}", url.host, url.port);
    let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| unreachable(format!("{where_}: {e}")))?;
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| unreachable(format!("{}: {e}", url.host)))?;
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| unreachable(format!("TLS with {where_}: {e}")))?;
    stream
        .write_all(http_request(url, body).as_bytes())
        .await
        .map_err(|e| unreachable(format!("{where_}: {e}")))?;
    let raw = match crate::tls::read_to_end_bounded(&mut stream, MAX_RESPONSE_BYTES).await {
        Ok(raw) => raw,
        Err(crate::tls::BoundedReadError::TooLarge) => return Err(TokenError::TooLarge),
        Err(crate::tls::BoundedReadError::Io(e)) => {
            return Err(unreachable(format!("{where_}: {e}")))
        }
    };
    parse_http_response(&raw)
}

/// Where tokens come from: the real endpoint, or a stand-in in unit tests of the cache.
#[async_trait::async_trait]
pub trait TokenEndpoint: Send + Sync {
    async fn request(
        &self,
        cfg: &OAuth2Config,
        creds: &Credentials,
    ) -> Result<TokenResponse, TokenError>;
}

/// The configured HTTPS endpoint.
pub struct HttpsEndpoint;

#[async_trait::async_trait]
impl TokenEndpoint for HttpsEndpoint {
    async fn request(
        &self,
        cfg: &OAuth2Config,
        creds: &Credentials,
    ) -> Result<TokenResponse, TokenError> {
        request_token(cfg, creds).await
    }
}

/// What identifies one set of credentials: the token it yields is the same for every
/// server section that names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    token_url: String,
    client_id: String,
    scope: String,
    grant: Grant,
}

impl CacheKey {
    fn of(cfg: &OAuth2Config) -> Self {
        Self {
            token_url: cfg.token_url.clone(),
            client_id: cfg.client_id.clone(),
            scope: cfg.scope.clone().unwrap_or_default(),
            grant: cfg.grant,
        }
    }

    /// The state database key of a rotated refresh token: a digest of these credentials
    /// and of the configured refresh token it descends from, so that an operator who
    /// writes a new refresh token into the file starts afresh from it.
    fn state_key(&self, configured_refresh: &str) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [
            self.token_url.as_str(),
            self.client_id.as_str(),
            self.scope.as_str(),
            self.grant.as_str(),
            configured_refresh,
        ] {
            ctx.update(part.as_bytes());
            ctx.update(b"\0");
        }
        ctx.finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Default)]
struct Slot {
    /// The current access token and when to request the next one.
    access: Option<(String, Instant)>,
    /// The newest refresh token the endpoint rotated to, with the configured token it
    /// replaced (a changed file makes it void).
    rotated: Option<(String, String)>,
}

/// Access tokens shared by all users of the same credentials. A slot's lock is held for
/// the whole request, so concurrent callers wait for that one request instead of
/// sending their own.
pub struct TokenCache {
    endpoint: Arc<dyn TokenEndpoint>,
    slots: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl TokenCache {
    pub fn new(endpoint: Arc<dyn TokenEndpoint>) -> Self {
        Self {
            endpoint,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The process's cache over the real endpoint: shared across probe rounds and
    /// configuration reloads (a reload that keeps the credentials keeps the token).
    pub fn shared() -> &'static TokenCache {
        static SHARED: std::sync::OnceLock<TokenCache> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| TokenCache::new(Arc::new(HttpsEndpoint)))
    }

    fn slot(&self, key: &CacheKey) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key.clone()).or_default().clone()
    }

    /// Drops the cached access token of `cfg` (a server refused it: revoked early), so
    /// that the next caller requests a new one.
    pub async fn forget(&self, cfg: &OAuth2Config) {
        self.slot(&CacheKey::of(cfg)).lock().await.access = None;
    }

    /// A valid access token for `cfg`: the cached one, or a new one when it is due.
    /// Every `Err` is one failed request (or unreadable secret) of this caller's own.
    pub async fn token(
        &self,
        cfg: &OAuth2Config,
        store: Option<Arc<StateStore>>,
    ) -> Result<String, TokenError> {
        let key = CacheKey::of(cfg);
        let slot = self.slot(&key);
        let mut slot = slot.lock().await;
        if let Some((token, renew_at)) = &slot.access {
            if Instant::now() < *renew_at {
                return Ok(token.clone());
            }
        }
        slot.access = None;
        let client_secret = cfg.client_secret().read_async().await?;
        let mut state_key = None;
        let refresh_token = match cfg.grant {
            Grant::ClientCredentials => None,
            Grant::RefreshToken => {
                let configured = cfg
                    .refresh_token()
                    .read_async()
                    .await?
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| TokenError::Secret("the refresh token is empty".into()))?;
                let db_key = key.state_key(&configured);
                let rotated = match &slot.rotated {
                    Some((newest, from)) if *from == configured => Some(newest.clone()),
                    _ => read_rotated(store.clone(), db_key.clone()).await,
                };
                state_key = Some((db_key, configured.clone()));
                Some(rotated.unwrap_or(configured))
            }
        };
        let creds = Credentials {
            client_secret,
            refresh_token,
        };
        let started = Instant::now();
        let answer = self.endpoint.request(cfg, &creds).await?;
        let lifetime = answer.expires_in.unwrap_or(DEFAULT_LIFETIME);
        let renew_at = started + lifetime.saturating_sub(refresh_margin(lifetime));
        slot.access = Some((answer.access_token.clone(), renew_at));
        if let (Some(newest), Some((db_key, configured))) = (answer.refresh_token, state_key) {
            if creds.refresh_token.as_deref() != Some(newest.as_str()) {
                slot.rotated = Some((newest.clone(), configured));
                write_rotated(store, db_key, newest).await;
            }
        }
        Ok(answer.access_token)
    }
}

async fn read_rotated(store: Option<Arc<StateStore>>, key: String) -> Option<String> {
    let store = store?;
    tokio::task::spawn_blocking(move || store.oauth2_refresh_token(&key))
        .await
        .ok()?
        .unwrap_or_else(|e| {
            tracing::warn!("reading a rotated OAuth2 refresh token: {e}");
            None
        })
}

async fn write_rotated(store: Option<Arc<StateStore>>, key: String, token: String) {
    let Some(store) = store else { return };
    let written =
        tokio::task::spawn_blocking(move || store.set_oauth2_refresh_token(&key, &token)).await;
    if let Ok(Err(e)) = written {
        tracing::warn!("keeping a rotated OAuth2 refresh token in state_dir: {e} (kept in memory)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn config(extra: &str) -> OAuth2Config {
        let text = format!(
            "[mailbox.m]\nhost = \"imap.example.com\"\nusername = \"u@example.com\"\nauth = \"xoauth2\"\n\
             [mailbox.m.oauth2]\ntoken_url = \"https://login.example.com/tenant/token\"\nclient_id = \"app id\"\n{extra}"
        );
        crate::config::Config::parse(&text, Path::new("t.toml"))
            .unwrap()
            .mailbox["m"]
            .oauth2
            .clone()
            .unwrap()
    }

    fn creds(secret: &str, refresh: Option<&str>) -> Credentials {
        Credentials {
            client_secret: Some(secret.into()),
            refresh_token: refresh.map(str::to_string),
        }
    }

    #[test]
    fn token_urls() {
        let u = TokenUrl::parse("https://login.example.com/tenant/oauth2/v2.0/token").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("login.example.com", 443, "/tenant/oauth2/v2.0/token")
        );
        assert_eq!(u.host_header(), "login.example.com");
        let u = TokenUrl::parse("HTTPS://127.0.0.1:8443").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 8443, "/")
        );
        assert_eq!(u.host_header(), "127.0.0.1:8443");
        let u = TokenUrl::parse("https://[::1]:9443/t?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 9443, "/t?x=1")
        );
        assert_eq!(u.host_header(), "[::1]:9443");
        assert_eq!(
            TokenUrl::parse("https://h.example?a=b").unwrap().target,
            "/?a=b"
        );
        for bad in [
            "http://login.example.com/token",
            "login.example.com/token",
            "https://user:pw@login.example.com/",
            "https://login.example.com:0/",
            "https://login.example.com:99999/",
            "https:///token",
            "https://h.example/a b",
            "https://h.example/#frag",
            "https://[::1/",
        ] {
            assert!(TokenUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode(&[("a", "b")]), "a=b");
        assert_eq!(
            form_encode(&[
                (
                    "scope",
                    "https://outlook.office365.com/.default offline_access"
                ),
                ("x", "a&b=c+d")
            ]),
            "scope=https%3A%2F%2Foutlook.office365.com%2F.default+offline_access&x=a%26b%3Dc%2Bd"
        );
        assert_eq!(form_encode(&[("k", "é~*-._")]), "k=%C3%A9%7E*-._");
        assert_eq!(form_encode(&[]), "");
    }

    #[test]
    fn request_bodies() {
        let cc = config(
            "client_secret_env = \"S\"\nscope = \"https://outlook.office365.com/.default\"\n",
        );
        assert_eq!(
            request_body(&cc, &creds("s3c/ret", None)),
            "grant_type=client_credentials&client_id=app+id&client_secret=s3c%2Fret&scope=https%3A%2F%2Foutlook.office365.com%2F.default"
        );
        let rt = config("grant = \"refresh_token\"\nrefresh_token_env = \"R\"\n");
        let public = Credentials {
            client_secret: None,
            refresh_token: Some("1//r+t".into()),
        };
        assert_eq!(
            request_body(&rt, &public),
            "grant_type=refresh_token&refresh_token=1%2F%2Fr%2Bt&client_id=app+id"
        );
        let url = TokenUrl::parse("https://127.0.0.1:8443/token").unwrap();
        assert_eq!(
            http_request(&url, "a=b"),
            "POST /token HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nUser-Agent: mailauth-exporter\r\nAccept: application/json\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=b"
        );
    }

    #[test]
    fn http_responses() {
        assert_eq!(
            parse_http_response(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap(),
            (200, "{}".to_string())
        );
        assert_eq!(
            parse_http_response(b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: Chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n").unwrap(),
            (400, "{\"a\":1}".to_string())
        );
        assert_eq!(
            parse_http_response(b"HTTP/1.0 302 Found\r\nLocation: x\r\n\r\n")
                .unwrap()
                .0,
            302
        );
        assert_eq!(
            parse_http_response(b"HTTP/1.1 200 OK\r\n\r\nto the end")
                .unwrap()
                .1,
            "to the end"
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nno end of head"[..],
            b"garbage\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"SMTP/1 200\r\n\r\n",
            b"",
        ] {
            assert!(
                matches!(parse_http_response(bad), Err(TokenError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn token_responses() {
        let c = creds("hunter2", Some("refresh-me"));
        let ok = parse_token_response(
            200,
            r#"{"access_token":"eyJ0eXAi.eyJhdWQi-_~+/x==","token_type":"Bearer","expires_in":3599,"scope":"x"}"#,
            &c,
        )
        .unwrap();
        assert_eq!(ok.access_token, "eyJ0eXAi.eyJhdWQi-_~+/x==");
        assert_eq!(ok.expires_in, Some(Duration::from_secs(3599)));
        assert_eq!(ok.refresh_token, None);
        let rotated = parse_token_response(
            200,
            r#"{"access_token":"a","token_type":"bearer","expires_in":"60","refresh_token":"r2"}"#,
            &c,
        )
        .unwrap();
        assert_eq!(rotated.expires_in, Some(Duration::from_secs(60)));
        assert_eq!(rotated.refresh_token.as_deref(), Some("r2"));
        let no_expiry =
            parse_token_response(200, r#"{"access_token":"a","refresh_token":""}"#, &c).unwrap();
        assert_eq!(
            (no_expiry.expires_in, no_expiry.refresh_token),
            (None, None)
        );
        let malformed = |status, body: &str| match parse_token_response(status, body, &c) {
            Err(TokenError::Malformed(m)) => m,
            other => panic!("{body}: {other:?}"),
        };
        assert!(malformed(200, "not json").contains("JSON object"));
        assert!(malformed(200, "[1]").contains("JSON object"));
        assert!(malformed(200, r#"{"token_type":"Bearer"}"#).contains("no access_token"));
        assert!(malformed(200, r#"{"access_token":"a b"}"#).contains("b64token"));
        assert!(malformed(200, "{\"access_token\":\"a\\u0001\"}").contains("b64token"));
        assert!(malformed(200, r#"{"access_token":"a","token_type":"mac"}"#).contains("not Bearer"));
        assert!(malformed(200, r#"{"access_token":"a","expires_in":-5}"#).contains("expires_in"));
        assert!(
            malformed(200, r#"{"access_token":"a","expires_in":"soon"}"#).contains("expires_in")
        );
    }

    /// RFC 6749 §5.2 error answers come out as their code, sanitised, cut, and without
    /// the secrets even when the endpoint echoes them.
    #[test]
    fn error_responses() {
        let c = creds("hunter2", Some("refresh-me"));
        assert_eq!(
            parse_token_response(
                401,
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
                &c
            ),
            Err(TokenError::Refused {
                code: "invalid_client".into(),
                description: Some("AADSTS7000215: Invalid client secret provided.".into())
            })
        );
        let shown = parse_token_response(400, r#"{"error":"invalid_grant","error_description":"token refresh-me or secret hunter2 is bad\n\u001b[31m"}"#, &c)
            .unwrap_err()
            .to_string();
        assert_eq!(shown, "token endpoint refused the request: invalid_grant (token [redacted] or secret [redacted] is bad[31m)");
        let long = format!(
            r#"{{"error":"invalid_request","error_description":"{}"}}"#,
            "x".repeat(5000)
        );
        let shown = parse_token_response(400, &long, &c)
            .unwrap_err()
            .to_string();
        assert!(shown.len() < 400 && shown.ends_with("...)"), "{shown}");
        assert_eq!(
            parse_token_response(
                400,
                r#"{"error":"invalid_scope","error_description":""}"#,
                &c
            ),
            Err(TokenError::Refused {
                code: "invalid_scope".into(),
                description: None
            })
        );
        assert_eq!(
            parse_token_response(503, "<html>down</html>", &c),
            Err(TokenError::HttpStatus(503))
        );
        assert_eq!(
            parse_token_response(500, r#"{"error":"temporarily_unavailable"}"#, &c)
                .unwrap_err()
                .to_string(),
            "token endpoint refused the request: temporarily_unavailable"
        );
        assert_eq!(
            parse_token_response(301, r#"{"access_token":"a"}"#, &c),
            Err(TokenError::Redirect(301))
        );
        assert_eq!(
            parse_token_response(307, "", &c),
            Err(TokenError::Redirect(307))
        );
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn sasl_strings() {
        assert_eq!(
            xoauth2_response("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
            "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        // RFC 7628 §4.1's example, with its authzid.
        assert_eq!(
            oauthbearer_response("user@example.com", "server.example.com", 143, "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg=="),
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert_eq!(
            oauthbearer_response("a,b=c", "h", 993, "t"),
            "n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01auth=Bearer t\x01\x01"
        );
        assert!(is_b64token("abc=="));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token(""));
    }

    #[test]
    fn imap_authenticator_answers_the_error_challenge_to_end_the_exchange() {
        use imap::Authenticator as _;
        let x = BearerAuthenticator::new(false, "u@example.com", "imap.example.com", 993, "tok");
        assert_eq!(x.mechanism(), "XOAUTH2");
        assert_eq!(
            x.process(b""),
            b"user=u@example.com\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(x.process(br#"{"status":"401","schemes":"bearer"}"#), b"");
        let o = BearerAuthenticator::new(true, "u@example.com", "imap.example.com", 993, "tok");
        assert_eq!(o.mechanism(), "OAUTHBEARER");
        assert_eq!(
            o.process(b""),
            b"n,a=u@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(o.process(br#"{"status":"invalid_token"}"#), b"\x01");
    }

    #[test]
    fn sasl_answers_for_smtp() {
        // RFC 7628 §4.1, the SMTP example: the initial response, base64 as sent after
        // `AUTH OAUTHBEARER`.
        use base64::Engine;
        let o = BearerAuthenticator::new(
            true,
            "user@example.com",
            "server.example.com",
            587,
            "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==",
        );
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(o.initial_response()),
            "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2c9PQEB"
        );
        // RFC 7628 §3.2.3 / §4.3: the dummy answer to the error challenge is "AQ==".
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(o.error_challenge_answer()),
            "AQ=="
        );
        let x = BearerAuthenticator::new(false, "u@example.com", "smtp.example.com", 587, "t");
        assert_eq!(
            x.initial_response(),
            b"user=u@example.com\x01auth=Bearer t\x01\x01"
        );
        assert_eq!(x.error_challenge_answer(), b"");
    }

    #[test]
    fn error_challenges() {
        // RFC 7628 §4.3's challenge.
        assert_eq!(
            error_challenge_status("eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0="),
            "invalid_token"
        );
        // Google's XOAUTH2 form: the status is an HTTP code.
        assert_eq!(
            error_challenge_status("eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="),
            "401"
        );
        // Base64 of something else than the JSON: the text, without quotes or controls.
        assert_eq!(error_challenge_status("ImJhZCB0b2tlbiIK"), "bad token");
        // Not base64: the challenge itself, cleaned.
        assert_eq!(error_challenge_status("not base64!"), "not base64!");
        assert_eq!(error_challenge_status(""), "");
        assert!(error_challenge_status(&"QUFB".repeat(200)).len() <= MAX_ERROR_TEXT + 3);
    }

    #[test]
    fn margins() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(6)),
            Duration::from_secs(3)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(120)),
            Duration::from_secs(12)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    /// A stand-in endpoint that counts requests, answers after a pause (so callers
    /// overlap), and rotates the refresh token on each refresh grant.
    struct Counting {
        requests: AtomicUsize,
        lifetime: Duration,
        seen_refresh: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl TokenEndpoint for Counting {
        async fn request(
            &self,
            _cfg: &OAuth2Config,
            creds: &Credentials,
        ) -> Result<TokenResponse, TokenError> {
            let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(r) = &creds.refresh_token {
                self.seen_refresh.lock().unwrap().push(r.clone());
            }
            if creds.client_secret.as_deref() == Some("revoked") {
                return Err(TokenError::Refused {
                    code: "invalid_client".into(),
                    description: None,
                });
            }
            Ok(TokenResponse {
                access_token: format!("t{n}"),
                expires_in: Some(self.lifetime),
                refresh_token: creds.refresh_token.as_ref().map(|_| format!("r{n}")),
            })
        }
    }

    fn counting(lifetime: Duration) -> Arc<Counting> {
        Arc::new(Counting {
            requests: AtomicUsize::new(0),
            lifetime,
            seen_refresh: Mutex::new(Vec::new()),
        })
    }

    #[tokio::test]
    async fn one_request_for_many_concurrent_callers_then_cached() {
        std::env::set_var("OAUTH2_TEST_SECRET_A", "s");
        let endpoint = counting(Duration::from_secs(3600));
        let cache = Arc::new(TokenCache::new(endpoint.clone()));
        let cfg = config("client_secret_env = \"OAUTH2_TEST_SECRET_A\"\n");
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (cache, cfg) = (cache.clone(), cfg.clone());
                tokio::spawn(async move { cache.token(&cfg, None).await })
            })
            .collect();
        for c in calls {
            assert_eq!(c.await.unwrap().unwrap(), "t1");
        }
        assert_eq!(cache.token(&cfg, None).await.unwrap(), "t1");
        assert_eq!(endpoint.requests.load(Ordering::SeqCst), 1);
        // Other credentials (another scope) are another token.
        let other = config("client_secret_env = \"OAUTH2_TEST_SECRET_A\"\nscope = \"x\"\n");
        assert_eq!(cache.token(&other, None).await.unwrap(), "t2");
        // A token the server refused is forgotten and requested anew.
        cache.forget(&cfg).await;
        assert_eq!(cache.token(&cfg, None).await.unwrap(), "t3");
    }

    #[tokio::test]
    async fn a_token_is_renewed_before_it_expires_and_failures_are_not_cached() {
        std::env::set_var("OAUTH2_TEST_SECRET_B", "s");
        let endpoint = counting(Duration::from_secs(1));
        let cache = TokenCache::new(endpoint.clone());
        let cfg = config("client_secret_env = \"OAUTH2_TEST_SECRET_B\"\n");
        assert_eq!(cache.token(&cfg, None).await.unwrap(), "t1");
        // Renewed at 0.9 s (a tenth of the lifetime early), not at 1 s.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = String::new();
        while Instant::now() < deadline {
            seen = cache.token(&cfg, None).await.unwrap();
            if seen != "t1" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen, "t2");
        std::env::set_var("OAUTH2_TEST_SECRET_C", "revoked");
        let revoked = config("client_secret_env = \"OAUTH2_TEST_SECRET_C\"\n");
        let cache = TokenCache::new(counting(Duration::from_secs(3600)));
        for _ in 0..2 {
            assert!(matches!(
                cache.token(&revoked, None).await,
                Err(TokenError::Refused { .. })
            ));
        }
        std::env::remove_var("OAUTH2_TEST_SECRET_D");
        let unset = config("client_secret_env = \"OAUTH2_TEST_SECRET_D\"\n");
        let err = cache.token(&unset, None).await.unwrap_err().to_string();
        assert_eq!(err, "oauth2 credentials: environment variable OAUTH2_TEST_SECRET_D (oauth2 secret) is not set");
    }

    /// A rotated refresh token is used for the next refresh, kept in state_dir across a
    /// new cache (a restart), and dropped when the operator writes a new one to the file.
    #[tokio::test]
    async fn rotated_refresh_tokens_are_kept_in_state_not_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("refresh");
        std::fs::write(&file, "r0\n").unwrap();
        let store = StateStore::open(&dir.path().join("state")).unwrap();
        let cfg = config(&format!(
            "grant = \"refresh_token\"\nrefresh_token_file = \"{}\"\n",
            file.display()
        ));
        let endpoint = counting(Duration::ZERO);
        let cache = TokenCache::new(endpoint.clone());
        cache.token(&cfg, Some(store.clone())).await.unwrap();
        cache.token(&cfg, Some(store.clone())).await.unwrap();
        let restarted = TokenCache::new(endpoint.clone());
        restarted.token(&cfg, Some(store.clone())).await.unwrap();
        assert_eq!(*endpoint.seen_refresh.lock().unwrap(), ["r0", "r1", "r2"]);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "r0\n");
        std::fs::write(&file, "fresh").unwrap();
        restarted.token(&cfg, Some(store)).await.unwrap();
        assert_eq!(
            endpoint
                .seen_refresh
                .lock()
                .unwrap()
                .last()
                .map(String::as_str),
            Some("fresh")
        );
    }
}
