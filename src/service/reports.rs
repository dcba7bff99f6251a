//! The reports reader: one task per `[[reports]]` source, reading what arrived, counting
//! it into the state database and only then moving it out of the way (DESIGN.md § Reports).
//!
//! A round lists up to [`MAX_PER_ROUND`] items and handles each in turn: read (bounded),
//! unpack and parse (`reports::read`), classify the records' sources (`[[sender]]`), tally
//! (`reports::tally`), commit to the state database, then archive. An item holding no
//! readable report is rejected (moved to the invalid folder) and counted `invalid`. Any
//! failure of the source or the database ends the round without moving the item: it is
//! read again next round, and its seen key makes that read count nothing twice. A round
//! that reads the whole source sets `mailauth_reports_last_read_timestamp_seconds`; one
//! that fails is retried after [`RETRY_AFTER`] (or the poll interval, if shorter).
//!
//! Sources and the database are blocking; their calls run on `spawn_blocking`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{AuthMethod, Config, ReportsConfig};
use crate::metrics::Metrics;
use crate::reports::sender::SenderTable;
use crate::reports::source::directory::DirectorySource;
use crate::reports::source::imap::ImapFolder;
use crate::reports::source::{ItemKey, ReportSource, SourceError};
use crate::reports::tally::{self, Tally};
use crate::reports::{Limits, Report};
use crate::resolver::Dns;
use crate::state::reports::Committed;
use crate::state::{StateError, StateStore};

/// Items handled per round before the reader looks again (and lets a reload in).
pub const MAX_PER_ROUND: usize = 100;
/// How soon a failed round is retried.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Whether a canonical domain name is watched (the running config or its domains file).
pub type Watched = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Why a round ended early.
#[derive(Debug, thiserror::Error)]
pub enum ReadRoundError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("counting into the state database: {0}")]
    State(#[from] StateError),
    #[error("a blocking task of the reader failed: {0}")]
    Task(String),
}

/// The running readers of one configuration.
pub struct ReportReaders {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What every reader of a configuration shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<StateStore>,
    pub dns: Arc<dyn Dns>,
    pub metrics: Arc<Metrics>,
    pub watched: Watched,
    pub senders: Arc<SenderTable>,
    pub max_reporters: usize,
    pub limits: Limits,
}

impl ReportReaders {
    /// Starts a reader for every `[[reports]]` of `config`; publishes the counts kept in
    /// the database at once, so a restart shows them before anything new is read.
    pub fn start(
        config: &Config,
        store: Arc<StateStore>,
        dns: Arc<dyn Dns>,
        metrics: Arc<Metrics>,
        watched: Watched,
    ) -> ReportReaders {
        let shared = Shared {
            store,
            dns,
            metrics,
            watched,
            senders: Arc::new(SenderTable::new(crate::reports::sender::from_config(
                config,
            ))),
            max_reporters: config.exporter.max_reporters,
            limits: Limits::default(),
        };
        let mut tasks = Vec::new();
        let initial = shared.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = publish(&initial).await {
                tracing::error!("report counts: {e}");
            }
        }));
        for source in &config.reports {
            shared.metrics.report_source_configured(source.name());
            // Validation guarantees a directory or a known mailbox; were it otherwise the
            // source stays unread and its last-read gauge at 0 says so.
            let Some(opened) = open_source(config, source, &shared) else {
                tracing::error!(source = %source.name(), "report source names neither a directory nor a known mailbox");
                continue;
            };
            let reader = Reader {
                name: source.name().to_string(),
                source: Arc::new(Mutex::new(opened)),
                poll: source.poll_interval,
                shared: shared.clone(),
            };
            tasks.push(tokio::spawn(reader.run()));
        }
        ReportReaders { tasks }
    }

    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The source a `[[reports]]` entry names.
fn open_source(
    config: &Config,
    source: &ReportsConfig,
    shared: &Shared,
) -> Option<Box<dyn ReportSource>> {
    match (&source.directory, &source.mailbox) {
        (Some(dir), _) => Some(Box::new(DirectorySource::new(dir, source.max_report_bytes))),
        (None, Some(name)) => {
            let mailbox = config.mailbox.get(name.get_ref())?;
            let folder = ImapFolder::new(
                mailbox,
                &source.archive_folder,
                &source.invalid_folder,
                source.max_report_bytes,
            );
            if mailbox.auth == AuthMethod::Password {
                return Some(Box::new(folder));
            }
            // OAuth2: the token comes from the same cache and endpoint code as the probe's
            // (`mail::probe::credential`), asked from the source's blocking thread.
            let handle = tokio::runtime::Handle::current();
            let section = format!("mailbox.{}", name.get_ref());
            let mailbox = mailbox.clone();
            let store = shared.store.clone();
            let failures = shared.metrics.oauth2_refresh_failures.clone();
            Some(Box::new(folder.with_credential(Box::new(move || {
                let mut failed = Vec::new();
                let token = handle.block_on(crate::mail::probe::credential(
                    &section,
                    mailbox.auth,
                    mailbox.secret(),
                    mailbox.oauth2.as_ref(),
                    Some(store.clone()),
                    &mut failed,
                ));
                for server in &failed {
                    failures.with_label_values(&[server]).inc();
                }
                token?.ok_or_else(|| crate::mail::probe::CredentialError::NoAccessToken {
                    section: section.clone(),
                })
            }))))
        }
        (None, None) => None,
    }
}

