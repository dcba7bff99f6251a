//! The exporter's state on disk: one embedded SQLite database in `[exporter] state_dir`
//! (`state.sqlite3`), for what must survive a restart or a reload (DESIGN.md § Data path).
//! That is the probe token ledger and the reports reader's counts (`reports`).
//!
//! - **Schema versions.** `schema_version` holds one row, the number of [`MIGRATIONS`]
//!   applied. Opening applies the missing ones in one transaction each, so a new table is a
//!   new entry at the end of the list (never an edit of an old one). A database written by
//!   a newer exporter (a higher version than this build knows) is refused rather than
//!   guessed at: [`StateError::SchemaTooNew`].
//! - **WAL.** Readers never wait for the writer, and with `synchronous = NORMAL` a commit
//!   is an append to the WAL file without an fsync (SQLite's documented WAL trade-off: a
//!   power cut may lose the last commits, never corrupt the file). A lost token only means
//!   one late probe copy stays in the mailbox.
//! - **Bounded.** Every table has an expiry or a cap enforced on write (the token ledger
//!   both), so the file does not grow with uptime.
//! - **Blocking.** rusqlite is synchronous. Each call here is one small statement on a
//!   local file behind a mutex; async callers run them on `spawn_blocking` (see
//!   `mail::ledger`), never on a runtime worker.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

pub mod reports;

/// The database file inside `state_dir`.
pub const FILE_NAME: &str = "state.sqlite3";

/// Schema migrations, in order; `MIGRATIONS[n]` takes the schema from version `n` to
/// `n + 1`. Append only: a released entry is never changed.
pub const MIGRATIONS: &[&str] = &[
    // 1: the probe token ledger. `mailbox` is the `[mailbox.NAME]` the answer is read
    // from, `probe` the probed domain (which `[[probe]]` sent it); times are Unix seconds.
    "CREATE TABLE probe_token (
        token      TEXT    NOT NULL PRIMARY KEY,
        mailbox    TEXT    NOT NULL,
        probe      TEXT    NOT NULL,
        kind       TEXT    NOT NULL,
        issued_at  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX probe_token_by_probe ON probe_token (mailbox, probe, issued_at);",
    // 2: the reports reader (`state::reports`). `report_seen`: reports already counted,
    // by (reporter, report_id, domain, kind). `report_count`: the counters, one row per
    // series (`kind` names the family, `labels` its label values joined by U+001F).
    // `report_reporter`: the reporter label values given out per domain (at most
    // `max_reporters`) with each one's newest report end. `report_source`: messages per
    // domain, day, source and IP for the landing page's source table.
    "CREATE TABLE report_seen (
        reporter  TEXT    NOT NULL,
        report_id TEXT    NOT NULL,
        domain    TEXT    NOT NULL,
        kind      TEXT    NOT NULL,
        seen_at   INTEGER NOT NULL,
        PRIMARY KEY (reporter, report_id, domain, kind)
     ) WITHOUT ROWID;
     CREATE INDEX report_seen_by_age ON report_seen (seen_at);
     CREATE TABLE report_count (
        kind   TEXT    NOT NULL,
        labels TEXT    NOT NULL,
        value  INTEGER NOT NULL,
        PRIMARY KEY (kind, labels)
     ) WITHOUT ROWID;
     CREATE TABLE report_reporter (
        domain   TEXT    NOT NULL,
        reporter TEXT    NOT NULL,
        reports  INTEGER NOT NULL,
        last_end INTEGER,
        PRIMARY KEY (domain, reporter)
     ) WITHOUT ROWID;
     CREATE TABLE report_source (
        domain      TEXT    NOT NULL,
        day         INTEGER NOT NULL,
        source      TEXT    NOT NULL,
        ip          TEXT    NOT NULL,
        messages    INTEGER NOT NULL,
        dkim_pass   INTEGER NOT NULL,
        spf_pass    INTEGER NOT NULL,
        quarantine  INTEGER NOT NULL,
        reject      INTEGER NOT NULL,
        PRIMARY KEY (domain, day, source, ip)
     ) WITHOUT ROWID;",
    // 3: OAuth2 refresh tokens the token endpoint rotated (RFC 6749 §6), so that a restart
    // uses the newest one instead of the configured one the endpoint may have invalidated.
    // `key` is a digest of the credentials (`mail::oauth2`), `updated_at` Unix seconds.
    "CREATE TABLE oauth2_refresh_token (
        key        TEXT NOT NULL PRIMARY KEY,
        token      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 4: messages that passed DMARC (DKIM or SPF aligned, in the same record) per source
    // row, for the landing page's pass rate: the two aligned counts of a row cannot give
    // it. NULL in rows counted before this column existed (left out of the rate, not
    // counted as failing).
    "ALTER TABLE report_source ADD COLUMN dmarc_pass INTEGER;",
];

