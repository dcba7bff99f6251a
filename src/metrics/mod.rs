//! The one place where results become Prometheus series.
//!
//! Process-wide metrics (build info, reloads, DNS query outcomes, probe counters) live in a
//! `prometheus` registry. Per-domain series are rendered to exposition text once, when a
//! domain's report arrives, and kept per metric family; a scrape then only concatenates
//! text, streamed out while it is sent. With 10,000 domains this keeps `/metrics` fast and never triggers DNS, and a
//! report replaces its domain's series atomically, so a finding that has gone simply has
//! no line any more.

mod exposition;
mod latest;
mod reports;

pub use exposition::Exposition;
use exposition::Fragments;
pub use latest::{ProbeView, StatusSince};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::checks::{DomainReport, ReportSummary};
use crate::findings::Check;
use crate::resolver::QueryCounters;

/// Declares the per-domain metric families once: the enum a renderer names them by, and the
/// (name, type, help) table the exposition writes headers from, in the same order.
macro_rules! families {
    ($( $variant:ident => $name:literal, $kind:literal, $help:literal; )*) => {
        /// A per-domain metric family.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Family { $( $variant ),* }

        /// Per-domain metric families: (name, type, help), in `Family` order.
        const FAMILIES: &[(&str, &str, &str)] = &[ $( ($name, $kind, $help) ),* ];

        impl Family {
            #[cfg(test)]
            const ALL: &'static [Family] = &[ $( Family::$variant ),* ];

            fn index(self) -> usize {
                self as usize
            }

            fn name(self) -> &'static str {
                FAMILIES[self.index()].0
            }
        }
    };
}

families! {
    Success => "mailauth_dns_check_success", "gauge",
        "1 when the check was answered and has no error-severity finding.";
    Duration => "mailauth_dns_check_duration_seconds", "gauge",
        "Duration of the last run of the check.";
    LastRun => "mailauth_dns_check_last_run_timestamp_seconds", "gauge",
        "When the check last ran (Unix time).";
    Finding => "mailauth_finding", "gauge",
        "1 per active finding.";
    SpfLookups => "mailauth_spf_dns_lookups", "gauge",
        "DNS-querying SPF terms over the whole tree (RFC 7208 4.6.4, limit 10).";
    SpfVoid => "mailauth_spf_void_lookups", "gauge",
        "SPF lookups answered NXDOMAIN or empty (limit 2).";
    SpfAll => "mailauth_spf_all_qualifier", "gauge",
        "1 for the qualifier of the SPF record's all term (none: no all).";
    SpfIp => "mailauth_spf_ip_pass", "gauge",
        "1 when the configured sending IP gets SPF pass for the identity.";
    DkimBits => "mailauth_dkim_key_bits", "gauge",
        "Size of the DKIM public key of the selector.";
    DkimTesting => "mailauth_dkim_key_testing", "gauge",
        "1 when the DKIM key record has t=y.";
    DmarcPolicy => "mailauth_dmarc_policy", "gauge",
        "1 for the effective DMARC policy.";
    DmarcPct => "mailauth_dmarc_pct", "gauge",
        "The DMARC pct value (100 when absent).";
    RecordChange => "mailauth_record_change_timestamp_seconds", "gauge",
        "When the record's text last changed (Unix time).";
    MxHosts => "mailauth_mx_hosts", "gauge",
        "Number of MX hosts (0 for none or null MX).";
    MtaStsMode => "mailauth_mta_sts_mode", "gauge",
        "1 for the mode of the domain's MTA-STS policy.";
    MtaStsMaxAge => "mailauth_mta_sts_max_age_seconds", "gauge",
        "max_age of the domain's MTA-STS policy.";
    DaneMatch => "mailauth_dane_match", "gauge",
        "1 when a TLSA record matches the certificate the MX presents.";
    MxCertExpiry => "mailauth_mx_certificate_expiry_seconds", "gauge",
        "Seconds until the certificate the MX presents on port 25 expires (checked when it publishes TLSA).";
    Dnsbl => "mailauth_dnsbl_listed", "gauge",
        "1 when the sending IP is listed on the DNS blocklist.";
    DaneDnssec => "mailauth_dane_dnssec_validated", "gauge",
        "1 when the resolver validated the MX's TLSA records and the domain's MX records with DNSSEC (AD bit), so that DANE senders use them.";
}

