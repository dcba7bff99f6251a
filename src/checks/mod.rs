//! One domain's DNS checks, run together from one table.
//!
//! Every check is a row of [`TABLE`]; what a check needs and when it applies are told by
//! exhaustive matches on [`Check`] ([`stage`], [`applies`], [`run_check`]), so a new check
//! that a surface forgets does not compile. Adding a check: a file in this folder with an
//! `async fn check(..) -> XReport`, a variant of `Check`, a row in `TABLE`, and the arms the
//! compiler then asks for.
//!
//! Each check runs under a deadline and with its panics caught: a check that panics or
//! overruns is reported unknown with a `check.failed` finding and a [`CheckError`] (which the
//! metrics count as `mailauth_check_errors_total`), and every other check of the domain still
//! reports. Returns a typed report; nothing here formats output or touches metrics.

pub mod dane;
pub mod destination;
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod mta_sts;
pub mod mx;
pub mod newer_records;
pub mod parked;
pub mod ptr;
pub mod report;
pub mod spec;
pub mod spf;
pub mod taglist;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;

use self::dane::DaneReport;
use self::dkim::DkimReport;
use self::dmarc::DmarcReport;
use self::dnsbl::DnsblReport;
use self::mx::MxReport;
use self::newer_records::{Https, NewerRecords};
use self::parked::ParkedReport;
use self::ptr::PtrReport;
use self::spf::SpfReport;
use crate::findings::{Check, Finding};
use crate::resolver::Dns;

pub use self::parked::parked_findings;
pub use self::report::{
    CheckError, CheckErrorKind, CheckOutcome, DkimKeySummary, DomainReport, ReportSummary, Status,
};
pub use self::spec::DomainSpec;

/// Every check, in the order it is reported (`check --format json`, the text report, the
/// pages).
pub const TABLE: [Check; 11] = [
    Check::Spf,
    Check::Dkim,
    Check::Dmarc,
    Check::Mx,
    Check::Ptr,
    Check::MtaSts,
    Check::TlsRpt,
    Check::Bimi,
    Check::Dnsbl,
    Check::Dane,
    Check::Parked,
];

/// How long one domain's checks may take in all when the caller sets no deadline (the
/// `check` command): longer than any resolver timeout times its attempts, so only a check
/// that is stuck runs into it.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

/// When a check can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Needs nothing but DNS.
    First,
    /// Reads the SPF, DMARC or MX report of the same run: MTA-STS holds its policy against
    /// the MX hosts, BIMI needs an enforced DMARC policy, DANE looks up TLSA per MX host, and
    /// the parked profile reads all three.
    AfterFirst,
}

/// The stage of each check.
pub fn stage(check: Check) -> Stage {
    match check {
        Check::Spf | Check::Dkim | Check::Dmarc | Check::Mx | Check::Ptr | Check::Dnsbl => {
            Stage::First
        }
        Check::MtaSts | Check::TlsRpt | Check::Bimi | Check::Dane | Check::Parked => {
            Stage::AfterFirst
        }
    }
}

/// Whether a check has an outcome for a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    /// Always reported.
    Always,
    /// Run, but reported only when the record is there (or DNS could not tell): an absent
    /// optional record (MTA-STS, TLS-RPT, BIMI, TLSA) is no finding and no series.
    WhenPublished,
    /// Not run: the spec gives it nothing to look at.
    Never,
}

/// Which checks the spec asks for.
pub fn applies(check: Check, spec: &DomainSpec) -> Applies {
    let yes = |cond: bool| {
        if cond {
            Applies::Always
        } else {
            Applies::Never
        }
    };
    match check {
        Check::Spf | Check::Dmarc | Check::Mx => Applies::Always,
        Check::Dkim => yes(!spec.dkim_selectors.is_empty()),
        Check::Ptr => yes(!spec.sending_ips.is_empty() || spec.helo.is_some()),
        Check::Dnsbl => yes(!spec.blocklists.is_empty() && !spec.sending_ips.is_empty()),
        Check::Parked => yes(spec.parked),
        Check::MtaSts | Check::TlsRpt | Check::Bimi | Check::Dane => Applies::WhenPublished,
    }
}

