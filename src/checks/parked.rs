//! The parked-domain profile: a domain that neither sends nor receives mail publishes SPF
//! `v=spf1 -all`, DMARC `p=reject` and a null MX (RFC 7505). It reads the SPF, DMARC and
//! MX checks' reports and asks no DNS of its own.

use super::dmarc::{DmarcReport, Policy};
use super::mx::MxReport;
use super::spf::SpfReport;
use crate::findings::{Code, Finding};

/// The parked-domain profile (a domain that neither sends nor receives mail): SPF exactly
/// `v=spf1 -all`, DMARC `p=reject`, and a null MX (RFC 7505).
pub fn parked_findings(spf: &SpfReport, dmarc: &DmarcReport, mx: &MxReport) -> Vec<Finding> {
    let mut out = Vec::new();
    let spf_ok = spf
        .record
        .as_deref()
        .map(|r| {
            r.split_ascii_whitespace()
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                == ["v=spf1", "-all"]
        })
        .unwrap_or(false);
    if !spf_ok {
        let shown = spf.record.as_deref().unwrap_or("no SPF record");
        out.push(Finding::new(
            Code::ParkedSpfNotFailAll,
            format!("SPF is {shown:?}, expected \"v=spf1 -all\""),
        ));
    }
    if dmarc.p != Some(Policy::Reject) {
        let shown = dmarc.p.map_or("no DMARC policy", Policy::as_str);
        out.push(Finding::new(
            Code::ParkedDmarcNotReject,
            format!("DMARC policy is {shown}, expected reject"),
        ));
    }
    if !mx.null_mx {
        out.push(Finding::new(
            Code::ParkedMxNotNull,
            format!(
                "{} MX record(s) instead of the null MX \"0 .\"",
                mx.hosts.len()
            ),
        ));
    }
    out
}

/// The parked check's part of a domain report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParkedReport {
    /// False when one of the three checks it reads was left unanswered: the profile is
    /// then unknown, and no finding is made from a guess.
    pub answered: bool,
    pub findings: Vec<Finding>,
}

/// Judges the profile from the SPF, DMARC and MX reports of the same run.
pub fn check(spf: &SpfReport, dmarc: &DmarcReport, mx: &MxReport) -> ParkedReport {
    let answered = spf.answered && dmarc.answered && mx.answered;
    ParkedReport {
        answered,
        findings: if answered {
            parked_findings(spf, dmarc, mx)
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spf(record: &str) -> SpfReport {
        SpfReport {
            record: Some(record.into()),
            answered: true,
            ..Default::default()
        }
    }

    #[test]
    fn parked_profile_is_clean_only_when_all_three_hold() {
        let dmarc = DmarcReport {
            p: Some(Policy::Reject),
            answered: true,
            ..Default::default()
        };
        let mx = MxReport {
            null_mx: true,
            answered: true,
            ..Default::default()
        };
        assert!(parked_findings(&spf("v=spf1 -all"), &dmarc, &mx).is_empty());
        assert!(parked_findings(&spf("V=SPF1   -ALL"), &dmarc, &mx).is_empty());

        let codes = |f: Vec<Finding>| f.into_iter().map(|f| f.code).collect::<Vec<_>>();
        assert_eq!(
            codes(parked_findings(&spf("v=spf1 ~all"), &dmarc, &mx)),
            [Code::ParkedSpfNotFailAll]
        );
        assert_eq!(
            codes(parked_findings(
                &spf("v=spf1 ip4:192.0.2.1 -all"),
                &dmarc,
                &mx
            )),
            [Code::ParkedSpfNotFailAll]
        );
        let quarantine = DmarcReport {
            p: Some(Policy::Quarantine),
            ..dmarc.clone()
        };
        assert_eq!(
            codes(parked_findings(&spf("v=spf1 -all"), &quarantine, &mx)),
            [Code::ParkedDmarcNotReject]
        );
        let real_mx = MxReport {
            null_mx: false,
            ..mx.clone()
        };
        assert_eq!(
            codes(parked_findings(&spf("v=spf1 -all"), &dmarc, &real_mx)),
            [Code::ParkedMxNotNull]
        );
        let none = SpfReport {
            answered: true,
            ..Default::default()
        };
        assert_eq!(
            codes(parked_findings(&none, &DmarcReport::default(), &real_mx)),
            [
                Code::ParkedSpfNotFailAll,
                Code::ParkedDmarcNotReject,
                Code::ParkedMxNotNull
            ]
        );
    }
}
