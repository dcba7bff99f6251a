//! The records around SPF/DKIM/DMARC that receivers now also read: MTA-STS's TXT record
//! (RFC 8461 §3.1), TLS-RPT (RFC 8460 §3) and BIMI (`default._bimi`). Each is optional:
//! absent is no finding; present and broken is.

use serde::Serialize;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::destination::Destinations;
use super::dmarc::{DmarcReport, Policy};
use super::mta_sts;
use super::mx::MxReport;
use super::taglist;
use crate::findings::{Check, Code, Finding};
use crate::name::normalize_name;
use crate::resolver::{Dns, RecordType};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NewerRecords {
    pub mta_sts: Option<String>,
    pub mta_sts_id: Option<String>,
    pub mta_sts_policy: Option<mta_sts::Policy>,
    pub tls_rpt: Option<String>,
    pub tls_rpt_rua: Vec<String>,
    pub bimi: Option<String>,
    pub bimi_logo: Option<String>,
    pub bimi_authority: Option<String>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    /// Per check: answered (false when DNS left it unknown); `None` when the record is absent.
    #[serde(skip)]
    pub answered: Vec<(Check, bool)>,
}

impl NewerRecords {
    /// Takes in the part that one of the three checks filled (each fills only its own
    /// fields), so that the report holds all three records side by side.
    pub fn absorb(&mut self, part: NewerRecords) {
        let NewerRecords {
            mta_sts,
            mta_sts_id,
            mta_sts_policy,
            tls_rpt,
            tls_rpt_rua,
            bimi,
            bimi_logo,
            bimi_authority,
            mut findings,
            mut answered,
        } = part;
        self.mta_sts = self.mta_sts.take().or(mta_sts);
        self.mta_sts_id = self.mta_sts_id.take().or(mta_sts_id);
        self.mta_sts_policy = self.mta_sts_policy.take().or(mta_sts_policy);
        self.tls_rpt = self.tls_rpt.take().or(tls_rpt);
        self.tls_rpt_rua.extend(tls_rpt_rua);
        self.bimi = self.bimi.take().or(bimi);
        self.bimi_logo = self.bimi_logo.take().or(bimi_logo);
        self.bimi_authority = self.bimi_authority.take().or(bimi_authority);
        self.findings.append(&mut findings);
        self.answered.append(&mut answered);
    }
}

enum Lookup {
    Absent,
    One(String),
    Many(usize),
}

async fn txt(
    dns: &dyn Dns,
    name: &str,
    prefix: &str,
    check: Check,
    out: &mut NewerRecords,
) -> Option<Lookup> {
    match dns.lookup(name, RecordType::Txt).await {
        Ok(answer) => {
            let recs = taglist::records_starting(&answer.txt_strings(), prefix);
            Some(match recs.len() {
                0 => Lookup::Absent,
                1 => Lookup::One(recs.into_iter().next().unwrap_or_default()),
                n => Lookup::Many(n),
            })
        }
        Err(e) => {
            out.findings.push(Finding::dns_error(
                check,
                format!("TXT lookup of {name}: {e}"),
            ));
            out.answered.push((check, false));
            None
        }
    }
}