/// What one check found: its part of the domain report.
#[derive(Debug)]
pub enum Part {
    Spf(SpfReport),
    Dkim(DkimReport),
    Dmarc(DmarcReport),
    Mx(MxReport),
    Ptr(PtrReport),
    MtaSts(NewerRecords),
    TlsRpt(NewerRecords),
    Bimi(NewerRecords),
    Dnsbl(DnsblReport),
    Dane(DaneReport),
    Parked(ParkedReport),
}

impl Part {
    /// Whether the check was answered; `None` when it has nothing to report (an optional
    /// record that is not published).
    fn answered(&self, check: Check) -> Option<bool> {
        match self {
            Part::Spf(r) => Some(r.answered),
            Part::Dkim(r) => Some(r.answered),
            Part::Dmarc(r) => Some(r.answered),
            Part::Mx(r) => Some(r.answered),
            Part::Ptr(r) => Some(r.answered),
            Part::MtaSts(r) | Part::TlsRpt(r) | Part::Bimi(r) => r
                .answered
                .iter()
                .find(|(c, _)| *c == check)
                .map(|(_, answered)| *answered),
            Part::Dnsbl(r) => Some(r.answered),
            Part::Dane(r) => (!r.hosts.is_empty() || !r.answered).then_some(r.answered),
            Part::Parked(r) => Some(r.answered),
        }
    }

    fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(match self {
            Part::Spf(r) => &mut r.findings,
            Part::Dkim(r) => &mut r.findings,
            Part::Dmarc(r) => &mut r.findings,
            Part::Mx(r) => &mut r.findings,
            Part::Ptr(r) => &mut r.findings,
            Part::MtaSts(r) | Part::TlsRpt(r) | Part::Bimi(r) => &mut r.findings,
            Part::Dnsbl(r) => &mut r.findings,
            Part::Dane(r) => &mut r.findings,
            Part::Parked(r) => &mut r.findings,
        })
    }
}

/// What every check of one run shares.
pub struct Context<'a> {
    pub dns: &'a dyn Dns,
    pub spec: &'a DomainSpec,
    /// The spec's name, normalised.
    pub domain: &'a str,
    pub https: &'a Https,
}

/// The first stage's reports that later checks read. A first-stage check that panicked or
/// timed out leaves its default (unanswered) report here.
#[derive(Debug, Default)]
pub struct Earlier {
    pub spf: SpfReport,
    pub dmarc: DmarcReport,
    pub mx: MxReport,
}

/// Runs one check. `earlier` is empty for first-stage checks.
pub async fn run_check(check: Check, cx: &Context<'_>, earlier: &Earlier) -> Part {
    let (dns, spec, domain) = (cx.dns, cx.spec, cx.domain);
    match check {
        Check::Spf => Part::Spf(spf::check(dns, domain, &spec.sending_ips, spec.helo.as_deref()).await),
        Check::Dkim => Part::Dkim(dkim::check(dns, domain, &spec.dkim_selectors).await),
        Check::Dmarc => Part::Dmarc(dmarc::check(dns, domain, spec.expect_dmarc_policy).await),
        Check::Mx => Part::Mx(mx::check(dns, domain).await),
        Check::Ptr => Part::Ptr(ptr::check(dns, &spec.sending_ips, spec.helo.as_deref()).await),
        Check::Dnsbl => Part::Dnsbl(dnsbl::check(dns, &spec.sending_ips, &spec.blocklists).await),
        Check::MtaSts => Part::MtaSts(
            newer_records::check_mta_sts(dns, domain, &earlier.mx, cx.https).await,
        ),
        Check::TlsRpt => Part::TlsRpt(newer_records::check_tls_rpt(dns, domain).await),
        Check::Bimi => Part::Bimi(newer_records::check_bimi(dns, domain, &earlier.dmarc).await),
        // Without the MX hosts there is no telling whether they publish TLSA: unknown,
        // not "no DANE".
        Check::Dane if !earlier.mx.answered => Part::Dane(DaneReport {
            answered: false,
            findings: vec![Finding::dns_error(
                Check::Dane,
                format!("the MX hosts of {domain} are unknown (see the mx check), so their TLSA records were not looked up"),
            )],
            ..Default::default()
        }),
        Check::Dane => Part::Dane(
            dane::check(
                dns,
                domain,
                &earlier.mx,
                25,
                cx.https.timeout,
                cx.https.destinations,
            )
            .await,
        ),
        Check::Parked => Part::Parked(parked::check(&earlier.spf, &earlier.dmarc, &earlier.mx)),
    }
}