/// One domain's series, family by family, as they are rendered.
struct Lines(Vec<String>);

impl Lines {
    fn new() -> Self {
        Lines(vec![String::new(); FAMILIES.len()])
    }

    fn add(&mut self, family: Family, labels: &[(&str, &str)], value: f64) {
        line(&mut self.0[family.index()], family.name(), labels, value);
    }
}

/// The latest state of one domain.
#[derive(Clone)]
pub struct DomainEntry {
    pub report: Arc<ReportSummary>,
    pub changes: RecordChanges,
    /// Since when each check has had its status (the landing page's "failing since").
    pub since: StatusSince,
    fragments: Fragments,
}

/// When each record's text last changed (`mailauth_record_change_timestamp_seconds`),
/// sorted by record name. Only a digest of the text is kept: noticing the next change
/// needs no more, and the text itself is in the report. (A map of full texts cost about a
/// kilobyte per domain.) A record that stops being answered keeps its last change.
#[derive(Clone, Default)]
pub struct RecordChanges(Vec<(Box<str>, u64, f64)>);

impl RecordChanges {
    /// Notes `record`'s current `text`; a new record or a new text changes at `now`.
    pub fn observe(&mut self, record: &str, text: &str, now: f64) {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        let digest = hasher.finish();
        match self.0.binary_search_by(|(r, ..)| (**r).cmp(record)) {
            Ok(i) if self.0[i].1 == digest => {}
            Ok(i) => self.0[i] = (record.into(), digest, now),
            Err(i) => self.0.insert(i, (record.into(), digest, now)),
        }
    }

    /// (record, when its text last changed), by record name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(r, _, when)| (&**r, *when))
    }
}

