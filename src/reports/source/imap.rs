//! A `[[reports]]` source reading an IMAP folder through the probe's mailbox client
//! (`mail::mailbox`: its TCP, STARTTLS/TLS with verification, login and bounded reads), so
//! there is one IMAP connection code in the exporter, not two.
//!
//! What this adds is the report reader's handling of a folder: list the messages waiting
//! (by UID, oldest first, skipping those flagged `\Deleted`), fetch one without marking it
//! seen and at most `max_bytes` of it, and move it to the archive or invalid folder once the
//! reader says so. Only UIDs this source handed out are ever moved, and never with a plain
//! `EXPUNGE`: that would also remove messages other clients flagged `\Deleted`.
//!
//! Like the mailbox client it is blocking; the reader runs it on a blocking thread. It
//! connects on first use and, after any error, drops the connection and connects again on
//! the next call, so a server restart costs one failed round.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use imap::extensions::idle::WaitOutcome;
use imap::types::UnsolicitedResponse;

use super::{Item, ItemKey, ReportSource, SourceError};
use crate::config::MailboxConfig;
use crate::mail::mailbox::{Mailbox, MailboxError};
use crate::mail::probe::CredentialError;

/// How long one IDLE command runs before it is ended and issued again. RFC 2177 §3:
/// "clients using IDLE are advised to terminate the IDLE and re-issue it at least every
/// 29 minutes to avoid being logged off". A margin below that. The span is a deadline
/// (`mail::mailbox::ImapStream`), so server keepalives do not stretch it.
pub const IDLE_RENEWAL: Duration = Duration::from_secs(25 * 60);

/// How often a server without IDLE is asked (NOOP) whether new mail has arrived while
/// `wait` runs: a new report waits at most this long beyond its arrival.
pub const NOOP_POLL: Duration = Duration::from_secs(10);

/// How a message leaves the report folder, chosen from the server's capabilities.
///
/// RFC 6851 §3.1: `move = "MOVE" SP sequence-set SP mailbox` (with the `UID` prefix of
/// RFC 3501 §6.4.8, `UID MOVE`), atomic, and nothing else in the folder is affected.
/// RFC 4315 §2.1: `uid-expunge = "UID" SP "EXPUNGE" SP sequence-set` removes only the
/// listed UIDs that are flagged `\Deleted`, leaving other clients' `\Deleted` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovePlan {
    /// `UID MOVE` (server advertises `MOVE`).
    Move,
    /// `UID COPY`, `UID STORE +FLAGS (\Deleted)`, `UID EXPUNGE` of that UID (`UIDPLUS`).
    CopyExpunge,
    /// `UID COPY` and `UID STORE +FLAGS (\Deleted)` only: the message stays in the
    /// folder flagged `\Deleted` (so `pending` skips it) until a client that may expunge
    /// everything does so. A plain `EXPUNGE` is never sent.
    CopyFlag,
}

impl MovePlan {
    /// The plan for a server advertising these capabilities.
    pub fn for_capabilities(has_move: bool, has_uidplus: bool) -> MovePlan {
        match (has_move, has_uidplus) {
            (true, _) => MovePlan::Move,
            (false, true) => MovePlan::CopyExpunge,
            (false, false) => MovePlan::CopyFlag,
        }
    }
}

/// The items waiting, oldest first: UIDs are assigned in arrival order within one
/// UIDVALIDITY (RFC 3501 §2.3.1.1, "strictly ascending"), so the smallest are oldest.
pub fn oldest_first(uids: impl IntoIterator<Item = u32>, max: usize) -> Vec<u32> {
    let sorted: BTreeSet<u32> = uids.into_iter().collect();
    sorted.into_iter().take(max).collect()
}

/// The length of the next IDLE command within a wait with `remaining` left: never longer
/// than [`IDLE_RENEWAL`], never zero (the imap crate treats a zero read timeout as none).
pub fn next_idle_span(remaining: Duration) -> Duration {
    remaining.min(IDLE_RENEWAL).max(Duration::from_millis(100))
}

