//! The long-running exporter: the current configuration, its scheduler, and reloads.
//! A bad new configuration keeps the old one running and is reported through
//! `mailauth_config_last_reload_successful`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::checks::DomainSpec;
use crate::config::Config;
use crate::mail::ledger::TokenLedger;
use crate::metrics::Metrics;
use crate::name::DomainName;
use crate::resolver::{CachingDns, Dns, QueryCounters, ResolverSettings};
use crate::service::scheduler::Scheduler;
use crate::state::{StateError, StateStore};

/// The ledger for `state_dir`: written to its database, or in memory when unset. Opening
/// is a few blocking file operations, done once per start or change of `state_dir`.
fn open_ledger(state_dir: Option<&std::path::Path>) -> Result<TokenLedger, StateError> {
    match state_dir {
        Some(dir) => {
            let store = StateStore::open(dir)?;
            tracing::info!(path = %store.path().display(), "state database open");
            Ok(TokenLedger::persistent(store))
        }
        None => {
            tracing::info!("no [exporter] state_dir: probe tokens are kept in memory only, so a probe copy arriving after a restart stays in the mailbox");
            Ok(TokenLedger::in_memory())
        }
    }
}

struct Running {
    config: Arc<Config>,
    scheduler: Option<Scheduler>,
    dns: Option<Arc<dyn Dns>>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    probes: Option<crate::service::scheduler::ProbeScheduler>,
    https: Option<crate::checks::newer_records::Https>,
    /// The probe token ledger and the `state_dir` it was opened from; kept across reloads
    /// that keep the same `state_dir`.
    ledger: Option<(Option<PathBuf>, Arc<TokenLedger>)>,
    /// The `[[reports]]` readers.
    readers: Option<crate::service::reports::ReportReaders>,
}

pub struct App {
    me: std::sync::Weak<App>,
    pub config_path: Option<PathBuf>,
    pub metrics: Arc<Metrics>,
    counters: Arc<QueryCounters>,
    running: Mutex<Running>,
    /// `POST /-/reload` allowed.
    pub lifecycle: bool,
    /// On-demand checks for `/probe`.
    pub probes: crate::service::probe::ProbeCache,
    /// `--web.probe-any-domain` was given: kept apart from the config so that a reload of
    /// a file without `probe_any_domain` does not take the command line's word back.
    probe_any_domain_flag: std::sync::atomic::AtomicBool,
}

