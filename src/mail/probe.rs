//! One probe round: a real message to each target through the domain's submission server,
//! then its arrival read over IMAP and what each source concluded about it.
//!
//! Every failure is a stage (`send`, `mailbox`, `receive_timeout`, `parse`), never a
//! crash. The IMAP side is blocking and runs on `spawn_blocking`, bounded by the probe's
//! timeout. Tokens issued recently are remembered so that late or duplicate arrivals of
//! our own messages are deleted in a later round, and nothing else ever is.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::checks::{dmarc, spf};
use crate::config::{Config, MailboxConfig, ProbeConfig, TargetKind};
use crate::mail::mailbox::{remaining, Fetched, Mailbox};
use crate::mail::results::{self, MethodResults};
use crate::mail::send::{new_token, send, ProbeMessage};
use crate::mail::{auth_results, dkim_verify, received, received_spf, verifier_report};
use crate::resolver::{normalize_name, Dns};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Send,
    Mailbox,
    ReceiveTimeout,
    Parse,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Send => "send",
            Stage::Mailbox => "mailbox",
            Stage::ReceiveTimeout => "receive_timeout",
            Stage::Parse => "parse",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Receiver,
    Verifier,
    Dns,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Receiver => "receiver",
            Source::Verifier => "verifier",
            Source::Dns => "dns",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TargetOutcome {
    pub target: TargetKind,
    /// The message was accepted by the submission server.
    pub sent: bool,
    pub failure: Option<(Stage, String)>,
    pub delivery: Option<Duration>,
    pub sources: Vec<(Source, MethodResults)>,
    /// Why the exporter's own DKIM verification failed (a `dkim_verify::REASON_CODES` code).
    pub dkim_failure: Option<&'static str>,
}

impl TargetOutcome {
    fn new(target: TargetKind) -> Self {
        Self {
            target,
            sent: false,
            failure: None,
            delivery: None,
            sources: Vec::new(),
            dkim_failure: None,
        }
    }

    /// Completed and every method of every source passed.
    pub fn success(&self) -> bool {
        self.failure.is_none()
            && !self.sources.is_empty()
            && self.sources.iter().all(|(_, r)| results::all_pass(r))
    }
}

/// Recently issued tokens (bounded), for deleting late and duplicate arrivals.
#[derive(Default)]
pub struct TokenLedger {
    tokens: Mutex<VecDeque<(String, Instant)>>,
}

const LEDGER_SIZE: usize = 64;
const LEDGER_AGE: Duration = Duration::from_secs(2 * 24 * 3600);

impl TokenLedger {
    pub fn issue(&self) -> String {
        let token = new_token();
        let mut t = self.tokens.lock().expect("ledger lock");
        t.push_back((token.clone(), Instant::now()));
        while t.len() > LEDGER_SIZE || t.front().is_some_and(|(_, at)| at.elapsed() > LEDGER_AGE) {
            t.pop_front();
        }
        token
    }

    pub fn recent(&self) -> Vec<String> {
        self.tokens
            .lock()
            .expect("ledger lock")
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }
}

/// What was found in the mailbox for one target.
struct Arrival {
    message: Fetched,
    seen_at: Instant,
}

/// Waits for the message carrying `token` (the probe itself, or a verifier report echoing
/// it), then deletes every message of ours it can find (this one, and late or duplicate
/// ones of earlier tokens).
fn await_arrival(
    mailbox: &MailboxConfig,
    password: &str,
    kind: TargetKind,
    token: &str,
    deadline: Instant,
    ledger_tokens: &[String],
) -> Result<Arrival, (Stage, String)> {
    let mut mb =
        Mailbox::connect(mailbox, password).map_err(|e| (Stage::Mailbox, e.to_string()))?;
    let arrival = loop {
        let found = match kind {
            TargetKind::Mailbox => mb.search_token(token),
            TargetKind::Verifier => mb.search_body(token),
        }
        .map_err(|e| (Stage::Mailbox, e.to_string()))?;
        // A verifier report echoes our header; our own probe copy (if it lands here too)
        // carries it as a real header: keep only reports.
        let mut chosen = None;
        for uid in found {
            if let Some(msg) = mb.fetch(uid).map_err(|e| (Stage::Mailbox, e.to_string()))? {
                let is_probe = crate::mail::mailbox::header_token(&String::from_utf8_lossy(
                    crate::mail::header::split_message(&msg.raw).0,
                ))
                .is_some_and(|t| t == token);
                if (kind == TargetKind::Mailbox) == is_probe {
                    chosen = Some(msg);
                    break;
                }
            }
        }
        if let Some(message) = chosen {
            break Arrival {
                message,
                seen_at: Instant::now(),
            };
        }
        if Instant::now() >= deadline {
            mb.logout();
            return Err((
                Stage::ReceiveTimeout,
                format!("no {} message within the probe timeout", kind.as_str()),
            ));
        }
        mb.wait_for_change(remaining(deadline).min(Duration::from_secs(25)))
            .map_err(|e| (Stage::Mailbox, e.to_string()))?;
    };
    cleanup(&mut mb, ledger_tokens);
    mb.logout();
    Ok(arrival)
}

