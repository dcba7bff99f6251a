//! A directory of report files (`[[reports]] directory`): every regular file directly in
//! it is an item; read files move to `archive/`, unreadable ones to `invalid/` inside it.
//!
//! What a delivery agent drops there may still be being written: names starting with `.`
//! or ending in `.tmp` or `.part` are skipped (the maildir convention is to write under
//! such a name and rename when complete). Nothing in the two subdirectories, nor any
//! subdirectory, is ever listed or touched.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{Item, ItemKey, ReportSource, SourceError};

pub const ARCHIVE: &str = "archive";
pub const INVALID: &str = "invalid";

/// How often `wait` looks at the directory for a new file.
const WAIT_STEP: Duration = Duration::from_millis(200);

pub struct DirectorySource {
    dir: PathBuf,
    max_bytes: u64,
}

impl DirectorySource {
    pub fn new(dir: &Path, max_bytes: u64) -> DirectorySource {
        DirectorySource {
            dir: dir.to_path_buf(),
            max_bytes,
        }
    }

    /// `(modified, name)` of the files waiting, oldest first.
    fn listing(&self) -> Result<Vec<(SystemTime, PathBuf)>, SourceError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| SourceError::Unavailable(format!("{}: {e}", self.dir.display())))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| SourceError::Operation {
                operation: "list",
                detail: format!("{}: {e}", self.dir.display()),
            })?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
                continue;
            }
            // `file_type` does not follow symlinks: a link is not a report dropped here.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_file() {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            files.push((modified, entry.path()));
        }
        files.sort();
        Ok(files)
    }

    /// Moves `path` into `sub`, under its own name or, when that is taken (the same file
    /// name mailed twice), with `.1`, `.2`, … appended.
    fn move_into(&self, key: &ItemKey, sub: &str) -> Result<(), SourceError> {
        let ItemKey::File(path) = key else {
            return Err(SourceError::Operation {
                operation: "move",
                detail: format!("{key} is not a file of this directory"),
            });
        };
        let err = |detail: String| SourceError::Operation {
            operation: "move",
            detail,
        };
        let target_dir = self.dir.join(sub);
        fs::create_dir_all(&target_dir)
            .map_err(|e| err(format!("{}: {e}", target_dir.display())))?;
        let name = path
            .file_name()
            .ok_or_else(|| err(format!("{} has no file name", path.display())))?;
        let mut target = target_dir.join(name);
        let mut n = 0u32;
        while target.exists() {
            n += 1;
            if n > 10_000 {
                return Err(err(format!(
                    "{}: too many files named alike",
                    target_dir.display()
                )));
            }
            let mut with_suffix = name.to_os_string();
            with_suffix.push(format!(".{n}"));
            target = target_dir.join(with_suffix);
        }
        fs::rename(path, &target)
            .map_err(|e| err(format!("{} → {}: {e}", path.display(), target.display())))
    }
}

impl ReportSource for DirectorySource {
    fn pending(&mut self, max: usize) -> Result<Vec<ItemKey>, SourceError> {
        Ok(self
            .listing()?
            .into_iter()
            .take(max)
            .map(|(_, path)| ItemKey::File(path))
            .collect())
    }

    fn read(&mut self, key: &ItemKey) -> Result<Option<Item>, SourceError> {
        let ItemKey::File(path) = key else {
            return Ok(None);
        };
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SourceError::Operation {
                    operation: "read",
                    detail: format!("{}: {e}", path.display()),
                })
            }
        };
        let mut bytes = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| SourceError::Operation {
                operation: "read",
                detail: format!("{}: {e}", path.display()),
            })?;
        let truncated = bytes.len() as u64 > self.max_bytes;
        bytes.truncate(usize::try_from(self.max_bytes).unwrap_or(usize::MAX));
        Ok(Some(Item {
            key: key.clone(),
            bytes,
            truncated,
        }))
    }

    fn archive(&mut self, key: &ItemKey) -> Result<(), SourceError> {
        self.move_into(key, ARCHIVE)
    }

    fn reject(&mut self, key: &ItemKey) -> Result<(), SourceError> {
        self.move_into(key, INVALID)
    }

    /// Returns as soon as a file is waiting, or after `max_wait`.
    fn wait(&mut self, max_wait: Duration) -> Result<(), SourceError> {
        let deadline = Instant::now() + max_wait;
        loop {
            if !self.listing()?.is_empty() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            std::thread::sleep(WAIT_STEP.min(deadline - now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(keys: &[ItemKey]) -> Vec<String> {
        keys.iter()
            .map(|k| match k {
                ItemKey::File(p) => p.file_name().unwrap().to_string_lossy().into_owned(),
                ItemKey::Uid(u) => u.to_string(),
            })
            .collect()
    }

    #[test]
    fn lists_complete_regular_files_only_and_moves_them_aside() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a.xml"), "<feedback/>").unwrap();
        fs::write(d.join(".b.xml"), "hidden").unwrap();
        fs::write(d.join("c.xml.part"), "half").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        fs::write(d.join("sub/d.xml"), "nested").unwrap();
        std::os::unix::fs::symlink(d.join("a.xml"), d.join("link.xml")).unwrap();
        let mut source = DirectorySource::new(d, 1024);
        let pending = source.pending(10).unwrap();
        assert_eq!(names(&pending), ["a.xml"]);
        let item = source.read(&pending[0]).unwrap().unwrap();
        assert_eq!(item.bytes, b"<feedback/>");
        assert!(!item.truncated);
        source.archive(&pending[0]).unwrap();
        assert!(d.join("archive/a.xml").exists());
        assert!(!d.join("a.xml").exists());
        assert!(d.join("sub/d.xml").exists() && d.join(".b.xml").exists());
        // The same name again is archived beside the first, not over it.
        fs::write(d.join("a.xml"), "again").unwrap();
        let again = source.pending(10).unwrap();
        source.archive(&again[0]).unwrap();
        assert_eq!(fs::read(d.join("archive/a.xml.1")).unwrap(), b"again");
        assert_eq!(fs::read(d.join("archive/a.xml")).unwrap(), b"<feedback/>");
    }

    #[test]
    fn oversize_files_come_back_truncated_and_vanished_ones_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("big.xml"), vec![b'x'; 100]).unwrap();
        let mut source = DirectorySource::new(d, 10);
        let key = source.pending(10).unwrap().remove(0);
        let item = source.read(&key).unwrap().unwrap();
        assert!(item.truncated);
        assert_eq!(item.bytes.len(), 10);
        source.reject(&key).unwrap();
        assert!(d.join("invalid/big.xml").exists());
        assert_eq!(source.read(&key).unwrap(), None);
    }

    #[test]
    fn pending_is_oldest_first_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, age) in [("new", 10), ("old", 300), ("mid", 100)] {
            let path = d.join(name);
            fs::write(&path, name).unwrap();
            let t = SystemTime::now() - Duration::from_secs(age);
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        let mut source = DirectorySource::new(d, 1024);
        assert_eq!(names(&source.pending(2).unwrap()), ["old", "mid"]);
    }

    #[test]
    fn a_missing_directory_is_unavailable_and_wait_returns_when_a_file_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut gone = DirectorySource::new(&dir.path().join("nope"), 10);
        assert!(matches!(gone.pending(1), Err(SourceError::Unavailable(_))));
        let mut source = DirectorySource::new(dir.path(), 10);
        fs::write(dir.path().join("r.xml"), "x").unwrap();
        let started = Instant::now();
        source.wait(Duration::from_secs(60)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
