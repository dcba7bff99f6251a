//! The report of a port25-style echo verifier: a plain-text body with a
//! `Summary of Results` block (`SPF check:   pass`, one `DKIM check:` line per signature,
//! ...), per-check detail sections between dashed rules, and the probe's own headers
//! echoed at the end, through which the report is matched to its probe.
//!
//! A pure function of text: CRLF or LF, unknown check names kept, missing sections
//! tolerated; `None` only when there is no summary at all.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryLine {
    /// As written, without quotes (`SPF`, `iprev`, `DKIM`, `SpamAssassin`).
    pub check: String,
    /// Lower-case first word of the result (`pass`, `fail`, `ham`...).
    pub result: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckDetails {
    pub result: Option<String>,
    pub ids_verified: Option<String>,
    pub dns_records: Vec<String>,
    /// Every `Key: value` line of the section, in order.
    pub fields: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifierReport {
    pub summary: Vec<SummaryLine>,
    /// Check name → one entry per details section (several for several DKIM signatures).
    pub details: BTreeMap<String, Vec<CheckDetails>>,
    #[serde(skip)]
    pub echoed_headers: Vec<(String, String)>,
}

impl VerifierReport {
    /// An echoed header of the original message (case-insensitive name).
    pub fn echoed_header(&self, name: &str) -> Option<&str> {
        self.echoed_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The summary results for a method (`spf`, `dkim`, `dmarc`, `iprev`, ...).
    pub fn result_for(&self, method: &str) -> Vec<&str> {
        self.summary
            .iter()
            .filter(|l| l.check.eq_ignore_ascii_case(method))
            .map(|l| l.result.as_str())
            .collect()
    }
}

fn is_rule(line: &str, ch: char) -> bool {
    let t = line.trim();
    t.len() >= 8 && t.chars().all(|c| c == ch)
}

/// `<Name> check:<spaces><result>` → (name without quotes, rest).
fn check_line(line: &str, suffix: &str) -> Option<(String, String)> {
    let idx = line.find(suffix)?;
    let name = line[..idx].trim().trim_matches('"').trim();
    if name.is_empty() || name.len() > 40 {
        return None;
    }
    Some((
        name.to_string(),
        line[idx + suffix.len()..].trim().to_string(),
    ))
}

pub fn parse(body: &str) -> Option<VerifierReport> {
    let text = body.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim().eq_ignore_ascii_case("Summary of Results"))?;
    let mut report = VerifierReport::default();
    let mut i = start + 1;
    // Skip the rule under the heading.
    while i < lines.len() && (is_rule(lines[i], '=') || lines[i].trim().is_empty()) {
        i += 1;
    }
    while i < lines.len() {
        let line = lines[i];
        if is_rule(line, '=') || is_rule(line, '-') {
            break;
        }
        if let Some((check, rest)) = check_line(line, " check:") {
            let result = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if !result.is_empty() {
                report.summary.push(SummaryLine { check, result });
            }
        } else if !line.trim().is_empty() && !report.summary.is_empty() {
            break;
        }
        i += 1;
    }
    if report.summary.is_empty() {
        return None;
    }
    // Detail sections: "<Name> check details:" after a dashed rule.
    while i < lines.len() {
        let line = lines[i];
        if let Some((name, _)) = check_line(line, " check details:") {
            let (details, next) = parse_details(&lines, i + 1);
            report.details.entry(name).or_default().push(details);
            i = next;
            continue;
        }
        let t = line.trim();
        if (t.eq_ignore_ascii_case("Original Email")
            || t.eq_ignore_ascii_case("Original Message")
            || t.contains("Original Message"))
            && i + 1 < lines.len()
        {
            let mut j = i + 1;
            while j < lines.len()
                && (is_rule(lines[j], '=') || is_rule(lines[j], '-') || lines[j].trim().is_empty())
            {
                j += 1;
            }
            let rest = lines[j..].join("\n");
            report.echoed_headers = super::header::fields(rest.as_bytes())
                .into_iter()
                .map(|f| (f.name, f.value))
                .collect();
            break;
        }
        i += 1;
    }
    Some(report)
}

fn parse_details(lines: &[&str], mut i: usize) -> (CheckDetails, usize) {
    let mut d = CheckDetails::default();
    while i < lines.len() && is_rule(lines[i], '-') {
        i += 1;
    }
    let mut in_records = false;
    while i < lines.len() {
        let line = lines[i];
        if is_rule(line, '-') || is_rule(line, '=') || check_line(line, " check details:").is_some()
        {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if in_records && !line.trim().is_empty() {
                d.dns_records.push(line.trim().to_string());
            }
            i += 1;
            continue;
        }
        in_records = false;
        if let Some((key, value)) = line.split_once(':') {
            let (key, value) = (key.trim().to_string(), value.trim().to_string());
            match key.to_ascii_lowercase().as_str() {
                "result" => d.result = Some(value.clone()),
                "id(s) verified" => d.ids_verified = Some(value.clone()),
                "dns record(s)" => in_records = true,
                _ => {}
            }
            d.fields.push((key, value));
        }
        i += 1;
    }
    (d, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "This message is an automatic response from an authentication verifier.\n\
It checks what a receiver would conclude about your message.\n\
\n\
==========================================================\n\
Summary of Results\n\
==========================================================\n\
SPF check:          pass\n\
\"iprev\" check:      pass\n\
DKIM check:         pass\n\
DKIM check:         fail\n\
DMARC check:        pass\n\
SpamAssassin check: ham\n\
\n\
==========================================================\n\
Details:\n\
==========================================================\n\
\n\
HELO hostname:  mail.example.test\n\
Source IP:      192.0.2.10\n\
mail-from:      probe@example.test\n\
\n\
----------------------------------------------------------\n\
SPF check details:\n\
----------------------------------------------------------\n\
Result:         pass\n\
ID(s) verified: smtp.mailfrom=probe@example.test\n\
DNS record(s):\n\
\x20   example.test. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\"\n\
\n\
----------------------------------------------------------\n\
DKIM check details:\n\
----------------------------------------------------------\n\
Result:         pass (matches From: probe@example.test)\n\
ID(s) verified: header.d=example.test\n\
\n\
----------------------------------------------------------\n\
DKIM check details:\n\
----------------------------------------------------------\n\
Result:         fail (body hash mismatch)\n\
ID(s) verified: header.d=other.test\n\
\n\
==========================================================\n\
Explanation of the possible results\n\
==========================================================\n\
pass: the check succeeded.\n\
\n\
==========================================================\n\
Original Email\n\
==========================================================\n\
\n\
Return-Path: <probe@example.test>\n\
From: probe@example.test\n\
X-Mailauth-Probe: 0123456789abcdef0123456789abcdef\n\
Subject: mailauth-exporter probe\n\
\n\
body text\n";

    #[test]
    fn full_report() {
        let r = parse(REPORT).unwrap();
        assert_eq!(r.summary.len(), 6);
        assert_eq!(
            r.summary[1],
            SummaryLine {
                check: "iprev".into(),
                result: "pass".into()
            }
        );
        assert_eq!(r.result_for("dkim"), ["pass", "fail"]);
        assert_eq!(r.result_for("SPF"), ["pass"]);
        assert_eq!(r.result_for("dmarc"), ["pass"]);
        assert_eq!(r.result_for("spamassassin"), ["ham"]);
        let spf = &r.details["SPF"][0];
        assert_eq!(spf.result.as_deref(), Some("pass"));
        assert_eq!(
            spf.ids_verified.as_deref(),
            Some("smtp.mailfrom=probe@example.test")
        );
        assert_eq!(
            spf.dns_records,
            ["example.test. 300 IN TXT \"v=spf1 ip4:192.0.2.10 -all\""]
        );
        assert_eq!(r.details["DKIM"].len(), 2);
        assert_eq!(
            r.details["DKIM"][1].result.as_deref(),
            Some("fail (body hash mismatch)")
        );
        assert_eq!(
            r.echoed_header("x-mailauth-probe"),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(r.echoed_header("Subject"), Some("mailauth-exporter probe"));
    }

    #[test]
    fn crlf_and_missing_sections() {
        let crlf = REPORT.replace('\n', "\r\n");
        assert_eq!(parse(&crlf).unwrap(), parse(REPORT).unwrap());
        let summary_only =
            "Summary of Results\n==========\nSPF check: softfail\nSender-ID check: neutral\n";
        let r = parse(summary_only).unwrap();
        assert_eq!(r.result_for("spf"), ["softfail"]);
        assert_eq!(r.result_for("sender-id"), ["neutral"]);
        assert!(r.details.is_empty() && r.echoed_headers.is_empty());
    }

    #[test]
    fn not_a_report() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("Hello,\nthanks for your message.\n"), None);
        assert_eq!(
            parse("Summary of Results\n==========\n\nnothing here\n"),
            None
        );
        // Garbage after the summary is not fatal.
        let r =
            parse("Summary of Results\nSPF check: pass\n\n\u{0}\u{1}garbage ::: (((\n").unwrap();
        assert_eq!(r.result_for("spf"), ["pass"]);
    }
}