/// Whether an untagged response announces mail that may be new. `EXISTS` (RFC 3501
/// §7.3.1) is sent when the number of messages grows; `RECENT` (§7.3.2) along with it.
/// Expunges and flag changes are not news for the reader.
pub fn announces_new_mail(response: &UnsolicitedResponse) -> bool {
    matches!(
        response,
        UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
    )
}

/// Whether the keys handed out under `previous` UIDVALIDITY are still valid under
/// `current`. RFC 3501 §2.3.1.1: if the unique identifier validity value changes, UIDs
/// from before name nothing (or, worse, other messages). A server that sends no
/// UIDVALIDITY gives nothing to compare against: the keys are kept only if it never did.
pub fn keys_still_valid(previous: Option<u32>, current: Option<u32>) -> bool {
    previous == current
}

/// One logged-in connection with the report folder selected.
struct Connection {
    mailbox: Mailbox,
    plan: MovePlan,
    /// Folders known to exist on this connection (created or listed once).
    folders: HashSet<String>,
}

/// An IMAP folder of reports (`[[reports]] mailbox = …`).
pub struct ImapFolder {
    /// The mailbox's config, with `max_message_bytes` raised to `max_bytes` so that the
    /// connection's per-answer read budget admits a whole allowed message.
    config: MailboxConfig,
    archive_folder: String,
    invalid_folder: String,
    max_bytes: u64,
    connection: Option<Connection>,
    /// UIDVALIDITY of the folder when `handed_out` was filled.
    uid_validity: Option<u32>,
    /// UIDs `pending` listed and not yet archived or rejected. A key outside this set is
    /// not ours to read or move.
    handed_out: BTreeSet<u32>,
    /// Where the secret comes from when it is not the configured password (an OAuth2
    /// access token, `auth = "xoauth2"`/`"oauthbearer"`): asked at each connect.
    credential: Option<Credential>,
}

/// Gives the secret to log in with (an OAuth2 access token) or why there is none.
pub type Credential = Box<dyn Fn() -> Result<String, CredentialError> + Send>;

impl ImapFolder {
    /// A source reading `config.folder`; nothing is connected until the first call.
    /// The password is read from `password_file` / `password_env` at each connect.
    pub fn new(
        config: &MailboxConfig,
        archive_folder: &str,
        invalid_folder: &str,
        max_bytes: u64,
    ) -> ImapFolder {
        let mut config = config.clone();
        config.max_message_bytes = max_bytes;
        ImapFolder {
            config,
            archive_folder: archive_folder.to_string(),
            invalid_folder: invalid_folder.to_string(),
            max_bytes,
            connection: None,
            uid_validity: None,
            handed_out: BTreeSet::new(),
            credential: None,
        }
    }

    /// Logs in with what `credential` gives (an OAuth2 access token) instead of the
    /// configured password.
    pub fn with_credential(mut self, credential: Credential) -> ImapFolder {
        self.credential = Some(credential);
        self
    }

    /// How this source moves messages on the current connection (connecting if needed).
    pub fn move_plan(&mut self) -> Result<MovePlan, SourceError> {
        Ok(self.connected()?.plan)
    }

    /// The folder's UIDVALIDITY as last selected.
    pub fn uid_validity(&self) -> Option<u32> {
        self.uid_validity
    }

    /// Drops the connection (if any); the next call connects again.
    pub fn disconnect(&mut self) {
        if let Some(c) = self.connection.take() {
            c.mailbox.logout();
        }
    }

    fn connected(&mut self) -> Result<&mut Connection, SourceError> {
        if self.connection.is_none() {
            let connection = self.connect()?;
            self.connection = Some(connection);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| SourceError::Unavailable("not connected".into()))
    }

