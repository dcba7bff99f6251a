//! One probe round: a real message to each target through the domain's submission server,
//! then its arrival read over IMAP and what each source concluded about it.
//!
//! Every failure is a stage (`send`, `mailbox`, `receive_timeout`, `parse`, `bounce`),
//! never a crash. The IMAP side is blocking and runs on `spawn_blocking`, bounded by the
//! probe's timeout. Tokens issued are kept in the [`TokenLedger`] (in `state_dir` when
//! configured) so that late or duplicate arrivals of our own messages are deleted in a
//! later round, also after a restart, and nothing else ever is.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checks::{dmarc, spf};
use crate::config::{AuthMethod, Config, MailboxConfig, ProbeConfig, ProbeTarget, TargetKind};
use crate::mail::ledger::{token_lifetime, TokenLedger};
use crate::mail::mailbox::{remaining, Fetched, Mailbox, MailboxError};
use crate::mail::oauth2::TokenCache;
use crate::mail::reply::{self, Bounce, DsnAction, Reply};
use crate::mail::results::{self, MethodResults};
use crate::mail::send::{send, ProbeMessage, SendError};
use crate::mail::spam::{self, SpamVerdict};
use crate::mail::verifier_report::VerifierReport;
use crate::mail::{dkim_verify, trust};
use crate::name::normalize_name;
use crate::resolver::Dns;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Send,
    Mailbox,
    ReceiveTimeout,
    Parse,
    /// A delivery status notification (RFC 3464) says the probe failed to reach the
    /// verifier or the mailbox: no answer will come.
    Bounce,
}

impl Stage {
    /// Every stage, for counters that start at 0.
    pub const ALL: [Stage; 5] = [
        Stage::Send,
        Stage::ReceiveTimeout,
        Stage::Mailbox,
        Stage::Parse,
        Stage::Bounce,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Send => "send",
            Stage::Mailbox => "mailbox",
            Stage::ReceiveTimeout => "receive_timeout",
            Stage::Parse => "parse",
            Stage::Bounce => "bounce",
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
    /// Our own messages this round's cleanup deleted (this probe's and earlier ones').
    pub deleted: Cleanup,
    /// Where the probe landed and what the receiver's spam filter said (`mailbox`
    /// targets whose probe arrived; `None` otherwise).
    pub placement: Option<Placement>,
    /// The target's `junk_is_failure`.
    pub junk_is_failure: bool,
    /// Server sections (`smtp.NAME`, `mailbox.NAME`) whose OAuth2 token request failed
    /// this round (`mailauth_oauth2_token_refresh_failures_total{server}`).
    pub token_refresh_failures: Vec<String>,
}

/// Where a probe copy was found and the trusted receiver's spam verdict on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// The folder it was found in.
    pub folder: String,
    /// That folder is one of the mailbox's `junk_folders`.
    pub in_junk: bool,
    /// The trusted receiver's own spam fields, read by [`spam::verdict`].
    pub verdict: SpamVerdict,
}

impl Placement {
    /// Landed as spam: filed into a junk folder, or marked spam by the trusted receiver.
    pub fn is_spam(&self) -> bool {
        self.in_junk || self.verdict.spam == Some(true)
    }
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
            deleted: Cleanup::default(),
            placement: None,
            junk_is_failure: false,
            token_refresh_failures: Vec::new(),
        }
    }

    /// Completed and every method of every source passed; and, where the target says
    /// `junk_is_failure`, not landed as spam.
    pub fn success(&self) -> bool {
        self.failure.is_none()
            && !self.sources.is_empty()
            && self.sources.iter().all(|(_, r)| results::all_pass(r))
            && !(self.junk_is_failure && self.landed_as_spam())
    }

    /// Whether the probe arrived as spam (see [`Placement::is_spam`]).
    pub fn landed_as_spam(&self) -> bool {
        self.placement.as_ref().is_some_and(Placement::is_spam)
    }
}

/// What was found in the mailbox for one target.
struct Arrival {
    message: Fetched,
    seen_at: Instant,
    /// The verifier's report (verifier targets only), matched to this round's token.
    report: Option<VerifierReport>,
    /// The folder the message was found in, and whether it is a junk folder.
    folder: String,
    in_junk: bool,
}

/// The verifier targets whose replies arrive in one mailbox: who may send a report there.
fn verifier_targets(config: &Config, mailbox: &str) -> Vec<ProbeTarget> {
    config
        .probes
        .iter()
        .flat_map(|p| p.targets.iter())
        .filter(|t| t.kind == TargetKind::Verifier && t.mailbox.get_ref() == mailbox)
        .cloned()
        .collect()
}

