//! The HTTP server's TLS and authentication as the web config file says, kept current:
//! like exporter-toolkit (which re-reads the file for every request and handshake), a
//! changed web config file, certificate, key or client CA takes effect without a restart,
//! so a renewed certificate is served as soon as it is written. Here a background task
//! looks at the files (size and mtime) once a second on a blocking thread; requests and
//! handshakes only read the settings in memory, so a slow disk or NFS mount never stalls
//! the runtime's threads. A file that no longer loads is reported once and the last good
//! settings stay.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::basic_auth::BasicAuth;
use super::tls::ServerTlsError;
use super::web_config::WebConfig;
use crate::config::ConfigError;

const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the web config file turns on: TLS, basic authentication, both or neither.
#[derive(Clone, Default)]
pub struct Security {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub auth: Option<Arc<BasicAuth>>,
}

impl Security {
    /// Reads the files the web config names (certificates, keys, CAs).
    pub fn from_config(config: &WebConfig) -> Result<Self, ServerTlsError> {
        let tls = match &config.tls {
            Some(settings) => Some(super::tls::server_config(settings)?),
            None => None,
        };
        Ok(Self {
            tls,
            auth: BasicAuth::new(&config.basic_auth_users),
        })
    }
}

/// Why the web config file's settings could not be loaded (at start: the exporter does
/// not start; on a change: the last good settings stay).
#[derive(Debug, thiserror::Error)]
pub enum WebSecurityError {
    /// The file itself: unreadable, not YAML, or a setting it refuses.
    #[error(transparent)]
    WebConfig(#[from] ConfigError),
    /// A certificate, key or client CA file it names.
    #[error("{}: {source}", path.display())]
    Tls {
        path: PathBuf,
        source: ServerTlsError,
    },
    /// A changed file turns TLS on or off: the listener was bound as it was at start.
    #[error("switching TLS on or off needs a restart")]
    TlsSwitched,
}

type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

struct Loaded {
    security: Security,
    stamp: Stamp,
}

/// The current [`Security`], and where it came from.
pub struct WebSecurity {
    path: Option<PathBuf>,
    loaded: RwLock<Loaded>,
    /// When the files were last looked at; held while one caller looks.
    checked: Mutex<Instant>,
}

impl WebSecurity {
    /// Settings that never change (no web config file).
    pub fn fixed(security: Security) -> Arc<Self> {
        Arc::new(Self {
            path: None,
            loaded: RwLock::new(Loaded {
                security,
                stamp: Vec::new(),
            }),
            checked: Mutex::new(Instant::now()),
        })
    }

    /// Loads the web config file at `path` and the files it names.
    pub fn load(path: &Path) -> Result<Arc<Self>, WebSecurityError> {
        let (security, stamp) = load(path)?;
        Ok(Arc::new(Self {
            path: Some(path.to_path_buf()),
            loaded: RwLock::new(Loaded { security, stamp }),
            checked: Mutex::new(Instant::now()),
        }))
    }

    /// The settings in force (memory only: no file is touched here).
    pub fn current(&self) -> Security {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .security
            .clone()
    }

    pub fn has_tls(&self) -> bool {
        self.current().tls.is_some()
    }

    /// Whether requests go through the authentication layer (they do whenever a web
    /// config file is in use, since users may be added to it later).
    pub fn may_authenticate(&self) -> bool {
        self.path.is_some() || self.current().auth.is_some()
    }

    /// Starts looking at the files once a second, off the runtime's threads; `None` when
    /// there is no web config file to watch. The task ends when aborted.
    pub fn watch(self: Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        self.path.as_ref()?;
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let me = self.clone();
                if tokio::task::spawn_blocking(move || me.refresh_if_due())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }))
    }

    /// Re-reads the files if they changed (blocking: file metadata and contents).
    pub fn refresh_if_due(&self) {
        let Some(path) = &self.path else { return };
        let Ok(mut checked) = self.checked.try_lock() else {
            return; // another caller is looking right now
        };
        *checked = Instant::now();
        let old_stamp = {
            let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
            loaded.stamp.clone()
        };
        if stamp_of(old_stamp.iter().map(|(p, _)| p.as_path())) == old_stamp {
            return;
        }
        let had_tls = self.has_tls_now();
        let outcome = load(path).and_then(|(security, stamp)| {
            if security.tls.is_some() != had_tls {
                Err(WebSecurityError::TlsSwitched)
            } else {
                Ok((security, stamp))
            }
        });
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok((security, stamp)) => {
                tracing::info!(
                    file = %path.display(),
                    tls = security.tls.is_some(),
                    basic_auth = security.auth.is_some(),
                    "web config reloaded"
                );
                *loaded = Loaded { security, stamp };
            }
            Err(e) => {
                tracing::error!(error = %e, "web config reload failed; the previous settings stay");
                // Reported once per change, not once a second.
                loaded.stamp = stamp_of(old_stamp.iter().map(|(p, _)| p.as_path()));
            }
        }
    }

    fn has_tls_now(&self) -> bool {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .security
            .tls
            .is_some()
    }
}

fn load(path: &Path) -> Result<(Security, Stamp), WebSecurityError> {
    let config = WebConfig::load(path)?;
    let security = Security::from_config(&config).map_err(|source| WebSecurityError::Tls {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files = vec![path.to_path_buf()];
    if let Some(tls) = &config.tls {
        files.push(tls.cert_file.clone());
        files.push(tls.key_file.clone());
        files.extend(tls.client_ca_file.clone());
    }
    Ok((security, stamp_of(files.iter().map(PathBuf::as_path))))
}

fn stamp_of<'a>(files: impl Iterator<Item = &'a Path>) -> Stamp {
    files
        .map(|p| {
            let meta = std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (p.to_path_buf(), meta)
        })
        .collect()
}
