//! SMTP TLS reports (RFC 8460 §4): JSON bytes → `TlsReport`.
//!
//! The JSON is read with serde_json into a value and walked by hand rather than derived
//! into strict types, because reporters differ from the RFC in ways that must not lose
//! the report: `mx-host` is a string in RFC 8460's example and a list after erratum 6241
//! (and in Google's reports), `contact-info` is `null`, dates lack the `Z`, optional
//! members are missing. A member of the wrong type reads as absent.
//!
//! Bounds: at most `MAX_POLICIES` policies and `MAX_FAILURES` failure details per report
//! (then `truncated`), counts saturate, text is cut to `MAX_TEXT`. The input itself is
//! bounded by the caller (`input::Limits`).

use serde::Serialize;
use serde_json::Value;

use super::{clip, keyword, parse_rfc3339};

/// Policies kept from one report.
pub const MAX_POLICIES: usize = 1_000;
/// Failure details kept from one report, all policies together.
pub const MAX_FAILURES: usize = 10_000;
/// Lines kept of a policy's `policy-string` and `mx-host`.
const MAX_LINES: usize = 64;

/// Why bytes hold no TLS report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsRptError {
    #[error("the input is empty")]
    Empty,
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("the JSON is not an object")]
    NotAnObject,
    #[error("the JSON object has neither \"policies\" nor \"report-id\": not a TLS report")]
    NoReportMembers,
}

/// RFC 8460 §4.4 (report JSON, members as named there):
/// ```text
/// { "organization-name": string, "date-range": { "start-datetime": date-time,
///   "end-datetime": date-time }, "contact-info": string, "report-id": string,
///   "policies": [ policy-report ... ] }
/// ```
/// `begin`/`end` are the date range in epoch seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsReport {
    pub organization_name: Option<String>,
    pub report_id: Option<String>,
    pub begin: Option<i64>,
    pub end: Option<i64>,
    pub contact_info: Option<String>,
    pub policies: Vec<PolicyReport>,
    /// More than `MAX_POLICIES` policies or `MAX_FAILURES` failure details.
    pub truncated: bool,
}

/// One element of `policies`:
/// ```text
/// { "policy": { "policy-type": "sts" / "tlsa" / "no-policy-found", "policy-string": [..],
///               "policy-domain": domain, "mx-host": [..] (a string before erratum 6241) },
///   "summary": { "total-successful-session-count": n, "total-failure-session-count": n },
///   "failure-details": [ failure-detail ... ] }
/// ```
/// `successful`/`failed` are the summary's own counts; the details need not add up to
/// `failed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyReport {
    pub policy_type: Option<String>,
    pub policy_domain: Option<String>,
    pub policy_string: Vec<String>,
    pub mx_host: Vec<String>,
    pub successful: u64,
    pub failed: u64,
    pub failures: Vec<FailureDetail>,
}

/// RFC 8460 §4.3 failure details:
/// ```text
/// { "result-type": result-type, "sending-mta-ip": ip, "receiving-mx-hostname": name,
///   "receiving-mx-helo": name, "receiving-ip": ip, "failed-session-count": n,
///   "additional-information": uri, "failure-reason-code": string }
/// result-type = "starttls-not-supported" / "certificate-host-mismatch" /
///   "certificate-expired" / "certificate-not-trusted" / "validation-failure" /
///   "tlsa-invalid" / "dnssec-invalid" / "dane-required" / "sts-policy-fetch-error" /
///   "sts-policy-invalid" / "sts-webpki-invalid"
/// ```
/// `result_type` is lower-cased and otherwise kept as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FailureDetail {
    pub result_type: Option<String>,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    pub receiving_mx_helo: Option<String>,
    pub receiving_ip: Option<String>,
    pub count: u64,
    pub additional_information: Option<String>,
    pub failure_reason_code: Option<String>,
}

