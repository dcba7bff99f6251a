//! Sending a probe message through the domain's own submission server (lettre's SMTP
//! connection, rustls), authenticated with a password (PLAIN) or an OAuth2 token (XOAUTH2,
//! OAUTHBEARER), all on one code path.
//!
//! Every outcome is a value: a refused connection, a TLS failure, a rejected login, a 4xx
//! or 5xx reply or a timeout becomes a [`SendError`] that the scheduler counts as
//! `stage="send"`; nothing here panics or retries on its own. Errors never carry the
//! password or the token (lettre's messages do not include credentials, ours name only the
//! server, and a refusal that quotes the AUTH line has the token's base64 blanked out).

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{AuthMethod, SmtpConfig, TlsMode};
use crate::mail::oauth2::{error_challenge_status, BearerAuthenticator};

/// The header that carries a probe's token, also found in the echoed headers of a
/// verifier's report.
pub const TOKEN_HEADER: &str = "X-Mailauth-Probe";

/// One probe message to one recipient.
#[derive(Clone, Debug)]
pub struct ProbeMessage {
    pub from: String,
    pub to: String,
    pub token: String,
    /// Domain part of the Message-ID (the probed domain).
    pub domain: String,
}

impl ProbeMessage {
    pub fn message_id(&self) -> String {
        format!("<mailauth-probe.{}@{}>", self.token, self.domain)
    }

    pub fn subject(&self) -> String {
        format!(
            "mailauth-exporter probe {}",
            &self.token[..self.token.len().min(12)]
        )
    }

    pub fn body(&self) -> String {
        format!(
            "This is an automated test message sent by mailauth-exporter to check that mail from\r\n\
             {} passes SPF, DKIM and DMARC at the receiving side.\r\n\
             It can be deleted; the exporter deletes it itself once it has read the results.\r\n\
             Probe token: {}\r\n",
            self.domain, self.token
        )
    }

    pub fn build(&self) -> Result<Message, SendError> {
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| SendError::Message(format!("from {:?}: {e}", self.from)))?;
        let to: Mailbox = self
            .to
            .parse()
            .map_err(|e| SendError::Message(format!("to {:?}: {e}", self.to)))?;
        let name = HeaderName::new_from_ascii(TOKEN_HEADER.to_string())
            .map_err(|e| SendError::Message(format!("header name: {e}")))?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(self.subject())
            .message_id(Some(self.message_id()))
            .raw_header(HeaderValue::new(name, self.token.clone()))
            .body(self.body())
            .map_err(|e| SendError::Message(e.to_string()))
    }
}

/// A fresh unguessable token: 128 random bits, hex.
pub fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("cannot build the message: {0}")]
    Message(String),
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    #[error("server replied {code}: {message}")]
    Rejected { code: u16, message: String },
    /// XOAUTH2 / OAUTHBEARER: the server answered the token with an error challenge (a
    /// `334` carrying its JSON status, RFC 7628 §3.2.2) and, once the client ended the
    /// exchange, refused the login. `status` is the challenge's status (`invalid_token`,
    /// Google's `401`), never the token.
    #[error("the server refused the OAuth2 token ({mechanism} error challenge: {status})")]
    TokenRefused {
        mechanism: &'static str,
        status: String,
    },
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Transport(String),
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters, SendError> {
    let mut builder = TlsParameters::builder(cfg.host.clone());
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| SendError::TlsSetup(format!("ca_file {}: {e}", path.display())))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| SendError::TlsSetup(format!("ca_file {}: {e}", path.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    if cfg.tls_insecure_skip_verify {
        builder = builder
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true);
    }
    builder
        .build_rustls()
        .map_err(|e| SendError::TlsSetup(e.to_string()))
}

/// [`tls_parameters`] on a blocking thread: it reads `ca_file`, and lettre loads the
/// system's root certificates from disk for every parameter set it builds (hundreds of
/// files), which must not hold up a runtime thread that serves `/metrics`.
async fn tls_parameters_off_runtime(cfg: &SmtpConfig) -> Result<TlsParameters, SendError> {
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || tls_parameters(&cfg))
        .await
        .map_err(|e| SendError::TlsSetup(format!("TLS setup task failed: {e}")))?
}