pub struct Metrics {
    registry: Registry,
    /// Label sets of the auth-result and disagreement series last written per probe, so
    /// that a result that changed leaves no stale series behind.
    probe_series: std::sync::Mutex<std::collections::HashMap<String, Vec<Vec<String>>>>,
    disagreement_series: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
    domains: RwLock<BTreeMap<String, DomainEntry>>,
    /// The latest round trip per (domain, target), for the landing page.
    probe_views: RwLock<BTreeMap<(String, String), ProbeView>>,
    dns_queries: IntCounterVec,
    dns_retransmissions: IntCounterVec,
    dns_rto: GaugeVec,
    query_counters: Arc<QueryCounters>,
    pub reload_success: IntGauge,
    pub reload_timestamp: Gauge,
    pub dns_interval: Gauge,
    pub probe_interval: Gauge,
    pub domains_configured: IntGauge,
    pub domains_file_ok: IntGauge,
    pub probe_success: GaugeVec,
    pub probe_last_success: GaugeVec,
    pub probe_delivery: HistogramVec,
    pub probe_sent: IntCounterVec,
    pub probe_failures: IntCounterVec,
    pub probe_deleted: IntCounterVec,
    /// `mailauth_oauth2_token_refresh_failures_total{server}`: token requests refused or
    /// failed, by server section (`smtp.NAME`, `mailbox.NAME`).
    pub oauth2_refresh_failures: IntCounterVec,
    /// State database operations that failed (`operation` = `read`, `write`).
    pub state_errors: IntCounterVec,
    pub auth_result: GaugeVec,
    pub auth_disagreement: GaugeVec,
    pub probe_dkim_failure: GaugeVec,
    pub probe_spam: GaugeVec,
    pub probe_spam_score: GaugeVec,
    pub check_errors: IntCounterVec,
    /// Report inputs read per `[[reports]]` source, by outcome.
    pub reports_read: IntCounterVec,
    /// Last successful read of each `[[reports]]` source.
    pub reports_last_read: GaugeVec,
    /// The report counters' exposition text, rendered from the state database
    /// ([`Metrics::set_report_counts`]).
    report_text: RwLock<String>,
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Metrics {
    pub fn new(query_counters: Arc<QueryCounters>) -> Arc<Self> {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            registry.register(c).expect("unique metric names")
        };
        let build = GaugeVec::new(
            Opts::new(
                "mailauth_build_info",
                "Build information; the value is always 1.",
            ),
            &["version", "revision", "rustversion"],
        )
        .expect("valid metric");
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("MAILAUTH_REVISION"),
                env!("MAILAUTH_RUSTVERSION"),
            ])
            .set(1.0);
        reg(Box::new(build));
        let dns_queries = IntCounterVec::new(
            Opts::new(
                "mailauth_dns_queries_total",
                "DNS queries sent, by outcome.",
            ),
            &["result"],
        )
        .expect("valid metric");
        for (result, _) in query_counters.snapshot() {
            dns_queries.with_label_values(&[result]);
        }
        reg(Box::new(dns_queries.clone()));
        let dns_retransmissions = IntCounterVec::new(
            Opts::new(
                "mailauth_dns_retransmissions_total",
                "DNS queries sent again to a server after its retransmission timeout passed unanswered.",
            ),
            &["server"],
        )
        .expect("valid metric");
        reg(Box::new(dns_retransmissions.clone()));
        let dns_rto = GaugeVec::new(
            Opts::new(
                "mailauth_dns_rto_seconds",
                "A server's current retransmission timeout (smoothed round trip + 4 x its variation, RFC 6298).",
            ),
            &["server"],
        )
        .expect("valid metric");
        reg(Box::new(dns_rto.clone()));
        let gauge = |name: &str, help: &str| {
            let g = Gauge::new(name, help).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let reload_success = int_gauge(
            "mailauth_config_last_reload_successful",
            "1 when the last configuration (re)load succeeded.",
        );
        let reload_timestamp = gauge(
            "mailauth_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (Unix time).",
        );
        let dns_interval = gauge(
            "mailauth_dns_interval_seconds",
            "Configured interval between DNS checks of a domain.",
        );
        let probe_interval = gauge(
            "mailauth_probe_interval_seconds",
            "Configured interval between mail probes.",
        );
        let domains_configured = int_gauge("mailauth_domains", "Number of domains configured.");
        let domains_file_ok = int_gauge(
            "mailauth_domains_file_last_read_successful",
            "1 when the domains file was last read successfully (0 also when none is configured).",
        );
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };
        let probe_success = gauge_vec(
            "mailauth_probe_success",
            "1 when the last probe round trip completed and every method passed.",
            &["domain", "target"],
        );
        let probe_last_success = gauge_vec(
            "mailauth_probe_last_success_timestamp_seconds",
            "When a probe round trip last succeeded (Unix time).",
            &["domain", "target"],
        );
        let probe_delivery = HistogramVec::new(
            HistogramOpts::new(
                "mailauth_probe_delivery_seconds",
                "Time from submission accepted to arrival in the mailbox.",
            )
            .buckets(vec![
                0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ]),
            &["domain", "target"],
        )
        .expect("valid metric");
        reg(Box::new(probe_delivery.clone()));
        let probe_sent = counter_vec(
            "mailauth_probe_sent_total",
            "Probe messages accepted for delivery.",
            &["domain", "target"],
        );
        let probe_failures = counter_vec(
            "mailauth_probe_failures_total",
            "Probe failures by stage (send, receive_timeout, mailbox, parse, bounce).",
            &["domain", "target", "stage"],
        );
        let probe_deleted = counter_vec(
            "mailauth_probe_messages_deleted_total",
            "The exporter's own messages deleted from the mailbox after a round: probe copies (kind=probe) and verifier reports (kind=report), late and duplicate arrivals included.",
            &["domain", "target", "kind"],
        );
        let oauth2_refresh_failures = counter_vec(
            "mailauth_oauth2_token_refresh_failures_total",
            "OAuth2 token requests refused or failed (the probe then fails at stage send or mailbox), by server section.",
            &["server"],
        );
        let state_errors = counter_vec(
            "mailauth_state_errors_total",
            "State database (state_dir) operations that failed, by operation (read, write); the probe token is then kept in memory only.",
            &["operation"],
        );
        for op in ["read", "write"] {
            state_errors.with_label_values(&[op]);
        }
        let auth_result = gauge_vec(
            "mailauth_auth_result",
            "1 for the latest result per method and source.",
            &["domain", "target", "source", "method", "result"],
        );
        let auth_disagreement = gauge_vec(
            "mailauth_auth_disagreement",
            "1 when the sources disagree on the latest probe.",
            &["domain", "method"],
        );
        let probe_dkim_failure = gauge_vec(
            "mailauth_probe_dkim_failure_reason",
            "1 for why the exporter's own DKIM verification of the latest probe failed (body_hash_mismatch, signature_mismatch, key_not_found, key_revoked, ...).",
            &["domain", "target", "reason"],
        );
        let probe_spam = gauge_vec(
            "mailauth_probe_spam",
            "1 when the latest probe that arrived landed in a junk folder or the trusted receiver marked it spam, else 0.",
            &["domain", "target"],
        );
        let probe_spam_score = gauge_vec(
            "mailauth_probe_spam_score",
            "The trusted receiver's spam score of the latest probe that arrived, when it wrote one (X-Spam-Score, X-Rspamd-Score, X-Spam-Status score=).",
            &["domain", "target"],
        );
        let check_errors = counter_vec(
            "mailauth_check_errors_total",
            "Checks that panicked or overran their deadline (kind = panic, timeout); the check's result was unknown for that run and the domain stayed watched.",
            &["check", "kind"],
        );
        // Every series from 0, so that the first error is an increase that rate() sees.
        for check in crate::checks::TABLE {
            for kind in crate::checks::CheckErrorKind::ALL {
                check_errors.with_label_values(&[check.as_str(), kind.as_str()]);
            }
        }
        let reports_read = counter_vec(
            "mailauth_reports_read_total",
            "Reports read per [[reports]] source, by outcome (counted, duplicate, ignored_domain, invalid).",
            &["source", "outcome"],
        );
        let reports_last_read = gauge_vec(
            "mailauth_reports_last_read_timestamp_seconds",
            "When the [[reports]] source was last read successfully (Unix time; 0: not yet).",
            &["source"],
        );
        Arc::new(Self {
            registry,
            probe_series: Default::default(),
            disagreement_series: Default::default(),
            domains: RwLock::new(BTreeMap::new()),
            probe_views: RwLock::new(BTreeMap::new()),
            dns_queries,
            dns_retransmissions,
            dns_rto,
            query_counters,
            reload_success,
            reload_timestamp,
            dns_interval,
            probe_interval,
            domains_configured,
            domains_file_ok,
            probe_success,
            probe_last_success,
            probe_delivery,
            probe_sent,
            probe_failures,
            probe_deleted,
            oauth2_refresh_failures,
            state_errors,
            auth_result,
            auth_disagreement,
            probe_dkim_failure,
            probe_spam,
            probe_spam_score,
            check_errors,
            reports_read,
            reports_last_read,
            report_text: RwLock::new(String::new()),
        })
    }

    /// Stores a domain's new report, replacing all its series at once.
    pub fn record_domain(&self, report: DomainReport) {
        for e in &report.errors {
            self.check_errors
                .with_label_values(&[e.check.as_str(), e.kind.as_str()])
                .inc();
        }
        let now = now_seconds();
        // Render outside the lock: a scrape never waits for it.
        let (mut changes, mut since) = self
            .domains
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&report.domain)
            .map(|e| (e.changes.clone(), e.since.clone()))
            .unwrap_or_default();
        for (record, text) in report.record_texts() {
            changes.observe(&record, &text, now);
        }
        for outcome in &report.outcomes {
            since.observe(outcome.check, outcome.status(&report.findings), now);
        }
        let fragments = Fragments::new(render_domain(&report, &changes));
        let domain = report.domain.clone();
        let entry = DomainEntry {
            report: Arc::new(ReportSummary::of(report)),
            changes,
            since,
            fragments,
        };
        self.domains
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(domain, entry);
    }

    /// Replaces the report counters' series with the state database's rows (watched
    /// domains only).
    pub fn set_report_counts(
        &self,
        counts: &[crate::state::reports::CountRow],
        reporters: &[crate::state::reports::ReporterRow],
        watched: &dyn Fn(&str) -> bool,
    ) {
        let text = reports::render(counts, reporters, watched);
        *self
            .report_text
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = text;
    }

    /// Starts a `[[reports]]` source's series: every outcome at 0 (so that the first one is
    /// an increase `rate()` sees) and the last-read time at 0 until a read succeeds.
    pub fn report_source_configured(&self, source: &str) {
        for outcome in ["counted", "duplicate", "ignored_domain", "invalid"] {
            self.reports_read.with_label_values(&[source, outcome]);
        }
        self.reports_last_read.with_label_values(&[source]);
    }

    /// Drops domains no longer configured (their series disappear).
    pub fn retain_domains(&self, keep: &std::collections::HashSet<String>) {
        self.domains
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|d, _| keep.contains(d));
    }

    pub fn domain_entries(&self) -> Vec<DomainEntry> {
        self.domains
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The latest round trip of each probe target of `domain`, by target.
    pub fn probe_views(&self, domain: &str) -> Vec<(String, ProbeView)> {
        self.probe_views
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .range((domain.to_string(), String::new())..)
            .take_while(|((d, _), _)| d == domain)
            .map(|((_, target), view)| (target.clone(), view.clone()))
            .collect()
    }

    /// Every probe target's latest round trip, by (domain, target).
    pub fn all_probe_views(&self) -> BTreeMap<(String, String), ProbeView> {
        self.probe_views
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn domain_entry(&self, domain: &str) -> Option<DomainEntry> {
        self.domains
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(domain)
            .cloned()
    }

    /// The per-server transport series, for the servers configured now: a server left out
    /// by a reload loses its RTO gauge (its counter stays, as counters do).
    fn update_dns_servers(&self) {
        self.dns_rto.reset();
        for stats in self.query_counters.servers() {
            let server = stats.server.to_string();
            let counter = self.dns_retransmissions.with_label_values(&[&server]);
            let seen = counter.get();
            if stats.retransmissions > seen {
                counter.inc_by(stats.retransmissions - seen);
            }
            self.dns_rto
                .with_label_values(&[&server])
                .set(stats.rto.as_secs_f64());
        }
    }

    /// The body of a scrape: the registry's families, then the per-domain ones, produced
    /// chunk by chunk while it is sent (see [`Exposition`]).
    pub fn exposition(&self) -> Exposition {
        for (result, count) in self.query_counters.snapshot() {
            let counter = self.dns_queries.with_label_values(&[result]);
            let seen = counter.get();
            if count > seen {
                counter.inc_by(count - seen);
            }
        }
        self.update_dns_servers();
        let mut head = Vec::with_capacity(16 * 1024);
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut head) {
            tracing::error!("cannot encode metrics: {e}");
            head.clear();
        }
        head.extend_from_slice(
            self.report_text
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_bytes(),
        );
        let fragments: Vec<Fragments> = self
            .domains
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|e| e.fragments.clone())
            .collect();
        Exposition::new(head, fragments, FAMILIES)
    }

    /// The whole exposition text at once (tests, small outputs).
    pub fn render(&self) -> String {
        self.exposition().into_string()
    }

    /// The series of one report that is not kept in the store (`/probe?domain=`).
    pub fn render_report(report: &DomainReport) -> String {
        let fragments = render_domain(report, &RecordChanges::default());
        let mut text = String::new();
        for (i, (name, kind, help)) in FAMILIES.iter().enumerate() {
            if fragments[i].is_empty() {
                continue;
            }
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
            text.push_str(&fragments[i]);
        }
        text
    }
}