/// The report in `json`.
pub fn parse(json: &[u8]) -> Result<TlsReport, TlsRptError> {
    let json = json.strip_prefix(b"\xef\xbb\xbf").unwrap_or(json);
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(TlsRptError::Empty);
    }
    // Invalid UTF-8 inside strings is replaced rather than refusing the report.
    let text = String::from_utf8_lossy(json);
    let value: Value =
        serde_json::from_str(&text).map_err(|e| TlsRptError::NotJson(clip(&e.to_string())))?;
    let Value::Object(object) = &value else {
        return Err(TlsRptError::NotAnObject);
    };
    if !object.contains_key("policies") && !object.contains_key("report-id") {
        return Err(TlsRptError::NoReportMembers);
    }
    let range = value.get("date-range");
    let mut report = TlsReport {
        organization_name: string(&value, "organization-name"),
        report_id: string(&value, "report-id"),
        begin: range
            .and_then(|r| r.get("start-datetime"))
            .and_then(Value::as_str)
            .and_then(parse_rfc3339),
        end: range
            .and_then(|r| r.get("end-datetime"))
            .and_then(Value::as_str)
            .and_then(parse_rfc3339),
        contact_info: string(&value, "contact-info"),
        ..TlsReport::default()
    };
    let policies = value.get("policies").and_then(Value::as_array);
    let mut failures_left = MAX_FAILURES;
    for item in policies.into_iter().flatten() {
        if report.policies.len() == MAX_POLICIES {
            report.truncated = true;
            break;
        }
        let (policy, truncated) = policy_report(item, &mut failures_left);
        report.truncated |= truncated;
        report.policies.push(policy);
    }
    Ok(report)
}

fn policy_report(item: &Value, failures_left: &mut usize) -> (PolicyReport, bool) {
    let policy = item.get("policy");
    let summary = item.get("summary");
    let mut out = PolicyReport {
        policy_type: policy
            .and_then(|p| string(p, "policy-type"))
            .map(|t| t.to_ascii_lowercase()),
        policy_domain: policy.and_then(|p| string(p, "policy-domain")),
        policy_string: policy
            .map(|p| lines(p, "policy-string"))
            .unwrap_or_default(),
        mx_host: policy.map(|p| lines(p, "mx-host")).unwrap_or_default(),
        successful: summary
            .map(|s| number(s, "total-successful-session-count"))
            .unwrap_or(0),
        failed: summary
            .map(|s| number(s, "total-failure-session-count"))
            .unwrap_or(0),
        failures: Vec::new(),
    };
    let mut truncated = false;
    let details = item.get("failure-details").and_then(Value::as_array);
    for detail in details.into_iter().flatten() {
        if *failures_left == 0 {
            truncated = true;
            break;
        }
        *failures_left -= 1;
        out.failures.push(FailureDetail {
            result_type: string(detail, "result-type").map(|t| keyword(&t)),
            sending_mta_ip: string(detail, "sending-mta-ip"),
            receiving_mx_hostname: string(detail, "receiving-mx-hostname"),
            receiving_mx_helo: string(detail, "receiving-mx-helo"),
            receiving_ip: string(detail, "receiving-ip"),
            count: number(detail, "failed-session-count"),
            additional_information: string(detail, "additional-information"),
            failure_reason_code: string(detail, "failure-reason-code"),
        });
    }
    (out, truncated)
}

/// A string member, clipped; `None` when absent, `null`, empty or not a string.
fn string(value: &Value, key: &str) -> Option<String> {
    let s = clip(value.get(key)?.as_str()?);
    (!s.is_empty()).then_some(s)
}

/// A list of strings, or one string (RFC 8460's own example writes `mx-host` so).
fn lines(value: &Value, key: &str) -> Vec<String> {
    match value.get(key) {
        Some(Value::String(s)) => vec![clip(s)],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .take(MAX_LINES)
            .map(clip)
            .collect(),
        _ => Vec::new(),
    }
}

