//! Runs every domain's checks on its interval and hands the reports to the metrics module.
//!
//! Each domain has its own loop, so a slow or failing domain delays nobody else; a
//! semaphore bounds how many run at once, and each loop's phase is jittered so that
//! thousands of domains do not hit DNS at the same instant. A reload stops all loops and
//! starts new ones from the new config; a changed domain list (domains file) only starts
//! and stops the loops of the domains that changed. Old results stay until replaced.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};

use crate::checks::newer_records::Https;
use crate::checks::{check_domain_with, DomainReport, DomainSpec};
use crate::metrics::Metrics;
use crate::resolver::Dns;

/// The running DNS check loops of one configuration.
pub struct Scheduler {
    dns: Arc<dyn Dns>,
    https: Https,
    metrics: Arc<Metrics>,
    interval: Duration,
    permits: Arc<Semaphore>,
    loops: HashMap<String, (DomainSpec, AbortHandle)>,
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
        https: Https,
        metrics: Arc<Metrics>,
        domains: Vec<DomainSpec>,
        interval: Duration,
        concurrency: usize,
    ) -> Self {
        metrics.dns_interval.set(interval.as_secs_f64());
        let mut scheduler = Self {
            dns,
            https,
            metrics,
            interval,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            loops: HashMap::new(),
            tasks: JoinSet::new(),
        };
        scheduler.sync(domains);
        scheduler
    }

    /// Makes the running loops match `domains`: new domains start, removed ones stop (and
    /// their series vanish), changed ones restart; unchanged ones keep their rhythm.
    pub fn sync(&mut self, domains: Vec<DomainSpec>) {
        let wanted: HashMap<String, DomainSpec> =
            domains.into_iter().map(|d| (d.name.clone(), d)).collect();
        self.loops.retain(|name, (spec, handle)| {
            let keep = wanted.get(name) == Some(spec);
            if !keep {
                handle.abort();
            }
            keep
        });
        let keep: HashSet<String> = wanted.keys().cloned().collect();
        self.metrics.retain_domains(&keep);
        self.metrics.domains_configured.set(wanted.len() as i64);
        for (name, spec) in wanted {
            if self.loops.contains_key(&name) {
                continue;
            }
            let handle = self.spawn_loop(spec.clone());
            self.loops.insert(name, (spec, handle));
        }
        // Reap finished (aborted) tasks so the set does not grow across syncs.
        while self.tasks.try_join_next().is_some() {}
    }

    fn spawn_loop(&mut self, spec: DomainSpec) -> AbortHandle {
        let https = self.https.clone();
        let (dns, metrics, permits, interval) = (
            self.dns.clone(),
            self.metrics.clone(),
            self.permits.clone(),
            self.interval,
        );
        self.tasks
            .spawn(domain_loop(dns, https, metrics, permits, interval, spec))
    }

    pub fn domain_count(&self) -> usize {
        self.loops.len()
    }

    /// Stops every loop (on reload or shutdown).
    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

/// One domain's loop: check, record, sleep, forever.
///
/// The check's future is boxed and lives only while it runs: the state of all the checks of
/// a domain run is some 26 KB, and kept inline it would be allocated for each of 10,000
/// sleeping loops (260 MB) instead of for the `concurrency` checks actually running.
async fn domain_loop(
    dns: Arc<dyn Dns>,
    https: Https,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    interval: Duration,
    spec: DomainSpec,
) {
    loop {
        {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let deadline = run_deadline(interval);
            let check = Box::pin(check_domain_with(dns.as_ref(), &spec, &https));
            let report = match tokio::time::timeout(deadline, check).await {
                Ok(report) => report,
                Err(_) => {
                    tracing::warn!(domain = %spec.name, "DNS checks did not finish in time");
                    DomainReport::timed_out(&spec, deadline)
                }
            };
            metrics.record_domain(report);
        }
        tokio::time::sleep(jittered(interval)).await;
    }
}

/// `interval` ± 5 %: enough to keep domains from re-synchronising after a burst.
fn jittered(interval: Duration) -> Duration {
    let spread = interval.as_secs_f64() * 0.05;
    let offset = rand::rng().random_range(-spread..=spread);
    Duration::from_secs_f64((interval.as_secs_f64() + offset).max(0.001))
}

/// The mail probe loops of one configuration: one per `[[probe]]`, each on its own
/// interval, so that a slow mailbox delays only its own probe. They share the
/// application's token ledger (`mail::ledger`).
pub struct ProbeScheduler {
    tasks: JoinSet<()>,
}

impl ProbeScheduler {
    pub fn start(
        config: Arc<crate::config::Config>,
        dns: Arc<dyn Dns>,
        resolver: hickory_resolver::TokioResolver,
        metrics: Arc<Metrics>,
        ledger: Arc<crate::mail::ledger::TokenLedger>,
    ) -> Self {
        let mut tasks = JoinSet::new();
        // Counters start at 0 for every stage, so that the first failure is an increase
        // that rate() and increase() can see (a series born at 1 shows none).
        for probe in &config.probes {
            let domain = crate::resolver::normalize_name(probe.domain.get_ref());
            for target in &probe.targets {
                let t = target.kind.as_str();
                metrics.probe_sent.with_label_values(&[domain.as_str(), t]);
                for stage in crate::mail::probe::Stage::ALL {
                    metrics
                        .probe_failures
                        .with_label_values(&[domain.as_str(), t, stage.as_str()]);
                }
                for kind in ["probe", "report"] {
                    metrics
                        .probe_deleted
                        .with_label_values(&[domain.as_str(), t, kind]);
                }
            }
        }
        for index in 0..config.probes.len() {
            let (config, dns, resolver, metrics, ledger) = (
                config.clone(),
                dns.clone(),
                resolver.clone(),
                metrics.clone(),
                ledger.clone(),
            );
            // The ledger is the application's, not the loop's: a reload starts new loops
            // with the same ledger, so they still recognise the old loops' late arrivals.
            tasks.spawn(async move {
                let probe = &config.probes[index];
                let domain = crate::resolver::normalize_name(probe.domain.get_ref());
                loop {
                    let outcomes = crate::mail::probe::run_probe(
                        &config,
                        probe,
                        dns.as_ref(),
                        resolver.clone(),
                        &ledger,
                    )
                    .await;
                    metrics.record_probe(&domain, &outcomes);
                    tokio::time::sleep(jittered(config.exporter.probe_interval)).await;
                }
            });
        }
        Self { tasks }
    }

    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a sleeping loop costs: 10,000 of them must not hold 10,000 check states.
    #[test]
    fn a_domain_loop_is_small_while_it_sleeps() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let settings = crate::resolver::ResolverSettings {
            nameservers: vec!["127.0.0.1:9".parse().unwrap()],
            ..Default::default()
        };
        let wire = crate::resolver::HickoryDns::new(&settings, Default::default()).unwrap();
        let dns: Arc<dyn Dns> = Arc::new(crate::resolver::CachingDns::new(
            wire,
            Duration::from_secs(1),
        ));
        let counters = Arc::new(crate::resolver::QueryCounters::default());
        let fut = domain_loop(
            dns,
            Https::system(),
            Metrics::new(counters),
            Arc::new(Semaphore::new(1)),
            Duration::from_secs(60),
            DomainSpec {
                name: "example.com".into(),
                ..Default::default()
            },
        );
        let size = std::mem::size_of_val(&fut);
        assert!(size < 2048, "a sleeping domain loop takes {size} bytes");
    }

    #[test]
    fn jitter_stays_within_five_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((95.0..=105.0).contains(&d), "{d}");
        }
    }
}