impl Metrics {
    /// Writes the outcome of one probe round of `domain`.
    pub fn record_probe(&self, domain: &str, outcomes: &[crate::mail::probe::TargetOutcome]) {
        use crate::mail::results;
        let mut all_sources: Vec<&results::MethodResults> = Vec::new();
        let now = now_seconds();
        for o in outcomes {
            let target = o.target.as_str();
            {
                let mut views = self
                    .probe_views
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let key = (domain.to_string(), target.to_string());
                let view = ProbeView::after(views.get(&key), o, now);
                views.insert(key, view);
            }
            if o.sent {
                self.probe_sent.with_label_values(&[domain, target]).inc();
            }
            if let Some((stage, _)) = &o.failure {
                self.probe_failures
                    .with_label_values(&[domain, target, stage.as_str()])
                    .inc();
            }
            for server in &o.token_refresh_failures {
                self.oauth2_refresh_failures
                    .with_label_values(&[server.as_str()])
                    .inc();
            }
            for (kind, n) in [("probe", o.deleted.probes), ("report", o.deleted.reports)] {
                self.probe_deleted
                    .with_label_values(&[domain, target, kind])
                    .inc_by(n as u64);
            }
            if let Some(d) = o.delivery {
                self.probe_delivery
                    .with_label_values(&[domain, target])
                    .observe(d.as_secs_f64());
            }
            let success = o.success();
            self.probe_success
                .with_label_values(&[domain, target])
                .set(f64::from(u8::from(success)));
            if success {
                self.probe_last_success
                    .with_label_values(&[domain, target])
                    .set(now_seconds());
            }
            // Placement is known only for a probe that arrived; a round that found nothing
            // leaves the last known placement standing (the failure metrics tell that).
            if let Some(p) = &o.placement {
                self.probe_spam
                    .with_label_values(&[domain, target])
                    .set(f64::from(u8::from(p.is_spam())));
                match p.verdict.score {
                    Some(score) => self
                        .probe_spam_score
                        .with_label_values(&[domain, target])
                        .set(score),
                    None => {
                        let _ = self.probe_spam_score.remove_label_values(&[domain, target]);
                    }
                }
            }
            if !o.sources.is_empty() {
                for reason in crate::mail::dkim_verify::REASON_CODES {
                    let _ = self
                        .probe_dkim_failure
                        .remove_label_values(&[domain, target, reason]);
                }
                if let Some(reason) = o.dkim_failure {
                    self.probe_dkim_failure
                        .with_label_values(&[domain, target, reason])
                        .set(1.0);
                }
            }
            // Replace this target's auth-result series.
            let key = format!("{domain}\u{0}{target}");
            let mut written = self
                .probe_series
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for labels in written.remove(&key).unwrap_or_default() {
                let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
                let _ = self.auth_result.remove_label_values(&refs);
            }
            let mut now_written = Vec::new();
            for (source, methods) in &o.sources {
                for (method, result) in methods {
                    let labels = vec![
                        domain.to_string(),
                        target.to_string(),
                        source.as_str().to_string(),
                        method.clone(),
                        result.clone(),
                    ];
                    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
                    self.auth_result.with_label_values(&refs).set(1.0);
                    now_written.push(labels);
                }
                all_sources.push(methods);
            }
            if o.failure.is_none() || !now_written.is_empty() {
                written.insert(key, now_written);
            }
        }
        if all_sources.len() < 2 {
            return;
        }
        let disagreeing = results::disagreements(&all_sources);
        let mut written = self
            .disagreement_series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for method in written.remove(domain).unwrap_or_default() {
            let _ = self
                .auth_disagreement
                .remove_label_values(&[domain, &method]);
        }
        let mut now_written = Vec::new();
        for method in results::METHODS {
            let sources_with = all_sources
                .iter()
                .filter(|s| s.contains_key(method))
                .count();
            if sources_with >= 2 {
                let v = f64::from(u8::from(disagreeing.iter().any(|m| m == method)));
                self.auth_disagreement
                    .with_label_values(&[domain, method])
                    .set(v);
                now_written.push(method.to_string());
            }
        }
        written.insert(domain.to_string(), now_written);
    }
}