/// Why an MTA-STS, TLS-RPT or BIMI record is refused (`*.syntax` findings). The three
/// share the tag list and the "version first" rule, so they share the conditions too.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Tags(#[from] taglist::TagError),
    /// The first tag is not `v=` with the record's one version (`STSv1`, `TLSRPTv1`,
    /// `BIMI1`): receivers discard such a record as not theirs.
    #[error("the record must start with v={0}")]
    NotVersion(&'static str),
    #[error("the required {0}= tag is missing")]
    MissingTag(&'static str),
    /// RFC 8461 §3.1: `sts-id = 1*32(ALPHA / DIGIT)`.
    #[error("id={0:?} must be 1 to 32 letters and digits")]
    InvalidId(String),
    /// RFC 8460 §3: `tlsrpt-uri = URI` with the mailto: and https: schemes defined.
    #[error("rua entry {0:?} is neither mailto: nor https:")]
    InvalidRua(String),
    /// BIMI's `l=` and `a=` are https URLs (or empty: declined).
    #[error("{tag}={value:?} is not an https:// URL")]
    NotHttps { tag: &'static str, value: String },
}

/// The record's tags when the first is `v=<version>`.
fn versioned(text: &str, version: &'static str) -> Result<Vec<(String, String)>, RecordError> {
    let tags = taglist::parse(text)?;
    if tags.first().map(|(n, v)| (n.as_str(), v.as_str())) != Some(("v", version)) {
        return Err(RecordError::NotVersion(version));
    }
    Ok(tags)
}

/// RFC 8461 §3.1: `v=STSv1; id=<1-32 alphanumerics>;`.
pub fn lint_mta_sts(text: &str) -> Result<String, RecordError> {
    let tags = versioned(text, "STSv1")?;
    let id = taglist::get(&tags, "id").ok_or(RecordError::MissingTag("id"))?;
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(RecordError::InvalidId(id.to_string()));
    }
    Ok(id.to_string())
}

/// RFC 8460 §3: `v=TLSRPTv1; rua=<mailto: or https: URIs, comma-separated>`.
pub fn lint_tls_rpt(text: &str) -> Result<Vec<String>, RecordError> {
    let tags = versioned(text, "TLSRPTv1")?;
    let rua = taglist::get(&tags, "rua").ok_or(RecordError::MissingTag("rua"))?;
    let uris: Vec<String> = rua.split(',').map(|u| u.trim().to_string()).collect();
    for uri in &uris {
        let ok = match uri.split_once(':') {
            Some(("mailto", addr)) => {
                addr.contains('@') && !addr.starts_with('@') && !addr.ends_with('@')
            }
            Some(("https", rest)) => rest.starts_with("//") && rest.len() > 2,
            _ => false,
        };
        if !ok {
            return Err(RecordError::InvalidRua(uri.clone()));
        }
    }
    Ok(uris)
}

/// BIMI: `v=BIMI1; l=<https URL of an SVG, or empty>; a=<https URL of the mark certificate>`.
pub fn lint_bimi(text: &str) -> Result<(Option<String>, Option<String>), RecordError> {
    let tags = versioned(text, "BIMI1")?;
    let https = |tag: &'static str, v: &str| -> Result<Option<String>, RecordError> {
        if v.is_empty() {
            return Ok(None);
        }
        if !v.starts_with("https://")
            || v.len() <= "https://".len()
            || v.contains(char::is_whitespace)
        {
            return Err(RecordError::NotHttps {
                tag,
                value: v.to_string(),
            });
        }
        Ok(Some(v.to_string()))
    };
    let logo = https("l", taglist::get(&tags, "l").unwrap_or(""))?;
    let authority = https("a", taglist::get(&tags, "a").unwrap_or(""))?;
    Ok((logo, authority))
}

/// How a domain's outbound connections (the MTA-STS policy fetch over HTTPS, DANE's
/// STARTTLS) are made: which certificates are trusted, how long one may take, and which
/// addresses may be connected to at all.
#[derive(Clone)]
pub struct Https {
    pub tls: Arc<rustls::ClientConfig>,
    pub timeout: Duration,
    pub destinations: Destinations,
}

impl Https {
    /// The system's roots, 10 s.
    pub fn system() -> Https {
        static SYSTEM: OnceLock<Https> = OnceLock::new();
        SYSTEM
            .get_or_init(|| Https {
                tls: crate::tls::client_config(None, false).unwrap_or_else(|_| {
                    Arc::new(
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth(),
                    )
                }),
                timeout: Duration::from_secs(10),
                destinations: Destinations::Any,
            })
            .clone()
    }
}

