//! What a message that mentions a probe token is: the verifier's report, a delivery status
//! notification about the probe, or someone else's mail (a person forwarding a report, a
//! reply, a list digest).
//!
//! The IMAP server's `SEARCH BODY <token>` only says the token appears somewhere, decoded
//! or not, in any part. A message is the verifier's report of a probe only when all of
//! these hold:
//! - it is not truncated at `max_message_bytes` (judging half a message could take a
//!   person's mail with attachments for a report);
//! - its `From:` is the verifier's reply address (`[[probe.target]] reply_from`, or the
//!   domain of the verifier's `to`);
//! - its decoded text body (quoted-printable and base64 undone) parses as a verifier
//!   report;
//! - the report's echoed `X-Mailauth-Probe` header is exactly the token.
//!
//! A report inline-forwarded by a person passes the last two but not the sender; a DSN
//! (RFC 3464) quotes the probe's headers but comes from the reporting MTA and is a
//! `multipart/report; report-type=delivery-status`. Pure functions of the bytes.

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::config::ProbeTarget;
use crate::mail::send::TOKEN_HEADER;
use crate::mail::verifier_report::{self, VerifierReport};

/// RFC 3464 §2.3.3 `Action` of a recipient in a DSN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnAction {
    /// "failed": the message could not be delivered; no report will come.
    Failed,
    /// "delayed": still being retried; the report may yet come.
    Delayed,
    /// "delivered", "relayed", "expanded" or anything else: no failure.
    Other,
}

/// A delivery status notification about a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounce {
    pub action: DsnAction,
    /// RFC 3464 §2.3.4 `Status` (e.g. `5.1.1`).
    pub status: Option<String>,
    /// RFC 3464 §2.3.6 `Diagnostic-Code`, cut to 200 characters.
    pub diagnostic: Option<String>,
}

impl std::fmt::Display for Bounce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let action = match self.action {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
            DsnAction::Other => "notified",
        };
        write!(f, "delivery {action}")?;
        if let Some(s) = &self.status {
            write!(f, " (status {s})")?;
        }
        if let Some(d) = &self.diagnostic {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// What a fetched message is, as an answer to a verifier probe.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The verifier's report of the probe whose token it echoes.
    Report {
        report: Box<VerifierReport>,
        token: String,
    },
    /// From the verifier's address, but no report (garbage, an error reply) or cut at
    /// `max_message_bytes`.
    UnreadableFromVerifier,
    /// A delivery status notification.
    Bounce(Bounce),
    /// Anyone else's mail: never taken for the report, never deleted.
    Other,
}

/// The first address of the `From:` field, as written.
pub fn from_address(raw: &[u8]) -> Option<String> {
    let message = MessageParser::default().parse(raw)?;
    message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string)
}

/// The DSN `raw` is, if it is one (whoever sent it).
pub fn bounce(raw: &[u8]) -> Option<Bounce> {
    dsn(&MessageParser::default().parse(raw)?)
}

/// Classifies `raw` (cut at the mailbox limit when `truncated`) for the verifier `target`.
pub fn classify(raw: &[u8], truncated: bool, target: &ProbeTarget) -> Reply {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Reply::Other;
    };
    if let Some(bounce) = dsn(&message) {
        return Reply::Bounce(bounce);
    }
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default();
    if !target.is_reply_from(from) {
        return Reply::Other;
    }
    if truncated {
        return Reply::UnreadableFromVerifier;
    }
    let body = message
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default();
    match verifier_report::parse(&body) {
        Some(report) => match report.echoed_header(TOKEN_HEADER) {
            Some(token) if crate::mail::mailbox::is_token(token.trim()) => Reply::Report {
                token: token.trim().to_ascii_lowercase(),
                report: Box::new(report),
            },
            _ => Reply::UnreadableFromVerifier,
        },
        None => Reply::UnreadableFromVerifier,
    }
}

