//! Where a password comes from. The value itself is read only when needed and never
//! printed: `Debug` shows the source, not the secret.
//!
//! A password file is read anew for every use (so a rotated secret is picked up without
//! a reload), and always on a blocking thread: a file on a slow or hung mount (NFS, a
//! FIFO from a secrets agent) must not stall one of the runtime's few worker threads,
//! which serve `/metrics` and run every check.

use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secret {
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

/// Why a secret could not be read. Names the file or variable, never the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read password_file {}: {kind}", path.display())]
    Unreadable {
        path: PathBuf,
        kind: std::io::ErrorKind,
    },
    #[error("environment variable {0} (password_env) is not set")]
    EnvUnset(String),
    #[error("reading password_file {} was interrupted", .0.display())]
    Interrupted(PathBuf),
}

impl Secret {
    pub fn is_set(&self) -> bool {
        self.password_file.is_some() || self.password_env.is_some()
    }

    /// Reads the secret, blocking (for code already on a blocking thread).
    pub fn read(&self) -> Result<Option<String>, SecretError> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| SecretError::Unreadable {
                path: path.clone(),
                kind: e.kind(),
            })?;
            return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
        }
        if let Some(var) = &self.password_env {
            return std::env::var(var)
                .map(Some)
                .map_err(|_| SecretError::EnvUnset(var.clone()));
        }
        Ok(None)
    }

    /// Reads the secret without blocking the calling task's thread.
    pub async fn read_async(&self) -> Result<Option<String>, SecretError> {
        if self.password_file.is_none() {
            return self.read(); // the environment only: no I/O
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.read())
            .await
            .unwrap_or_else(|_| {
                Err(SecretError::Interrupted(
                    self.password_file.clone().unwrap_or_default(),
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A password file that blocks on open (a FIFO nobody writes yet, as a hung mount
    /// would) leaves the runtime's only thread free: a timer still fires on time.
    #[tokio::test(flavor = "current_thread")]
    async fn a_blocking_password_file_does_not_stall_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("password");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let secret = Secret {
            password_file: Some(fifo.clone()),
            password_env: None,
        };
        let reader = tokio::spawn(async move { secret.read_async().await });
        let (fired_tx, fired_rx) = std::sync::mpsc::channel::<()>();
        // The writer opens the FIFO once the timer below has fired, or after 5 s at the
        // latest, so that a regression fails the test instead of hanging it.
        let writer = std::thread::spawn(move || {
            let _ = fired_rx.recv_timeout(Duration::from_secs(5));
            std::fs::write(&fifo, "s3cret\n").unwrap();
        });
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waited = started.elapsed();
        let _ = fired_tx.send(());
        assert!(
            waited < Duration::from_secs(2),
            "the runtime thread was blocked for {waited:?} by a file read"
        );
        assert_eq!(reader.await.unwrap().unwrap().as_deref(), Some("s3cret"));
        writer.join().unwrap();
    }
}