fn mailbox_failure(e: MailboxError) -> (Stage, String) {
    (Stage::Mailbox, e.to_string())
}

/// Waits for the message carrying `token` (the probe itself, or the verifier's report
/// echoing it), then deletes every message of ours it can find (this one, and late or
/// duplicate ones of earlier tokens), whatever the round's outcome.
fn await_arrival(
    mailbox: &MailboxConfig,
    password: &str,
    target: &ProbeTarget,
    token: &str,
    deadline: Instant,
    ours: &Ours,
) -> (Result<Arrival, (Stage, String)>, Cleanup) {
    let mut mb = match Mailbox::connect(mailbox, password) {
        Ok(mb) => mb,
        Err(e) => return (Err(mailbox_failure(e)), Cleanup::default()),
    };
    let outcome = wait_for(&mut mb, target, token, deadline);
    let mut done = Cleanup::default();
    if !matches!(&outcome, Err((Stage::Mailbox, _))) {
        // Our copies are deleted wherever they were filed, by the same rules.
        for folder in mb.folders() {
            if let Err(e) = mb.select(&folder) {
                tracing::warn!("cleanup: {e}");
                break;
            }
            let here = cleanup(&mut mb, &ours.tokens, &ours.verifiers);
            done.probes += here.probes;
            done.reports += here.reports;
        }
        if done.probes + done.reports > 0 {
            tracing::debug!(
                probes = done.probes,
                reports = done.reports,
                "deleted our own messages"
            );
        }
    }
    mb.logout();
    (outcome, done)
}

/// The arrival loop of [`await_arrival`].
fn wait_for(
    mb: &mut Mailbox,
    target: &ProbeTarget,
    token: &str,
    deadline: Instant,
) -> Result<Arrival, (Stage, String)> {
    // A delay notice seen on the way, for the timeout's message.
    let mut delayed: Option<Bounce> = None;
    // UIDs already judged not to be the answer (someone else's mail): not fetched again.
    let mut judged: HashSet<u32> = HashSet::new();
    loop {
        if target.kind == TargetKind::Mailbox {
            // The inbox first, then each junk folder: the same token rule everywhere.
            for folder in mb.folders() {
                mb.select(&folder).map_err(mailbox_failure)?;
                for uid in mb.search_token(token).map_err(mailbox_failure)? {
                    let Some(msg) = mb.fetch(uid).map_err(mailbox_failure)? else {
                        continue;
                    };
                    let head =
                        String::from_utf8_lossy(crate::mail::header::split_message(&msg.raw).0);
                    if crate::mail::mailbox::header_token(&head).is_some_and(|t| t == token) {
                        let in_junk = mb.is_junk(&folder);
                        return Ok(Arrival {
                            message: msg,
                            seen_at: Instant::now(),
                            report: None,
                            folder,
                            in_junk,
                        });
                    }
                }
            }
            let inbox = mb.inbox().to_string();
            mb.select(&inbox).map_err(mailbox_failure)?;
        }
        // Bodies mentioning the token: the verifier's report, or a DSN quoting the probe.
        for uid in mb.search_body(token).map_err(mailbox_failure)? {
            if !judged.insert(uid) {
                continue;
            }
            let Some(msg) = mb.fetch(uid).map_err(mailbox_failure)? else {
                continue;
            };
            let reply = match target.kind {
                TargetKind::Verifier => reply::classify(&msg.raw, msg.truncated, target),
                TargetKind::Mailbox => reply::bounce(&msg.raw).map_or(Reply::Other, Reply::Bounce),
            };
            match reply {
                Reply::Report {
                    report,
                    token: echoed,
                } if echoed == token => {
                    return Ok(Arrival {
                        message: msg,
                        seen_at: Instant::now(),
                        report: Some(*report),
                        folder: String::new(),
                        in_junk: false,
                    });
                }
                Reply::UnreadableFromVerifier => {
                    let why = if msg.truncated {
                        "the verifier's reply is larger than max_message_bytes"
                    } else {
                        "the verifier's reply holds no report for this probe"
                    };
                    return Err((Stage::Parse, why.into()));
                }
                Reply::Bounce(b) if b.action == DsnAction::Failed => {
                    return Err((Stage::Bounce, b.to_string()));
                }
                Reply::Bounce(b) if b.action == DsnAction::Delayed => {
                    tracing::info!(target = target.kind.as_str(), "probe {b}; still waiting");
                    delayed = Some(b);
                }
                // Another probe's report, a person's mail, a "delivered" DSN.
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            let mut why = format!(
                "no {} message within the probe timeout",
                target.kind.as_str()
            );
            if let Some(b) = delayed {
                why.push_str(&format!(" ({b})"));
            }
            return Err((Stage::ReceiveTimeout, why));
        }
        mb.wait_for_change(remaining(deadline))
            .map_err(mailbox_failure)?;
    }
}

/// The tokens and verifier addresses that make a message in one mailbox ours.
pub struct Ours {
    /// Tokens issued for probes answered in this mailbox (the ledger's).
    pub tokens: Vec<String>,
    /// The verifier targets answering into this mailbox.
    pub verifiers: Vec<ProbeTarget>,
}

/// What one cleanup pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    pub probes: usize,
    pub reports: usize,
}