    fn connect(&mut self) -> Result<Connection, SourceError> {
        let password = match &self.credential {
            Some(credential) => {
                Some(credential().map_err(|e| SourceError::Unavailable(e.to_string()))?)
            }
            None => self
                .config
                .secret()
                .read()
                .map_err(|e| SourceError::Unavailable(e.to_string()))?,
        }
        .ok_or_else(|| {
            SourceError::Unavailable(format!(
                "no password_file or password_env for IMAP user {}",
                self.config.username
            ))
        })?;
        let mut mailbox = Mailbox::connect(&self.config, &password).map_err(unavailable)?;
        drop(password);
        let session = mailbox.session();
        let has_move = session
            .capabilities()
            .map_err(|e| operation("CAPABILITY", e))?
            .has_str("MOVE");
        // `Mailbox::connect` selected the folder; selecting again reports UIDVALIDITY.
        let selected = session
            .select(&self.config.folder)
            .map_err(|e| operation("SELECT", e))?;
        if !keys_still_valid(self.uid_validity, selected.uid_validity) {
            self.handed_out.clear();
        }
        self.uid_validity = selected.uid_validity;
        let plan = MovePlan::for_capabilities(has_move, mailbox.has_uidplus);
        Ok(Connection {
            mailbox,
            plan,
            folders: HashSet::new(),
        })
    }

    /// Runs `f` on the connection; after an error the connection is dropped, so the
    /// next call starts from a fresh login and SELECT.
    fn with_connection<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        let connection = self.connected()?;
        let result = f(connection);
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    /// The UID `key` names, if it is one this source handed out under the folder's
    /// current UIDVALIDITY. Connects first when the key looks like ours, since a
    /// (re)connect is where a changed UIDVALIDITY is noticed and the old keys dropped.
    fn uid_of(&mut self, key: &ItemKey) -> Result<Option<u32>, SourceError> {
        let uid = match key {
            ItemKey::Uid(uid) => *uid,
            ItemKey::File(_) => {
                return Err(SourceError::Operation {
                    operation: "IMAP",
                    detail: format!("{key} is a file, not a message of this folder"),
                })
            }
        };
        if !self.handed_out.contains(&uid) {
            return Ok(None);
        }
        self.connected()?;
        Ok(self.handed_out.contains(&uid).then_some(uid))
    }