/// The DSN in `message`, if it is one: `multipart/report` with `report-type=delivery-status`
/// (RFC 6522 §3, RFC 3464 §2) and a `message/delivery-status` part. The first recipient
/// whose action is "failed" wins, else the first "delayed".
fn dsn(message: &mail_parser::Message<'_>) -> Option<Bounce> {
    let ct = message.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && ct
            .attribute("report-type")
            .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"));
    if !is_report {
        return None;
    }
    let status_part = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("message")
                && c.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("delivery-status")
                        || s.eq_ignore_ascii_case("global-delivery-status")
                })
        })
    });
    let text = match status_part.map(|p| &p.body) {
        Some(PartType::Text(t)) => t.to_string(),
        Some(PartType::Binary(b)) | Some(PartType::InlineBinary(b)) => {
            String::from_utf8_lossy(b).into_owned()
        }
        // mail-parser reads message/* as a nested message: its "header" is the DSN's
        // first field group.
        Some(PartType::Message(m)) => String::from_utf8_lossy(m.raw_message()).into_owned(),
        _ => String::new(),
    };
    Some(parse_delivery_status(&text))
}

/// The per-recipient fields of a `message/delivery-status` body (RFC 3464 §2.1: field
/// groups separated by blank lines, the first for the message, then one per recipient).
pub fn parse_delivery_status(text: &str) -> Bounce {
    let mut best: Option<Bounce> = None;
    for group in text.replace("\r\n", "\n").split("\n\n") {
        let fields = crate::mail::header::fields(format!("{group}\n\n").as_bytes());
        let get = |name: &str| {
            crate::mail::header::values(&fields, name)
                .next()
                .map(|v| v.trim().to_string())
        };
        let Some(action) = get("Action") else {
            continue;
        };
        let action = match action
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "failed" => DsnAction::Failed,
            "delayed" => DsnAction::Delayed,
            _ => DsnAction::Other,
        };
        let bounce = Bounce {
            action,
            status: get("Status").map(|s| s.chars().take(32).collect()),
            diagnostic: get("Diagnostic-Code").map(|d| d.chars().take(200).collect()),
        };
        let rank = |a: DsnAction| match a {
            DsnAction::Failed => 0,
            DsnAction::Delayed => 1,
            DsnAction::Other => 2,
        };
        if best.as_ref().is_none_or(|b| rank(action) < rank(b.action)) {
            best = Some(bounce);
        }
    }
    best.unwrap_or(Bounce {
        action: DsnAction::Other,
        status: None,
        diagnostic: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetKind;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn target(reply_from: Option<&str>) -> ProbeTarget {
        let text = format!(
            "kind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"m\"\n{}",
            reply_from.map_or(String::new(), |r| format!("reply_from = \"{r}\"\n"))
        );
        let t: ProbeTarget = toml::from_str(&text).unwrap();
        assert_eq!(t.kind, TargetKind::Verifier);
        t
    }

    fn report_body(token: &str) -> String {
        format!(
            "==========\r\nSummary of Results\r\n==========\r\nSPF check:          pass\r\nDKIM check:         pass\r\n\r\n==========\r\nOriginal Email\r\n==========\r\n\r\nFrom: probe@example.test\r\nX-Mailauth-Probe: {token}\r\nSubject: probe\r\n\r\nbody\r\n"
        )
    }

    fn report(from: &str, token: &str) -> Vec<u8> {
        format!(
            "From: {from}\r\nTo: probe@example.test\r\nSubject: Authentication Report\r\n\r\n{}",
            report_body(token)
        )
        .into_bytes()
    }

    #[test]
    fn the_verifiers_report_is_its_report() {
        match classify(
            &report("auth-results@verifier.test", TOKEN),
            false,
            &target(None),
        ) {
            Reply::Report { token, report } => {
                assert_eq!(token, TOKEN);
                assert_eq!(report.result_for("spf"), ["pass"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_report_forwarded_by_a_person_is_not() {
        let fwd = format!(
            "From: Alice <alice@example.org>\r\nTo: probe@example.test\r\nSubject: Fwd: Authentication Report\r\n\r\n\
             ---------- Forwarded message ---------\r\nFrom: auth-results@verifier.test\r\n\r\n{}",
            report_body(TOKEN)
        );
        assert_eq!(classify(fwd.as_bytes(), false, &target(None)), Reply::Other);
    }

    #[test]
    fn reply_from_pins_the_address() {
        let t = target(Some("auth-results@verifier.test"));
        assert!(matches!(
            classify(&report("auth-results@verifier.test", TOKEN), false, &t),
            Reply::Report { .. }
        ));
        assert_eq!(
            classify(&report("someone@verifier.test", TOKEN), false, &t),
            Reply::Other
        );
        // Without reply_from, the domain of `to` decides.
        assert!(matches!(
            classify(
                &report("someone@verifier.test", TOKEN),
                false,
                &target(None)
            ),
            Reply::Report { .. }
        ));
        assert_eq!(
            classify(&report("x@verifier.test.evil", TOKEN), false, &target(None)),
            Reply::Other
        );
    }

    #[test]
    fn base64_and_quoted_printable_reports_are_read_decoded() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(report_body(TOKEN));
        let raw = format!(
            "From: auth-results@verifier.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
        );
        assert!(matches!(
            classify(raw.as_bytes(), false, &target(None)),
            Reply::Report { .. }
        ));
        let qp = report_body(TOKEN)
            .replace('=', "=3D")
            .replace("X-Mailauth-Probe", "X-Mailauth=2DProbe");
        let raw = format!(
            "From: auth-results@verifier.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}"
        );
        match classify(raw.as_bytes(), false, &target(None)) {
            Reply::Report { token, .. } => assert_eq!(token, TOKEN),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_truncated_or_unreadable_reply_is_not_a_report() {
        let raw = report("auth-results@verifier.test", TOKEN);
        assert_eq!(
            classify(&raw, true, &target(None)),
            Reply::UnreadableFromVerifier
        );
        let garbage = format!("From: auth-results@verifier.test\r\n\r\ngarbage {TOKEN}\r\n");
        assert_eq!(
            classify(garbage.as_bytes(), false, &target(None)),
            Reply::UnreadableFromVerifier
        );
    }

    fn dsn(action: &str, status: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mail.example.test (Mail Delivery System)\r\n\
             To: probe@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n\
             --B\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mail.example.test\r\nArrival-Date: Tue,  1 Dec 2026 09:00:00 +0000\r\n\r\n\
             Final-Recipient: rfc822; check-auth@verifier.test\r\nOriginal-Recipient: rfc822;check-auth@verifier.test\r\n\
             Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.verifier.test\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 <check-auth@verifier.test>: Recipient address rejected\r\n\r\n\
             --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: probe@example.test\r\nX-Mailauth-Probe: {TOKEN}\r\nSubject: probe\r\n\r\n--B--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_dsn_is_a_bounce_whoever_sent_it() {
        match classify(&dsn("failed", "5.1.1"), false, &target(None)) {
            Reply::Bounce(b) => {
                assert_eq!(b.action, DsnAction::Failed);
                assert_eq!(b.status.as_deref(), Some("5.1.1"));
                assert!(b.diagnostic.unwrap().contains("550 5.1.1"));
            }
            other => panic!("{other:?}"),
        }
        match classify(&dsn("delayed", "4.4.1"), false, &target(None)) {
            Reply::Bounce(b) => assert_eq!(b.action, DsnAction::Delayed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delivery_status_groups() {
        let b = parse_delivery_status(
            "Reporting-MTA: dns; a\n\nFinal-Recipient: rfc822; x@y\nAction: delayed\nStatus: 4.4.1\n\nFinal-Recipient: rfc822; z@y\nAction: failed (bad)\nStatus: 5.0.0\n",
        );
        assert_eq!(b.action, DsnAction::Failed);
        assert_eq!(b.status.as_deref(), Some("5.0.0"));
        let none = parse_delivery_status("nonsense");
        assert_eq!(none.action, DsnAction::Other);
        assert_eq!(
            Bounce {
                action: DsnAction::Failed,
                status: Some("5.1.1".into()),
                diagnostic: None
            }
            .to_string(),
            "delivery failed (status 5.1.1)"
        );
    }
}