/// Deletes our own messages, and only those:
/// - probe copies: the message's own `X-Mailauth-Probe` header is one of `tokens`
///   (checked on the fetched header, not only the server's SEARCH);
/// - verifier reports: see [`reply`]: from a verifier's reply address, whole (not cut at
///   `max_message_bytes`), its decoded body a report whose echoed `X-Mailauth-Probe` is
///   one of `tokens`. A person forwarding a report, a DSN, a reply quoting a token: kept.
///
/// Errors are logged and end the pass; the next round tries again.
pub fn cleanup(mb: &mut Mailbox, tokens: &[String], verifiers: &[ProbeTarget]) -> Cleanup {
    let mut done = Cleanup::default();
    let mut judged: HashSet<u32> = HashSet::new();
    for token in tokens {
        match mb.search_token(token) {
            Ok(uids) => match mb.delete_probes(&uids, tokens) {
                Ok(n) => done.probes += n,
                Err(e) => {
                    tracing::warn!("cleanup of probe messages: {e}");
                    return done;
                }
            },
            Err(e) => {
                tracing::warn!("cleanup search: {e}");
                return done;
            }
        }
        if verifiers.is_empty() {
            continue;
        }
        let uids = match mb.search_body(token) {
            Ok(uids) => uids,
            Err(e) => {
                tracing::warn!("cleanup search: {e}");
                return done;
            }
        };
        let mut confirmed = Vec::new();
        for uid in uids {
            if !judged.insert(uid) {
                continue;
            }
            let Ok(Some(msg)) = mb.fetch(uid) else {
                continue;
            };
            let ours = verifiers.iter().any(|v| {
                matches!(reply::classify(&msg.raw, msg.truncated, v),
                    Reply::Report { token: echoed, .. } if tokens.contains(&echoed))
            });
            if ours {
                confirmed.push(uid);
            }
        }
        match mb.delete_uids(&confirmed) {
            Ok(n) => done.reports += n,
            Err(e) => {
                tracing::warn!("cleanup of verifier reports: {e}");
                return done;
            }
        }
    }
    done
}

/// The exporter's own verdicts from DNS and the received message: DKIM verified afresh,
/// SPF evaluated for the client the receiver saw, DMARC from both with the record's
/// alignment modes. Also the reason code of a DKIM failure, so that metrics say why.
async fn own_evaluation(
    dns: &dyn Dns,
    resolver: hickory_resolver::TokioResolver,
    raw: &[u8],
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
    // Only what the trusted receiver recorded above its own hop (see `trust`); with
    // nothing usable there is no SPF verdict of ours rather than one for the wrong client.
    if let Some(inputs) = trust::spf_inputs(raw, trusted) {
        let domain = inputs.identity.domain;
        let helo = inputs.helo.unwrap_or_else(|| domain.clone());
        let result = spf::check_host(dns, inputs.ip, &domain, &inputs.identity.sender, &helo).await;
        if result == spf::SpfResult::Pass {
            spf_pass_domain = Some(domain);
        }
        out.insert("spf".into(), result.as_str().into());
    }
    let report = dmarc::check(dns, from_domain, None).await;
    if report.record.is_some() {
        let pass = dkim_pass_domains
            .iter()
            .any(|d| dmarc::aligned(report.adkim, d, from_domain))
            || spf_pass_domain
                .as_deref()
                .is_some_and(|d| dmarc::aligned(report.aspf, d, from_domain));
        out.insert("dmarc".into(), if pass { "pass" } else { "fail" }.into());
    } else if report.answered {
        out.insert("dmarc".into(), "none".into());
    }
    (out, dkim_reason)
}