    fn move_to(&mut self, key: &ItemKey, folder_kind: Destination) -> Result<(), SourceError> {
        // A key this source did not hand out (or one from before a UIDVALIDITY change)
        // names nothing it may touch; the message it named is listed again under its new
        // UID, and the seen-report keys make that second read count nothing.
        let Some(uid) = self.uid_of(key)? else {
            return Ok(());
        };
        let folder = match folder_kind {
            Destination::Archive => self.archive_folder.clone(),
            Destination::Invalid => self.invalid_folder.clone(),
        };
        self.with_connection(|c| {
            ensure_folder(c, &folder)?;
            let set = uid.to_string();
            let session = c.mailbox.session();
            match c.plan {
                MovePlan::Move => session
                    .uid_mv(&set, &folder)
                    .map_err(|e| operation("UID MOVE", e)),
                MovePlan::CopyExpunge | MovePlan::CopyFlag => {
                    session
                        .uid_copy(&set, &folder)
                        .map_err(|e| operation("UID COPY", e))?;
                    session
                        .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                        .map_err(|e| operation("UID STORE", e))?;
                    if c.plan == MovePlan::CopyExpunge {
                        session
                            .uid_expunge(&set)
                            .map_err(|e| operation("UID EXPUNGE", e))?;
                    }
                    Ok(())
                }
            }
        })?;
        self.handed_out.remove(&uid);
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Destination {
    Archive,
    Invalid,
}

/// Makes sure `folder` exists: LIST it, CREATE it if absent. A failed CREATE is
/// acceptable when the folder exists afterwards (another client created it meanwhile,
/// RFC 5530 `ALREADYEXISTS`), so no server's wording of that answer is relied upon.
fn ensure_folder(c: &mut Connection, folder: &str) -> Result<(), SourceError> {
    if c.folders.contains(folder) {
        return Ok(());
    }
    let session = c.mailbox.session();
    let exists = |session: &mut imap::Session<_>| -> Result<bool, SourceError> {
        let names = session
            .list(Some(""), Some(folder))
            .map_err(|e| operation("LIST", e))?;
        Ok(names.iter().any(|n| n.name() == folder))
    };
    if !exists(session)? {
        if let Err(e) = session.create(folder) {
            match e {
                imap::Error::No(_) if exists(session)? => {}
                e => return Err(operation("CREATE", e)),
            }
        }
    }
    c.folders.insert(folder.to_string());
    Ok(())
}

fn unavailable(e: MailboxError) -> SourceError {
    SourceError::Unavailable(e.to_string())
}

fn operation(what: &'static str, e: imap::Error) -> SourceError {
    SourceError::Operation {
        operation: what,
        detail: e.to_string(),
    }
}

impl ReportSource for ImapFolder {
    /// `UID SEARCH UNDELETED` (RFC 3501 §6.4.4): messages flagged `\Deleted` are on their
    /// way out (ours, moved without UIDPLUS, or another client's) and are not reports to
    /// read.
    fn pending(&mut self, max: usize) -> Result<Vec<ItemKey>, SourceError> {
        let uids = self.with_connection(|c| {
            c.mailbox
                .session()
                .uid_search("UNDELETED")
                .map_err(|e| operation("UID SEARCH", e))
        })?;
        let listed = oldest_first(uids, max);
        self.handed_out.extend(listed.iter().copied());
        Ok(listed.into_iter().map(ItemKey::Uid).collect())
    }

    /// `UID FETCH uid (UID RFC822.SIZE BODY.PEEK[]<0.max_bytes>)`: the message stays
    /// unseen for people reading the folder, at most `max_bytes` of it are read, and the
    /// size says whether that was all of it.
    fn read(&mut self, key: &ItemKey) -> Result<Option<Item>, SourceError> {
        let Some(uid) = self.uid_of(key)? else {
            return Ok(None);
        };
        let fetched = self.with_connection(|c| {
            // NOOP first lets the server report expunges by other clients (RFC 3501
            // §6.1.2); Dovecot otherwise answers a FETCH of a message expunged
            // elsewhere, but not yet announced to this session, with an empty body.
            c.mailbox
                .session()
                .noop()
                .map_err(|e| operation("NOOP", e))?;
            c.mailbox.fetch(uid).map_err(fetch_failed)
        })?;
        let Some(fetched) = fetched else {
            self.handed_out.remove(&uid);
            return Ok(None);
        };
        let mut bytes = fetched.raw;
        // The server answers with what was asked for; a longer literal is cut anyway.
        let limit = usize::try_from(self.max_bytes).unwrap_or(usize::MAX);
        let truncated = fetched.truncated || bytes.len() > limit;
        bytes.truncate(limit);
        Ok(Some(Item {
            key: key.clone(),
            bytes,
            truncated,
        }))
    }

    fn archive(&mut self, key: &ItemKey) -> Result<(), SourceError> {
        self.move_to(key, Destination::Archive)
    }

    fn reject(&mut self, key: &ItemKey) -> Result<(), SourceError> {
        self.move_to(key, Destination::Invalid)
    }

    /// IDLE (RFC 2177) where offered, renewed every [`IDLE_RENEWAL`]; otherwise NOOP
    /// every [`NOOP_POLL`]. Returns as soon as the server announces new mail, including
    /// an announcement that arrived with an earlier command's answer.
    fn wait(&mut self, max_wait: Duration) -> Result<(), SourceError> {
        let deadline = Instant::now() + max_wait;
        self.with_connection(|c| {
            let session = c.mailbox.session();
            if session
                .take_all_unsolicited()
                .any(|r| announces_new_mail(&r))
            {
                return Ok(());
            }
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Ok(());
                }
                if c.mailbox.has_idle {
                    let session = c.mailbox.session();
                    let mut idle = session.idle();
                    idle.timeout(next_idle_span(remaining)).keepalive(false);
                    // Continue while nothing new is announced and time is left.
                    let outcome =
                        idle.wait_while(|r| !announces_new_mail(&r) && Instant::now() < deadline);
                    drop(idle);
                    match outcome {
                        Ok(WaitOutcome::MailboxChanged) => return Ok(()),
                        Ok(WaitOutcome::TimedOut) => {}
                        Err(imap::Error::Io(e))
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return Err(operation("IDLE", e)),
                    }
                } else {
                    // No IDLE: a plain wait between polls (this is the source's pacing,
                    // not a synchronisation).
                    std::thread::sleep(remaining.min(NOOP_POLL));
                    let session = c.mailbox.session();
                    session.noop().map_err(|e| operation("NOOP", e))?;
                    if session
                        .take_all_unsolicited()
                        .any(|r| announces_new_mail(&r))
                    {
                        return Ok(());
                    }
                }
            }
        })
    }
}