/// Escapes a label value for the text exposition format.
fn esc(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn line(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", esc(v));
    }
    let _ = writeln!(out, "}} {value}");
}

fn render_domain(report: &DomainReport, changes: &RecordChanges) -> Vec<String> {
    let mut f = Lines::new();
    let d = report.domain.as_str();
    let ts = unix(report.checked_at);
    for outcome in &report.outcomes {
        let check = outcome.check.as_str();
        let labels = [("domain", d), ("check", check)];
        f.add(
            Family::Success,
            &labels,
            f64::from(u8::from(outcome.success(&report.findings))),
        );
        f.add(Family::Duration, &labels, outcome.duration.as_secs_f64());
        f.add(Family::LastRun, &labels, ts);
    }
    // One series per distinct (check, code, severity); a code found twice is still one alert.
    let mut seen = std::collections::BTreeSet::new();
    for finding in &report.findings {
        let key = (
            finding.check.as_str(),
            finding.code.as_str(),
            finding.severity.as_str(),
        );
        if seen.insert(key) {
            f.add(
                Family::Finding,
                &[
                    ("domain", d),
                    ("check", key.0),
                    ("code", key.1),
                    ("severity", key.2),
                ],
                1.0,
            );
        }
    }
    for outcome in &report.outcomes {
        check_series(&mut f, report, outcome.check, outcome.answered);
    }
    for (record, when) in changes.iter() {
        f.add(
            Family::RecordChange,
            &[("domain", d), ("record", record)],
            when,
        );
    }
    f.0
}