/// What `send` / `Mailbox::connect` authenticate with: the password from its file or
/// variable, or for an OAuth2 method an access token from the shared [`TokenCache`]. A
/// failed token request is recorded under `section` in `failures` and comes back as the
/// stage's failure text (the endpoint's error code, never a secret). Public so that
/// other IMAP readers (the reports' mailbox source) authenticate the same way.
pub async fn credential(
    section: &str,
    auth: AuthMethod,
    password: crate::config::Secret,
    oauth2: Option<&crate::config::OAuth2Config>,
    store: Option<Arc<crate::state::StateStore>>,
    failures: &mut Vec<String>,
) -> Result<Option<String>, CredentialError> {
    match (auth, oauth2) {
        (AuthMethod::Password, _) | (_, None) => Ok(password.read_async().await?),
        (_, Some(o)) => match TokenCache::shared().token(o, store).await {
            Ok(token) => Ok(Some(token)),
            Err(source) => {
                failures.push(section.to_string());
                Err(CredentialError::OAuth2 {
                    section: section.to_string(),
                    source,
                })
            }
        },
    }
}

/// Why there is nothing to log in with (the message names the config section, never the
/// secret).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// `password_file` / `password_env` cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::config::SecretError),
    /// The OAuth2 token endpoint gave no access token.
    #[error("[{section}] OAuth2: {source}")]
    OAuth2 {
        section: String,
        source: crate::mail::oauth2::TokenError,
    },
    /// OAuth2 is configured but the login has no token to use.
    #[error("[{section}]: no access token")]
    NoAccessToken { section: String },
}

