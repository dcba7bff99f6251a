//! `GET /probe?domain=<d>`: checks one domain on demand and returns its series, in the
//! manner of blackbox_exporter, so that several exporter instances can share thousands of
//! domains through Prometheus's own `hashmod` relabelling. A short cache keeps repeated
//! scrapes (several Prometheus replicas) from repeating the DNS work, and a semaphore
//! bounds how many on-demand checks run at once.
//!
//! By default only watched domains are answered: an open `/probe` would let anyone who
//! reaches the port make this host query DNS names and connect to addresses of their
//! choosing. With `probe_any_domain`, an unwatched domain's checks connect to public
//! addresses only, run under `probe_timeout`, and fill caches that are bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::checks::destination::Destinations;
use crate::checks::{check_domain_with, DomainSpec};
use crate::metrics::Metrics;
use crate::name::DomainName;
use crate::service::app::App;

/// How long an on-demand result is reused.
pub const PROBE_CACHE_TTL: Duration = Duration::from_secs(30);
/// Results kept at most; past it the stale and then the oldest go (an any-domain
/// `/probe` adds one entry per name a client makes up).
const CACHE_LIMIT: usize = 10_000;

/// Why `/probe` gives no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The domain is not watched and `probe_any_domain` is off (HTTP 404, no DNS query).
    #[error("domain {0:?} is not watched by this exporter (set [exporter] probe_any_domain or --web.probe-any-domain to probe any domain)")]
    NotWatched(String),
    /// The checks did not finish within `probe_timeout` (HTTP 504).
    #[error("the checks of {domain:?} did not finish within {seconds}s (probe_timeout)")]
    DeadlineExceeded { domain: String, seconds: u64 },
}

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
    /// Nothing is looked up for a domain that may not be probed.
    pub async fn probe(&self, app: &App, domain: &DomainName) -> Result<Arc<String>, ProbeError> {
        let watched = app.watches(domain);
        if !watched && !app.probe_any_domain() {
            return Err(ProbeError::NotWatched(domain.to_string()));
        }
        if let Some(text) = self.fresh(domain) {
            return Ok(text);
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        if let Some(text) = self.fresh(domain) {
            return Ok(text); // another scrape did the work while we waited
        }
        let config = app.config();
        let spec = config
            .domain(domain)
            .and_then(|d| config.domain_spec(d))
            .unwrap_or_else(|| DomainSpec::named(domain.clone()));
        let dns = app.dns();
        let mut https = app.https();
        if !watched {
            https.destinations = Destinations::PublicOnly;
        }
        let started = Instant::now();
        let deadline = config.exporter.probe_timeout;
        let report = tokio::time::timeout(deadline, check_domain_with(dns.as_ref(), &spec, &https))
            .await
            .map_err(|_| ProbeError::DeadlineExceeded {
                domain: domain.to_string(),
                seconds: deadline.as_secs(),
            })?;
        let mut text = Metrics::render_report(&report);
        text.push_str(&format!(
            "# HELP mailauth_probe_duration_seconds Time the on-demand check took.\n\
             # TYPE mailauth_probe_duration_seconds gauge\nmailauth_probe_duration_seconds {}\n",
            started.elapsed().as_secs_f64()
        ));
        let text = Arc::new(text);
        let mut entries = self.entries.lock().expect("probe cache lock");
        crate::evict::make_room(
            &mut entries,
            CACHE_LIMIT,
            |(at, _)| *at,
            |(at, _)| at.elapsed() >= PROBE_CACHE_TTL,
        );
        entries.insert(domain.to_string(), (Instant::now(), text.clone()));
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attacker's stream of made-up names leaves the cache at its limit.
    #[test]
    fn cache_stays_bounded_under_many_names() {
        let cache = ProbeCache::new(1);
        let text = Arc::new(String::new());
        for i in 0..(CACHE_LIMIT * 3) {
            let mut entries = cache.entries.lock().unwrap();
            crate::evict::make_room(
                &mut entries,
                CACHE_LIMIT,
                |(at, _)| *at,
                |(at, _)| at.elapsed() >= PROBE_CACHE_TTL,
            );
            entries.insert(format!("n{i}.example"), (Instant::now(), text.clone()));
            assert!(entries.len() <= CACHE_LIMIT);
        }
    }
}
