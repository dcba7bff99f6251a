//! Checking many domains in one run (`check --domains-file`): a bounded number at a time,
//! so that 10,000 domains do not open 10,000 sockets at once, spread over the runtime's
//! worker threads (parsing and evaluation are CPU work), and the reports handed back in
//! the order the domains were given, as soon as each is ready.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tokio::sync::Semaphore;

use crate::checks::{check_domain, failed_run, CheckErrorKind, DomainReport, DomainSpec};
use crate::resolver::CachingDns;

/// How many reports may be finished and waiting behind a slow earlier domain, per slot of
/// concurrency: enough that one domain waiting for a timeout does not stall the others.
const WINDOW_PER_SLOT: usize = 4;

/// The reports of `specs`, in order, with at most `concurrency` domains being checked at once.
pub fn check_all(
    dns: Arc<CachingDns>,
    specs: Vec<DomainSpec>,
    concurrency: usize,
) -> impl Stream<Item = DomainReport> {
    let concurrency = concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    futures::stream::iter(specs)
        .map(move |spec| {
            let (dns, permits) = (dns.clone(), permits.clone());
            // Boxed once it may run: a waiting task then holds a few words, not the
            // 26 KB state of a domain's checks.
            let failed = spec.clone();
            let handle = tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                Box::pin(check_domain(dns.as_ref(), &spec)).await
            });
            // Each check's panics are caught where it runs; should the task die anyway,
            // the domain is printed with every check unknown (exit status 2), and the
            // other domains go on.
            async move {
                handle.await.unwrap_or_else(|e| {
                    tracing::error!(domain = %failed.name, error = %e, "a domain's check run failed");
                    failed_run(&failed, CheckErrorKind::Panic, "the check run failed inside the exporter")
                })
            }
        })
        .buffered(concurrency.saturating_mul(WINDOW_PER_SLOT))
}

/// What one run cost: printed by `check --stats` so that a benchmark can compare the queries
/// sent with the distinct names asked (each at most once per run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStats {
    pub domains: usize,
    pub queries: Vec<(&'static str, u64)>,
    pub distinct_names: usize,
    pub elapsed: Duration,
}

impl RunStats {
    pub fn collect(dns: &CachingDns, domains: usize, started: Instant) -> RunStats {
        RunStats {
            domains,
            queries: dns.wire().counters().snapshot().to_vec(),
            distinct_names: dns.len(),
            elapsed: started.elapsed(),
        }
    }

    pub fn total_queries(&self) -> u64 {
        self.queries.iter().map(|(_, n)| n).sum()
    }

    /// One line, `key=value` pairs, for people and for scripts alike.
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let by_result: Vec<String> = self
            .queries
            .iter()
            .map(|(label, n)| format!("{label}={n}"))
            .collect();
        format!(
            "stats: domains={} seconds={:.3} domains_per_second={:.1} dns_queries={} distinct_names={} {}",
            self.domains,
            secs,
            if secs > 0.0 { self.domains as f64 / secs } else { 0.0 },
            self.total_queries(),
            self.distinct_names,
            by_result.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_line_names_every_figure() {
        let stats = RunStats {
            domains: 4,
            queries: vec![("ok", 30), ("nxdomain", 6), ("timeout", 0)],
            distinct_names: 36,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(stats.total_queries(), 36);
        assert_eq!(
            stats.line(),
            "stats: domains=4 seconds=2.000 domains_per_second=2.0 dns_queries=36 distinct_names=36 ok=30 nxdomain=6 timeout=0"
        );
    }
}