/// Submits `message` through `cfg`; returns when the server accepted it (the start of
/// the delivery-time measurement). `secret` is the password, or for `auth = "xoauth2"` /
/// `"oauthbearer"` the access token (`mail::oauth2`).
pub async fn send(
    cfg: &SmtpConfig,
    secret: Option<String>,
    message: &ProbeMessage,
) -> Result<SystemTime, SendError> {
    let email = message.build()?;
    let tls = match cfg.tls {
        TlsMode::None => Tls::None,
        TlsMode::Starttls => Tls::Required(tls_parameters_off_runtime(cfg).await?),
        TlsMode::Tls => Tls::Wrapper(tls_parameters_off_runtime(cfg).await?),
    };
    // lettre's timeout bounds the connect; this bounds the whole exchange, every read
    // included (lettre bounds each reply's size).
    let overall = cfg.timeout.saturating_mul(4).max(Duration::from_secs(1));
    let mut connection = tokio::time::timeout(overall, submit(cfg, tls, secret, &email))
        .await
        .map_err(|_| SendError::Timeout)??;
    let accepted = SystemTime::now();
    // The message is the server's now: QUIT is a courtesy, bounded, its outcome unused.
    let _ = tokio::time::timeout(cfg.timeout, connection.quit()).await;
    Ok(accepted)
}

/// One SMTP session up to the server's acceptance of `email`: connect (implicit TLS or
/// STARTTLS as configured, certificate verified), authenticate when the entry has a
/// username and a secret, then MAIL, RCPT, DATA. The one way every probe is submitted,
/// whatever the mechanism.
async fn submit(
    cfg: &SmtpConfig,
    tls: Tls,
    secret: Option<String>,
    email: &Message,
) -> Result<AsyncSmtpConnection, SendError> {
    let hello = ClientId::default();
    let implicit = match &tls {
        Tls::Wrapper(parameters) => Some(parameters.clone()),
        _ => None,
    };
    let mut connection = AsyncSmtpConnection::connect_tokio1(
        (cfg.host.as_str(), cfg.port),
        Some(cfg.timeout),
        &hello,
        implicit,
        None,
    )
    .await
    .map_err(|e| classify(&e))?;
    if let Tls::Required(parameters) = tls {
        connection
            .starttls(parameters, &hello)
            .await
            .map_err(|e| classify(&e))?;
    }
    if let (Some(user), Some(secret)) = (&cfg.username, secret) {
        let authenticated = match cfg.auth {
            // PLAIN only for a password (every submission server offers it under TLS, and
            // a failed PLAIN must not fall through to LOGIN: some servers stall a second
            // attempt on one session).
            AuthMethod::Password => connection
                .auth(&[Mechanism::Plain], &Credentials::new(user.clone(), secret))
                .await
                .map(|_| ())
                .map_err(|e| classify(&e)),
            AuthMethod::Xoauth2 | AuthMethod::Oauthbearer => {
                let sasl = BearerAuthenticator::new(
                    cfg.auth == AuthMethod::Oauthbearer,
                    user,
                    &cfg.host,
                    cfg.port,
                    &secret,
                );
                bearer_auth(&mut connection, &sasl).await
            }
        };
        if let Err(e) = authenticated {
            connection.abort().await;
            return Err(e);
        }
    }
    connection
        .send(email.envelope(), &email.formatted())
        .await
        .map_err(|e| classify(&e))?;
    Ok(connection)
}

