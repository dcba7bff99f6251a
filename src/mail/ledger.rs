//! The probe token ledger: which tokens this exporter issued, so that a later round can
//! delete its own late or duplicate arrivals, and nothing else.
//!
//! A probe's copy can arrive long after its round gave up (a receiver's queue retrying
//! for hours), and the exporter may have been restarted or reloaded meanwhile. With
//! `[exporter] state_dir` set the ledger is written to the state database
//! ([`crate::state`]), so a restarted exporter still recognises those arrivals; without it
//! the ledger lives in memory for the life of the process (across reloads, since the
//! application owns it, but not across restarts).
//!
//! Bounded twice: a token expires [`token_lifetime`] after it was issued, and only the
//! newest [`LEDGER_SIZE`] per probe and mailbox are kept (each costs two IMAP searches in
//! its probe's rounds, so the cost of a round does not grow with the number of probes
//! sharing a mailbox).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::config::TargetKind;
use crate::mail::send::new_token;
use crate::state::{StateStore, TokenRow};

/// Tokens kept per probe and mailbox.
pub const LEDGER_SIZE: usize = 64;

/// A token is never forgotten sooner than this: queues retry for hours, and a late copy
/// that outlives its token stays in the mailbox for good.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 24 * 3600);

/// How long a token is remembered: four probe timeouts, and at least
/// [`MIN_TOKEN_LIFETIME`].
pub fn token_lifetime(probe_timeout: Duration) -> Duration {
    probe_timeout.saturating_mul(4).max(MIN_TOKEN_LIFETIME)
}

pub struct TokenLedger {
    /// Always kept, also with a store: a failed write must not make this process forget
    /// the token it just sent.
    memory: Mutex<VecDeque<TokenRow>>,
    store: Option<Arc<StateStore>>,
    /// `mailauth_state_errors_total{operation}`, when the ledger reports to metrics.
    errors: Option<prometheus::IntCounterVec>,
}

impl TokenLedger {
    /// A ledger for the life of the process only.
    pub fn in_memory() -> Self {
        Self {
            memory: Mutex::new(VecDeque::new()),
            store: None,
            errors: None,
        }
    }

    /// A ledger written through to `store`.
    pub fn persistent(store: Arc<StateStore>) -> Self {
        Self {
            memory: Mutex::new(VecDeque::new()),
            store: Some(store),
            errors: None,
        }
    }

    /// Counts failed database reads and writes in `counter` (labelled by operation), so
    /// that a ledger degraded to memory shows on `/metrics`, not only in the log.
    pub fn with_error_counter(mut self, counter: prometheus::IntCounterVec) -> Self {
        self.errors = Some(counter);
        self
    }

    fn count_error(&self, operation: &str) {
        if let Some(c) = &self.errors {
            c.with_label_values(&[operation]).inc();
        }
    }

    pub fn store(&self) -> Option<&Arc<StateStore>> {
        self.store.as_ref()
    }

