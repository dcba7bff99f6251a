//! Reading probe messages from an IMAP mailbox (the `imap` crate, rustls), and deleting
//! exactly those, nothing else.
//!
//! The `imap` crate is blocking: callers run a [`Mailbox`] on a blocking thread
//! (`spawn_blocking`), and every socket read and write is bounded by the mailbox timeout.
//! Deleting is guarded twice: only UIDs whose fetched message is confirmed as ours (a probe
//! copy by its own header, a verifier report by `mail::reply`) are flagged, and only with UIDPLUS (`UID EXPUNGE` of exactly those UIDs); a
//! server without UIDPLUS gets no expunge at all, since a plain EXPUNGE would also remove
//! messages that someone else flagged \Deleted.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imap::extensions::idle::SetReadTimeout;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::config::{AuthMethod, MailboxConfig, TlsMode};
use crate::mail::oauth2::BearerAuthenticator;
use crate::mail::send::TOKEN_HEADER;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("login refused for user {0}")]
    Login(String),
    #[error("IMAP: {0}")]
    Protocol(String),
    /// A configured folder (`folder` or one of `junk_folders`) the server does not have:
    /// a configuration fault shown as the probe's `mailbox` stage, never skipped quietly
    /// (a missing junk folder would hide exactly the placement it is there to see).
    #[error("the server has no folder {0:?} (check folder / junk_folders)")]
    NoSuchFolder(String),
}

/// RFC 2177 §3: "clients using IDLE are advised to terminate the IDLE and re-issue it at
/// least every 29 minutes to avoid being logged off". Re-issued well before that.
pub const IDLE_REISSUE: Duration = Duration::from_secs(25 * 60);

/// How long one wait lasts at most while junk folders are watched too: IDLE sees only the
/// selected folder (the inbox), so a probe filed into a junk folder is found by polling
/// that often.
pub const JUNK_POLL: Duration = Duration::from_secs(5);

/// How long one IDLE (or one pause between polls) may last: never past the probe's
/// deadline, never past [`IDLE_REISSUE`], and at most [`JUNK_POLL`] when junk folders are
/// searched too. At least 100 ms, so that a deadline already reached still makes one
/// short round trip rather than a busy loop.
pub fn idle_period(remaining: Duration, watches_junk: bool) -> Duration {
    let mut period = remaining.min(IDLE_REISSUE);
    if watches_junk {
        period = period.min(JUNK_POLL);
    }
    period.max(Duration::from_millis(100))
}

/// How an IDLE ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleEnd {
    /// The server sent an untagged update (EXISTS, EXPUNGE, FETCH, ...).
    Changed,
    /// The period ran out with nothing said.
    TimedOut,
}

/// Whether a NOOP follows the wait before the next SEARCH. Without IDLE the NOOP is the
/// poll itself (RFC 3501 §6.1.2: NOOP "can be used as a periodic poll for new messages").
/// After an IDLE that ran out silently, a NOOP too: some servers announce mail that
/// arrived during IDLE only in answer to the next command, and some (Exchange-style
/// stores) let SEARCH see it only after the session was told; a NOOP is cheap and makes
/// the next SEARCH see the folder as it is. After an update, SEARCH follows directly.
pub fn noop_after(has_idle: bool, end: IdleEnd) -> bool {
    !has_idle || end == IdleEnd::TimedOut
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// Plain or TLS socket, with the read timeout the IDLE extension needs. "No timeout"
/// (what the crate asks for after IDLE) means the mailbox's timeout here: every read of
/// this exporter is bounded.
///
/// Reads are bounded in size as well as time: the `imap` crate buffers a response until
/// it is complete, so a server streaming one endless line (or a literal larger than
/// asked for) would grow that buffer without end while the read timeout, which fires
/// only on silence, never does. Here the bytes read since the last command was written
/// may not exceed `read_budget`.
pub struct ImapStream {
    transport: Transport,
    default_timeout: Duration,
    /// End of the span the IDLE extension asked for (`set_read_timeout(Some(..))`). A
    /// deadline, not a per-read timeout: any line from the server (Dovecot's
    /// `* OK Still here` keepalive, which the crate swallows) would otherwise restart the
    /// timeout and keep an IDLE going past its span, possibly forever.
    read_deadline: Option<Instant>,
    read_since_write: u64,
    read_budget: u64,
}

/// What one command's answer may add to `max_message_bytes` (SEARCH results listing
/// thousands of UIDs, FETCH framing, untagged updates).
const ANSWER_SLACK: u64 = 1024 * 1024;

impl ImapStream {
    fn new(transport: Transport, cfg: &MailboxConfig) -> Self {
        Self {
            transport,
            default_timeout: cfg.timeout,
            read_deadline: None,
            read_since_write: 0,
            read_budget: cfg.max_message_bytes.saturating_add(ANSWER_SLACK),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match &self.transport {
            Transport::Plain(s) => s,
            Transport::Tls(s) => &s.sock,
        }
    }
}

impl Read for ImapStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(deadline) = self.read_deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the IDLE span is over",
                ));
            }
            self.tcp().set_read_timeout(Some(left))?;
        }
        let n = match &mut self.transport {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }?;
        self.read_since_write = self.read_since_write.saturating_add(n as u64);
        if self.read_since_write > self.read_budget {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the IMAP server sent more than {} bytes in answer to one command",
                    self.read_budget
                ),
            ));
        }
        Ok(n)
    }
}