/// A session count: a non-negative integer; a float is truncated, a numeric string is
/// read, anything else (negative, absent) is 0. Saturates at `u64::MAX`.
fn number(value: &Value, key: &str) -> u64 {
    match value.get(key) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f > 0.0)
                .map_or(0, |f| {
                    if f >= u64::MAX as f64 {
                        u64::MAX
                    } else {
                        f as u64
                    }
                })
        }),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_EXAMPLE: &str = r#"{
      "organization-name": "Company-X",
      "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
      "contact-info": "sts-reporting@company-x.example",
      "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
      "policies": [{
        "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing"],
                   "policy-domain": "company-y.example", "mx-host": "*.mail.company-y.example"},
        "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
        "failure-details": [
          {"result-type": "certificate-expired", "sending-mta-ip": "2001:db8:abcd:0012::1",
           "receiving-mx-hostname": "mx1.mail.company-y.example", "failed-session-count": 100},
          {"result-type": "Validation-Failure", "sending-mta-ip": "198.51.100.62",
           "receiving-ip": "203.0.113.58", "failed-session-count": 3,
           "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"}]}]}"#;

    #[test]
    fn reads_the_rfc_8460_example() {
        let r = parse(RFC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(r.organization_name.as_deref(), Some("Company-X"));
        assert_eq!(r.begin, Some(1_459_468_800));
        assert_eq!(r.end, Some(1_459_555_199));
        let p = &r.policies[0];
        assert_eq!(p.policy_type.as_deref(), Some("sts"));
        assert_eq!(p.mx_host, vec!["*.mail.company-y.example"]);
        assert_eq!((p.successful, p.failed), (5326, 303));
        assert_eq!(p.failures.len(), 2);
        assert_eq!(
            p.failures[1].result_type.as_deref(),
            Some("validation-failure")
        );
        assert_eq!(p.failures[1].receiving_ip.as_deref(), Some("203.0.113.58"));
        assert_eq!(p.failures[0].count, 100);
        assert!(!r.truncated);
    }

    #[test]
    fn mx_host_as_a_list_and_nulls() {
        let json = r#"{"organization-name": null, "contact-info": null, "report-id": "x",
            "policies": [{"policy": {"policy-type": "NO-POLICY-FOUND", "mx-host": ["a", "b", 3]},
            "summary": {"total-successful-session-count": 1.0, "total-failure-session-count": -2}}]}"#;
        let r = parse(json.as_bytes()).unwrap();
        assert_eq!(r.organization_name, None);
        assert_eq!(r.contact_info, None);
        let p = &r.policies[0];
        assert_eq!(p.policy_type.as_deref(), Some("no-policy-found"));
        assert_eq!(p.mx_host, vec!["a", "b"]);
        assert_eq!((p.successful, p.failed), (1, 0));
        assert!(p.failures.is_empty());
    }

    #[test]
    fn missing_members_are_absent() {
        let r = parse(br#"{"policies": [{}]}"#).unwrap();
        assert_eq!(r.report_id, None);
        assert_eq!(r.begin, None);
        assert_eq!(r.policies[0], PolicyReport::default());
        let r = parse(br#"{"report-id": "only", "policies": "nonsense"}"#).unwrap();
        assert!(r.policies.is_empty());
    }

    #[test]
    fn counts_saturate_and_read_strings() {
        let json = r#"{"policies": [{"summary": {"total-successful-session-count": 1e30,
            "total-failure-session-count": "12"}, "failure-details": [{"failed-session-count": 18446744073709551615}]}]}"#;
        let p = &parse(json.as_bytes()).unwrap().policies[0];
        assert_eq!((p.successful, p.failed), (u64::MAX, 12));
        assert_eq!(p.failures[0].count, u64::MAX);
    }

    #[test]
    fn failure_details_are_capped() {
        let detail = r#"{"result-type": "starttls-not-supported", "failed-session-count": 1}"#;
        let details = vec![detail; MAX_FAILURES + 3].join(",");
        let json =
            format!(r#"{{"report-id": "big", "policies": [{{"failure-details": [{details}]}}]}}"#);
        let r = parse(json.as_bytes()).unwrap();
        assert_eq!(r.policies[0].failures.len(), MAX_FAILURES);
        assert!(r.truncated);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut json = br#"{"organization-name": "Org", "policies": []}"#.to_vec();
        json[24] = 0xff;
        let r = parse(&json).unwrap();
        assert_eq!(r.organization_name.as_deref(), Some("O\u{fffd}g"));
    }

    #[test]
    fn what_holds_no_report_is_refused() {
        assert_eq!(parse(b""), Err(TlsRptError::Empty));
        assert!(matches!(parse(b"{nope"), Err(TlsRptError::NotJson(_))));
        assert_eq!(parse(b"[1, 2]"), Err(TlsRptError::NotAnObject));
        assert_eq!(parse(b"{\"a\": 1}"), Err(TlsRptError::NoReportMembers));
    }
}