/// The series of one check beyond the three every check has (success, duration, last run).
/// The match is exhaustive over [`Check`], so a check added to the table does not compile
/// until it says which families it fills (or that it fills none).
fn check_series(f: &mut Lines, report: &DomainReport, check: Check, answered: bool) {
    let d = report.domain.as_str();
    match check {
        Check::Spf => {
            if answered {
                let spf = &report.spf;
                if spf.record.is_some() {
                    f.add(Family::SpfLookups, &[("domain", d)], spf.dns_lookups.into());
                    f.add(Family::SpfVoid, &[("domain", d)], spf.void_lookups.into());
                    let q = spf.all.unwrap_or("none");
                    f.add(Family::SpfAll, &[("domain", d), ("qualifier", q)], 1.0);
                }
                for r in &spf.ip_results {
                    let ip = r.ip.to_string();
                    let identity = match r.identity {
                        crate::checks::spf::Identity::MailFrom => "mailfrom",
                        crate::checks::spf::Identity::Helo => "helo",
                    };
                    let pass = f64::from(u8::from(r.result == crate::checks::spf::SpfResult::Pass));
                    f.add(
                        Family::SpfIp,
                        &[("domain", d), ("ip", &ip), ("identity", identity)],
                        pass,
                    );
                }
            }
        }
        Check::Dkim => {
            for key in &report.dkim.keys {
                if let (Some(bits), Some(kt)) = (key.key_bits, key.key_type.map(|k| k.as_str())) {
                    let labels = [
                        ("domain", d),
                        ("selector", key.selector.as_str()),
                        ("key_type", kt),
                    ];
                    f.add(Family::DkimBits, &labels, bits.into());
                }
                if key.key_type.is_some() {
                    let labels = [("domain", d), ("selector", key.selector.as_str())];
                    f.add(
                        Family::DkimTesting,
                        &labels,
                        f64::from(u8::from(key.testing)),
                    );
                }
            }
        }
        Check::Dmarc => {
            if let Some(policy) = report.dmarc.effective_policy {
                f.add(
                    Family::DmarcPolicy,
                    &[("domain", d), ("policy", policy.as_str())],
                    1.0,
                );
            }
            if report.dmarc.record.is_some() {
                let pct = report.dmarc.pct.unwrap_or(100);
                f.add(Family::DmarcPct, &[("domain", d)], pct.into());
            }
        }
        Check::Mx => {
            if answered {
                f.add(
                    Family::MxHosts,
                    &[("domain", d)],
                    report.mx.hosts.len() as f64,
                );
            }
        }
        Check::MtaSts => {
            if let Some(p) = &report.newer.mta_sts_policy {
                f.add(
                    Family::MtaStsMode,
                    &[("domain", d), ("mode", p.mode.as_str())],
                    1.0,
                );
                f.add(Family::MtaStsMaxAge, &[("domain", d)], p.max_age.into());
            }
        }
        Check::Dane => {
            for h in &report.dane.hosts {
                let labels = [("domain", d), ("mx", h.host.as_str())];
                if let Some(m) = h.dane_match {
                    f.add(Family::DaneMatch, &labels, f64::from(u8::from(m)));
                }
                if let Some(v) = h.dnssec_validated {
                    f.add(Family::DaneDnssec, &labels, f64::from(u8::from(v)));
                }
                if let Some(t) = h.not_after {
                    f.add(
                        Family::MxCertExpiry,
                        &labels,
                        t as f64 - unix(report.checked_at),
                    );
                }
            }
        }
        Check::Dnsbl => {
            for l in &report.dnsbl.results {
                let ip = l.ip.to_string();
                let labels = [
                    ("domain", d),
                    ("ip", ip.as_str()),
                    ("list", l.list.as_str()),
                ];
                f.add(
                    Family::Dnsbl,
                    &labels,
                    f64::from(u8::from(l.code.is_some())),
                );
            }
        }
        // Their findings and success are all they report.
        Check::Ptr | Check::Parked | Check::TlsRpt | Check::Bimi => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_index_has_a_family() {
        assert_eq!(FAMILIES.len(), Family::ALL.len());
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
        let names: std::collections::HashSet<&str> = FAMILIES.iter().map(|f| f.0).collect();
        assert_eq!(names.len(), FAMILIES.len());
    }

    #[test]
    fn a_record_changes_when_its_text_does() {
        let mut c = RecordChanges::default();
        c.observe("spf", "v=spf1 -all", 1.0);
        c.observe("dmarc", "v=DMARC1; p=none", 1.0);
        c.observe("spf", "v=spf1 -all", 2.0);
        assert_eq!(c.iter().collect::<Vec<_>>(), [("dmarc", 1.0), ("spf", 1.0)]);
        c.observe("spf", "v=spf1 ~all", 3.0);
        c.observe("dmarc", "v=DMARC1; p=none", 3.0);
        c.observe("bimi", "", 3.0);
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [("bimi", 3.0), ("dmarc", 1.0), ("spf", 3.0)]
        );
    }

    /// The render cache: a domain's block is rendered when its report arrives and then
    /// only copied out by scrapes, until that domain's next report; another domain's
    /// report leaves it alone.
    #[test]
    fn a_domains_rendered_block_is_kept_until_its_results_change() {
        use crate::checks::{failed_run, CheckErrorKind, DomainSpec};
        let metrics = Metrics::new(Arc::new(QueryCounters::default()));
        let report = |d: &str| {
            failed_run(
                &DomainSpec::named(crate::name::DomainName::new(d).unwrap()),
                CheckErrorKind::Timeout,
                "too slow",
            )
        };
        metrics.record_domain(report("a.test"));
        metrics.record_domain(report("b.test"));
        let block = |d: &str| metrics.domain_entry(d).unwrap().fragments;
        let (a, b) = (block("a.test"), block("b.test"));
        let first = metrics.render();
        assert_eq!(
            metrics.render(),
            first,
            "the same state scrapes the same bytes"
        );
        assert!(
            block("a.test").same_rendering(&a),
            "a scrape renders nothing"
        );
        metrics.record_domain(report("a.test"));
        assert!(
            !block("a.test").same_rendering(&a),
            "a's new results, a's new block"
        );
        assert!(block("b.test").same_rendering(&b), "b's block untouched");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
