//! The reports reader's tables (DESIGN.md § Reports): which reports were counted, the
//! counters themselves, the reporter label values given out, and the per-source message
//! table of the landing page.
//!
//! One report is one transaction ([`StateStore::commit_report`]): its seen key and all its
//! counts land together or not at all. The reader moves a report out of its folder only
//! after that commit, so a crash in between re-reads it, finds its key, and counts
//! nothing twice.
//!
//! Every table is bounded: seen keys expire after [`SEEN_KEEP_DAYS`], source rows after
//! [`SOURCE_KEEP_DAYS`] and at most [`MAX_SOURCE_IPS`] IPs per domain and day; counters and
//! reporters only have label values the config bounds (watched domains, `[[sender]]`
//! names, fixed keywords, at most `max_reporters` reporters per domain).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use rusqlite::{params, OptionalExtension, Transaction};

use super::{unix, StateError, StateStore};

/// How long a counted report's key is kept: reporters resend, and a message may sit in
/// the folder for weeks before the reader first sees it (RFC 7489 asks for 30 days at least).
pub const SEEN_KEEP_DAYS: i64 = 45;
/// Days of the source table kept (the landing page shows the last 7).
pub const SOURCE_KEEP_DAYS: i64 = 8;
/// Distinct source IPs kept per domain and day; the rest are summed as `ip = "other"`, so a
/// botnet sending as the domain from a million addresses costs a thousand rows.
pub const MAX_SOURCE_IPS: i64 = 1000;
/// The label value of every reporter past `max_reporters` for a domain.
pub const OTHER_REPORTER: &str = "other";

/// Separates label values in `report_count.labels` (a control character no label value
/// holds: label values come from config names and keywords).
const SEP: char = '\u{1f}';

/// Which report: a report counts once per (reporter, report_id, domain, kind), however
/// often and in whatever packing it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenKey {
    pub reporter: String,
    pub report_id: String,
    pub domain: String,
    /// `dmarc_aggregate`, `dmarc_failure` or `tls_rpt`.
    pub kind: &'static str,
}

/// An increment of one counter series: `kind` names the family (the metrics layer maps it
/// to a metric name and label names), `labels` are its label values in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountAdd {
    pub kind: &'static str,
    pub labels: Vec<String>,
    pub value: u64,
}

/// An aggregate report's reporter: counted in `mailauth_dmarc_reports_total` and its end
/// time kept for `mailauth_dmarc_report_last_end_timestamp_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReporterAdd {
    pub domain: String,
    /// Lower-cased org name, as the reporter wrote it (clipped): the label value it gets if
    /// the domain has room for another reporter.
    pub reporter: String,
    pub end: Option<i64>,
}

/// Messages from one source IP on one day, as the source table keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceRow {
    pub domain: String,
    /// Days since 1970-01-01 (UTC) of the report's date range end.
    pub day: i64,
    /// A `[[sender]]` name or `unknown`.
    pub source: String,
    pub ip: String,
    pub messages: u64,
    pub dkim_pass: u64,
    pub spf_pass: u64,
    pub quarantine: u64,
    pub reject: u64,
    /// Messages with DKIM or SPF aligned and passing (DMARC pass, RFC 7489 §4.2); `None`
    /// in rows from before the schema had it.
    pub dmarc_pass: Option<u64>,
}

/// Messages and DMARC passes of a domain over some days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassCount {
    pub messages: u64,
    pub passed: u64,
}

/// Everything one report adds, committed at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportCommit {
    pub key: SeenKey,
    pub counts: Vec<CountAdd>,
    pub reporter: Option<ReporterAdd>,
    pub sources: Vec<SourceRow>,
}

/// What [`StateStore::commit_report`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Counted,
    /// The key was seen before: nothing was added.
    Duplicate,
}

/// One counter series as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    pub kind: String,
    pub labels: Vec<String>,
    pub value: u64,
}

/// One reporter label value of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReporterRow {
    pub domain: String,
    pub reporter: String,
    pub reports: u64,
    pub last_end: Option<i64>,
}

fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl StateStore {
    /// Commits one report: its seen key and every count, in one transaction. A key seen
    /// before adds nothing ([`Committed::Duplicate`]). Counters saturate instead of
    /// wrapping. Also drops seen keys and source rows past their keeping time.
    pub fn commit_report(
        &self,
        commit: &ReportCommit,
        max_reporters: usize,
        now: SystemTime,
    ) -> Result<Committed, StateError> {
        let now = unix(now);
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let key = &commit.key;
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO report_seen (reporter, report_id, domain, kind, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    key.reporter,
                    key.report_id,
                    key.domain,
                    key.kind,
                    now
                ])?;
            if inserted == 0 {
                return Ok(Committed::Duplicate);
            }
            for add in &commit.counts {
                add_count(&tx, add.kind, &add.labels, add.value)?;
            }
            if let Some(reporter) = &commit.reporter {
                add_reporter(&tx, reporter, max_reporters)?;
            }
            for row in &commit.sources {
                add_source(&tx, row)?;
            }
            // Expired rows go at most once an hour: the two deletes scan what they keep.
            let last = self.last_report_prune.load(Ordering::Relaxed);
            if now < last || now.saturating_sub(last) >= 3600 {
                tx.prepare_cached("DELETE FROM report_seen WHERE seen_at < ?1")?
                    .execute(params![now - SEEN_KEEP_DAYS * 86_400])?;
                tx.prepare_cached("DELETE FROM report_source WHERE day < ?1")?
                    .execute(params![now.div_euclid(86_400) - SOURCE_KEEP_DAYS])?;
                self.last_report_prune.store(now, Ordering::Relaxed);
            }
            tx.commit()?;
            Ok(Committed::Counted)
        })
    }

    /// Every counter series, by kind and labels.
    pub fn report_counts(&self) -> Result<Vec<CountRow>, StateError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT kind, labels, value FROM report_count ORDER BY kind, labels",
            )?;
            let rows = stmt.query_map([], |r| {
                let labels: String = r.get(1)?;
                Ok(CountRow {
                    kind: r.get(0)?,
                    labels: labels.split(SEP).map(str::to_string).collect(),
                    value: from_sql(r.get(2)?),
                })
            })?;
            rows.collect()
        })
    }

    /// Every reporter label value, by domain and reporter.
    pub fn reporters(&self) -> Result<Vec<ReporterRow>, StateError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT domain, reporter, reports, last_end FROM report_reporter
                 ORDER BY domain, reporter",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ReporterRow {
                    domain: r.get(0)?,
                    reporter: r.get(1)?,
                    reports: from_sql(r.get(2)?),
                    last_end: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The source table of `domain` from day `since_day` on (days since 1970-01-01).
    pub fn report_sources(
        &self,
        domain: &str,
        since_day: i64,
    ) -> Result<Vec<SourceRow>, StateError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT domain, day, source, ip, messages, dkim_pass, spf_pass, quarantine, reject,
                        dmarc_pass
                 FROM report_source WHERE domain = ?1 AND day >= ?2
                 ORDER BY day, source, ip",
            )?;
            let rows = stmt.query_map(params![domain, since_day], |r| {
                Ok(SourceRow {
                    domain: r.get(0)?,
                    day: r.get(1)?,
                    source: r.get(2)?,
                    ip: r.get(3)?,
                    messages: from_sql(r.get(4)?),
                    dkim_pass: from_sql(r.get(5)?),
                    spf_pass: from_sql(r.get(6)?),
                    quarantine: from_sql(r.get(7)?),
                    reject: from_sql(r.get(8)?),
                    dmarc_pass: r.get::<_, Option<i64>>(9)?.map(from_sql),
                })
            })?;
            rows.collect()
        })
    }

    /// Per domain, from day `since_day` on: messages reported and how many passed DMARC,
    /// over the rows that know (one grouped query for the whole overview).
    pub fn dmarc_pass_counts(
        &self,
        since_day: i64,
    ) -> Result<HashMap<String, PassCount>, StateError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT domain, SUM(messages), SUM(dmarc_pass) FROM report_source
                 WHERE day >= ?1 AND dmarc_pass IS NOT NULL GROUP BY domain",
            )?;
            let rows = stmt.query_map(params![since_day], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    PassCount {
                        messages: from_sql(r.get(1)?),
                        passed: from_sql(r.get(2)?),
                    },
                ))
            })?;
            rows.collect()
        })
    }

    /// Seen keys kept (for tests and the bound's proof).
    pub fn seen_report_count(&self) -> Result<u64, StateError> {
        self.with_conn(|c| {
            c.query_row("SELECT COUNT(*) FROM report_seen", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(from_sql)
        })
    }
}

