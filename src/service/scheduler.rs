//! Runs every domain's checks on its interval and hands the reports to the metrics module.
//!
//! The domains wait as timed entries in one queue ([`DueQueue`]), driven by one task that
//! starts at most `concurrency` runs at once and, as each ends, files the domain again for
//! its next run. A sleeping domain is then one small entry, not a task of its own (with
//! 10,000 domains, one task each cost several megabytes); a slow or failing domain still
//! delays nobody else, as it holds one run slot only until its deadline. Each next run is
//! jittered so that thousands of domains do not hit DNS at the same instant. A reload
//! stops the whole queue and starts a new one from the new config; a changed domain list
//! (domains file) only adds and removes the domains that changed. Old results stay until
//! replaced.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rand::Rng;
use std::panic::AssertUnwindSafe;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::checks::newer_records::Https;
use crate::checks::{failed_run, run_domain, CheckErrorKind, DomainSpec};
use crate::metrics::Metrics;
use crate::resolver::Dns;

/// The DNS checks of one configuration: the domains watched, and the task that runs them.
pub struct Scheduler {
    metrics: Arc<Metrics>,
    watched: HashMap<String, Arc<DomainSpec>>,
    /// Each [`Scheduler::sync`]'s domain list, to the queue's task.
    changes: mpsc::UnboundedSender<Vec<Arc<DomainSpec>>>,
    queue: JoinHandle<()>,
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
        let (changes, received) = mpsc::unbounded_channel();
        let runner = Runner {
            dns,
            https,
            metrics: metrics.clone(),
            interval,
            concurrency: concurrency.max(1),
        };
        let mut scheduler = Self {
            metrics,
            watched: HashMap::new(),
            changes,
            queue: tokio::spawn(drive(runner, received)),
        };
        scheduler.sync(domains);
        scheduler
    }

    /// Makes the watched domains match `domains`: new domains are checked at once,
    /// removed ones stop (and their series vanish), changed ones start again; unchanged
    /// ones keep their rhythm.
    pub fn sync(&mut self, domains: Vec<DomainSpec>) {
        self.watched = domains
            .into_iter()
            .map(|d| (d.name.to_string(), Arc::new(d)))
            .collect();
        let keep: HashSet<String> = self.watched.keys().cloned().collect();
        self.metrics.retain_domains(&keep);
        self.metrics
            .domains_configured
            .set(self.watched.len() as i64);
        // The queue's task ends only when stopped, which consumes `self`.
        let _ = self.changes.send(self.watched.values().cloned().collect());
    }

    /// Whether `name` (ASCII, normalised) is watched.
    pub fn watches(&self, name: &str) -> bool {
        self.watched.contains_key(name)
    }

    pub fn domain_count(&self) -> usize {
        self.watched.len()
    }

    /// Stops the queue and every run in progress (on reload or shutdown).
    pub fn stop(self) {
        self.queue.abort();
    }
}

/// What a run needs, shared by every domain of one configuration.
struct Runner {
    dns: Arc<dyn Dns>,
    https: Https,
    metrics: Arc<Metrics>,
    interval: Duration,
    concurrency: usize,
}

/// One watched domain as the queue's task knows it. `generation` tells its entries in the
/// queue from those of a removed or changed spec of the same name, which are skipped when
/// they come due rather than searched for in the heap.
struct Watched {
    spec: Arc<DomainSpec>,
    generation: u64,
    retry: RetryBackoff,
    /// The run in progress, aborted when the domain is removed or changed.
    running: Option<AbortHandle>,
}

/// Domains by when they are next due, earliest first. An entry names a domain and the
/// generation it was filed for; entries whose generation is no longer the domain's are
/// stale and dropped when they reach the front.
#[derive(Default)]
struct DueQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
}

impl DueQueue {
    fn file(&mut self, due: Instant, generation: u64, domain: Arc<str>) {
        self.heap.push(Reverse((due, generation, domain)));
    }