/// Re-renders the report series from the database.
async fn publish(shared: &Shared) -> Result<(), ReadRoundError> {
    let store = shared.store.clone();
    let (counts, reporters) = tokio::task::spawn_blocking(move || {
        Ok::<_, StateError>((store.report_counts()?, store.reporters()?))
    })
    .await
    .map_err(|e| ReadRoundError::Task(e.to_string()))??;
    shared
        .metrics
        .set_report_counts(&counts, &reporters, &*shared.watched);
    Ok(())
}

struct Reader {
    name: String,
    source: Arc<Mutex<Box<dyn ReportSource>>>,
    poll: Duration,
    shared: Shared,
}

/// What became of one item.
#[derive(Debug, Default, PartialEq, Eq)]
struct ItemOutcome {
    counted: u64,
    duplicate: u64,
    ignored_domain: u64,
    invalid: u64,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Reader {
    async fn run(self) {
        loop {
            let wait = match self.round().await {
                Ok(more) => {
                    self.shared
                        .metrics
                        .reports_last_read
                        .with_label_values(&[&self.name])
                        .set(now_unix() as f64);
                    if more {
                        continue;
                    }
                    self.poll
                }
                Err(e) => {
                    tracing::warn!(source = %self.name, "reading reports: {e}");
                    if let ReadRoundError::State(_) = e {
                        self.shared
                            .metrics
                            .state_errors
                            .with_label_values(&["write"])
                            .inc();
                    }
                    tokio::time::sleep(RETRY_AFTER.min(self.poll)).await;
                    continue;
                }
            };
            if let Err(e) = self.blocking(move |s| s.wait(wait)).await {
                tracing::warn!(source = %self.name, "waiting for reports: {e}");
                tokio::time::sleep(RETRY_AFTER.min(self.poll)).await;
            }
        }
    }

    /// Runs `f` on the source on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn ReportSource) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, ReadRoundError> {
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = source
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(guard.as_mut())
        })
        .await
        .map_err(|e| ReadRoundError::Task(e.to_string()))?
        .map_err(ReadRoundError::from)
    }

    /// One round; `true` when items may be left (the round was full).
    async fn round(&self) -> Result<bool, ReadRoundError> {
        let keys = self.blocking(|s| s.pending(MAX_PER_ROUND)).await?;
        let mut any_counted = false;
        let result = async {
            for key in &keys {
                let outcome = self.item(key.clone()).await?;
                any_counted |= outcome.counted > 0;
                for (label, n) in [
                    ("counted", outcome.counted),
                    ("duplicate", outcome.duplicate),
                    ("ignored_domain", outcome.ignored_domain),
                    ("invalid", outcome.invalid),
                ] {
                    if n > 0 {
                        self.shared
                            .metrics
                            .reports_read
                            .with_label_values(&[&self.name, label])
                            .inc_by(n);
                    }
                }
            }
            Ok::<_, ReadRoundError>(())
        }
        .await;
        if any_counted {
            publish(&self.shared).await?;
        }
        result?;
        Ok(keys.len() >= MAX_PER_ROUND)
    }

    /// Reads, counts and moves one item.
    async fn item(&self, key: ItemKey) -> Result<ItemOutcome, ReadRoundError> {
        let k = key.clone();
        let Some(item) = self.blocking(move |s| s.read(&k)).await? else {
            return Ok(ItemOutcome::default());
        };
        let invalid = |why: String| {
            tracing::warn!(source = %self.name, item = %key, "no readable report: {why}");
        };
        if item.truncated {
            invalid("larger than max_report_bytes".to_string());
            return self.reject(key).await;
        }
        let limits = self.shared.limits.clone();
        let unpacked =
            tokio::task::spawn_blocking(move || crate::reports::read(&item.bytes, &limits))
                .await
                .map_err(|e| ReadRoundError::Task(e.to_string()))?;
        let unpacked = match unpacked {
            Ok(u) => u,
            Err(e) => {
                invalid(e.to_string());
                return self.reject(key).await;
            }
        };
        for problem in &unpacked.problems {
            tracing::info!(source = %self.name, item = %key, "part skipped: {problem}");
        }
        let mut outcome = ItemOutcome::default();
        for report in &unpacked.reports {
            let sources = self.classify(report).await;
            let (tally, skipped) =
                tally::tally(report, &*self.shared.watched, &sources, now_unix());
            for s in skipped {
                tracing::warn!(source = %self.name, item = %key, "{s}");
            }
            match tally {
                Tally::IgnoredDomain => outcome.ignored_domain += 1,
                Tally::Commit(commit) => {
                    let store = self.shared.store.clone();
                    let max = self.shared.max_reporters;
                    let committed = tokio::task::spawn_blocking(move || {
                        store.commit_report(&commit, max, SystemTime::now())
                    })
                    .await
                    .map_err(|e| ReadRoundError::Task(e.to_string()))??;
                    match committed {
                        Committed::Counted => outcome.counted += 1,
                        Committed::Duplicate => outcome.duplicate += 1,
                    }
                }
            }
        }
        let k = key.clone();
        self.blocking(move |s| s.archive(&k)).await?;
        Ok(outcome)
    }

    async fn reject(&self, key: ItemKey) -> Result<ItemOutcome, ReadRoundError> {
        self.blocking(move |s| s.reject(&key)).await?;
        Ok(ItemOutcome {
            invalid: 1,
            ..ItemOutcome::default()
        })
    }

    /// The `source` of each record of an aggregate report about a watched domain.
    async fn classify(&self, report: &Report) -> Vec<String> {
        let Report::Aggregate(a) = report else {
            return Vec::new();
        };
        let domain = crate::name::canonical(&a.domain);
        if !(self.shared.watched)(&domain) {
            return Vec::new();
        }
        self.shared
            .senders
            .classify_report(self.shared.dns.as_ref(), a)
            .await
    }
}