/// Deletes our own messages: probes by their header token, reports by the token they echo.
fn cleanup(mb: &mut Mailbox, tokens: &[String]) {
    for token in tokens {
        if let Ok(uids) = mb.search_token(token) {
            if let Err(e) = mb.delete_probes(&uids, tokens) {
                tracing::warn!("cleanup of probe messages: {e}");
            }
        }
        if let Ok(uids) = mb.search_body(token) {
            let reports: Vec<Fetched> = uids
                .iter()
                .filter_map(|&u| mb.fetch(u).ok().flatten())
                .collect();
            let reports: Vec<Fetched> = reports
                .into_iter()
                .filter(|r| verifier_report::parse(&String::from_utf8_lossy(&r.raw)).is_some())
                .collect();
            if let Err(e) = mb.delete_reports(&reports, tokens) {
                tracing::warn!("cleanup of verifier reports: {e}");
            }
        }
    }
}

/// The client of the receiving hop: from `Received-SPF` when the receiver wrote one, else
/// from the receiver's own `Received` line, with the envelope sender from its
/// `Authentication-Results` (`smtp.mailfrom`) or `Return-Path`.
struct SpfInputs {
    ip: std::net::IpAddr,
    mailfrom: String,
    helo: Option<String>,
}

fn spf_inputs(
    raw: &[u8],
    fields: &[auth_results::AuthResultsField],
    trusted: &[String],
) -> Option<SpfInputs> {
    if let Some(rs) = received_spf::parse_message(raw).first() {
        if let Some(ip) = rs.properties.get("client-ip").and_then(|i| i.parse().ok()) {
            return Some(SpfInputs {
                ip,
                mailfrom: rs
                    .properties
                    .get("envelope-from")
                    .map(|m| m.trim_matches(['<', '>']).to_string())
                    .unwrap_or_default(),
                helo: rs.properties.get("helo").cloned(),
            });
        }
    }
    let hop = received::trusted_hop(raw, trusted)?;
    let from_ar = fields
        .iter()
        .filter(|f| {
            f.authserv_id
                .as_deref()
                .is_some_and(|id| trusted.iter().any(|t| t.eq_ignore_ascii_case(id)))
        })
        .flat_map(|f| f.results.iter())
        .find(|r| r.method == "spf")
        .and_then(|r| r.property("smtp", "mailfrom"))
        .map(str::to_string);
    let (head, _) = crate::mail::header::split_message(raw);
    let header_fields = crate::mail::header::fields(head);
    let return_path = crate::mail::header::values(&header_fields, "Return-Path")
        .next()
        .map(|v| v.trim().trim_matches(['<', '>']).to_string());
    Some(SpfInputs {
        ip: hop.ip?,
        mailfrom: from_ar.or(return_path).unwrap_or_default(),
        helo: hop.helo,
    })
}

/// DMARC identifier alignment (RFC 7489 §3.1): strict is the same name, relaxed the same
/// organisational domain.
fn aligned(mode: char, id_domain: &str, from_domain: &str) -> bool {
    if mode == 's' {
        id_domain == from_domain
    } else {
        dmarc::organizational_domain(id_domain) == dmarc::organizational_domain(from_domain)
    }
}

/// The exporter's own verdicts from DNS and the received message: DKIM verified afresh,
/// SPF evaluated for the client the receiver saw, DMARC from both with the record's
/// alignment modes. Also the reason code of a DKIM failure, so that metrics say why.
async fn own_evaluation(
    dns: &dyn Dns,
    resolver: hickory_resolver::TokioResolver,
    raw: &[u8],
    fields: &[auth_results::AuthResultsField],
    trusted: &[String],
    from_domain: &str,
) -> (MethodResults, Option<&'static str>) {
    let mut out = MethodResults::new();
    let dkim = dkim_verify::verify(raw, resolver).await.unwrap_or_default();
    let dkim_pass_domains: Vec<String> = dkim
        .iter()
        .filter(|d| d.result == "pass")
        .filter_map(|d| d.domain.clone())
        .map(|d| normalize_name(&d))
        .collect();
    let mut dkim_reason = None;
    if let Some(first) = dkim.first() {
        if dkim_pass_domains.is_empty() {
            out.insert("dkim".into(), first.result.clone());
            dkim_reason = first.reason_code;
        } else {
            out.insert("dkim".into(), "pass".into());
        }
    } else {
        out.insert("dkim".into(), "none".into());
    }
    let mut spf_pass_domain = None;
    if let Some(inputs) = spf_inputs(raw, fields, trusted) {
        let domain = inputs
            .mailfrom
            .rsplit_once('@')
            .map_or(from_domain.to_string(), |(_, d)| normalize_name(d));
        let helo = inputs.helo.unwrap_or_else(|| domain.clone());
        let result = spf::check_host(dns, inputs.ip, &domain, &inputs.mailfrom, &helo).await;
        if result == spf::SpfResult::Pass {
            spf_pass_domain = Some(domain);
        }
        out.insert("spf".into(), result.as_str().into());
    }
    let report = dmarc::check(dns, from_domain, None).await;
    if report.record.is_some() {
        let pass = dkim_pass_domains
            .iter()
            .any(|d| aligned(report.adkim, d, from_domain))
            || spf_pass_domain
                .as_deref()
                .is_some_and(|d| aligned(report.aspf, d, from_domain));
        out.insert("dmarc".into(), if pass { "pass" } else { "fail" }.into());
    } else if report.answered {
        out.insert("dmarc".into(), "none".into());
    }
    (out, dkim_reason)
}