/// The schema version this build writes.
pub fn current_version() -> u32 {
    MIGRATIONS.len() as u32
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state_dir {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state database {path} has schema version {found}, newer than this exporter's {supported}: refusing to touch it")]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("migrating the state database {path} to version {version}: {source}")]
    Migration {
        path: PathBuf,
        version: u32,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state database lock poisoned by a panic")]
    Poisoned,
}

/// One probe token as recorded in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    pub token: String,
    /// The `[mailbox.NAME]` in which the probe's copy or its verifier reply arrives.
    pub mailbox: String,
    /// The probed domain: which `[[probe]]` sent it.
    pub probe: String,
    /// `mailbox` or `verifier` (the target kind it was sent for).
    pub kind: String,
    pub issued_at: SystemTime,
    pub expires_at: SystemTime,
}

/// The open state database. Shared (`Arc`) by everything that keeps state; one
/// connection behind a mutex is plenty for a few small writes per probe round.
pub struct StateStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// When the report tables' expired rows were last deleted (Unix seconds).
    last_report_prune: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish()
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn from_unix(s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

impl StateStore {
    /// Opens (creating when needed) `dir/state.sqlite3`, switches it to WAL and applies the
    /// missing migrations.
    pub fn open(dir: &Path) -> Result<Arc<StateStore>, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        // Another process (a second exporter on the same dir by mistake) waits briefly
        // instead of failing at once; nothing here holds the lock for long.
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        migrate(&mut conn, &path)?;
        Ok(Arc::new(StateStore {
            path,
            conn: Mutex::new(conn),
            last_report_prune: std::sync::atomic::AtomicI64::new(i64::MIN),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let mut conn = self.conn.lock().map_err(|_| StateError::Poisoned)?;
        Ok(f(&mut conn)?)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StateError> {
        self.with_conn(|c| read_version(c))
    }

    /// Records an issued token, then drops expired tokens and all but the newest `keep`
    /// of its probe in its mailbox: the ledger stays bounded in time and in rows.
    pub fn record_token(&self, row: &TokenRow, keep: usize) -> Result<(), StateError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO probe_token (token, mailbox, probe, kind, issued_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    row.token,
                    row.mailbox,
                    row.probe,
                    row.kind,
                    unix(row.issued_at),
                    unix(row.expires_at)
                ],
            )?;
            tx.execute(
                "DELETE FROM probe_token WHERE expires_at <= ?1",
                params![unix(SystemTime::now())],
            )?;
            tx.execute(
                "DELETE FROM probe_token WHERE mailbox = ?1 AND probe = ?2 AND token NOT IN (
                    SELECT token FROM probe_token WHERE mailbox = ?1 AND probe = ?2
                    ORDER BY issued_at DESC, token LIMIT ?3)",
                params![
                    row.mailbox,
                    row.probe,
                    i64::try_from(keep).unwrap_or(i64::MAX)
                ],
            )?;
            tx.commit()
        })
    }

    /// The unexpired tokens `probe` issued for answers read in `mailbox`, newest first,
    /// at most `limit`.
    pub fn tokens(
        &self,
        mailbox: &str,
        probe: &str,
        limit: usize,
    ) -> Result<Vec<TokenRow>, StateError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT token, mailbox, probe, kind, issued_at, expires_at FROM probe_token
                 WHERE mailbox = ?1 AND probe = ?2 AND expires_at > ?3
                 ORDER BY issued_at DESC, token LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    mailbox,
                    probe,
                    unix(SystemTime::now()),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(TokenRow {
                        token: r.get(0)?,
                        mailbox: r.get(1)?,
                        probe: r.get(2)?,
                        kind: r.get(3)?,
                        issued_at: from_unix(r.get(4)?),
                        expires_at: from_unix(r.get(5)?),
                    })
                },
            )?;
            rows.collect()
        })
    }

    /// The rotated OAuth2 refresh token kept under `key`, if any.
    pub fn oauth2_refresh_token(&self, key: &str) -> Result<Option<String>, StateError> {
        self.with_conn(|c| {
            c.query_row(
                "SELECT token FROM oauth2_refresh_token WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Keeps `token` as the newest refresh token of `key` (one row per key: bounded by
    /// the configured credentials).
    pub fn set_oauth2_refresh_token(&self, key: &str, token: &str) -> Result<(), StateError> {
        self.with_conn(|c| {
            c.execute(
                "INSERT OR REPLACE INTO oauth2_refresh_token (key, token, updated_at) VALUES (?1, ?2, ?3)",
                params![key, token, unix(SystemTime::now())],
            )
            .map(|_| ())
        })
    }

    /// Rows in the token table (for tests and the bound's proof).
    pub fn token_count(&self) -> Result<u64, StateError> {
        self.with_conn(|c| {
            c.query_row("SELECT COUNT(*) FROM probe_token", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
        })
    }
}

fn read_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let v: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
}

/// Applies `MIGRATIONS[found..]`, each with its version bump in one transaction, so a
/// crash mid-way leaves a database at a well-defined version.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let found = read_version(conn).map_err(|source| StateError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let supported = current_version();
    if found > supported {
        return Err(StateError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let err = |source| StateError::Migration {
            path: path.to_path_buf(),
            version,
            source,
        };
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.execute("DELETE FROM schema_version", []).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![version],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(token: &str, mailbox: &str, age: u64, life: u64) -> TokenRow {
        let issued_at = SystemTime::now() - Duration::from_secs(age);
        TokenRow {
            token: token.into(),
            mailbox: mailbox.into(),
            probe: "example.test".into(),
            kind: "mailbox".into(),
            issued_at,
            expires_at: issued_at + Duration::from_secs(life),
        }
    }

    #[test]
    fn fresh_database_is_at_the_current_version_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), current_version());
        let mode: String = store
            .with_conn(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        // Opening again applies nothing and keeps the version.
        let again = StateStore::open(dir.path()).unwrap();
        assert_eq!(again.schema_version().unwrap(), current_version());
    }

    #[test]
    fn tokens_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store
            .record_token(&row("aa", "inbox", 0, 3600), 64)
            .unwrap();
        store
            .record_token(&row("bb", "other", 0, 3600), 64)
            .unwrap();
        drop(store);
        let store = StateStore::open(dir.path()).unwrap();
        let got: Vec<String> = store
            .tokens("inbox", "example.test", 64)
            .unwrap()
            .into_iter()
            .map(|r| r.token)
            .collect();
        assert_eq!(got, ["aa"]);
    }

    #[test]
    fn expired_tokens_are_neither_returned_nor_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store
            .record_token(&row("old", "inbox", 7200, 3600), 64)
            .unwrap();
        assert!(store
            .tokens("inbox", "example.test", 64)
            .unwrap()
            .is_empty());
        store
            .record_token(&row("new", "inbox", 0, 3600), 64)
            .unwrap();
        assert_eq!(store.token_count().unwrap(), 1, "the expired row is gone");
    }

    #[test]
    fn each_probe_keeps_only_its_newest_tokens_per_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        for i in 0..10u64 {
            store
                .record_token(&row(&format!("t{i}"), "inbox", 100 - i, 3600), 4)
                .unwrap();
        }
        store.record_token(&row("x", "other", 0, 3600), 4).unwrap();
        let mut another_probe = row("y", "inbox", 0, 3600);
        another_probe.probe = "example.org".into();
        store.record_token(&another_probe, 4).unwrap();
        assert_eq!(store.tokens("inbox", "example.org", 64).unwrap().len(), 1);
        let got: Vec<String> = store
            .tokens("inbox", "example.test", 64)
            .unwrap()
            .into_iter()
            .map(|r| r.token)
            .collect();
        assert_eq!(got, ["t9", "t8", "t7", "t6"]);
        assert_eq!(store.token_count().unwrap(), 6);
        assert_eq!(store.tokens("inbox", "example.test", 2).unwrap().len(), 2);
    }

    #[test]
    fn rotated_refresh_tokens_survive_reopening_and_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.oauth2_refresh_token("k").unwrap(), None);
        store.set_oauth2_refresh_token("k", "r1").unwrap();
        store.set_oauth2_refresh_token("k", "r2").unwrap();
        store.set_oauth2_refresh_token("other", "x").unwrap();
        drop(store);
        let again = StateStore::open(dir.path()).unwrap();
        assert_eq!(
            again.oauth2_refresh_token("k").unwrap().as_deref(),
            Some("r2")
        );
        assert_eq!(
            again.oauth2_refresh_token("other").unwrap().as_deref(),
            Some("x")
        );
    }

    #[test]
    fn a_newer_schema_is_refused_not_guessed_at() {
        let dir = tempfile::tempdir().unwrap();
        drop(StateStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute("UPDATE schema_version SET version = 999", [])
            .unwrap();
        drop(conn);
        match StateStore::open(dir.path()) {
            Err(StateError::SchemaTooNew {
                found: 999,
                supported,
                ..
            }) => assert_eq!(supported, current_version()),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn an_unwritable_state_dir_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(
            StateStore::open(&file.join("sub")),
            Err(StateError::CreateDir { .. })
        ));
    }
}
