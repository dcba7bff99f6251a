//! DMARC failure reports: an RFC 5322 message → `FailureReport`.
//!
//! The standard form is an ARF report (RFC 5965) with `Feedback-Type: auth-failure`
//! (RFC 6591, RFC 7489 §7.3): a `multipart/report; report-type=feedback-report` whose
//! `message/feedback-report` part holds header-like fields. Some receivers instead send
//! plain text ("Sender Domain: …", "Sender IP Address: …"); those are read as far as the
//! same facts can be recognised in the body text.
//!
//! MIME is mail-parser's (0.11); the fields are read here. Bounded: the message itself
//! is bounded by the caller, and at most `MAX_FIELDS` fields and `MAX_VALUES` values of
//! a repeated field are kept, each cut to `MAX_TEXT`.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::Serialize;

use super::{clip, keyword, non_empty};

/// Fields read from one `message/feedback-report` part.
const MAX_FIELDS: usize = 200;
/// Values kept of a field that may repeat (`Auth-Failure`, `Original-Rcpt-To`).
const MAX_VALUES: usize = 20;

/// Why a message holds no DMARC failure report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureError {
    #[error("not a MIME message")]
    NotAMessage,
    #[error("an ARF report of feedback type {0:?}, not auth-failure")]
    NotAuthFailure(String),
    #[error("no message/feedback-report part and no failure report in the text")]
    NoFailureReport,
}

/// RFC 6591 §3.1 / RFC 7489 §7.3, the fields of the `message/feedback-report` part read
/// here (RFC 5965 §3.5 for the common ones):
/// ```text
/// feedback-type = "Feedback-Type:" "auth-failure"
/// auth-failure  = "Auth-Failure:" ( "adsp" / "bodyhash" / "revoked" / "signature" / "spf" / "dmarc" )
/// delivery-result = "Delivery-Result:" ( "delivered" / "spam" / "policy" / "reject" / "other" )
/// arrival-date  = "Arrival-Date:" date-time        ; RFC 5322 date
/// source-ip     = "Source-IP:" ( IPv4address / IPv6address )
/// reported-domain = "Reported-Domain:" domain       ; may repeat
/// original-mail-from = "Original-Mail-From:" addr-spec
/// dkim-domain, dkim-identity, dkim-selector, spf-dns, identity-alignment (RFC 7489 §7.3)
/// ```
/// Keywords (`auth_failure`, `delivery_result`, `feedback_type`) are lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FailureReport {
    pub reported_domain: Option<String>,
    pub source_ip: Option<String>,
    /// Epoch seconds of `Arrival-Date`.
    pub arrival_date: Option<i64>,
    pub auth_failure: Vec<String>,
    pub original_mail_from: Option<String>,
    pub delivery_result: Option<String>,
    pub feedback_type: Option<String>,
    pub user_agent: Option<String>,
    pub reporting_mta: Option<String>,
    pub original_rcpt_to: Vec<String>,
    pub dkim_domain: Option<String>,
    pub dkim_selector: Option<String>,
    pub dkim_identity: Option<String>,
    pub spf_dns: Option<String>,
    pub identity_alignment: Option<String>,
    pub authentication_results: Option<String>,
    /// `arf` for a `message/feedback-report` part, `text` for a plain-text report.
    pub format: &'static str,
}

/// The failure report in the message `raw`.
pub fn parse(raw: &[u8]) -> Result<FailureReport, FailureError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(FailureError::NotAMessage)?;
    let mut original_from = None;
    let mut feedback = None;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let sub = ct.subtype().unwrap_or_default().to_ascii_lowercase();
        let ty = ct.ctype().to_ascii_lowercase();
        match (ty.as_str(), sub.as_str(), &part.body) {
            ("message", "feedback-report", body) if feedback.is_none() => {
                feedback = Some(part_bytes(body).to_vec());
            }
            ("message", "rfc822" | "global", PartType::Message(original)) => {
                original_from = original_from.or_else(|| from_domain(original));
            }
            ("text", "rfc822-headers", body) => {
                if let Some(headers) = MessageParser::default().parse_headers(part_bytes(body)) {
                    original_from = original_from.or_else(|| from_domain(&headers));
                }
            }
            _ => {}
        }
    }
    let mut report = match feedback {
        Some(fields) => {
            let report = from_fields(&header_fields(&fields), "arf");
            match report.feedback_type.as_deref() {
                None | Some("auth-failure") => report,
                Some(other) => return Err(FailureError::NotAuthFailure(other.to_string())),
            }
        }
        None => {
            let text: String = message
                .text_bodies()
                .filter_map(|p| match &p.body {
                    PartType::Text(t) => Some(t.as_ref()),
                    _ => None,
                })
                .take(4)
                .collect::<Vec<_>>()
                .join("\n");
            let report = from_fields(&text_fields(&text), "text");
            if report.reported_domain.is_none() && report.source_ip.is_none() {
                return Err(FailureError::NoFailureReport);
            }
            report
        }
    };
    if report.reported_domain.is_none() {
        report.reported_domain = original_from;
    }
    Ok(report)
}