/// How one guarded check ended. At most one per check per run, and moved into the report
/// at once: boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Ran {
    Done(Part),
    Failed(CheckErrorKind, String),
}

/// Runs `fut` with its panics caught and under `deadline`.
async fn guarded(
    check: Check,
    domain: &str,
    deadline: Duration,
    fut: impl Future<Output = Part>,
) -> (Check, Ran, Duration) {
    let start = Instant::now();
    let ran = match tokio::time::timeout(deadline, AssertUnwindSafe(fut).catch_unwind()).await {
        Ok(Ok(part)) => Ran::Done(part),
        Ok(Err(payload)) => {
            let what = panic_message(payload.as_ref());
            tracing::error!(%domain, %check, panic = %what, "a check panicked; its result is unknown this run");
            Ran::Failed(
                CheckErrorKind::Panic,
                format!("the check failed inside the exporter: {what}"),
            )
        }
        Err(_) => {
            tracing::warn!(%domain, %check, deadline_seconds = deadline.as_secs_f64(), "a check did not finish in time");
            Ran::Failed(
                CheckErrorKind::Timeout,
                format!("the check did not finish within {}s", deadline.as_secs()),
            )
        }
    };
    (check, ran, start.elapsed())
}

/// A panic's message, cut to a length a log line and a finding can carry.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Runs every check that applies to `spec`, fetching over HTTPS with the system's roots,
/// within [`DEFAULT_DEADLINE`].
pub async fn check_domain(dns: &dyn Dns, spec: &DomainSpec) -> DomainReport {
    check_domain_with(dns, spec, &Https::system()).await
}

/// As [`check_domain`], with the HTTPS settings of the config.
pub async fn check_domain_with(dns: &dyn Dns, spec: &DomainSpec, https: &Https) -> DomainReport {
    run_domain(dns, spec, https, DEFAULT_DEADLINE).await
}

/// Runs every check that applies to `spec`: the first stage concurrently (they share the
/// DNS cache), then the checks that read its reports. All of it within `deadline`: a
/// check still running then is reported unknown, as is one that panics.
pub async fn run_domain(
    dns: &dyn Dns,
    spec: &DomainSpec,
    https: &Https,
    deadline: Duration,
) -> DomainReport {
    let started = Instant::now();
    let domain = spec.name.to_string();
    let cx = Context {
        dns,
        spec,
        domain: &domain,
        https,
    };
    let wanted = |s: Stage| {
        TABLE
            .into_iter()
            .filter(move |&c| stage(c) == s && applies(c, spec) != Applies::Never)
    };
    let none = Earlier::default();
    let first = futures::future::join_all(
        wanted(Stage::First).map(|c| guarded(c, &domain, deadline, run_check(c, &cx, &none))),
    )
    .await;
    let mut ran: Vec<(Check, Ran, Duration)> = first;
    let mut earlier = Earlier::default();
    for (_, r, _) in &mut ran {
        if let Ran::Done(part) = r {
            match part {
                Part::Spf(s) => earlier.spf = std::mem::take(s),
                Part::Dmarc(d) => earlier.dmarc = std::mem::take(d),
                Part::Mx(m) => earlier.mx = std::mem::take(m),
                _ => {}
            }
        }
    }
    let left = deadline.saturating_sub(started.elapsed());
    let second = futures::future::join_all(
        wanted(Stage::AfterFirst).map(|c| guarded(c, &domain, left, run_check(c, &cx, &earlier))),
    )
    .await;
    // The reports lent to the second stage go back to their parts.
    for (_, r, _) in &mut ran {
        if let Ran::Done(part) = r {
            match part {
                Part::Spf(s) => *s = std::mem::take(&mut earlier.spf),
                Part::Dmarc(d) => *d = std::mem::take(&mut earlier.dmarc),
                Part::Mx(m) => *m = std::mem::take(&mut earlier.mx),
                _ => {}
            }
        }
    }
    ran.extend(second);
    assemble(domain, ran)
}

/// The report of a run that failed as a whole (its task panicked outside the guarded
/// checks, or was cancelled): every check that applies to `spec` unknown, with `kind`.
pub fn failed_run(spec: &DomainSpec, kind: CheckErrorKind, message: &str) -> DomainReport {
    let ran = TABLE
        .into_iter()
        .filter(|&c| applies(c, spec) != Applies::Never)
        .map(|c| (c, Ran::Failed(kind, message.to_string()), Duration::ZERO))
        .collect();
    assemble(spec.name.to_string(), ran)
}

