//! `auth = "xoauth2" | "oauthbearer"` on `[smtp.NAME]` and `[mailbox.NAME]`, and the
//! `[smtp.NAME.oauth2]` / `[mailbox.NAME.oauth2]` table naming the token endpoint.
//!
//! Like passwords, the client secret and the refresh token are never written in the file:
//! only `*_file` / `*_env` name where they are. The token endpoint is always `https://`
//! (also for a loopback test bed, which gets its private CA through `ca_file`): the client
//! secret crosses that connection, and a bearer token is as good as a password.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;

/// How the exporter authenticates to a submission or IMAP server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// SASL PLAIN (SMTP) or IMAP LOGIN with `password_file` / `password_env`.
    #[default]
    Password,
    /// SASL XOAUTH2 (Google's and Microsoft's mechanism) with a token from `[...oauth2]`.
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628) with a token from `[...oauth2]`.
    Oauthbearer,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Xoauth2 => "xoauth2",
            AuthMethod::Oauthbearer => "oauthbearer",
        }
    }

    pub fn is_oauth(self) -> bool {
        self != AuthMethod::Password
    }
}

/// The OAuth 2.0 grant a token is requested with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// RFC 6749 §4.4: the application's own identity (Microsoft 365 service mailboxes).
    #[default]
    ClientCredentials,
    /// RFC 6749 §6: a refresh token a person granted once (Gmail, delegated access).
    RefreshToken,
}

impl Grant {
    /// The `grant_type` parameter of the token request.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken => "refresh_token",
        }
    }
}

/// `[smtp.NAME.oauth2]` / `[mailbox.NAME.oauth2]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The token endpoint (`https://` only).
    pub token_url: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Space-separated scopes asked for (RFC 6749 §3.3); unset: none sent.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub grant: Grant,
    #[serde(default)]
    pub refresh_token_file: Option<PathBuf>,
    #[serde(default)]
    pub refresh_token_env: Option<String>,
    /// A PEM file of CA certificates to trust for the token endpoint (a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Deadline of one token request (connect, TLS, request and answer).
    #[serde(
        default = "default_token_timeout",
        deserialize_with = "super::duration"
    )]
    pub timeout: Duration,
    /// Accepted by the parser only to be refused with a clear message.
    #[serde(default)]
    client_secret: Option<toml::Spanned<toml::Value>>,
    /// Accepted by the parser only to be refused with a clear message.
    #[serde(default)]
    refresh_token: Option<toml::Spanned<toml::Value>>,
}

fn default_token_timeout() -> Duration {
    Duration::from_secs(10)
}

impl OAuth2Config {
    /// Where the client secret is read from (none for a public client).
    pub fn client_secret(&self) -> Secret {
        Secret {
            password_file: self.client_secret_file.clone(),
            password_env: self.client_secret_env.clone(),
        }
    }

    /// Where the configured refresh token is read from (refresh_token grant only).
    pub fn refresh_token(&self) -> Secret {
        Secret {
            password_file: self.refresh_token_file.clone(),
            password_env: self.refresh_token_env.clone(),
        }
    }

    /// The first rule of this table that is broken, as a message; `section` is e.g.
    /// `smtp.outbound`. An inline secret comes back with its span, for a located error.
    pub(super) fn problem(
        &self,
        section: &str,
    ) -> Option<(Option<std::ops::Range<usize>>, String)> {
        for (value, key) in [
            (&self.client_secret, "client_secret"),
            (&self.refresh_token, "refresh_token"),
        ] {
            if let Some(v) = value {
                return Some((
                    Some(v.span()),
                    format!("[{section}.oauth2]: a {key} in the config file is not accepted: use {key}_file or {key}_env"),
                ));
            }
        }
        let plain = |m: String| Some((None, format!("[{section}.oauth2]: {m}")));
        match self.token_url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") && !rest.is_empty() => {}
            _ => {
                return plain(format!(
                    "token_url {:?} must be an https:// URL (the client secret and the token cross it; a test bed uses ca_file for its own CA)",
                    self.token_url
                ))
            }
        }
        if self.client_id.trim().is_empty() {
            return plain("client_id must not be empty".into());
        }
        if self.client_secret_file.is_some() && self.client_secret_env.is_some() {
            return plain("give client_secret_file or client_secret_env, not both".into());
        }
        let refresh_sources = usize::from(self.refresh_token_file.is_some())
            + usize::from(self.refresh_token_env.is_some());
        match self.grant {
            Grant::ClientCredentials => {
                if !self.client_secret().is_set() {
                    return plain(
                        "grant = \"client_credentials\" needs client_secret_file or client_secret_env".into(),
                    );
                }
                if refresh_sources > 0 {
                    return plain(
                        "refresh_token_file / refresh_token_env are for grant = \"refresh_token\" only".into(),
                    );
                }
            }
            Grant::RefreshToken => {
                if refresh_sources != 1 {
                    return plain(
                        "grant = \"refresh_token\" needs exactly one of refresh_token_file or refresh_token_env".into(),
                    );
                }
            }
        }
        None
    }
}
