//! What each source concluded about a probe, reduced to one result per method, and the
//! cross-check between sources. Pure functions: the probe runner feeds them parsed
//! headers and reports; the metrics module turns their output into series.

use std::collections::BTreeMap;

use crate::mail::auth_results::AuthResultsField;
use crate::mail::verifier_report::VerifierReport;

/// Methods compared across sources.
pub const METHODS: [&str; 5] = ["spf", "dkim", "dmarc", "iprev", "arc"];

/// method → result (lower-case).
pub type MethodResults = BTreeMap<String, String>;

/// Several results for one method (several DKIM signatures): pass if any passed, else the
/// first. A message passes DKIM for DMARC's purposes when one signature verifies.
fn combine(results: &[&str]) -> Option<String> {
    if results.contains(&"pass") {
        return Some("pass".into());
    }
    results.first().map(|r| r.to_string())
}

/// The receiver's verdicts: the top-most Authentication-Results field whose authserv-id is
/// trusted (RFC 8601 §5: fields from others may be forged by the sender).
pub fn from_receiver(fields: &[AuthResultsField], trusted_ids: &[String]) -> Option<MethodResults> {
    let field = fields.iter().find(|f| {
        !f.is_arc()
            && f.authserv_id
                .as_ref()
                .is_some_and(|id| trusted_ids.iter().any(|t| t.eq_ignore_ascii_case(id)))
    })?;
    let mut out = MethodResults::new();
    for method in METHODS {
        let results: Vec<&str> = field
            .results
            .iter()
            .filter(|r| r.method == method)
            .map(|r| r.result.as_str())
            .collect();
        if let Some(r) = combine(&results) {
            out.insert(method.to_string(), r);
        }
    }
    Some(out)
}

pub fn from_verifier(report: &VerifierReport) -> MethodResults {
    let mut out = MethodResults::new();
    for method in METHODS {
        if let Some(r) = combine(&report.result_for(method)) {
            out.insert(method.to_string(), r);
        }
    }
    out
}

/// Methods on which the sources that have a result disagree.
pub fn disagreements(sources: &[&MethodResults]) -> Vec<String> {
    METHODS
        .iter()
        .filter(|m| {
            let mut seen: Vec<&str> = sources
                .iter()
                .filter_map(|s| s.get(**m).map(String::as_str))
                .collect();
            seen.dedup();
            seen.sort_unstable();
            seen.dedup();
            seen.len() > 1
        })
        .map(|m| m.to_string())
        .collect()
}

/// Every compared method passed (`mailauth_probe_success`); at least spf/dkim/dmarc must
/// be present for a round trip to count as a success.
pub fn all_pass(results: &MethodResults) -> bool {
    ["spf", "dkim", "dmarc"]
        .iter()
        .all(|m| results.contains_key(*m))
        && results.values().all(|r| r == "pass")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::auth_results::parse_value;

    #[test]
    fn receiver_results_come_only_from_a_trusted_field() {
        let forged = parse_value(
            "Authentication-Results",
            "mx.receiver.test; spf=pass; dkim=pass; dmarc=pass",
        );
        let real = parse_value(
            "Authentication-Results",
            "other.example; spf=fail; dkim=fail; dmarc=fail",
        );
        let trusted = vec!["other.example".to_string()];
        let r = from_receiver(&[forged.clone(), real], &trusted).unwrap();
        assert_eq!(r["spf"], "fail");
        assert!(from_receiver(&[forged], &trusted).is_none());
    }

    #[test]
    fn combine_and_compare() {
        let f = parse_value(
            "Authentication-Results",
            "mx; dkim=fail header.d=a; dkim=pass header.d=b; spf=softfail; dmarc=pass",
        );
        let r = from_receiver(&[f], &["mx".to_string()]).unwrap();
        assert_eq!(r["dkim"], "pass");
        let mut v = MethodResults::new();
        v.insert("spf".into(), "fail".into());
        v.insert("dkim".into(), "pass".into());
        assert_eq!(disagreements(&[&r, &v]), ["spf"]);
        assert!(!all_pass(&r));
        let mut ok = MethodResults::new();
        for m in ["spf", "dkim", "dmarc"] {
            ok.insert(m.into(), "pass".into());
        }
        assert!(all_pass(&ok));
        ok.remove("dmarc");
        assert!(!all_pass(&ok));
    }
}
