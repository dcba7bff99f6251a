//! How long to wait for a server before sending the query again: a smoothed round-trip
//! time per server, computed as RFC 6298 §2 does for TCP (SRTT, RTTVAR, RTO = SRTT +
//! 4·RTTVAR) and backed off on a loss as §5.5 says. Resolvers do the same (unbound's
//! infrastructure cache): a datagram dropped by a busy server then costs about one RTO,
//! not the whole `[dns] timeout`.
//!
//! Pure arithmetic on [`Duration`]s; the exchange ([`super::wire`]) feeds it samples and
//! losses.

use std::time::Duration;

/// The first RTO for a server never measured: unbound's starting value (376 ms), long
/// enough for a distant recursive resolver doing real recursion, short against the 3 s
/// default timeout.
pub const INITIAL_RTO: Duration = Duration::from_millis(376);
/// No RTO below this (unbound's 50 ms floor): a loopback resolver answers in microseconds
/// when idle, but a recursion it has to do takes tens of milliseconds, and a retransmission
/// before that only adds load.
pub const MIN_RTO: Duration = Duration::from_millis(50);

/// RFC 6298 §2's state for one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RttEstimator {
    /// SRTT and RTTVAR, once a round trip has been measured.
    smoothed: Option<(Duration, Duration)>,
    rto: Duration,
    floor: Duration,
    ceiling: Duration,
}

impl RttEstimator {
    /// An estimator whose RTO stays within `[floor, ceiling]` (the ceiling is `[dns]
    /// timeout`: waiting longer than the whole exchange may last means no retransmission).
    pub fn new(initial: Duration, floor: Duration, ceiling: Duration) -> Self {
        let floor = floor.min(ceiling);
        Self {
            smoothed: None,
            rto: initial.clamp(floor, ceiling),
            floor,
            ceiling,
        }
    }

    /// The time to wait for an answer before sending again.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// The smoothed round-trip time, once one was measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.smoothed.map(|(srtt, _)| srtt)
    }

    /// A measured round trip: §2.2 for the first, §2.3 for the next (α = 1/8, β = 1/4,
    /// K = 4). Only answers that can be told apart from a retransmission's may be
    /// measured (Karn's rule): the exchange gives every transmission its own id.
    pub fn sample(&mut self, rtt: Duration) {
        let (srtt, rttvar) = match self.smoothed {
            None => (rtt, rtt / 2),
            Some((srtt, rttvar)) => {
                let deviation = srtt.abs_diff(rtt);
                ((srtt * 7 + rtt) / 8, (rttvar * 3 + deviation) / 4)
            }
        };
        self.smoothed = Some((srtt, rttvar));
        self.rto = (srtt + rttvar * 4).clamp(self.floor, self.ceiling);
    }

    /// A transmission sent with RTO `waited` went unanswered: double the RTO (§5.5).
    /// Queries in flight together all see the same loss; only the first of them backs
    /// off (the others waited an RTO already doubled), as unbound does, so that a burst of
    /// losses doubles the RTO once, not once per query.
    pub fn backoff(&mut self, waited: Duration) {
        if waited >= self.rto {
            self.rto = (waited * 2).clamp(self.floor, self.ceiling);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn estimator() -> RttEstimator {
        RttEstimator::new(INITIAL_RTO, MIN_RTO, Duration::from_secs(3))
    }

    #[test]
    fn an_unknown_server_starts_at_the_initial_rto() {
        let e = estimator();
        assert_eq!(e.rto(), ms(376));
        assert_eq!(e.srtt(), None);
        // Clamped to the timeout when the timeout is shorter.
        assert_eq!(
            RttEstimator::new(INITIAL_RTO, MIN_RTO, ms(200)).rto(),
            ms(200)
        );
        assert_eq!(
            RttEstimator::new(INITIAL_RTO, MIN_RTO, ms(20)).rto(),
            ms(20)
        );
    }

    #[test]
    fn the_first_sample_sets_srtt_and_half_of_it_as_rttvar() {
        // RFC 6298 §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR = 3R.
        let mut e = estimator();
        e.sample(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn later_samples_are_smoothed() {
        // RFC 6298 §2.3 with R = 100 ms then R' = 200 ms:
        // RTTVAR = 3/4·50 + 1/4·|100 − 200| = 62.5 ms; SRTT = 7/8·100 + 1/8·200 = 112.5 ms;
        // RTO = 112.5 + 4·62.5 = 362.5 ms.
        let mut e = estimator();
        e.sample(ms(100));
        e.sample(ms(200));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(362_500));
    }

    #[test]
    fn the_rto_stays_between_floor_and_timeout() {
        let mut e = estimator();
        e.sample(Duration::from_micros(80));
        assert_eq!(
            e.rto(),
            MIN_RTO,
            "a loopback server is not asked again after 240 µs"
        );
        e.sample(Duration::from_secs(10));
        assert_eq!(e.rto(), Duration::from_secs(3));
    }

    #[test]
    fn a_loss_doubles_the_rto_once_per_burst() {
        let mut e = estimator();
        e.sample(ms(100));
        assert_eq!(e.rto(), ms(300));
        // Three queries sent with the 300 ms RTO are all lost: one doubling.
        for _ in 0..3 {
            e.backoff(ms(300));
        }
        assert_eq!(e.rto(), ms(600));
        // A query that already waited 600 ms is lost too: doubled again, up to the timeout.
        e.backoff(ms(600));
        assert_eq!(e.rto(), ms(1200));
        e.backoff(ms(1200));
        e.backoff(ms(2400));
        assert_eq!(e.rto(), Duration::from_secs(3));
        // The next answer brings the RTO back to the measured one.
        e.sample(ms(100));
        // SRTT 100 ms, RTTVAR 3/4·50 = 37.5 ms: 100 + 150 = 250 ms.
        assert_eq!(e.rto(), ms(250));
    }
}