/// Puts the checks' parts together in table order.
fn assemble(domain: String, mut ran: Vec<(Check, Ran, Duration)>) -> DomainReport {
    ran.sort_by_key(|(c, _, _)| TABLE.iter().position(|t| t == c));
    let mut report = DomainReport {
        domain,
        checked_at: SystemTime::now(),
        outcomes: Vec::new(),
        findings: Vec::new(),
        spf: SpfReport::default(),
        dkim: DkimReport::default(),
        dmarc: DmarcReport::default(),
        mx: MxReport::default(),
        ptr: PtrReport::default(),
        newer: NewerRecords::default(),
        dnsbl: DnsblReport::default(),
        dane: DaneReport::default(),
        errors: Vec::new(),
    };
    for (check, ran, duration) in ran {
        let mut part = match ran {
            Ran::Done(part) => part,
            Ran::Failed(kind, message) => {
                report.errors.push(CheckError { check, kind });
                report.outcomes.push(CheckOutcome {
                    check,
                    answered: false,
                    duration,
                });
                report.findings.push(Finding::check_failed(check, message));
                continue;
            }
        };
        if let Some(answered) = part.answered(check) {
            report.outcomes.push(CheckOutcome {
                check,
                answered,
                duration,
            });
        }
        // Moved, not copied: the report keeps each finding once (10,000 domains' findings
        // are kept for as long as the exporter runs).
        report.findings.append(&mut part.take_findings());
        match part {
            Part::Spf(r) => report.spf = r,
            Part::Dmarc(r) => report.dmarc = r,
            Part::Mx(r) => report.mx = r,
            Part::Dkim(r) => report.dkim = r,
            Part::Ptr(r) => report.ptr = r,
            Part::MtaSts(r) | Part::TlsRpt(r) | Part::Bimi(r) => report.newer.absorb(r),
            Part::Dnsbl(r) => report.dnsbl = r,
            Part::Dane(r) => report.dane = r,
            Part::Parked(_) => {}
        }
    }
    report.findings.shrink_to_fit();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Code;
    use crate::resolver::{Answer, LookupFuture, RecordType};
    use std::sync::Arc;

    /// A resolver that answers NXDOMAIN, except that a lookup of a name starting with
    /// `panic_on` panics (as a parser bug on hostile data would) and one starting with
    /// `hang_on` never answers.
    struct Faulty {
        panic_on: &'static str,
        hang_on: &'static str,
    }

    impl Dns for Faulty {
        fn lookup<'a>(&'a self, name: &'a str, _rtype: RecordType) -> LookupFuture<'a> {
            Box::pin(async move {
                if !self.panic_on.is_empty() && name.starts_with(self.panic_on) {
                    panic!("injected fault at {name}");
                }
                if !self.hang_on.is_empty() && name.starts_with(self.hang_on) {
                    std::future::pending::<()>().await;
                }
                Ok(Arc::new(Answer::NxDomain))
            })
        }
    }

    fn full_spec() -> DomainSpec {
        DomainSpec {
            dkim_selectors: vec![crate::name::Selector::new("s1").unwrap()],
            sending_ips: vec!["192.0.2.10".parse().unwrap()],
            helo: Some("mail.example.test".into()),
            parked: true,
            blocklists: vec!["bl.example.test".into()],
            ..DomainSpec::named(crate::name::DomainName::new("example.test").unwrap())
        }
    }

    fn outcome(r: &DomainReport, check: Check) -> Option<bool> {
        r.outcome(check).map(|o| o.answered)
    }

    #[test]
    fn the_table_holds_every_check_once() {
        let mut seen: Vec<Check> = TABLE.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), Check::ALL.len());
        for c in Check::ALL {
            assert!(TABLE.contains(&c), "{c} is not in the table");
        }
    }

    #[test]
    fn later_checks_come_after_the_checks_they_read() {
        let pos = |c| TABLE.iter().position(|&t| t == c).unwrap();
        for c in TABLE {
            if stage(c) == Stage::First {
                continue;
            }
            for read in [Check::Spf, Check::Dmarc, Check::Mx] {
                assert_eq!(stage(read), Stage::First);
                assert!(pos(read) < pos(c));
            }
        }
    }

    #[tokio::test]
    async fn a_panicking_check_is_unknown_and_the_others_still_report() {
        let dns = Faulty {
            panic_on: "_dmarc.",
            hang_on: "",
        };
        let r = run_domain(&dns, &full_spec(), &Https::system(), Duration::from_secs(5)).await;
        assert_eq!(
            r.errors,
            [CheckError {
                check: Check::Dmarc,
                kind: CheckErrorKind::Panic
            }]
        );
        assert_eq!(outcome(&r, Check::Dmarc), Some(false));
        assert!(r
            .findings
            .iter()
            .any(|f| f.check == Check::Dmarc && f.code == Code::CheckFailed));
        // The others ran: SPF was answered (NXDOMAIN: no record), and the parked profile,
        // which reads DMARC, is unknown rather than judged on a guess.
        assert_eq!(outcome(&r, Check::Spf), Some(true));
        assert_eq!(outcome(&r, Check::Mx), Some(true));
        assert_eq!(outcome(&r, Check::Dnsbl), Some(true));
        assert_eq!(outcome(&r, Check::Parked), Some(false));
        assert!(r.findings.iter().any(|f| f.code == Code::SpfMissing));
        assert!(!r.fully_answered());
    }

    /// Every check that applies is reported unknown when it overruns: DNSBL among them
    /// (its series used to vanish on a timeout).
    #[tokio::test]
    async fn checks_that_overrun_the_deadline_are_all_unknown() {
        struct Silent;
        impl Dns for Silent {
            fn lookup<'a>(&'a self, _: &'a str, _: RecordType) -> LookupFuture<'a> {
                Box::pin(std::future::pending())
            }
        }
        let spec = full_spec();
        let r = run_domain(&Silent, &spec, &Https::system(), Duration::from_millis(50)).await;
        let expected: Vec<Check> = TABLE
            .into_iter()
            .filter(|&c| applies(c, &spec) != Applies::Never)
            .collect();
        let reported: Vec<Check> = r.outcomes.iter().map(|o| o.check).collect();
        assert_eq!(reported, expected);
        assert!(reported.contains(&Check::Dnsbl));
        assert!(r.outcomes.iter().all(|o| !o.answered));
        // Every check that asks DNS timed out; DANE and the parked profile, which read
        // the (unknown) MX, are unknown without running into the deadline themselves.
        assert!(r.errors.iter().all(|e| e.kind == CheckErrorKind::Timeout));
        let timed_out: Vec<Check> = r.errors.iter().map(|e| e.check).collect();
        let asking_dns: Vec<Check> = expected
            .iter()
            .copied()
            .filter(|c| ![Check::Dane, Check::Parked].contains(c))
            .collect();
        assert_eq!(timed_out, asking_dns);
    }

    #[tokio::test]
    async fn a_hanging_lookup_costs_only_its_own_check() {
        let dns = Faulty {
            panic_on: "",
            hang_on: "s1._domainkey.",
        };
        let r = run_domain(
            &dns,
            &full_spec(),
            &Https::system(),
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(
            r.errors,
            [CheckError {
                check: Check::Dkim,
                kind: CheckErrorKind::Timeout
            }]
        );
        assert_eq!(outcome(&r, Check::Dkim), Some(false));
        assert_eq!(outcome(&r, Check::Spf), Some(true));
    }

    #[test]
    fn a_failed_run_shows_every_applicable_check_unknown() {
        let spec = full_spec();
        let r = failed_run(&spec, CheckErrorKind::Panic, "boom");
        let want: Vec<Check> = TABLE
            .into_iter()
            .filter(|&c| applies(c, &spec) != Applies::Never)
            .collect();
        assert_eq!(r.outcomes.iter().map(|o| o.check).collect::<Vec<_>>(), want);
        assert!(r.outcomes.iter().all(|o| !o.answered));
        assert_eq!(r.errors.len(), want.len());
        assert_eq!(r.findings.len(), want.len());
    }

    #[test]
    fn panic_messages_are_cut() {
        let long = "x".repeat(1000);
        let payload: Box<dyn std::any::Any + Send> = Box::new(long);
        assert_eq!(panic_message(payload.as_ref()).chars().count(), 201);
        let payload: Box<dyn std::any::Any + Send> = Box::new("short");
        assert_eq!(panic_message(payload.as_ref()), "short");
    }
}