/// `AUTH <mechanism> <initial response>` (RFC 4954 §4) with a bearer token. lettre's
/// own AUTH knows XOAUTH2 but not OAUTHBEARER, and cannot answer an error challenge; this
/// answers it as the mechanism says so that the server's final reply ends the exchange:
///
/// ```text
/// C: AUTH OAUTHBEARER <base64 initial response>
/// S: 334 <base64 {"status":"invalid_token",...}>
/// C: AQ==                        (XOAUTH2: an empty line)
/// S: 535 5.7.8 Authentication failed
/// ```
async fn bearer_auth(
    connection: &mut AsyncSmtpConnection,
    sasl: &BearerAuthenticator,
) -> Result<(), SendError> {
    let encoded = BASE64.encode(sasl.initial_response());
    // A server that quoted the command in its refusal would put the token into the error,
    // and from there into the log.
    let reply = connection
        .command(SaslLine(format!("AUTH {} {encoded}\r\n", sasl.mechanism())))
        .await
        .map_err(|e| classify(&e).without(&encoded))?;
    if !reply.has_code(334) {
        // 235: authenticated (lettre turns every 4xx/5xx reply into an error).
        return Ok(());
    }
    let status = error_challenge_status(reply.first_line().unwrap_or_default());
    let refused = SendError::TokenRefused {
        mechanism: sasl.mechanism(),
        status,
    };
    match connection
        .command(SaslLine::answer(sasl.error_challenge_answer()))
        .await
    {
        Err(e) if e.is_permanent() => Err(refused),
        Err(e) => Err(classify(&e)),
        // A second challenge or a success after an error challenge: neither is in RFC
        // 7628, and the session is in no known state.
        Ok(reply) => Err(SendError::Transport(format!(
            "{} error challenge answered, then the server replied {}",
            sasl.mechanism(),
            reply.code()
        ))),
    }
}

/// One client line of a SASL exchange: base64 of a response that may hold the token.
/// Written to the server only through `Display`; it has no `Debug`, so it cannot reach
/// a log by accident.
struct SaslLine(String);

impl SaslLine {
    fn answer(response: &[u8]) -> Self {
        SaslLine(format!("{}\r\n", BASE64.encode(response)))
    }
}

impl std::fmt::Display for SaslLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl SendError {
    /// The error with every occurrence of `secret` in its text blanked out.
    fn without(self, secret: &str) -> SendError {
        let blank = |text: String| text.replace(secret, "[redacted]");
        match self {
            SendError::Rejected { code, message } => SendError::Rejected {
                code,
                message: blank(message),
            },
            SendError::Transport(text) => SendError::Transport(blank(text)),
            other => other,
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    if let Some(code) = e.status() {
        let code_num: u16 = code.to_string().parse().unwrap_or(0);
        return SendError::Rejected {
            code: code_num,
            message: e.to_string(),
        };
    }
    if e.is_timeout() {
        return SendError::Timeout;
    }
    SendError::Transport(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_quoted_token_is_blanked_out_of_errors() {
        let quoted = SendError::Rejected {
            code: 500,
            message: "permanent error (500): unrecognized command AUTH XOAUTH2 dXNlcj1w".into(),
        };
        assert_eq!(
            quoted.without("dXNlcj1w").to_string(),
            "server replied 500: permanent error (500): unrecognized command AUTH XOAUTH2 [redacted]"
        );
        assert_eq!(
            SendError::Transport("a dXNlcj1w b".into()).without("dXNlcj1w"),
            SendError::Transport("a [redacted] b".into())
        );
        assert_eq!(SendError::Timeout.without("x"), SendError::Timeout);
    }

    #[test]
    fn message_carries_token_in_header_and_message_id() {
        let m = ProbeMessage {
            from: "probe@example.com".into(),
            to: "check-auth@verifier.example".into(),
            token: "0123456789abcdef0123456789abcdef".into(),
            domain: "example.com".into(),
        };
        let raw = String::from_utf8(m.build().unwrap().formatted()).unwrap();
        assert!(
            raw.contains("X-Mailauth-Probe: 0123456789abcdef0123456789abcdef\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains(
                "Message-ID: <mailauth-probe.0123456789abcdef0123456789abcdef@example.com>"
            ),
            "{raw}"
        );
        assert!(raw.contains("Probe token: 0123456789abcdef0123456789abcdef"));
        let bad = ProbeMessage {
            from: "not an address".into(),
            ..m
        };
        assert!(matches!(bad.build(), Err(SendError::Message(_))));
    }
}