fn add_count(
    tx: &Transaction<'_>,
    kind: &str,
    labels: &[String],
    value: u64,
) -> rusqlite::Result<()> {
    let labels = labels.join(&SEP.to_string());
    let old: Option<i64> = tx
        .prepare_cached("SELECT value FROM report_count WHERE kind = ?1 AND labels = ?2")?
        .query_row(params![kind, labels], |r| r.get(0))
        .optional()?;
    let new = old.map_or(0, from_sql).saturating_add(value);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO report_count (kind, labels, value) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![kind, labels, to_sql(new)])?;
    Ok(())
}

/// Counts a report for its reporter's label value: its own name while the domain has
/// fewer than `max` reporters (or already has this one), `other` after that.
fn add_reporter(tx: &Transaction<'_>, add: &ReporterAdd, max: usize) -> rusqlite::Result<()> {
    let known: Option<(i64, Option<i64>)> = tx
        .prepare_cached(
            "SELECT reports, last_end FROM report_reporter WHERE domain = ?1 AND reporter = ?2",
        )?
        .query_row(params![add.domain, add.reporter], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (label, old) = match known {
        Some(old) => (add.reporter.as_str(), Some(old)),
        None => {
            let named: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM report_reporter WHERE domain = ?1 AND reporter != ?2",
                )?
                .query_row(params![add.domain, OTHER_REPORTER], |r| r.get(0))?;
            if from_sql(named) < max as u64 && add.reporter != OTHER_REPORTER {
                (add.reporter.as_str(), None)
            } else {
                let other = tx
                    .prepare_cached(
                        "SELECT reports, last_end FROM report_reporter
                         WHERE domain = ?1 AND reporter = ?2",
                    )?
                    .query_row(params![add.domain, OTHER_REPORTER], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                (OTHER_REPORTER, other)
            }
        }
    };
    let (reports, last_end) = old.unwrap_or((0, None));
    let last_end = match (last_end, add.end) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO report_reporter (domain, reporter, reports, last_end)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        add.domain,
        label,
        reports.saturating_add(1),
        last_end
    ])?;
    Ok(())
}