fn fetch_failed(e: MailboxError) -> SourceError {
    SourceError::Operation {
        operation: "UID FETCH",
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_is_preferred_then_uidplus_then_flag_only() {
        assert_eq!(MovePlan::for_capabilities(true, true), MovePlan::Move);
        assert_eq!(MovePlan::for_capabilities(true, false), MovePlan::Move);
        assert_eq!(
            MovePlan::for_capabilities(false, true),
            MovePlan::CopyExpunge
        );
        assert_eq!(MovePlan::for_capabilities(false, false), MovePlan::CopyFlag);
    }

    #[test]
    fn pending_lists_smallest_uids_first_and_at_most_max() {
        assert_eq!(oldest_first([9, 3, 7, 1], 10), vec![1, 3, 7, 9]);
        assert_eq!(oldest_first([9, 3, 7, 1], 2), vec![1, 3]);
        assert_eq!(oldest_first([5, 5, 2], 10), vec![2, 5]);
        assert_eq!(oldest_first([4], 0), Vec::<u32>::new());
        assert_eq!(oldest_first([], 3), Vec::<u32>::new());
        assert_eq!(oldest_first([u32::MAX, 1], 1), vec![1]);
    }

    #[test]
    fn idle_is_renewed_before_29_minutes_and_never_zero() {
        assert_eq!(
            next_idle_span(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(next_idle_span(Duration::from_secs(3600)), IDLE_RENEWAL);
        assert!(IDLE_RENEWAL < Duration::from_secs(29 * 60));
        assert_eq!(next_idle_span(Duration::ZERO), Duration::from_millis(100));
    }

    #[test]
    fn only_exists_and_recent_announce_new_mail() {
        assert!(announces_new_mail(&UnsolicitedResponse::Exists(4)));
        assert!(announces_new_mail(&UnsolicitedResponse::Recent(1)));
        assert!(!announces_new_mail(&UnsolicitedResponse::Expunge(3)));
    }

    #[test]
    fn a_changed_uidvalidity_invalidates_the_keys() {
        assert!(keys_still_valid(Some(17), Some(17)));
        assert!(!keys_still_valid(Some(17), Some(18)));
        assert!(!keys_still_valid(Some(17), None));
        assert!(!keys_still_valid(None, Some(17)));
        assert!(keys_still_valid(None, None));
    }

    fn config() -> MailboxConfig {
        let text = "[mailbox.r]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"tls\"\nusername = \"u\"\npassword_env = \"MAILAUTH_TEST_UNSET_VARIABLE\"\nfolder = \"INBOX\"\n";
        crate::config::Config::parse(text, std::path::Path::new("t.toml"))
            .map(|c| c.mailbox["r"].clone())
            .expect("a minimal mailbox config parses")
    }

    #[test]
    fn keys_not_handed_out_are_neither_read_nor_moved() {
        let mut source = ImapFolder::new(&config(), "Archive", "Invalid", 1000);
        // No connection is attempted for a key that was never listed: port 1 would fail.
        assert_eq!(source.read(&ItemKey::Uid(7)), Ok(None));
        assert_eq!(source.archive(&ItemKey::Uid(7)), Ok(()));
        assert_eq!(source.reject(&ItemKey::Uid(7)), Ok(()));
        assert!(matches!(
            source.read(&ItemKey::File("x.xml".into())),
            Err(SourceError::Operation { .. })
        ));
    }

    #[test]
    fn an_unreadable_password_is_unavailable_and_names_no_secret() {
        let mut source = ImapFolder::new(&config(), "Archive", "Invalid", 1000);
        let err = source.pending(10).unwrap_err();
        assert!(
            matches!(&err, SourceError::Unavailable(m) if m.contains("MAILAUTH_TEST_UNSET_VARIABLE")),
            "{err:?}"
        );
    }

    #[test]
    fn the_read_budget_admits_the_report_size_limit() {
        let source = ImapFolder::new(&config(), "Archive", "Invalid", 77_000_000);
        assert_eq!(source.config.max_message_bytes, 77_000_000);
    }
}