    /// When the earliest entry is due (stale ones included: waking for one costs a pop).
    fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((due, ..))| *due)
    }

    /// The earliest entry due at `now` that `current` says is still current.
    fn pop_due(
        &mut self,
        now: Instant,
        current: impl Fn(&str, u64) -> bool,
    ) -> Option<(Arc<str>, u64)> {
        while let Some(Reverse((due, ..))) = self.heap.peek() {
            if *due > now {
                return None;
            }
            let Reverse((_, generation, domain)) = self.heap.pop().expect("peeked");
            if current(&domain, generation) {
                return Some((domain, generation));
            }
        }
        None
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// The queue's task: applies domain lists from `changes`, starts due domains while a run
/// slot is free, and files each domain again when its run ends. Ends when the
/// [`Scheduler`] is dropped or stopped; dropping it aborts the runs in progress.
async fn drive(runner: Runner, mut changes: mpsc::UnboundedReceiver<Vec<Arc<DomainSpec>>>) {
    let runner = Arc::new(runner);
    let mut domains: HashMap<Arc<str>, Watched> = HashMap::new();
    let mut queue = DueQueue::default();
    let mut runs: JoinSet<bool> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, (Arc<str>, u64)> = HashMap::new();
    let mut generations = 0u64;
    loop {
        // Start every domain that is due, as far as slots allow.
        let now = Instant::now();
        while runs.len() < runner.concurrency {
            let Some((name, generation)) = queue.pop_due(now, |d, g| {
                domains.get(d).is_some_and(|w| w.generation == g)
            }) else {
                break;
            };
            let watched = domains.get_mut(&name).expect("current entries are watched");
            let handle = runs.spawn(run_once(runner.clone(), watched.spec.clone()));
            running.insert(handle.id(), (name, generation));
            watched.running = Some(handle);
        }
        let wake = (runs.len() < runner.concurrency)
            .then(|| queue.next_due())
            .flatten();
        tokio::select! {
            list = changes.recv() => {
                let Some(list) = list else { return };
                let wanted: HashMap<&str, &Arc<DomainSpec>> =
                    list.iter().map(|s| (s.name.as_str(), s)).collect();
                domains.retain(|name, w| {
                    let keep = wanted.get(&**name).is_some_and(|s| **s == w.spec);
                    if !keep {
                        if let Some(run) = w.running.take() {
                            run.abort();
                        }
                    }
                    keep
                });
                for spec in &list {
                    if domains.contains_key(spec.name.as_str()) {
                        continue;
                    }
                    generations += 1;
                    let name: Arc<str> = Arc::from(spec.name.as_str());
                    queue.file(Instant::now(), generations, name.clone());
                    domains.insert(name, Watched {
                        spec: spec.clone(),
                        generation: generations,
                        retry: RetryBackoff::new(runner.interval),
                        running: None,
                    });
                }
            }
            Some(ended) = runs.join_next_with_id(), if !runs.is_empty() => {
                // A run that was aborted or panicked past its own guard counts as
                // unanswered: the domain stays watched either way.
                let (id, answered) = match ended {
                    Ok((id, answered)) => (id, answered),
                    Err(e) => (e.id(), false),
                };
                let Some((name, generation)) = running.remove(&id) else { continue };
                let Some(watched) = domains.get_mut(&name).filter(|w| w.generation == generation) else {
                    continue; // removed or changed while it ran
                };
                watched.running = None;
                let wait = match watched.retry.after(answered) {
                    Some(soon) => {
                        tracing::debug!(domain = %name, retry_in_seconds = soon.as_secs_f64(), "a check was left unanswered; trying again soon");
                        soon
                    }
                    None => jittered(runner.interval),
                };
                queue.file(Instant::now() + wait, generation, name);
            }
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
}

async fn sleep_until(when: Option<Instant>) {
    if let Some(when) = when {
        tokio::time::sleep_until(when).await;
    }
}

/// One run of one domain: check, record. Whether every check was answered.
///
/// A run that left a check unanswered (DNS down, a check that panicked or timed out) is
/// tried again soon rather than after a whole interval ([`RetryBackoff`]): an exporter
/// started before its resolver (a normal boot order) would otherwise show `dns.error` for
/// every domain for an interval.
///
/// The check's state (some 26 KB for all the checks of a domain) lives only while it runs,
/// that is for at most `concurrency` domains at a time.
async fn run_once(runner: Arc<Runner>, spec: Arc<DomainSpec>) -> bool {
    let deadline = run_deadline(runner.interval);
    // Each check's panics are caught where it runs; this catches the rest (the report's
    // assembly, the metrics), so that the domain stays watched.
    let run = async {
        let report = Box::pin(run_domain(
            runner.dns.as_ref(),
            &spec,
            &runner.https,
            deadline,
        ))
        .await;
        let answered = report.fully_answered();
        runner.metrics.record_domain(report);
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
            let _ =
                std::panic::catch_unwind(AssertUnwindSafe(|| runner.metrics.record_domain(failed)));
            false
        }
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

    /// What a waiting domain costs: its entry in the queue and its state beside it. The
    /// check's own state (some 26 KB) exists only while it runs.
    #[test]
    fn a_waiting_domain_is_small() {
        let entry = std::mem::size_of::<Reverse<(Instant, u64, Arc<str>)>>();
        let state = std::mem::size_of::<(Arc<str>, Watched)>();
        assert!(
            entry + state < 256,
            "a waiting domain takes {entry} + {state} bytes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_hands_out_due_domains_earliest_first_and_skips_stale_ones() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut q = DueQueue::default();
        q.file(t0 + s(3), 1, "a.test".into());
        q.file(t0 + s(1), 2, "b.test".into());
        q.file(t0 + s(2), 3, "c.test".into());
        q.file(t0 + s(2), 4, "removed.test".into());
        let current = |d: &str, _: u64| d != "removed.test";
        assert_eq!(q.next_due(), Some(t0 + s(1)));
        assert_eq!(q.pop_due(Instant::now(), current), None, "nothing due yet");
        tokio::time::advance(s(2)).await;
        let now = Instant::now();
        assert_eq!(q.pop_due(now, current), Some(("b.test".into(), 2)));
        assert_eq!(q.pop_due(now, current), Some(("c.test".into(), 3)));
        assert_eq!(q.pop_due(now, current), None);
        assert_eq!(q.len(), 1, "the stale entry went when it came due");
        assert_eq!(q.next_due(), Some(t0 + s(3)));
        tokio::time::advance(s(1)).await;
        assert_eq!(
            q.pop_due(Instant::now(), current),
            Some(("a.test".into(), 1))
        );
        assert_eq!(q.next_due(), None);
    }

    /// Answers every name NXDOMAIN after a moment, and notes per domain how often its
    /// DMARC record was asked for (once per run) and how many domains were in a run at
    /// once at most.
    #[derive(Default)]
    struct Recording {
        state: std::sync::Mutex<RecordingState>,
    }

    #[derive(Default)]
    struct RecordingState {
        runs: HashMap<String, usize>,
        in_flight: HashMap<String, usize>,
        most_at_once: usize,
    }

    impl Recording {
        fn runs(&self, domain: &str) -> usize {
            let state = self.state.lock().unwrap();
            state.runs.get(domain).copied().unwrap_or(0)
        }
    }

    impl Dns for Recording {
        fn lookup<'a>(
            &'a self,
            name: &'a str,
            rtype: crate::resolver::RecordType,
        ) -> crate::resolver::LookupFuture<'a> {
            Box::pin(async move {
                let domain = name.trim_end_matches('.');
                let domain = domain
                    .rsplitn(3, '.')
                    .take(2)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(".");
                {
                    let mut state = self.state.lock().unwrap();
                    if name.starts_with("_dmarc.") && rtype == crate::resolver::RecordType::Txt {
                        *state
                            .runs
                            .entry(name["_dmarc.".len()..].to_string())
                            .or_default() += 1;
                    }
                    *state.in_flight.entry(domain.clone()).or_default() += 1;
                    state.most_at_once = state.most_at_once.max(state.in_flight.len());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut state = self.state.lock().unwrap();
                let n = state.in_flight.get_mut(&domain).expect("entered above");
                *n -= 1;
                if *n == 0 {
                    state.in_flight.remove(&domain);
                }
                Ok(Arc::new(crate::resolver::Answer::NxDomain))
            })
        }
    }

    /// Waits (on the paused clock, which moves on whenever every task waits) until `done`.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(3600);
        while !done() {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every domain runs once an interval (± jitter) with at most `concurrency` at a
    /// time; a domain list without one stops it and drops its series, and starts a new
    /// one at once, while the others keep their rhythm.
    #[tokio::test(start_paused = true)]
    async fn the_queue_runs_each_domain_per_interval_and_follows_the_domain_list() {
        let dns = Arc::new(Recording::default());
        let metrics = Metrics::new(Arc::new(crate::resolver::QueryCounters::default()));
        let interval = Duration::from_secs(60);
        let t0 = Instant::now();
        let names = ["a.test", "b.test", "c.test", "d.test"];
        let mut scheduler = Scheduler::start(
            dns.clone(),
            Https::system(),
            metrics.clone(),
            names[..3]
                .iter()
                .map(|n| DomainSpec::named(crate::name::DomainName::new(n).unwrap()))
                .collect(),
            interval,
            2,
        );
        until("each domain ran once", || {
            names[..3].iter().all(|n| metrics.domain_entry(n).is_some())
        })
        .await;
        let t1 = Instant::now();
        assert!(t1 - t0 < interval, "the first runs came at once");
        for n in &names[..3] {
            assert_eq!(dns.runs(n), 1, "{n}");
        }
        assert_eq!(dns.state.lock().unwrap().most_at_once, 2);

        scheduler.sync(
            ["a.test", "c.test", "d.test"]
                .iter()
                .map(|n| DomainSpec::named(crate::name::DomainName::new(n).unwrap()))
                .collect(),
        );
        assert!(!scheduler.watches("b.test") && scheduler.watches("d.test"));
        assert!(
            metrics.domain_entry("b.test").is_none(),
            "b's series dropped"
        );
        until("the new domain ran", || {
            metrics.domain_entry("d.test").is_some()
        })
        .await;
        assert!(
            Instant::now() - t1 < Duration::from_secs(1),
            "d ran at once"
        );
        // Two intervals on: runs at about 0, 60 and 120 s (each ± 5 %) for a and c.
        tokio::time::sleep(Duration::from_secs(130)).await;
        assert_eq!(dns.runs("a.test"), 3);
        assert_eq!(dns.runs("c.test"), 3);
        assert_eq!(
            dns.runs("b.test"),
            1,
            "a removed domain is not checked again"
        );
        assert_eq!(dns.runs("d.test"), 3);
        assert!(metrics.domain_entry("b.test").is_none());
        assert!(dns.state.lock().unwrap().most_at_once <= 2);
        scheduler.stop();
    }

    /// A check that panics on every run does not end the domain's checks: the panic is
    /// counted, and the domain is checked again on the next run.
    #[tokio::test]
    async fn a_domain_goes_on_after_a_check_panics() {
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
        let scheduler = Scheduler::start(
            Arc::new(PanicsOnDmarc),
            Https::system(),
            metrics.clone(),
            vec![DomainSpec::named(
                crate::name::DomainName::new("example.test").unwrap(),
            )],
            Duration::from_millis(20),
            1,
        );
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
                "the domain stopped after {} runs",
                panics()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(scheduler.watches("example.test"));
        scheduler.stop();
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
