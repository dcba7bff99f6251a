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

use futures::FutureExt;
use rand::Rng;
use std::panic::AssertUnwindSafe;
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};

use crate::checks::newer_records::Https;
use crate::checks::{failed_run, run_domain, CheckErrorKind, DomainSpec};
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
        let wanted: HashMap<String, DomainSpec> = domains
            .into_iter()
            .map(|d| (d.name.to_string(), d))
            .collect();
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

    /// Whether a loop runs for `name` (ASCII, normalised).
    pub fn watches(&self, name: &str) -> bool {
        self.loops.contains_key(name)
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
/// A run that left a check unanswered (DNS down, a check that panicked or timed out) is
/// tried again soon rather than after a whole interval: an exporter started before its
/// resolver (a normal boot order) would otherwise show `dns.error` for every domain for
/// an interval. The wait doubles from [`RETRY_FIRST`] up to the interval.
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
    let mut retry = RetryBackoff::new(interval);
    loop {
        let answered = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let deadline = run_deadline(interval);
            // Each check's panics are caught where it runs; this catches the rest (the
            // report's assembly, the metrics), so that nothing ends the loop.
            let run = async {
                let report = Box::pin(run_domain(dns.as_ref(), &spec, &https, deadline)).await;
                let answered = report.fully_answered();
                metrics.record_domain(report);
                answered
            };
            match AssertUnwindSafe(run).catch_unwind().await {
                Ok(answered) => answered,
                Err(_) => {
                    tracing::error!(domain = %spec.name, "a domain's run failed outside its checks; every check unknown this run");
                    let failed = failed_run(
                        &spec,
                        CheckErrorKind::Panic,
                        "the run failed inside the exporter",
                    );
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        metrics.record_domain(failed)
                    }));
                    false
                }
            }
        };
        let wait = match retry.after(answered) {
            Some(soon) => {
                tracing::debug!(domain = %spec.name, retry_in_seconds = soon.as_secs_f64(), "a check was left unanswered; trying again soon");
                soon
            }
            None => jittered(interval),
        };
        tokio::time::sleep(wait).await;
    }
}

/// The first wait before a run that left a check unanswered is tried again.
pub const RETRY_FIRST: Duration = Duration::from_secs(5);

/// The waits between runs that leave checks unanswered: 5 s, 10 s, 20 s, … up to the
/// interval; an answered run starts the series again.
#[derive(Clone, Debug)]
struct RetryBackoff {
    interval: Duration,
    next: Duration,
}

impl RetryBackoff {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: RETRY_FIRST,
        }
    }

    /// The wait before the next run when it should come before the interval is up; `None`
    /// when the run was answered (or the backoff has grown to the interval).
    fn after(&mut self, answered: bool) -> Option<Duration> {
        if answered {
            self.next = RETRY_FIRST;
            return None;
        }
        if self.next >= self.interval {
            return None;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.interval);
        Some(wait)
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

/// Every probe counter of `config` from 0: each stage's failures, sends, deletions and each
/// OAuth2 server's refresh failures, so that the first failure is an increase that rate()
/// and increase() can see (a series born at 1 shows none), and "no failure" is a series at
/// 0, not a missing one. Bounded by the config.
pub fn start_probe_series(config: &crate::config::Config, metrics: &Metrics) {
    for probe in &config.probes {
        let domain = crate::name::normalize_name(probe.domain.get_ref());
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
    // Every OAuth2 server section from 0 as well (bounded by the config).
    let oauth_sections = config
        .smtp
        .iter()
        .filter(|(_, s)| s.auth.is_oauth())
        .map(|(n, _)| format!("smtp.{n}"))
        .chain(
            config
                .mailbox
                .iter()
                .filter(|(_, m)| m.auth.is_oauth())
                .map(|(n, _)| format!("mailbox.{n}")),
        );
    for section in oauth_sections {
        metrics
            .oauth2_refresh_failures
            .with_label_values(&[section.as_str()]);
    }
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
        start_probe_series(&config, &metrics);
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
                let domain = crate::name::normalize_name(probe.domain.get_ref());
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
                name: crate::name::DomainName::new("example.com").unwrap(),
                ..Default::default()
            },
        );
        let size = std::mem::size_of_val(&fut);
        assert!(size < 2048, "a sleeping domain loop takes {size} bytes");
    }

    /// A check that panics on every run does not end the domain's loop: the panic is
    /// counted, and the domain is checked again on the next run.
    #[tokio::test]
    async fn a_domain_loop_goes_on_after_a_check_panics() {
        use crate::resolver::{Answer, LookupFuture, RecordType};
        struct PanicsOnDmarc;
        impl Dns for PanicsOnDmarc {
            fn lookup<'a>(&'a self, name: &'a str, _: RecordType) -> LookupFuture<'a> {
                Box::pin(async move {
                    assert!(!name.starts_with("_dmarc."), "injected fault at {name}");
                    Ok(Arc::new(Answer::NxDomain))
                })
            }
        }
        let metrics = Metrics::new(Arc::new(crate::resolver::QueryCounters::default()));
        let task = tokio::spawn(domain_loop(
            Arc::new(PanicsOnDmarc),
            Https::system(),
            metrics.clone(),
            Arc::new(Semaphore::new(1)),
            Duration::from_millis(20),
            DomainSpec::named(crate::name::DomainName::new("example.test").unwrap()),
        ));
        let panics = || {
            metrics
                .check_errors
                .with_label_values(&["dmarc", "panic"])
                .get()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while panics() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the loop stopped after {} runs",
                panics()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!task.is_finished());
        task.abort();
        let text = metrics.render();
        assert!(
            text.contains(r#"mailauth_dns_check_success{domain="example.test",check="dmarc"} 0"#),
            "{text}"
        );
        assert!(text.contains(r#"code="check.failed""#), "{text}");
    }

    #[test]
    fn unanswered_runs_are_retried_with_a_doubling_wait_up_to_the_interval() {
        let mut b = RetryBackoff::new(Duration::from_secs(60));
        let waits: Vec<_> = (0..6).map(|_| b.after(false)).collect();
        let s = Duration::from_secs;
        assert_eq!(
            waits,
            [
                Some(s(5)),
                Some(s(10)),
                Some(s(20)),
                Some(s(40)),
                None,
                None
            ]
        );
        assert_eq!(b.after(true), None);
        assert_eq!(
            b.after(false),
            Some(s(5)),
            "an answered run starts again at 5 s"
        );
        // An interval shorter than the first retry: no retries, the interval itself is soon.
        let mut short = RetryBackoff::new(Duration::from_secs(3));
        assert_eq!(short.after(false), None);
    }

    #[test]
    fn jitter_stays_within_five_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((95.0..=105.0).contains(&d), "{d}");
        }
    }
}