impl Write for ImapStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !buf.is_empty() {
            self.read_since_write = 0;
        }
        match &mut self.transport {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.transport {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

impl SetReadTimeout for ImapStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> imap::Result<()> {
        self.read_deadline = timeout.map(|t| Instant::now() + t);
        let t = timeout
            .unwrap_or(self.default_timeout)
            .max(Duration::from_millis(1));
        self.tcp()
            .set_read_timeout(Some(t))
            .map_err(imap::Error::Io)
    }
}

/// A fetched message, cut at the configured size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
    /// The message was larger than the limit and `raw` holds only its beginning.
    pub truncated: bool,
}

pub struct Mailbox {
    session: imap::Session<ImapStream>,
    max_bytes: u64,
    pub has_idle: bool,
    pub has_uidplus: bool,
    /// The configured `folder`, where IDLE waits.
    inbox: String,
    /// The configured `junk_folders`, each known to exist on the server.
    junk: Vec<String>,
    /// The folder currently selected.
    selected: String,
}

fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, MailboxError> {
    let target = format!("{host}:{port}");
    let addrs = target
        .to_socket_addrs()
        .map_err(|e| MailboxError::Connect(format!("{target}: {e}")))?;
    let mut last = format!("{target}: no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(timeout));
                let _ = s.set_write_timeout(Some(timeout));
                return Ok(s);
            }
            Err(e) => last = format!("{target}: {e}"),
        }
    }
    Err(MailboxError::Connect(last))
}

fn wrap_tls(cfg: &MailboxConfig, tcp: TcpStream) -> Result<ImapStream, MailboxError> {
    let config = crate::tls::client_config(cfg.ca_file.as_deref(), cfg.tls_insecure_skip_verify)
        .map_err(|e| MailboxError::Tls(e.to_string()))?;
    let name = ServerName::try_from(cfg.host.clone())
        .map_err(|e| MailboxError::Tls(format!("{}: {e}", cfg.host)))?;
    let conn = ClientConnection::new(Arc::clone(&config), name)
        .map_err(|e| MailboxError::Tls(e.to_string()))?;
    let mut stream = StreamOwned::new(conn, tcp);
    // Complete the handshake now so that certificate errors surface as TLS errors.
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| MailboxError::Tls(e.to_string()))?;
    }
    Ok(ImapStream::new(Transport::Tls(Box::new(stream)), cfg))
}