/// Fetches and checks the MTA-STS policy against the MX hosts (RFC 8461 §3.3, §4.1).
async fn check_policy(
    dns: &dyn Dns,
    domain: &str,
    mx: &MxReport,
    https: &Https,
    out: &mut NewerRecords,
) {
    let text = match mta_sts::fetch(dns, domain, https).await {
        Ok(t) => t,
        Err(e @ mta_sts::FetchError::DestinationRefused { .. }) => {
            out.findings
                .push(Finding::new(Code::MtaStsDestinationRefused, e.to_string()));
            return;
        }
        Err(e) => {
            out.findings
                .push(Finding::new(Code::MtaStsPolicyUnreachable, e.to_string()));
            return;
        }
    };
    let policy = match mta_sts::parse_policy(&text) {
        Ok(p) => p,
        Err(e) => {
            out.findings.push(Finding::new(
                Code::MtaStsSyntax,
                format!("policy of {domain}: {e}"),
            ));
            return;
        }
    };
    if policy.mode == mta_sts::Mode::Testing {
        out.findings.push(Finding::new(
            Code::MtaStsTesting,
            format!("the MTA-STS policy of {domain} is in mode testing"),
        ));
    }
    if policy.mode != mta_sts::Mode::None {
        for host in &mx.hosts {
            if !policy.mx.iter().any(|p| mta_sts::mx_matches(p, &host.host)) {
                out.findings.push(Finding::new(
                    Code::MtaStsMxNotCovered,
                    format!(
                        "MX host {} matches no mx: line of the policy ({})",
                        host.host,
                        policy.mx.join(", ")
                    ),
                ));
            }
        }
    }
    out.mta_sts_policy = Some(policy);
}

/// The MTA-STS check (RFC 8461): the `_mta-sts` TXT record and, when it is sound, the
/// policy it announces, held against the MX hosts. Fills only the `mta_sts*` fields.
pub async fn check_mta_sts(
    dns: &dyn Dns,
    domain: &str,
    mx: &MxReport,
    https: &Https,
) -> NewerRecords {
    let domain = normalize_name(domain);
    let mut out = NewerRecords::default();
    let name = format!("_mta-sts.{domain}");
    match txt(dns, &name, "v=STSv1", Check::MtaSts, &mut out).await {
        Some(Lookup::One(t)) => {
            match lint_mta_sts(&t) {
                Ok(id) => {
                    out.mta_sts_id = Some(id);
                    check_policy(dns, &domain, mx, https, &mut out).await;
                }
                Err(e) => out
                    .findings
                    .push(Finding::new(Code::MtaStsSyntax, format!("{name}: {e}"))),
            }
            out.mta_sts = Some(t);
            out.answered.push((Check::MtaSts, true));
        }
        Some(Lookup::Many(n)) => {
            out.findings.push(Finding::new(
                Code::MtaStsSyntax,
                format!("{n} v=STSv1 records at {name} (RFC 8461 §3.1: senders ignore them)"),
            ));
            out.answered.push((Check::MtaSts, true));
        }
        _ => {}
    }
    out
}

/// The TLS-RPT check (RFC 8460 §3): the `_smtp._tls` TXT record. Fills only the
/// `tls_rpt*` fields.
pub async fn check_tls_rpt(dns: &dyn Dns, domain: &str) -> NewerRecords {
    let domain = normalize_name(domain);
    let mut out = NewerRecords::default();
    let name = format!("_smtp._tls.{domain}");
    match txt(dns, &name, "v=TLSRPTv1", Check::TlsRpt, &mut out).await {
        Some(Lookup::One(t)) => {
            match lint_tls_rpt(&t) {
                Ok(rua) => out.tls_rpt_rua = rua,
                Err(e) => out
                    .findings
                    .push(Finding::new(Code::TlsRptSyntax, format!("{name}: {e}"))),
            }
            out.tls_rpt = Some(t);
            out.answered.push((Check::TlsRpt, true));
        }
        Some(Lookup::Many(n)) => {
            out.findings.push(Finding::new(
                Code::TlsRptSyntax,
                format!("{n} v=TLSRPTv1 records at {name}"),
            ));
            out.answered.push((Check::TlsRpt, true));
        }
        _ => {}
    }
    out
}

