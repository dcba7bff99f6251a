//! The latest results as the landing page reads them, kept beside the series they also
//! become: since when each check of a domain has had its status, and each probe target's
//! latest round trip. In memory only: after a restart "since" starts again at the first
//! run, which is enough for a person looking at the page (README, "HTTP endpoints");
//! Prometheus keeps the history.

use std::time::Duration;

use crate::checks::Status;
use crate::findings::Check;
use crate::mail::probe::TargetOutcome;
use crate::mail::results::MethodResults;

/// Per check of one domain: its status and when it took that status (Unix time). A
/// status that stays the same keeps its time; a change starts a new one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusSince(Vec<(Check, Status, f64)>);

impl StatusSince {
    /// Notes `check`'s `status` in a run at `now`.
    pub fn observe(&mut self, check: Check, status: Status, now: f64) {
        match self.0.iter_mut().find(|(c, ..)| *c == check) {
            Some(entry) if entry.1 == status => {}
            Some(entry) => *entry = (check, status, now),
            None => self.0.push((check, status, now)),
        }
    }

    /// The status of `check` and since when it has had it.
    pub fn since(&self, check: Check) -> Option<(Status, f64)> {
        self.0
            .iter()
            .find(|(c, ..)| *c == check)
            .map(|(_, status, when)| (*status, *when))
    }
}

/// One probe target's latest round trip, as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeView {
    /// When the round ended (Unix time).
    pub at: f64,
    pub success: bool,
    /// Since when `success` has had its value (Unix time).
    pub since: f64,
    /// The failed stage and what went wrong (as logged).
    pub failure: Option<(&'static str, String)>,
    /// The last round that succeeded (Unix time).
    pub last_success: Option<f64>,
    pub delivery: Option<Duration>,
    /// Where the latest probe that arrived landed: (folder, landed as spam, spam score).
    pub placement: Option<(String, bool, Option<f64>)>,
    /// Each source's result per method, from the latest round that had any, and when.
    pub sources: Vec<(&'static str, MethodResults)>,
    pub sources_at: Option<f64>,
}

impl ProbeView {
    /// The view after `outcome`, ended at `now`, given the one before (if any). What a
    /// failed round could not learn (placement, sources) stays as it was last known.
    pub fn after(previous: Option<&ProbeView>, outcome: &TargetOutcome, now: f64) -> ProbeView {
        let success = outcome.success();
        let since = match previous {
            Some(p) if p.success == success => p.since,
            _ => now,
        };
        let placement = match &outcome.placement {
            Some(p) => Some((p.folder.clone(), p.is_spam(), p.verdict.score)),
            None => previous.and_then(|p| p.placement.clone()),
        };
        let (sources, sources_at) = if outcome.sources.is_empty() {
            previous.map_or((Vec::new(), None), |p| (p.sources.clone(), p.sources_at))
        } else {
            let sources = outcome
                .sources
                .iter()
                .map(|(source, results)| (source.as_str(), results.clone()))
                .collect();
            (sources, Some(now))
        };
        ProbeView {
            at: now,
            success,
            since,
            failure: outcome
                .failure
                .as_ref()
                .map(|(stage, why)| (stage.as_str(), why.clone())),
            last_success: if success {
                Some(now)
            } else {
                previous.and_then(|p| p.last_success)
            },
            delivery: outcome.delivery.or(previous.and_then(|p| p.delivery)),
            placement,
            sources,
            sources_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_keeps_its_time_until_it_changes() {
        let mut s = StatusSince::default();
        s.observe(Check::Spf, Status::Fail, 10.0);
        s.observe(Check::Dkim, Status::Ok, 10.0);
        s.observe(Check::Spf, Status::Fail, 20.0);
        assert_eq!(s.since(Check::Spf), Some((Status::Fail, 10.0)));
        s.observe(Check::Spf, Status::Ok, 30.0);
        assert_eq!(s.since(Check::Spf), Some((Status::Ok, 30.0)));
        assert_eq!(s.since(Check::Dkim), Some((Status::Ok, 10.0)));
        assert_eq!(s.since(Check::Dmarc), None);
    }
}
