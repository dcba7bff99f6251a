//! Runs every domain's checks on its interval and hands the reports to the metrics module.
//!
//! Each domain has its own loop, so a slow or failing domain delays nobody else; a
//! semaphore bounds how many run at once, and each loop's phase is jittered so that
//! thousands of domains do not hit DNS at the same instant. A reload stops all loops and
//! starts new ones from the new config; the old results stay until replaced.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::checks::{check_domain, DomainSpec};
use crate::dns::Dns;
use crate::metrics::Metrics;

/// The running DNS check loops of one configuration.
pub struct Scheduler {
    tasks: JoinSet<()>,
}

/// Limit on one domain's whole check run, so that a pathological domain cannot hold a
/// concurrency slot forever (individual queries are bounded by the resolver timeout).
fn run_deadline(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(5), Duration::from_secs(120))
}

impl Scheduler {
    pub fn start(
        dns: Arc<dyn Dns>,
        metrics: Arc<Metrics>,
        domains: Vec<DomainSpec>,
        interval: Duration,
        concurrency: usize,
    ) -> Self {
        let keep: HashSet<String> = domains.iter().map(|d| d.name.clone()).collect();
        metrics.retain_domains(&keep);
        metrics.domains_configured.set(domains.len() as i64);
        metrics.dns_interval.set(interval.as_secs_f64());
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for spec in domains {
            let (dns, metrics, permits) = (dns.clone(), metrics.clone(), permits.clone());
            tasks.spawn(async move {
                loop {
                    {
                        let Ok(_permit) = permits.acquire().await else { return };
                        match tokio::time::timeout(run_deadline(interval), check_domain(dns.as_ref(), &spec)).await {
                            Ok(report) => metrics.record_domain(report),
                            Err(_) => tracing::warn!(domain = %spec.name, "DNS checks did not finish in time"),
                        }
                    }
                    tokio::time::sleep(jittered(interval)).await;
                }
            });
        }
        Self { tasks }
    }

    /// Stops every loop (on reload or shutdown).
    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

/// `interval` ± 5 %: enough to keep domains from re-synchronising after a burst.
fn jittered(interval: Duration) -> Duration {
    let spread = interval.as_secs_f64() * 0.05;
    let offset = rand::rng().random_range(-spread..=spread);
    Duration::from_secs_f64((interval.as_secs_f64() + offset).max(0.001))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_five_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((95.0..=105.0).contains(&d), "{d}");
        }
    }
}