/// The BIMI check: the `default._bimi` TXT record, and whether DMARC is enforced enough
/// for receivers to show the logo. Fills only the `bimi*` fields.
pub async fn check_bimi(dns: &dyn Dns, domain: &str, dmarc: &DmarcReport) -> NewerRecords {
    let domain = normalize_name(domain);
    let mut out = NewerRecords::default();
    let name = format!("default._bimi.{domain}");
    match txt(dns, &name, "v=BIMI1", Check::Bimi, &mut out).await {
        Some(Lookup::One(t)) => {
            match lint_bimi(&t) {
                Ok((logo, authority)) => {
                    if authority.is_none() {
                        out.findings.push(Finding::new(
                            Code::BimiNoCertificate,
                            format!("{name} has no a= certificate"),
                        ));
                    }
                    out.bimi_logo = logo;
                    out.bimi_authority = authority;
                }
                Err(e) => out
                    .findings
                    .push(Finding::new(Code::BimiSyntax, format!("{name}: {e}"))),
            }
            // BIMI is shown only for mail under an enforced DMARC policy at pct=100.
            let enforced = matches!(
                dmarc.effective_policy,
                Some(Policy::Quarantine | Policy::Reject)
            ) && dmarc.pct.unwrap_or(100) == 100;
            if dmarc.answered && !enforced {
                let policy = dmarc.effective_policy.map_or("no policy", Policy::as_str);
                out.findings.push(Finding::new(
                    Code::BimiDmarcNotEnforced,
                    format!(
                        "DMARC is {policy} at pct={}; BIMI needs quarantine or reject at pct=100",
                        dmarc.pct.unwrap_or(100)
                    ),
                ));
            }
            out.bimi = Some(t);
            out.answered.push((Check::Bimi, true));
        }
        Some(Lookup::Many(n)) => {
            out.findings.push(Finding::new(
                Code::BimiSyntax,
                format!("{n} v=BIMI1 records at {name}"),
            ));
            out.answered.push((Check::Bimi, true));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mta_sts_records() {
        assert_eq!(
            lint_mta_sts("v=STSv1; id=20240101T000000;").unwrap(),
            "20240101T000000"
        );
        use RecordError::*;
        assert_eq!(lint_mta_sts("v=STSv1;"), Err(MissingTag("id")));
        assert_eq!(
            MissingTag("id").to_string(),
            "the required id= tag is missing"
        );
        assert_eq!(
            lint_mta_sts("v=STSv1; id=a-b"),
            Err(InvalidId("a-b".into()))
        );
        let long = "a".repeat(33);
        assert_eq!(
            lint_mta_sts(&format!("v=STSv1; id={long}")),
            Err(InvalidId(long))
        );
        assert!(lint_mta_sts(&format!("v=STSv1; id={}", "a".repeat(32))).is_ok());
        assert_eq!(lint_mta_sts("id=1; v=STSv1"), Err(NotVersion("STSv1")));
        assert_eq!(
            NotVersion("STSv1").to_string(),
            "the record must start with v=STSv1"
        );
        assert!(matches!(lint_mta_sts("v=STSv1; id"), Err(Tags(_))));
    }

    #[test]
    fn tls_rpt_records() {
        assert_eq!(
            lint_tls_rpt("v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/tls")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            lint_tls_rpt("v=TLSRPTv1;"),
            Err(RecordError::MissingTag("rua"))
        );
        assert_eq!(
            lint_tls_rpt("v=TLSRPTv1; rua=tls@example.com"),
            Err(RecordError::InvalidRua("tls@example.com".into()))
        );
        assert_eq!(
            lint_tls_rpt("v=TLSRPTv1; rua=mailto:a@b.example, http://example.com/x")
                .unwrap_err()
                .to_string(),
            "rua entry \"http://example.com/x\" is neither mailto: nor https:"
        );
        assert_eq!(
            lint_tls_rpt("v=STSv1; rua=mailto:a@b.example"),
            Err(RecordError::NotVersion("TLSRPTv1"))
        );
    }

    #[test]
    fn bimi_records() {
        let (l, a) =
            lint_bimi("v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem")
                .unwrap();
        assert_eq!(
            (l.as_deref(), a.as_deref()),
            (
                Some("https://example.com/logo.svg"),
                Some("https://example.com/vmc.pem")
            )
        );
        assert_eq!(lint_bimi("v=BIMI1; l=; a=;").unwrap(), (None, None));
        assert_eq!(
            lint_bimi("v=BIMI1; l=http://example.com/logo.svg"),
            Err(RecordError::NotHttps {
                tag: "l",
                value: "http://example.com/logo.svg".into()
            })
        );
        assert_eq!(
            lint_bimi("v=BIMI1; a=https://"),
            Err(RecordError::NotHttps {
                tag: "a",
                value: "https://".into()
            })
        );
        assert_eq!(
            lint_bimi("v=BIMI2; l=https://x.example/l.svg"),
            Err(RecordError::NotVersion("BIMI1"))
        );
    }
}