/// Runs one round of `probe`.
pub async fn run_probe(
    config: &Config,
    probe: &ProbeConfig,
    dns: &dyn Dns,
    resolver: hickory_resolver::TokioResolver,
    ledger: &TokenLedger,
) -> Vec<TargetOutcome> {
    let domain = normalize_name(probe.domain.get_ref());
    let Some(smtp) = config.smtp.get(probe.smtp.get_ref()) else {
        return Vec::new();
    };
    let mut outcomes = Vec::new();
    for target in &probe.targets {
        let mut outcome = TargetOutcome::new(target.kind);
        let Some(mailbox) = config.mailbox.get(target.mailbox.get_ref()).cloned() else {
            outcome.failure = Some((
                Stage::Mailbox,
                format!("no [mailbox.{}]", target.mailbox.get_ref()),
            ));
            outcomes.push(outcome);
            continue;
        };
        let smtp_password = match smtp.secret().read_async().await {
            Ok(p) => p,
            Err(e) => {
                outcome.failure = Some((Stage::Send, e.to_string()));
                outcomes.push(outcome);
                continue;
            }
        };
        let token = ledger.issue();
        let message = ProbeMessage {
            from: probe.from.clone(),
            to: target.to.clone(),
            token: token.clone(),
            domain: domain.clone(),
        };
        let started = Instant::now();
        let accepted = match send(smtp, smtp_password, &message).await {
            Ok(_) => Instant::now(),
            Err(e) => {
                tracing::warn!(domain = %domain, target = target.kind.as_str(), "probe submission failed: {e}");
                outcome.failure = Some((Stage::Send, e.to_string()));
                outcomes.push(outcome);
                continue;
            }
        };
        outcome.sent = true;
        let password = match mailbox.secret().read_async().await {
            Ok(Some(p)) => p,
            Ok(None) => String::new(),
            Err(e) => {
                outcome.failure = Some((Stage::Mailbox, e.to_string()));
                outcomes.push(outcome);
                continue;
            }
        };
        let deadline = started + probe.timeout;
        let kind = target.kind;
        let tokens = ledger.recent();
        let mb = mailbox.clone();
        let tok = token.clone();
        let arrival = tokio::task::spawn_blocking(move || {
            await_arrival(&mb, &password, kind, &tok, deadline, &tokens)
        })
        .await
        .unwrap_or_else(|e| Err((Stage::Mailbox, format!("mailbox task failed: {e}"))));
        let arrival = match arrival {
            Ok(a) => a,
            Err(f) => {
                tracing::warn!(domain = %domain, target = kind.as_str(), stage = f.0.as_str(), "probe failed: {}", f.1);
                outcome.failure = Some(f);
                outcomes.push(outcome);
                continue;
            }
        };
        let raw = &arrival.message.raw;
        match kind {
            TargetKind::Mailbox => {
                outcome.delivery = Some(arrival.seen_at.saturating_duration_since(accepted));
                let fields = auth_results::parse_message(raw);
                match results::from_receiver(&fields, &mailbox.trusted_authserv_ids) {
                    Some(r) => outcome.sources.push((Source::Receiver, r)),
                    None => {
                        outcome.failure = Some((
                            Stage::Parse,
                            "no Authentication-Results from a trusted authserv-id".to_string(),
                        ))
                    }
                }
                let from_domain = probe
                    .from
                    .rsplit_once('@')
                    .map_or(domain.clone(), |(_, d)| normalize_name(d));
                let (own, dkim_reason) = own_evaluation(
                    dns,
                    resolver.clone(),
                    raw,
                    &fields,
                    &mailbox.trusted_authserv_ids,
                    &from_domain,
                )
                .await;
                outcome.sources.push((Source::Dns, own));
                outcome.dkim_failure = dkim_reason;
            }
            TargetKind::Verifier => {
                outcome.delivery = Some(arrival.seen_at.saturating_duration_since(accepted));
                let body = super::body::body_text(raw);
                match verifier_report::parse(&body) {
                    Some(report)
                        if report.echoed_header(crate::mail::send::TOKEN_HEADER)
                            == Some(token.as_str()) =>
                    {
                        outcome
                            .sources
                            .push((Source::Verifier, results::from_verifier(&report)));
                    }
                    Some(_) => {
                        outcome.failure = Some((
                            Stage::Parse,
                            "the report echoes another probe's token".into(),
                        ))
                    }
                    None => {
                        outcome.failure =
                            Some((Stage::Parse, "the reply holds no verifier report".into()))
                    }
                }
            }
        }
        outcomes.push(outcome);
    }
    outcomes
}