fn add_source(tx: &Transaction<'_>, row: &SourceRow) -> rusqlite::Result<()> {
    type Counts = ([i64; 5], Option<i64>);
    let counts = |ip: &str| -> rusqlite::Result<Option<Counts>> {
        tx.prepare_cached(
            "SELECT messages, dkim_pass, spf_pass, quarantine, reject, dmarc_pass
             FROM report_source
             WHERE domain = ?1 AND day = ?2 AND source = ?3 AND ip = ?4",
        )?
        .query_row(params![row.domain, row.day, row.source, ip], |r| {
            Ok((
                [r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
                r.get(5)?,
            ))
        })
        .optional()
    };
    // A new IP gets a row of its own while the domain's day has room, else it is `other`.
    let (ip, old) = match counts(&row.ip)? {
        Some(old) => (row.ip.as_str(), Some(old)),
        None => {
            let ips: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM report_source WHERE domain = ?1 AND day = ?2",
                )?
                .query_row(params![row.domain, row.day], |r| r.get(0))?;
            if ips < MAX_SOURCE_IPS {
                (row.ip.as_str(), None)
            } else {
                ("other", counts("other")?)
            }
        }
    };
    // A row counted before the column existed stays unknown: its old messages have no
    // DMARC count to add to.
    let dmarc_pass = match (old, row.dmarc_pass) {
        (None, new) => new,
        (Some((_, Some(before))), Some(new)) => Some(from_sql(before).saturating_add(new)),
        (Some((_, _)), _) => None,
    };
    let old = old.map(|(c, _)| c).unwrap_or_default().map(from_sql);
    let new = [
        row.messages,
        row.dkim_pass,
        row.spf_pass,
        row.quarantine,
        row.reject,
    ];
    let sum: Vec<i64> = old
        .iter()
        .zip(new)
        .map(|(a, b)| to_sql(a.saturating_add(b)))
        .collect();
    tx.prepare_cached(
        "INSERT OR REPLACE INTO report_source
         (domain, day, source, ip, messages, dkim_pass, spf_pass, quarantine, reject, dmarc_pass)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        row.domain,
        row.day,
        row.source,
        ip,
        sum[0],
        sum[1],
        sum[2],
        sum[3],
        sum[4],
        dmarc_pass.map(to_sql)
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(id: &str) -> SeenKey {
        SeenKey {
            reporter: "google.com".into(),
            report_id: id.into(),
            domain: "example.test".into(),
            kind: "dmarc_aggregate",
        }
    }

    fn commit(id: &str, reporter: &str, messages: u64) -> ReportCommit {
        ReportCommit {
            key: SeenKey {
                reporter: reporter.into(),
                ..key(id)
            },
            counts: vec![CountAdd {
                kind: "messages",
                labels: vec!["example.test".into(), "unknown".into(), "none".into()],
                value: messages,
            }],
            reporter: Some(ReporterAdd {
                domain: "example.test".into(),
                reporter: reporter.into(),
                end: Some(1_700_000_000),
            }),
            sources: vec![SourceRow {
                domain: "example.test".into(),
                day: 19_675,
                source: "unknown".into(),
                ip: "192.0.2.1".into(),
                messages,
                dkim_pass: 1,
                ..SourceRow::default()
            }],
        }
    }

    /// A day inside the source table's keeping time, as `SystemTime`.
    fn on_day(day: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(day as u64 * 86_400 + 3600)
    }

    #[test]
    fn a_report_counts_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let now = on_day(19_676);
        assert_eq!(
            store
                .commit_report(&commit("r1", "google.com", 5), 50, now)
                .unwrap(),
            Committed::Counted
        );
        assert_eq!(
            store
                .commit_report(&commit("r1", "google.com", 5), 50, now)
                .unwrap(),
            Committed::Duplicate
        );
        drop(store);
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(
            store
                .commit_report(&commit("r1", "google.com", 5), 50, now)
                .unwrap(),
            Committed::Duplicate,
            "the key survives a restart"
        );
        store
            .commit_report(&commit("r2", "google.com", 7), 50, now)
            .unwrap();
        let counts = store.report_counts().unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].value, 12);
        assert_eq!(counts[0].labels, ["example.test", "unknown", "none"]);
        let reporters = store.reporters().unwrap();
        assert_eq!(reporters.len(), 1);
        assert_eq!(reporters[0].reports, 2);
        assert_eq!(reporters[0].last_end, Some(1_700_000_000));
        let sources = store.report_sources("example.test", 0).unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!((sources[0].messages, sources[0].dkim_pass), (12, 2));
    }

    #[test]
    fn dmarc_passes_add_up_and_rows_from_before_the_column_stay_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let now = on_day(19_676);
        let with_pass = |id: &str, ip: &str, messages: u64, passed: u64| {
            let mut c = commit(id, "google.com", messages);
            c.sources[0].ip = ip.into();
            c.sources[0].dmarc_pass = Some(passed);
            c
        };
        store
            .commit_report(&with_pass("a", "192.0.2.1", 10, 9), 50, now)
            .unwrap();
        store
            .commit_report(&with_pass("b", "192.0.2.1", 10, 5), 50, now)
            .unwrap();
        // A row written before migration 4 (its dmarc_pass NULL) and a report adding to it.
        store
            .with_conn(|c| {
                c.execute(
                    "INSERT INTO report_source
                     (domain, day, source, ip, messages, dkim_pass, spf_pass, quarantine, reject)
                     VALUES ('example.test', 19675, 'unknown', '192.0.2.2', 100, 0, 0, 0, 0)",
                    [],
                )
            })
            .unwrap();
        store
            .commit_report(&with_pass("c", "192.0.2.2", 10, 10), 50, now)
            .unwrap();
        let rows = store.report_sources("example.test", 0).unwrap();
        let by_ip = |ip: &str| rows.iter().find(|r| r.ip == ip).unwrap();
        assert_eq!(
            (by_ip("192.0.2.1").messages, by_ip("192.0.2.1").dmarc_pass),
            (20, Some(14))
        );
        assert_eq!(
            (by_ip("192.0.2.2").messages, by_ip("192.0.2.2").dmarc_pass),
            (110, None)
        );
        // The rate rests on the rows that know: 14 of 20, not 24 of 130.
        let counts = store.dmarc_pass_counts(19_675).unwrap();
        assert_eq!(
            counts.get("example.test"),
            Some(&PassCount {
                messages: 20,
                passed: 14
            })
        );
        assert!(
            store.dmarc_pass_counts(19_676).unwrap().is_empty(),
            "older days left out"
        );
    }

    #[test]
    fn reporters_past_the_limit_are_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let now = on_day(19_676);
        for (i, name) in ["a.test", "b.test", "c.test", "d.test", "a.test"]
            .iter()
            .enumerate()
        {
            store
                .commit_report(&commit(&format!("r{i}"), name, 1), 2, now)
                .unwrap();
        }
        let got: Vec<(String, u64)> = store
            .reporters()
            .unwrap()
            .into_iter()
            .map(|r| (r.reporter, r.reports))
            .collect();
        assert_eq!(
            got,
            [
                ("a.test".to_string(), 2),
                ("b.test".to_string(), 1),
                ("other".to_string(), 2)
            ]
        );
    }

    #[test]
    fn counters_saturate_instead_of_wrapping() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let now = on_day(19_676);
        store
            .commit_report(&commit("r1", "g", u64::MAX / 2), 50, now)
            .unwrap();
        store
            .commit_report(&commit("r2", "g", u64::MAX / 2), 50, now)
            .unwrap();
        store.commit_report(&commit("r3", "g", 5), 50, now).unwrap();
        assert_eq!(store.report_counts().unwrap()[0].value, i64::MAX as u64);
    }

    #[test]
    fn old_keys_and_source_days_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store
            .commit_report(&commit("old", "g", 1), 50, on_day(19_675))
            .unwrap();
        assert_eq!(store.seen_report_count().unwrap(), 1);
        let later = on_day(19_675 + SEEN_KEEP_DAYS + 1);
        store
            .commit_report(&commit("new", "g", 1), 50, later)
            .unwrap();
        assert_eq!(store.seen_report_count().unwrap(), 1, "the old key is gone");
        assert!(
            store.report_sources("example.test", 0).unwrap().is_empty(),
            "day 19675 is past the source table's keeping time"
        );
    }

    #[test]
    fn source_ips_per_day_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let mut c = commit("r", "g", 1);
        c.sources = (0..MAX_SOURCE_IPS + 5)
            .map(|i| SourceRow {
                domain: "example.test".into(),
                day: 19_675,
                source: "unknown".into(),
                ip: format!("10.0.{}.{}", i / 256, i % 256),
                messages: 1,
                ..SourceRow::default()
            })
            .collect();
        store.commit_report(&c, 50, on_day(19_676)).unwrap();
        let rows = store.report_sources("example.test", 0).unwrap();
        assert_eq!(rows.len() as i64, MAX_SOURCE_IPS + 1);
        let other = rows.iter().find(|r| r.ip == "other").unwrap();
        assert_eq!(other.messages, 5);
    }
}