/// Why a configuration could not be put into effect (at start the exporter exits; on a
/// reload the running configuration stays). The text is what the log, `POST /-/reload`
/// and the start-up error show.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The file does not load or validate.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A reload was asked of an exporter started without a config file (`demo`).
    #[error("this exporter was not started from a config file")]
    NoConfigFile,
    /// The resolver stack could not be built.
    #[error(transparent)]
    Resolver(#[from] crate::resolver::ResolverError),
    /// `[exporter] state_dir` cannot be opened.
    #[error(transparent)]
    State(#[from] StateError),
    /// `[mta_sts] ca_file` cannot be read.
    #[error(transparent)]
    CaFile(#[from] crate::tls::PemFileError),
}

/// Builds the resolver stack a configuration asks for.
pub fn build_dns(
    config: &Config,
    counters: Arc<QueryCounters>,
) -> Result<Arc<CachingDns>, crate::resolver::ResolverError> {
    let settings = ResolverSettings {
        nameservers: config.dns.nameservers.clone(),
        timeout: config.dns.timeout,
        attempts: config.dns.attempts,
        max_in_flight: config.dns.max_in_flight,
    };
    crate::resolver::build_stack(&settings, config.dns.cache_max_ttl, counters)
}

impl App {
    /// Starts checking what `config` names.
    pub fn start(
        config: Config,
        config_path: Option<PathBuf>,
        lifecycle: bool,
    ) -> Result<Arc<App>, ApplyError> {
        let counters = Arc::new(QueryCounters::default());
        let metrics = Metrics::new(counters.clone());
        let app = Arc::new_cyclic(|me| App {
            me: me.clone(),
            config_path,
            metrics,
            counters,
            running: Mutex::new(Running {
                config: Arc::new(Config::parse("", "".as_ref()).expect("empty config")),
                scheduler: None,
                dns: None,
                watcher: None,
                probes: None,
                https: None,
                ledger: None,
                readers: None,
            }),
            lifecycle: lifecycle || config.exporter.enable_lifecycle,
            probes: crate::service::probe::ProbeCache::new(config.exporter.concurrency),
            probe_any_domain_flag: std::sync::atomic::AtomicBool::new(false),
        });
        app.apply(config)?;
        Ok(app)
    }

    fn apply(&self, config: Config) -> Result<(), ApplyError> {
        let stack = build_dns(&config, self.counters.clone())?;
        let dns: Arc<dyn Dns> = stack.clone();
        // Before anything is stopped: a state_dir that cannot be opened keeps the old
        // configuration running, as any other bad config does.
        let state_dir = config.exporter.state_dir.clone();
        let kept = match &self.running.lock().expect("app lock").ledger {
            Some((dir, ledger)) if *dir == state_dir => Some(ledger.clone()),
            _ => None,
        };
        let ledger = match kept {
            Some(l) => l,
            None => Arc::new(
                open_ledger(state_dir.as_deref())?
                    .with_error_counter(self.metrics.state_errors.clone()),
            ),
        };
        for (name, smtp) in &config.smtp {
            if smtp.tls_insecure_skip_verify {
                tracing::warn!(smtp = %name, host = %smtp.host, "TLS certificate verification is OFF for this host");
            }
            if smtp.tls == crate::config::TlsMode::None && smtp.allow_plaintext_auth {
                tracing::warn!(smtp = %name, host = %smtp.host, "allow_plaintext_auth: the SMTP password is sent in clear text");
            }
        }
        for (name, mailbox) in &config.mailbox {
            if mailbox.tls_insecure_skip_verify {
                tracing::warn!(mailbox = %name, host = %mailbox.host, "TLS certificate verification is OFF for this host");
            }
            if mailbox.tls == crate::config::TlsMode::None && mailbox.allow_plaintext_auth {
                tracing::warn!(mailbox = %name, host = %mailbox.host, "allow_plaintext_auth: the IMAP password is sent in clear text");
            }
        }
        let file_domains = match &config.exporter.domains_file {
            Some(path) => self.read_domains_file(path).unwrap_or_default(),
            None => Vec::new(),
        };
        let domains = merge_domains(&config, &file_domains);
        let https = crate::checks::newer_records::Https {
            tls: crate::tls::client_config(config.mta_sts.ca_file.as_deref(), false)?,
            timeout: config.mta_sts.timeout,
            destinations: crate::checks::destination::Destinations::Any,
        };
        self.metrics
            .probe_interval
            .set(config.exporter.probe_interval.as_secs_f64());
        let scheduler = Scheduler::start(
            dns.clone(),
            https.clone(),
            self.metrics.clone(),
            domains,
            config.exporter.dns_interval,
            config.exporter.concurrency,
        );
        let mut running = self.running.lock().expect("app lock");
        if let Some(old) = running.scheduler.take() {
            old.stop();
        }
        if let Some(old) = running.watcher.take() {
            old.abort();
        }
        if let Some(old) = running.probes.take() {
            old.stop();
        }
        if let Some(old) = running.readers.take() {
            old.stop();
        }
        let config = Arc::new(config);
        if let (false, Some(store), Some(app)) = (
            config.reports.is_empty(),
            ledger.store().cloned(),
            self.me.upgrade(),
        ) {
            let me = Arc::downgrade(&app);
            let watched: crate::service::reports::Watched =
                Arc::new(move |d: &str| me.upgrade().is_some_and(|a| a.watches(d)));
            running.readers = Some(crate::service::reports::ReportReaders::start(
                &config,
                store,
                dns.clone(),
                self.metrics.clone(),
                watched,
            ));
        }
        if !config.probes.is_empty() {
            // The stack's own hickory resolver, for the DKIM verifier of the probes.
            let resolver = stack.wire().resolver();
            running.probes = Some(crate::service::scheduler::ProbeScheduler::start(
                config.clone(),
                dns.clone(),
                resolver,
                self.metrics.clone(),
                ledger.clone(),
            ));
        }
        if let (Some(path), Some(app)) = (&config.exporter.domains_file, self.me.upgrade()) {
            running.watcher = Some(tokio::spawn(watch_domains_file(
                app,
                path.clone(),
                config.exporter.domains_file_poll,
            )));
        }
        running.scheduler = Some(scheduler);
        running.dns = Some(dns);
        running.https = Some(https);
        running.ledger = Some((state_dir, ledger));
        running.config = config;
        self.metrics.reload_success.set(1);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.metrics.reload_timestamp.set(now);
        Ok(())
    }

    /// The resolver stack of the running config.
    pub fn dns(&self) -> Arc<dyn Dns> {
        let running = self.running.lock().expect("app lock");
        running
            .dns
            .clone()
            .expect("dns is set once the app has started")
    }

    /// The HTTPS settings of the running config (MTA-STS policy fetches).
    pub fn https(&self) -> crate::checks::newer_records::Https {
        let running = self.running.lock().expect("app lock");
        running
            .https
            .clone()
            .unwrap_or_else(crate::checks::newer_records::Https::system)
    }

    /// Turns on `/probe` of any domain whatever the config says (`--web.probe-any-domain`).
    pub fn set_probe_any_domain(&self) {
        self.probe_any_domain_flag
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `/probe` answers for domains that are not watched.
    pub fn probe_any_domain(&self) -> bool {
        self.probe_any_domain_flag
            .load(std::sync::atomic::Ordering::Relaxed)
            || self.config().exporter.probe_any_domain
    }

    /// Whether `name` (normalised) is watched: a `[[domain]]` of the running config or a
    /// name from its domains file.
    pub fn watches(&self, name: &str) -> bool {
        let running = self.running.lock().expect("app lock");
        let ascii = crate::name::canonical(name);
        running.config.domain(&ascii).is_some()
            || running
                .scheduler
                .as_ref()
                .is_some_and(|s| s.watches(&ascii))
    }

    /// The state database, when `[exporter] state_dir` is set.
    pub fn state_store(&self) -> Option<Arc<StateStore>> {
        let running = self.running.lock().expect("app lock");
        running
            .ledger
            .as_ref()
            .and_then(|(_, l)| l.store().cloned())
    }

    pub fn config(&self) -> Arc<Config> {
        self.running.lock().expect("app lock").config.clone()
    }

    /// Re-reads the config file; on any error the running config stays.
    pub fn reload(&self) -> Result<(), ApplyError> {
        let result = match &self.config_path {
            None => Err(ApplyError::NoConfigFile),
            Some(path) => Config::load(path)
                .map_err(ApplyError::from)
                .and_then(|c| self.apply(c)),
        };
        match &result {
            Ok(()) => tracing::info!("configuration reloaded"),
            Err(e) => {
                self.metrics.reload_success.set(0);
                tracing::error!("configuration reload failed, keeping the running one: {e}");
            }
        }
        result
    }

    /// Reads the domains file; problems are logged and reported, never fatal.
    fn read_domains_file(&self, path: &std::path::Path) -> Option<Vec<DomainName>> {
        match crate::config::domains_file::read(path) {
            Ok(list) => {
                for skipped in &list.skipped {
                    tracing::warn!("{}: {skipped}", path.display());
                }
                self.metrics.domains_file_ok.set(1);
                Some(list.domains)
            }
            Err(e) => {
                tracing::error!("domains file: {e}");
                self.metrics.domains_file_ok.set(0);
                None
            }
        }
    }

    pub fn stop(&self) {
        let mut running = self.running.lock().expect("app lock");
        if let Some(s) = running.scheduler.take() {
            s.stop();
        }
        if let Some(w) = running.watcher.take() {
            w.abort();
        }
        if let Some(p) = running.probes.take() {
            p.stop();
        }
        if let Some(r) = running.readers.take() {
            r.stop();
        }
    }
}

/// The config's `[[domain]]` entries plus the file's domains with default checks.
fn merge_domains(config: &Config, file_domains: &[DomainName]) -> Vec<DomainSpec> {
    let mut specs = config.domain_specs();
    let known: std::collections::HashSet<DomainName> =
        specs.iter().map(|s| s.name.clone()).collect();
    for name in file_domains {
        if !known.contains(name) {
            specs.push(DomainSpec::named(name.clone()));
        }
    }
    specs
}

/// How long the domains file must stay unchanged before a change is applied.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// Polls the domains file and applies changes to the running scheduler.
async fn watch_domains_file(app: Arc<App>, path: PathBuf, poll: std::time::Duration) {
    let stamp = |p: &PathBuf| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut last = stamp(&path);
    loop {
        tokio::time::sleep(poll).await;
        let mut now = stamp(&path);
        if now == last {
            continue;
        }
        // A generator that rewrites the file in place (truncate, then write) is seen
        // half-way at times: an empty file would drop every domain. Apply a change only once
        // the file has stood still for a moment.
        loop {
            tokio::time::sleep(SETTLE.min(poll)).await;
            let again = stamp(&path);
            if again == now {
                break;
            }
            now = again;
        }
        last = now;
        let Some(file_domains) = app.read_domains_file(&path) else {
            continue;
        };
        let mut running = app.running.lock().expect("app lock");
        let specs = merge_domains(&running.config, &file_domains);
        if let Some(scheduler) = running.scheduler.as_mut() {
            scheduler.sync(specs);
            tracing::info!(domains = scheduler.domain_count(), "domains file re-read");
        }
    }
}
