//! Where reports are read from (`[[reports]]`, DESIGN.md § Reports): an IMAP folder
//! (`imap`) or a directory (`directory`). This is the I/O edge of the reports layer; the
//! parsers beside it (`reports::{aggregate, failure, tlsrpt, input}`) stay pure.
//!
//! A source hands out items (a file, a message) one at a time and is told afterwards what
//! became of each: `archive` once its counts are committed to the state store, `reject`
//! when it holds no readable report. An item is never moved before its counts are
//! committed, so a crash in between re-reads it next time, and the seen-report keys in
//! `state_dir` make that second read count nothing. Nothing a source did not hand out is
//! ever touched.
//!
//! Sources are blocking (the `imap` crate is, and a directory is a few syscalls): the
//! reader runs each on a blocking thread, like the probe's mailbox.

pub mod directory;
pub mod imap;

use std::path::PathBuf;
use std::time::Duration;

/// Which item of a source: an IMAP UID in the source's folder (valid for the folder's
/// UIDVALIDITY the source selected) or a file's path inside the directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKey {
    Uid(u32),
    File(PathBuf),
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemKey::Uid(uid) => write!(f, "UID {uid}"),
            ItemKey::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One item's bytes, as read (a whole message with its MIME structure, or a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: ItemKey,
    pub bytes: Vec<u8>,
    /// The item was larger than the source's size limit and `bytes` holds only its
    /// beginning: such an item is rejected, never parsed half.
    pub truncated: bool,
}

/// Why a source could not be read or an item not moved. The reader counts it, shows the
/// source as failing (`mailauth_reports_last_read_timestamp_seconds` stops advancing) and
/// retries on the next round; it never stops reading the other sources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The server or directory cannot be reached or opened at all.
    #[error("cannot open the source: {0}")]
    Unavailable(String),
    /// The server or file system refused or failed one operation.
    #[error("{operation}: {detail}")]
    Operation {
        operation: &'static str,
        detail: String,
    },
}

/// A place reports arrive in.
pub trait ReportSource: Send {
    /// Up to `max` items waiting to be read, oldest first. Items already handed out and
    /// not yet archived or rejected may be listed again (after a crash, say).
    fn pending(&mut self, max: usize) -> Result<Vec<ItemKey>, SourceError>;
    /// The item's bytes, or `None` when it has gone since `pending` listed it.
    fn read(&mut self, key: &ItemKey) -> Result<Option<Item>, SourceError>;
    /// Moves a read item whose counts are committed out of the way (`archive_folder`,
    /// `<directory>/archive/`).
    fn archive(&mut self, key: &ItemKey) -> Result<(), SourceError>;
    /// Moves an item holding no readable report aside (`invalid_folder`,
    /// `<directory>/invalid/`).
    fn reject(&mut self, key: &ItemKey) -> Result<(), SourceError>;
    /// Blocks until new items may have arrived or `max_wait` passes (IMAP IDLE where the
    /// server offers it; otherwise a plain wait).
    fn wait(&mut self, max_wait: Duration) -> Result<(), SourceError>;
}
