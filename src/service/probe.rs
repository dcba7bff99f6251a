//! `GET /probe?domain=<d>`: checks one domain on demand and returns its series, in the
//! manner of blackbox_exporter, so that several exporter instances can share thousands of
//! domains through Prometheus's own `hashmod` relabelling. A short cache keeps repeated
//! scrapes (several Prometheus replicas) from repeating the DNS work, and a semaphore
//! bounds how many on-demand checks run at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::checks::{check_domain_with, DomainSpec};
use crate::metrics::Metrics;
use crate::service::app::App;

/// How long an on-demand result is reused.
pub const PROBE_CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_LIMIT: usize = 100_000;

pub struct ProbeCache {
    entries: Mutex<HashMap<String, (Instant, Arc<String>)>>,
    permits: Semaphore,
}

impl ProbeCache {
    pub fn new(concurrency: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            permits: Semaphore::new(concurrency.max(1)),
        }
    }

    fn fresh(&self, domain: &str) -> Option<Arc<String>> {
        let entries = self.entries.lock().expect("probe cache lock");
        entries
            .get(domain)
            .filter(|(at, _)| at.elapsed() < PROBE_CACHE_TTL)
            .map(|(_, text)| text.clone())
    }

    /// The exposition text for `domain`, checked now unless a fresh result exists.
    pub async fn probe(&self, app: &App, domain: &str) -> Arc<String> {
        if let Some(text) = self.fresh(domain) {
            return text;
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        if let Some(text) = self.fresh(domain) {
            return text; // another scrape did the work while we waited
        }
        let config = app.config();
        let spec = config
            .domain(domain)
            .map(|d| config.domain_spec(d))
            .unwrap_or_else(|| DomainSpec::named(domain));
        let dns = app.dns();
        let started = Instant::now();
        let report = check_domain_with(dns.as_ref(), &spec, &app.https()).await;
        let mut text = Metrics::render_report(&report);
        text.push_str(&format!(
            "# HELP mailauth_probe_duration_seconds Time the on-demand check took.\n\
             # TYPE mailauth_probe_duration_seconds gauge\nmailauth_probe_duration_seconds {}\n",
            started.elapsed().as_secs_f64()
        ));
        let text = Arc::new(text);
        let mut entries = self.entries.lock().expect("probe cache lock");
        if entries.len() >= CACHE_LIMIT {
            entries.retain(|_, (at, _)| at.elapsed() < PROBE_CACHE_TTL);
        }
        entries.insert(domain.to_string(), (Instant::now(), text.clone()));
        text
    }
}