    /// Issues a fresh token for `probe` (the probed domain) whose answer is read in
    /// `mailbox`, and records it.
    /// The database write runs on a blocking thread; when it fails the token is still
    /// remembered in memory and the failure is logged (the probe goes on).
    pub async fn issue(
        self: &Arc<Self>,
        mailbox: &str,
        probe: &str,
        kind: TargetKind,
        lifetime: Duration,
    ) -> String {
        let now = SystemTime::now();
        let row = TokenRow {
            token: new_token(),
            mailbox: mailbox.to_string(),
            probe: probe.to_string(),
            kind: kind.as_str().to_string(),
            issued_at: now,
            expires_at: now + lifetime,
        };
        self.remember(row.clone());
        if let Some(store) = self.store.clone() {
            let r = row.clone();
            let written =
                tokio::task::spawn_blocking(move || store.record_token(&r, LEDGER_SIZE)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.count_error("write");
                    tracing::warn!(
                        "probe token kept in memory only (a restart will not recognise its late copy): {e}"
                    )
                }
                Err(e) => {
                    self.count_error("write");
                    tracing::warn!("probe token write did not run: {e}")
                }
            }
        }
        row.token
    }

    fn remember(&self, row: TokenRow) {
        let now = SystemTime::now();
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        memory.retain(|r| r.expires_at > now);
        let key = (row.mailbox.clone(), row.probe.clone());
        memory.push_back(row);
        let mut seen = 0;
        // Newest last: keep the last LEDGER_SIZE of this probe in this mailbox.
        let keep: Vec<bool> = memory
            .iter()
            .rev()
            .map(|r| {
                if r.mailbox != key.0 || r.probe != key.1 {
                    return true;
                }
                seen += 1;
                seen <= LEDGER_SIZE
            })
            .collect();
        let mut keep = keep.into_iter().rev();
        memory.retain(|_| keep.next().unwrap_or(true));
    }

    /// Every unexpired token of `probe` whose answer is read in `mailbox`, newest first, at
    /// most [`LEDGER_SIZE`]: this process's own and those the state database remembers
    /// from earlier runs. Blocking (it reads the database): call it on a blocking thread.
    pub fn tokens_blocking(&self, mailbox: &str, probe: &str) -> Vec<String> {
        let now = SystemTime::now();
        let mut rows: Vec<TokenRow> = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|r| r.mailbox == mailbox && r.probe == probe && r.expires_at > now)
            .cloned()
            .collect();
        if let Some(store) = &self.store {
            match store.tokens(mailbox, probe, LEDGER_SIZE) {
                Ok(stored) => rows.extend(stored),
                Err(e) => {
                    self.count_error("read");
                    tracing::warn!("reading the probe token ledger: {e}")
                }
            }
        }
        rows.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.token.cmp(&b.token)));
        let mut tokens: Vec<String> = Vec::new();
        for r in rows {
            if !tokens.contains(&r.token) {
                tokens.push(r.token);
            }
            if tokens.len() == LEDGER_SIZE {
                break;
            }
        }
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_ledger_is_bounded_per_probe_and_mailbox() {
        let ledger = Arc::new(TokenLedger::in_memory());
        let other = ledger
            .issue(
                "other",
                "example.test",
                TargetKind::Mailbox,
                Duration::from_secs(60),
            )
            .await;
        let mut last = String::new();
        for _ in 0..LEDGER_SIZE + 10 {
            last = ledger
                .issue(
                    "inbox",
                    "example.test",
                    TargetKind::Verifier,
                    Duration::from_secs(60),
                )
                .await;
        }
        let inbox = ledger.tokens_blocking("inbox", "example.test");
        assert_eq!(inbox.len(), LEDGER_SIZE);
        assert!(inbox.contains(&last));
        assert_eq!(ledger.tokens_blocking("other", "example.test"), [other]);
    }

    #[tokio::test]
    async fn a_new_ledger_on_the_same_store_knows_the_old_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let first = Arc::new(TokenLedger::persistent(
            StateStore::open(dir.path()).unwrap(),
        ));
        let token = first
            .issue(
                "inbox",
                "example.test",
                TargetKind::Mailbox,
                Duration::from_secs(3600),
            )
            .await;
        drop(first);
        let second = TokenLedger::persistent(StateStore::open(dir.path()).unwrap());
        assert_eq!(second.tokens_blocking("inbox", "example.test"), [token]);
        assert!(second
            .tokens_blocking("elsewhere", "example.test")
            .is_empty());
        assert!(second.tokens_blocking("inbox", "another.test").is_empty());
    }

    /// A database that fails under the ledger (its table dropped behind its back): the
    /// token is still remembered for this process, and the failures are counted.
    #[tokio::test]
    async fn a_failing_database_degrades_to_memory_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let counter = prometheus::IntCounterVec::new(
            prometheus::Opts::new("state_errors_total", "test"),
            &["operation"],
        )
        .unwrap();
        let ledger = Arc::new(TokenLedger::persistent(store).with_error_counter(counter.clone()));
        let raw = rusqlite::Connection::open(dir.path().join(crate::state::FILE_NAME)).unwrap();
        raw.execute_batch("DROP TABLE probe_token").unwrap();
        drop(raw);
        let token = ledger
            .issue(
                "inbox",
                "example.test",
                TargetKind::Mailbox,
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(counter.with_label_values(&["write"]).get(), 1);
        assert_eq!(ledger.tokens_blocking("inbox", "example.test"), [token]);
        assert_eq!(counter.with_label_values(&["read"]).get(), 1);
    }

    #[test]
    fn lifetime_is_a_few_timeouts_but_never_short() {
        assert_eq!(token_lifetime(Duration::from_secs(600)), MIN_TOKEN_LIFETIME);
        assert_eq!(
            token_lifetime(Duration::from_secs(24 * 3600)),
            Duration::from_secs(4 * 24 * 3600)
        );
    }
}