/// Runs one round of `probe`.
pub async fn run_probe(
    config: &Config,
    probe: &ProbeConfig,
    dns: &dyn Dns,
    resolver: hickory_resolver::TokioResolver,
    ledger: &Arc<TokenLedger>,
) -> Vec<TargetOutcome> {
    let domain = normalize_name(probe.domain.get_ref());
    let Some(smtp) = config.smtp.get(probe.smtp.get_ref()) else {
        return Vec::new();
    };
    let mut outcomes = Vec::new();
    for target in &probe.targets {
        let mut outcome = TargetOutcome::new(target.kind);
        outcome.junk_is_failure = target.junk_is_failure;
        let mailbox_name = target.mailbox.get_ref().clone();
        let Some(mailbox) = config.mailbox.get(&mailbox_name).cloned() else {
            outcome.failure = Some((Stage::Mailbox, format!("no [mailbox.{mailbox_name}]")));
            outcomes.push(outcome);
            continue;
        };
        let smtp_section = format!("smtp.{}", probe.smtp.get_ref());
        let smtp_password = match credential(
            &smtp_section,
            smtp.auth,
            smtp.secret(),
            smtp.oauth2.as_ref(),
            ledger.store().cloned(),
            &mut outcome.token_refresh_failures,
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(domain = %domain, target = target.kind.as_str(), "probe submission failed: {e}");
                outcome.failure = Some((Stage::Send, e.to_string()));
                outcomes.push(outcome);
                continue;
            }
        };
        let token = ledger
            .issue(
                &mailbox_name,
                &domain,
                target.kind,
                token_lifetime(probe.timeout),
            )
            .await;
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
                if let (Some(o), SendError::Rejected { .. } | SendError::TokenRefused { .. }) =
                    (&smtp.oauth2, &e)
                {
                    // The server may have refused the token itself (revoked before its
                    // expiry): the next round asks for a new one.
                    TokenCache::shared().forget(o).await;
                }
                outcome.failure = Some((Stage::Send, e.to_string()));
                outcomes.push(outcome);
                continue;
            }
        };
        outcome.sent = true;
        let password = match credential(
            &format!("mailbox.{mailbox_name}"),
            mailbox.auth,
            mailbox.secret(),
            mailbox.oauth2.as_ref(),
            ledger.store().cloned(),
            &mut outcome.token_refresh_failures,
        )
        .await
        {
            Ok(p) => p.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(domain = %domain, target = target.kind.as_str(), "probe failed: {e}");
                outcome.failure = Some((Stage::Mailbox, e.to_string()));
                outcomes.push(outcome);
                continue;
            }
        };
        let deadline = started + probe.timeout;
        let kind = target.kind;
        let verifiers = verifier_targets(config, &mailbox_name);
        let (mb, tgt, tok, ledger, probe_key) = (
            mailbox.clone(),
            target.clone(),
            token.clone(),
            ledger.clone(),
            domain.clone(),
        );
        let arrival = tokio::task::spawn_blocking(move || {
            // Read here, on the blocking thread: with a state_dir this is a database read.
            let ours = Ours {
                tokens: ledger.tokens_blocking(&mailbox_name, &probe_key),
                verifiers,
            };
            await_arrival(&mb, &password, &tgt, &tok, deadline, &ours)
        })
        .await
        .unwrap_or_else(|e| {
            (
                Err((Stage::Mailbox, format!("mailbox task failed: {e}"))),
                Cleanup::default(),
            )
        });
        let (arrival, deleted) = arrival;
        outcome.deleted = deleted;
        let arrival = match arrival {
            Ok(a) => a,
            Err(f) => {
                tracing::warn!(domain = %domain, target = kind.as_str(), stage = f.0.as_str(), "probe failed: {}", f.1);
                if let Some(o) = mailbox
                    .oauth2
                    .as_ref()
                    .filter(|_| f.1.starts_with("login refused"))
                {
                    TokenCache::shared().forget(o).await;
                }
                outcome.failure = Some(f);
                outcomes.push(outcome);
                continue;
            }
        };
        let raw = &arrival.message.raw;
        outcome.delivery = Some(arrival.seen_at.saturating_duration_since(accepted));
        match kind {
            TargetKind::Mailbox => {
                let trusted = &mailbox.trusted_authserv_ids;
                let view = trust::receiver_view(raw, trusted);
                let placement = Placement {
                    folder: arrival.folder.clone(),
                    in_junk: arrival.in_junk,
                    verdict: view
                        .as_ref()
                        .map(|v| spam::verdict(&v.spam_fields))
                        .unwrap_or_default(),
                };
                if placement.is_spam() {
                    tracing::info!(domain = %domain, folder = %placement.folder, score = ?placement.verdict.score, "probe landed as spam");
                }
                outcome.placement = Some(placement);
                let fields = view
                    .as_ref()
                    .map(|v| v.authentication_results.clone())
                    .unwrap_or_default();
                match results::from_receiver(&fields, trusted) {
                    Some(r) => outcome.sources.push((Source::Receiver, r)),
                    None => {
                        let why = if view.is_none() {
                            "no Received field stamped by a trusted host (trusted_authserv_ids) with a client address"
                        } else {
                            "no Authentication-Results from a trusted authserv-id in the receiver's part of the header"
                        };
                        outcome.failure = Some((Stage::Parse, why.to_string()))
                    }
                }
                let from_domain = probe
                    .from
                    .rsplit_once('@')
                    .map_or(domain.clone(), |(_, d)| normalize_name(d));
                let (own, dkim_reason) =
                    own_evaluation(dns, resolver.clone(), raw, trusted, &from_domain).await;
                outcome.sources.push((Source::Dns, own));
                outcome.dkim_failure = dkim_reason;
            }
            TargetKind::Verifier => match &arrival.report {
                Some(report) => outcome
                    .sources
                    .push((Source::Verifier, results::from_verifier(report))),
                None => {
                    outcome.failure =
                        Some((Stage::Parse, "the reply holds no verifier report".into()))
                }
            },
        }
        outcomes.push(outcome);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing() -> TargetOutcome {
        let mut o = TargetOutcome::new(TargetKind::Mailbox);
        o.sent = true;
        let all_pass: MethodResults = [("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass")]
            .into_iter()
            .map(|(m, r)| (m.to_string(), r.to_string()))
            .collect();
        o.sources.push((Source::Receiver, all_pass));
        o
    }

    fn placed(in_junk: bool, marked: Option<bool>) -> Placement {
        Placement {
            folder: if in_junk { "Junk" } else { "INBOX" }.into(),
            in_junk,
            verdict: SpamVerdict {
                spam: marked,
                score: None,
            },
        }
    }

    #[test]
    fn junk_or_the_receivers_mark_is_spam() {
        assert!(placed(true, None).is_spam());
        assert!(placed(false, Some(true)).is_spam());
        assert!(
            placed(true, Some(false)).is_spam(),
            "the folder decides too"
        );
        assert!(!placed(false, Some(false)).is_spam());
        assert!(!placed(false, None).is_spam());
    }

    #[test]
    fn a_probe_in_junk_succeeds_unless_junk_is_failure() {
        let mut o = passing();
        o.placement = Some(placed(true, None));
        assert!(o.success(), "delivered is delivered");
        o.junk_is_failure = true;
        assert!(!o.success());
        o.placement = Some(placed(false, Some(true)));
        assert!(!o.success(), "the receiver's mark counts as junk too");
        o.placement = Some(placed(false, Some(false)));
        assert!(o.success());
        o.placement = None;
        assert!(
            o.success(),
            "no placement known (a verifier target): nothing to judge"
        );
    }
}