/// Reads one CRLF-terminated line byte by byte, so that nothing after it is consumed
/// (RFC 3501 §6.2.1: no plaintext may be buffered across STARTTLS).
fn read_line(tcp: &mut TcpStream) -> Result<String, MailboxError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n = tcp
            .read(&mut byte)
            .map_err(|e| MailboxError::Protocol(format!("reading: {e}")))?;
        if n == 0 {
            return Err(MailboxError::Protocol("connection closed".into()));
        }
        line.push(byte[0]);
        if line.len() > 8192 {
            return Err(MailboxError::Protocol("line too long".into()));
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn starttls(cfg: &MailboxConfig, mut tcp: TcpStream) -> Result<ImapStream, MailboxError> {
    let greeting = read_line(&mut tcp)?;
    if !greeting.starts_with("* OK") {
        return Err(MailboxError::Protocol(format!(
            "unexpected greeting {:?}",
            greeting.trim_end()
        )));
    }
    tcp.write_all(b"s0 STARTTLS\r\n")
        .map_err(|e| MailboxError::Protocol(e.to_string()))?;
    loop {
        let line = read_line(&mut tcp)?;
        if line.starts_with("s0 OK") {
            break;
        }
        if line.starts_with("s0 ") {
            return Err(MailboxError::Tls(format!(
                "STARTTLS refused: {}",
                line.trim_end()
            )));
        }
    }
    wrap_tls(cfg, tcp)
}

impl Mailbox {
    /// Connects, logs in and selects the folder. `secret` is the password, or for
    /// `auth = "xoauth2" | "oauthbearer"` the access token (`mail::oauth2`).
    pub fn connect(cfg: &MailboxConfig, secret: &str) -> Result<Mailbox, MailboxError> {
        let tcp = connect_tcp(&cfg.host, cfg.port, cfg.timeout)?;
        let client = match cfg.tls {
            TlsMode::Starttls => imap::Client::new(starttls(cfg, tcp)?),
            TlsMode::Tls | TlsMode::None => {
                let stream = if cfg.tls == TlsMode::Tls {
                    wrap_tls(cfg, tcp)?
                } else {
                    ImapStream::new(Transport::Plain(tcp), cfg)
                };
                let mut client = imap::Client::new(stream);
                client
                    .read_greeting()
                    .map_err(|e| MailboxError::Protocol(format!("greeting: {e}")))?;
                client
            }
        };
        let mut session = match cfg.auth {
            AuthMethod::Password => client
                .login(&cfg.username, secret)
                .map_err(|_| MailboxError::Login(cfg.username.clone()))?,
            method => {
                let sasl = BearerAuthenticator::new(
                    method == AuthMethod::Oauthbearer,
                    &cfg.username,
                    &cfg.host,
                    cfg.port,
                    secret,
                );
                client
                    .authenticate(sasl.mechanism(), &sasl)
                    .map_err(|_| MailboxError::Login(cfg.username.clone()))?
            }
        };
        let caps = session
            .capabilities()
            .map_err(|e| MailboxError::Protocol(format!("CAPABILITY: {e}")))?;
        let has_idle = caps.has_str("IDLE");
        let has_uidplus = caps.has_str("UIDPLUS");
        // Every junk folder is checked now, so that one the server lacks is a failure of
        // this round even when the probe is found in the inbox first.
        for junk in &cfg.junk_folders {
            session
                .status(junk, "(UIDNEXT)")
                .map_err(|e| folder_error("STATUS", junk, e))?;
        }
        session
            .select(&cfg.folder)
            .map_err(|e| folder_error("SELECT", &cfg.folder, e))?;
        Ok(Mailbox {
            session,
            max_bytes: cfg.max_message_bytes,
            has_idle,
            has_uidplus,
            inbox: cfg.folder.clone(),
            junk: cfg.junk_folders.clone(),
            selected: cfg.folder.clone(),
        })
    }

    /// The configured folder first, then the junk folders, in the configured order.
    pub fn folders(&self) -> Vec<String> {
        std::iter::once(self.inbox.clone())
            .chain(self.junk.iter().cloned())
            .collect()
    }

    /// The configured `folder`.
    pub fn inbox(&self) -> &str {
        &self.inbox
    }

    /// Whether `folder` is one of the configured junk folders.
    pub fn is_junk(&self, folder: &str) -> bool {
        self.junk.iter().any(|j| j == folder)
    }

    /// The folder searches, fetches and deletions act on from now on.
    pub fn select(&mut self, folder: &str) -> Result<(), MailboxError> {
        if self.selected == folder {
            return Ok(());
        }
        self.session
            .select(folder)
            .map_err(|e| folder_error("SELECT", folder, e))?;
        self.selected = folder.to_string();
        Ok(())
    }

    fn protocol<T>(what: &str, r: imap::Result<T>) -> Result<T, MailboxError> {
        r.map_err(|e| MailboxError::Protocol(format!("{what}: {e}")))
    }

    /// UIDs of messages whose probe header holds `token`.
    pub fn search_token(&mut self, token: &str) -> Result<Vec<u32>, MailboxError> {
        if !is_token(token) {
            return Ok(Vec::new());
        }
        let found = Self::protocol(
            "SEARCH",
            self.session
                .uid_search(format!("HEADER {TOKEN_HEADER} {token}")),
        )?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// UIDs of messages whose body mentions `token` (verifier reports echo the headers).
    pub fn search_body(&mut self, token: &str) -> Result<Vec<u32>, MailboxError> {
        if !is_token(token) {
            return Ok(Vec::new());
        }
        let found = Self::protocol("SEARCH", self.session.uid_search(format!("BODY {token}")))?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Fetches a message without marking it seen, at most `max_message_bytes` of it.
    pub fn fetch(&mut self, uid: u32) -> Result<Option<Fetched>, MailboxError> {
        let query = format!("(UID RFC822.SIZE BODY.PEEK[]<0.{}>)", self.max_bytes);
        let fetches = Self::protocol("FETCH", self.session.uid_fetch(uid.to_string(), query))?;
        let Some(f) = fetches.iter().find(|f| f.uid == Some(uid)) else {
            return Ok(None);
        };
        let raw = f.body().map(<[u8]>::to_vec).unwrap_or_default();
        let truncated = f.size.is_some_and(|s| u64::from(s) > self.max_bytes);
        Ok(Some(Fetched {
            uid,
            raw,
            truncated,
        }))
    }

    /// Waits until the inbox folder changes or `max_wait` passes (cut by [`idle_period`]):
    /// IDLE in the inbox where the server has it (arrival seen within a second), otherwise
    /// a NOOP poll after a short pause; see [`noop_after`]. The inbox is selected for it.
    pub fn wait_for_change(&mut self, max_wait: Duration) -> Result<(), MailboxError> {
        let period = idle_period(max_wait, !self.junk.is_empty());
        let inbox = self.inbox.clone();
        self.select(&inbox)?;
        let end = if self.has_idle {
            let mut idle = self.session.idle();
            idle.timeout(period).keepalive(false);
            let outcome = idle.wait_while(imap::extensions::idle::stop_on_any);
            drop(idle);
            match outcome {
                Ok(imap::extensions::idle::WaitOutcome::MailboxChanged) => IdleEnd::Changed,
                Ok(imap::extensions::idle::WaitOutcome::TimedOut) => IdleEnd::TimedOut,
                Err(imap::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    IdleEnd::TimedOut
                }
                Err(e) => return Err(MailboxError::Protocol(format!("IDLE: {e}"))),
            }
        } else {
            std::thread::sleep(period.min(Duration::from_secs(2)));
            IdleEnd::TimedOut
        };
        if noop_after(self.has_idle, end) {
            Self::protocol("NOOP", self.session.noop())?;
        }
        Ok(())
    }

    /// Deletes the messages among `uids` whose probe header is one of `tokens`; returns how
    /// many were deleted. Without UIDPLUS nothing is deleted.
    pub fn delete_probes(
        &mut self,
        uids: &[u32],
        tokens: &[String],
    ) -> Result<usize, MailboxError> {
        if !self.has_uidplus || uids.is_empty() {
            return Ok(0);
        }
        let mut confirmed = Vec::new();
        for &uid in uids {
            let fetches = Self::protocol(
                "FETCH",
                self.session.uid_fetch(
                    uid.to_string(),
                    format!("(UID BODY.PEEK[HEADER.FIELDS ({TOKEN_HEADER})])"),
                ),
            )?;
            let carries_ours = fetches.iter().filter(|f| f.uid == Some(uid)).any(|f| {
                let header = String::from_utf8_lossy(f.header().or(f.body()).unwrap_or_default())
                    .to_string();
                header_token(&header).is_some_and(|t| tokens.iter().any(|ours| ours == &t))
            });
            if carries_ours {
                confirmed.push(uid);
            }
        }
        self.expunge_exactly(&confirmed)?;
        Ok(confirmed.len())
    }

    /// Deletes exactly `uids`, which the caller has confirmed as ours (verifier reports,
    /// judged by `mail::reply` on the fetched message); returns how many. Without UIDPLUS
    /// nothing is deleted.
    pub fn delete_uids(&mut self, uids: &[u32]) -> Result<usize, MailboxError> {
        if !self.has_uidplus {
            return Ok(0);
        }
        self.expunge_exactly(uids)?;
        Ok(uids.len())
    }

    fn expunge_exactly(&mut self, uids: &[u32]) -> Result<(), MailboxError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Self::protocol(
            "STORE",
            self.session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"),
        )?;
        Self::protocol("UID EXPUNGE", self.session.uid_expunge(&set))?;
        Ok(())
    }

    pub fn logout(mut self) {
        let _ = self.session.logout();
    }

    /// The logged-in session with the folder selected, for IMAP clients beside the probe
    /// (the report folder source, `reports::source::imap`) that need commands this type
    /// does not wrap (UID MOVE, UID COPY, CREATE, SELECT for UIDVALIDITY).
    pub(crate) fn session(&mut self) -> &mut imap::Session<ImapStream> {
        &mut self.session
    }
}

/// A NO to SELECT or STATUS is the server saying the folder is not there (RFC 3501
/// §6.3.1, §6.3.10); anything else is a protocol fault.
fn folder_error(command: &str, folder: &str, e: imap::Error) -> MailboxError {
    match e {
        imap::Error::No(_) => MailboxError::NoSuchFolder(folder.to_string()),
        e => MailboxError::Protocol(format!("{command} {folder}: {e}")),
    }
}

/// Tokens are hex; anything else never reaches an IMAP command line.
pub fn is_token(token: &str) -> bool {
    (16..=64).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The token in a header block's probe header, if any.
pub fn header_token(header_block: &str) -> Option<String> {
    let prefix = format!("{}:", TOKEN_HEADER.to_ascii_lowercase());
    header_block.lines().find_map(|line| {
        let lower = line.to_ascii_lowercase();
        lower
            .strip_prefix(&prefix)
            .map(|_| line[prefix.len()..].trim().to_string())
    })
}

/// Elapsed-time helper for the probe loop.
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_header_is_found_case_insensitively() {
        assert_eq!(
            header_token("X-MAILAUTH-PROBE:  abc123 \r\n").as_deref(),
            Some("abc123")
        );
        assert_eq!(header_token("Subject: x\r\n"), None);
    }

    #[test]
    fn idle_is_reissued_before_rfc_2177s_29_minutes() {
        let hour = Duration::from_secs(3600);
        assert_eq!(idle_period(hour, false), IDLE_REISSUE);
        assert!(IDLE_REISSUE < Duration::from_secs(29 * 60));
    }

    #[test]
    fn idle_ends_at_the_probe_deadline_when_that_is_nearer() {
        let ten_min = Duration::from_secs(600);
        assert_eq!(idle_period(ten_min, false), ten_min);
        assert_eq!(
            idle_period(Duration::from_secs(3), false),
            Duration::from_secs(3)
        );
        assert_eq!(
            idle_period(Duration::ZERO, false),
            Duration::from_millis(100),
            "a reached deadline still gives one short wait, not a busy loop"
        );
    }

    #[test]
    fn junk_folders_are_polled_every_few_seconds() {
        assert_eq!(idle_period(Duration::from_secs(600), true), JUNK_POLL);
        assert_eq!(
            idle_period(Duration::from_secs(2), true),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn noop_is_the_poll_without_idle_and_follows_a_silent_idle() {
        assert!(noop_after(false, IdleEnd::TimedOut));
        assert!(noop_after(false, IdleEnd::Changed));
        assert!(noop_after(true, IdleEnd::TimedOut));
        assert!(!noop_after(true, IdleEnd::Changed));
    }

    #[test]
    fn only_hex_tokens_reach_imap_commands() {
        assert!(is_token("0123456789abcdef0123456789abcdef"));
        assert!(!is_token("abc"));
        assert!(!is_token("0123456789abcdef\r\nA1 DELETE INBOX"));
    }
}