/// Whether `raw` is an ARF report (it has a `message/feedback-report` part), so that a
/// caller tells a failure report from a message carrying aggregate attachments.
pub fn is_arf(message: &mail_parser::Message<'_>) -> bool {
    message.parts.iter().any(|part| {
        part.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("feedback-report"))
        })
    })
}

fn part_bytes<'a>(body: &'a PartType<'_>) -> &'a [u8] {
    match body {
        PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
        PartType::Binary(b) | PartType::InlineBinary(b) => b,
        PartType::Message(m) => m.raw_message(),
        PartType::Multipart(_) => &[],
    }
}

fn from_domain(message: &mail_parser::Message<'_>) -> Option<String> {
    let address = message.from()?.first()?.address()?;
    let domain = address.rsplit_once('@')?.1;
    non_empty(domain).map(|d| d.to_ascii_lowercase())
}

/// `Name: value` fields of a header block, folded lines unfolded (RFC 5322 §2.2.3),
/// names lower-cased, at most `MAX_FIELDS`.
fn header_fields(block: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(block);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                if value.len() < 4 * super::MAX_TEXT {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            }
            continue;
        }
        if fields.len() == MAX_FIELDS {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    fields
}

/// The plain-text form: lines `Name: value` anywhere in the body, names as some
/// receivers write them, mapped onto the ARF names.
fn text_fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name = name.trim().to_ascii_lowercase();
            let arf = match name.as_str() {
                "sender domain" | "reported domain" | "reported-domain" => "reported-domain",
                "sender ip address" | "source ip" | "source-ip" => "source-ip",
                "received date" | "arrival date" | "arrival-date" => "arrival-date",
                "auth failure" | "auth-failure" => "auth-failure",
                "original mail from" | "original-mail-from" | "mail from" => "original-mail-from",
                "delivery result" | "delivery-result" => "delivery-result",
                "spf alignment" => "x-spf-alignment",
                "dkim alignment" => "x-dkim-alignment",
                "feedback-type" => "feedback-type",
                _ => return None,
            };
            Some((arf.to_string(), value.trim().to_string()))
        })
        .take(MAX_FIELDS)
        .collect()
}

