//! Sending a probe message through the domain's own submission server (lettre, rustls).
//!
//! Every outcome is a value: a refused connection, a TLS failure, a rejected login, a 4xx
//! or 5xx reply or a timeout becomes a [`SendError`] that the scheduler counts as
//! `stage="send"`; nothing here panics or retries on its own. Errors never carry the
//! password (lettre's messages do not include credentials; ours name only the server).

use std::time::{Duration, SystemTime};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{AuthMethod, SmtpConfig, TlsMode};

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
    /// XOAUTH2: the server answered the token with an error challenge (a `334` carrying
    /// its JSON status) instead of accepting it. lettre cannot answer such a challenge and
    /// ends the session, so the refusal is recognised here by lettre's message.
    #[error("the server refused the OAuth2 token (XOAUTH2 error challenge)")]
    TokenRefused,
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
/// the delivery-time measurement). `secret` is the password, or for `auth = "xoauth2"`
/// the access token (`mail::oauth2`).
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
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(cfg.timeout));
    if let (Some(user), Some(secret)) = (&cfg.username, secret) {
        // One mechanism only: PLAIN for a password (every submission server offers it
        // under TLS, and a failed PLAIN must not fall through to LOGIN: some servers stall
        // a second attempt on one session), XOAUTH2 for a token. Config refuses
        // OAUTHBEARER for SMTP: lettre's `Mechanism` has no such variant.
        let mechanism = match cfg.auth {
            AuthMethod::Password => Mechanism::Plain,
            AuthMethod::Xoauth2 | AuthMethod::Oauthbearer => Mechanism::Xoauth2,
        };
        builder = builder
            .credentials(Credentials::new(user.clone(), secret))
            .authentication(vec![mechanism]);
    }
    let transport = builder.build();
    // lettre's timeout bounds each read; this bounds the whole exchange.
    let overall = cfg.timeout.saturating_mul(4).max(Duration::from_secs(1));
    match tokio::time::timeout(overall, transport.send(email)).await {
        Err(_) => Err(SendError::Timeout),
        Ok(Ok(_response)) => Ok(SystemTime::now()),
        Ok(Err(e)) => Err(match classify(&e) {
            SendError::Transport(text)
                if cfg.auth.is_oauth() && text.contains("does not expect a challenge") =>
            {
                SendError::TokenRefused
            }
            other => other,
        }),
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