fn from_fields(fields: &[(String, String)], format: &'static str) -> FailureReport {
    let mut r = FailureReport {
        format,
        ..FailureReport::default()
    };
    let first = |slot: &mut Option<String>, value: &str| {
        if slot.is_none() {
            *slot = non_empty(value);
        }
    };
    for (name, value) in fields {
        match name.as_str() {
            "reported-domain" => first(&mut r.reported_domain, value),
            "source-ip" => first(&mut r.source_ip, value),
            "arrival-date" if r.arrival_date.is_none() => {
                r.arrival_date = mail_parser::DateTime::parse_rfc822(value)
                    .or_else(|| mail_parser::DateTime::parse_rfc3339(value.trim()))
                    .filter(|d| d.is_valid())
                    .map(|d| d.to_timestamp());
            }
            "auth-failure" => {
                for v in value.split(',') {
                    let v = keyword(v);
                    if !v.is_empty() && r.auth_failure.len() < MAX_VALUES {
                        r.auth_failure.push(v);
                    }
                }
            }
            "x-spf-alignment" | "x-dkim-alignment" => {
                let method = if name == "x-spf-alignment" {
                    "spf"
                } else {
                    "dkim"
                };
                if keyword(value).starts_with("fail") && !r.auth_failure.iter().any(|m| m == method)
                {
                    r.auth_failure.push(method.into());
                }
            }
            "original-mail-from" => first(
                &mut r.original_mail_from,
                value.trim_matches(['<', '>', ' ']),
            ),
            "delivery-result" if r.delivery_result.is_none() => {
                r.delivery_result = Some(keyword(value)).filter(|v| !v.is_empty())
            }
            "feedback-type" if r.feedback_type.is_none() => {
                r.feedback_type = Some(keyword(value)).filter(|v| !v.is_empty())
            }
            "user-agent" => first(&mut r.user_agent, value),
            "reporting-mta" => first(&mut r.reporting_mta, value),
            "original-rcpt-to" if r.original_rcpt_to.len() < MAX_VALUES => r
                .original_rcpt_to
                .extend(non_empty(value.trim_matches(['<', '>', ' ']))),
            "dkim-domain" => first(&mut r.dkim_domain, value),
            "dkim-selector" => first(&mut r.dkim_selector, value),
            "dkim-identity" => first(&mut r.dkim_identity, value),
            "spf-dns" => first(&mut r.spf_dns, value),
            "identity-alignment" if r.identity_alignment.is_none() => {
                r.identity_alignment = Some(keyword(value)).filter(|v| !v.is_empty());
            }
            "authentication-results" => first(&mut r.authentication_results, value),
            _ => {}
        }
    }
    if let Some(domain) = &mut r.reported_domain {
        *domain = clip(domain).to_ascii_lowercase();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6591 Appendix B's example, shortened, as a DMARC receiver sends it.
    const ARF: &str = "From: dmarc@receiver.example\r\n\
To: ruf@example.com\r\n\
Subject: FW: Earn money\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"part1\"\r\n\
\r\n\
--part1\r\n\
Content-Type: text/plain; charset=\"US-ASCII\"\r\n\
\r\n\
This is an authentication failure report for an email message received from IP\r\n\
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.\r\n\
\r\n\
--part1\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: auth-failure\r\n\
User-Agent: SomeGenerator/1.0\r\n\
Version: 1\r\n\
Original-Mail-From: <somespammer@example.net>\r\n\
Original-Rcpt-To: <user@example.com>\r\n\
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\n\
Source-IP: 192.0.2.1\r\n\
Reported-Domain: Example.NET\r\n\
Authentication-Results: mail.example.com;\r\n\
\x20 dkim=fail header.d=example.net\r\n\
Auth-Failure: DMARC\r\n\
Auth-Failure: signature\r\n\
DKIM-Domain: example.net\r\n\
DKIM-Identity: @example.net\r\n\
DKIM-Selector: foo\r\n\
Delivery-Result: Reject\r\n\
Identity-Alignment: dkim\r\n\
\r\n\
--part1\r\n\
Content-Type: message/rfc822\r\n\
Content-Disposition: inline\r\n\
\r\n\
From: <somespammer@example.net>\r\n\
Received: from mailserver.example.net (mailserver.example.net [192.0.2.1])\r\n\
Subject: Earn money\r\n\
To: <user@example.com>\r\n\
\r\n\
Spam Spam Spam\r\n\
--part1--\r\n";

    #[test]
    fn reads_an_rfc_6591_arf_report() {
        let r = parse(ARF.as_bytes()).unwrap();
        assert_eq!(r.format, "arf");
        assert_eq!(r.feedback_type.as_deref(), Some("auth-failure"));
        assert_eq!(r.reported_domain.as_deref(), Some("example.net"));
        assert_eq!(r.source_ip.as_deref(), Some("192.0.2.1"));
        // 14:00 EDT (-04:00) is 18:00 UTC.
        assert_eq!(r.arrival_date, Some(1_110_304_800));
        assert_eq!(r.auth_failure, vec!["dmarc", "signature"]);
        assert_eq!(
            r.original_mail_from.as_deref(),
            Some("somespammer@example.net")
        );
        assert_eq!(r.original_rcpt_to, vec!["user@example.com"]);
        assert_eq!(r.delivery_result.as_deref(), Some("reject"));
        assert_eq!(r.dkim_selector.as_deref(), Some("foo"));
        assert_eq!(r.identity_alignment.as_deref(), Some("dkim"));
        assert_eq!(
            r.authentication_results.as_deref(),
            Some("mail.example.com; dkim=fail header.d=example.net")
        );
    }

    #[test]
    fn a_missing_reported_domain_comes_from_the_original_from() {
        let raw = ARF.replace("Reported-Domain: Example.NET\r\n", "");
        assert_eq!(
            parse(raw.as_bytes()).unwrap().reported_domain.as_deref(),
            Some("example.net")
        );
    }

    #[test]
    fn other_feedback_types_are_refused() {
        let raw = ARF.replace("Feedback-Type: auth-failure", "Feedback-Type: abuse");
        assert_eq!(
            parse(raw.as_bytes()),
            Err(FailureError::NotAuthFailure("abuse".into()))
        );
    }

    #[test]
    fn reads_a_plain_text_report() {
        let raw = "From: noreply@receiver.example\r\nSubject: DMARC failure report\r\n\r\n\
A message claiming to be from you failed DMARC.\r\n\
Sender Domain: example.com\r\n\
Sender IP Address: 198.51.100.7\r\n\
Received Date: Mon, 4 Mar 2024 10:00:00 +0000\r\n\
SPF Alignment: fail\r\n\
DKIM Alignment: pass\r\n\
DMARC Results: Reject\r\n";
        let r = parse(raw.as_bytes()).unwrap();
        assert_eq!(r.format, "text");
        assert_eq!(r.reported_domain.as_deref(), Some("example.com"));
        assert_eq!(r.source_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(r.arrival_date, Some(1_709_546_400));
        assert_eq!(r.auth_failure, vec!["spf"]);
    }

    #[test]
    fn a_message_without_a_report_is_refused() {
        let raw = b"From: a@example.com\r\nSubject: hello\r\n\r\nJust saying hi.\r\n";
        assert_eq!(parse(raw), Err(FailureError::NoFailureReport));
    }

    #[test]
    fn field_values_are_bounded() {
        let many = "Auth-Failure: spf\r\n".repeat(500);
        let raw = ARF.replace("Auth-Failure: signature\r\n", &many);
        let r = parse(raw.as_bytes()).unwrap();
        assert!(r.auth_failure.len() <= MAX_VALUES);
        let long = ARF.replace(
            "Source-IP: 192.0.2.1",
            &format!("Source-IP: {}", "1".repeat(5000)),
        );
        assert!(parse(long.as_bytes()).unwrap().source_ip.unwrap().len() <= super::super::MAX_TEXT);
    }
}
