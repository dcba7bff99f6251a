//! The DMARC record grammar (RFC 7489 §6.4, with RFC 9989's `np`, `psd` and `t`).
//!
//! ```text
//! dmarc-record = dmarc-version dmarc-sep *(dmarc-tag dmarc-sep)   ; v= first
//! dmarc-request = "p" *WSP "=" *WSP ( "none" / "quarantine" / "reject" )
//! dmarc-uri     = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]    ; in rua/ruf, comma-separated
//! ```
//! Parsing never fails as a whole: every problem is collected, so that one bad tag is
//! reported by name while the rest of the record is still read.

use serde::Serialize;

use super::Policy;
use crate::checks::taglist;

/// A parsed `mailto:` report URI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportUri {
    pub uri: String,
    pub address: String,
    /// Lower-case domain of the address.
    pub domain: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DmarcRecord {
    pub p: Option<Policy>,
    pub sp: Option<Policy>,
    pub np: Option<Policy>,
    pub pct: Option<u8>,
    pub rua: Vec<ReportUri>,
    pub ruf: Vec<ReportUri>,
    pub adkim: Option<char>,
    pub aspf: Option<char>,
    pub fo: Option<String>,
    pub ri: Option<u32>,
    pub psd: Option<char>,
    pub testing: Option<bool>,
    /// Tag-level problems (`dmarc.syntax`), each naming the tag.
    #[serde(skip)]
    pub errors: Vec<String>,
    /// rua/ruf entries that are not valid `mailto:` URIs (`dmarc.invalid_uri`).
    #[serde(skip)]
    pub invalid_uris: Vec<String>,
}

/// True when the text is a DMARC record at all (RFC 7489 §6.6.3: others are discarded).
pub fn is_dmarc(text: &str) -> bool {
    let t = text.trim_start();
    let Some(rest) = t.strip_prefix('v').or_else(|| t.strip_prefix('V')) else {
        return false;
    };
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix('=') else {
        return false;
    };
    let rest = rest.trim_start();
    rest.starts_with("DMARC1")
        && rest[6..]
            .trim_start()
            .chars()
            .next()
            .is_none_or(|c| c == ';')
}

fn policy(tag: &str, value: &str, errors: &mut Vec<String>) -> Option<Policy> {
    let p = Policy::parse(value);
    if p.is_none() {
        errors.push(format!("{tag}={value:?} is not none, quarantine or reject"));
    }
    p
}

fn flag(tag: &str, value: &str, allowed: &[char], errors: &mut Vec<String>) -> Option<char> {
    let v = value.to_ascii_lowercase();
    let mut chars = v.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if allowed.contains(&c) => Some(c),
        _ => {
            let list: Vec<String> = allowed.iter().map(|c| c.to_string()).collect();
            errors.push(format!("{tag}={value:?} is not one of {}", list.join(", ")));
            None
        }
    }
}

/// Why a `rua=`/`ruf=` entry is not a report address; each carries the URI as written so
/// the finding shows which entry of the list is at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportUriError {
    /// A `!` suffix that is not digits with at most one unit letter (`!50k`, §6.2).
    #[error("{uri:?}: bad size limit {size:?}")]
    BadSizeLimit { uri: String, size: String },
    /// Only `mailto:` is defined for reports (§6.2 leaves others to agreement).
    #[error("{0:?} is not a mailto: URI")]
    NotMailto(String),
    #[error("{0:?}: bad %-escape")]
    BadEscape(String),
    #[error("{0:?}: no address after mailto:")]
    NoAddress(String),
    /// An empty local part, white space, or a domain that is not a dotted host name.
    #[error("{uri:?}: {address:?} is not a valid address")]
    InvalidAddress { uri: String, address: String },
}

/// RFC 7489 §6.2 / RFC 3986: `mailto:` with an address, optional `!size` suffix.
pub fn parse_uri(raw: &str) -> Result<ReportUri, ReportUriError> {
    let uri = raw.trim();
    let (base, size) = match uri.rsplit_once('!') {
        Some((b, s)) => (b, Some(s)),
        None => (uri, None),
    };
    if let Some(size) = size {
        let digits = size.trim_end_matches(['k', 'm', 'g', 't', 'K', 'M', 'G', 'T']);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || size.len() - digits.len() > 1
        {
            return Err(ReportUriError::BadSizeLimit {
                uri: uri.to_string(),
                size: size.to_string(),
            });
        }
    }
    let Some(address) = base
        .strip_prefix("mailto:")
        .or_else(|| base.strip_prefix("MAILTO:"))
    else {
        return Err(ReportUriError::NotMailto(uri.to_string()));
    };
    let address =
        percent_decode(address).ok_or_else(|| ReportUriError::BadEscape(uri.to_string()))?;
    let address = address.split('?').next().unwrap_or("").to_string();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(ReportUriError::NoAddress(uri.to_string()));
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if local.is_empty()
        || local.contains(char::is_whitespace)
        || !crate::name::is_domain_name(&domain)
        || !domain.contains('.')
    {
        return Err(ReportUriError::InvalidAddress {
            uri: uri.to_string(),
            address,
        });
    }
    Ok(ReportUri {
        uri: uri.to_string(),
        address: address.clone(),
        domain,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn parse(text: &str) -> DmarcRecord {
    let mut rec = DmarcRecord::default();
    let mut first = true;
    let mut seen = taglist::Seen::default();
    for tag in taglist::split(text) {
        // Every problem is reported, so a bad part is noted and the walk goes on.
        let tag = match tag {
            Ok(tag) => tag,
            Err(e) => {
                rec.errors.push(e.to_string());
                first = false;
                continue;
            }
        };
        let name = tag.name.to_ascii_lowercase();
        let value = tag.value;
        if first {
            first = false;
            if name != "v" || value != "DMARC1" {
                rec.errors
                    .push("the record must start with v=DMARC1".to_string());
            }
            if name == "v" {
                continue;
            }
        } else if name == "v" {
            rec.errors.push("v= must be the first tag".to_string());
            continue;
        }
        if let Err(e) = seen.first(&name) {
            rec.errors.push(e.to_string());
            continue;
        }
        let errors = &mut rec.errors;
        match name.as_str() {
            "p" => rec.p = policy("p", value, errors),
            "sp" => rec.sp = policy("sp", value, errors),
            "np" => rec.np = policy("np", value, errors),
            "pct" => match value.parse::<u8>() {
                Ok(n) if n <= 100 => rec.pct = Some(n),
                _ => errors.push(format!("pct={value:?} is not an integer from 0 to 100")),
            },
            "adkim" => rec.adkim = flag("adkim", value, &['r', 's'], errors),
            "aspf" => rec.aspf = flag("aspf", value, &['r', 's'], errors),
            "psd" => rec.psd = flag("psd", value, &['y', 'n', 'u'], errors),
            "t" => rec.testing = flag("t", value, &['y', 'n'], errors).map(|c| c == 'y'),
            "fo" => {
                let ok = value
                    .split(':')
                    .all(|o| matches!(o.trim(), "0" | "1" | "d" | "s"));
                if ok {
                    rec.fo = Some(value.to_string());
                } else {
                    errors.push(format!(
                        "fo={value:?} is not a colon-separated list of 0, 1, d, s"
                    ));
                }
            }
            "ri" => match value.parse::<u32>() {
                Ok(n) => rec.ri = Some(n),
                Err(_) => errors.push(format!("ri={value:?} is not a number of seconds")),
            },
            "rf" if value.split(':').any(|f| f.trim().is_empty()) => {
                errors.push(format!(
                    "rf={value:?} is not a colon-separated list of formats"
                ));
            }
            "rua" | "ruf" => {
                for raw in value.split(',').filter(|u| !u.trim().is_empty()) {
                    match parse_uri(raw) {
                        Ok(u) if name == "rua" => rec.rua.push(u),
                        Ok(u) => rec.ruf.push(u),
                        Err(e) => rec.invalid_uris.push(format!("{name}: {e}")),
                    }
                }
            }
            _ => {} // RFC 7489 §6.3: unknown tags are ignored
        }
    }
    if rec.p.is_none() && !rec.errors.iter().any(|e| e.starts_with("p=")) {
        rec.errors
            .push("the required p= tag is missing".to_string());
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_record() {
        let r = parse("v=DMARC1; p=reject; sp=quarantine; np=reject; pct=50; rua=mailto:a@example.com,mailto:b@example.net!10m; ruf=mailto:f@example.com; adkim=s; aspf=r; fo=1:d; ri=3600; rf=afrf; psd=n; t=n");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.invalid_uris.is_empty());
        assert_eq!(
            (r.p, r.sp, r.np),
            (
                Some(Policy::Reject),
                Some(Policy::Quarantine),
                Some(Policy::Reject)
            )
        );
        assert_eq!(r.pct, Some(50));
        assert_eq!(r.rua.len(), 2);
        assert_eq!(r.rua[1].domain, "example.net");
        assert_eq!(r.adkim, Some('s'));
        assert_eq!(r.testing, Some(false));
    }

    #[test]
    fn spacing_and_case() {
        let r = parse("  v = DMARC1 ;P = Reject ; ;");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.p, Some(Policy::Reject));
    }

    #[test]
    fn problems_are_named() {
        let errs = |t: &str| parse(t).errors;
        assert_eq!(
            errs("p=reject; v=DMARC1"),
            [
                "the record must start with v=DMARC1",
                "v= must be the first tag"
            ]
        );
        assert_eq!(
            errs("v=DMARC1; p=block"),
            ["p=\"block\" is not none, quarantine or reject"]
        );
        assert_eq!(
            errs("v=DMARC1; rua=mailto:a@example.com"),
            ["the required p= tag is missing"]
        );
        assert_eq!(
            errs("v=DMARC1; p=none; pct=150"),
            ["pct=\"150\" is not an integer from 0 to 100"]
        );
        assert_eq!(
            errs("v=DMARC1; p=none; adkim=x"),
            ["adkim=\"x\" is not one of r, s"]
        );
        assert_eq!(
            errs("v=DMARC1; p=none; fo=2"),
            ["fo=\"2\" is not a colon-separated list of 0, 1, d, s"]
        );
        assert_eq!(
            errs("v=DMARC1; p=none; p=reject"),
            ["tag p= appears more than once"]
        );
        assert!(
            errs("v=DMARC1; p=none; foo=bar").is_empty(),
            "unknown tags are ignored"
        );
    }

    #[test]
    fn report_uris() {
        assert!(parse_uri("mailto:dmarc@example.com").is_ok());
        assert!(parse_uri("mailto:dmarc%2Breports@example.com!50k").is_ok());
        assert_eq!(
            parse_uri("dmarc@example.com").unwrap_err().to_string(),
            "\"dmarc@example.com\" is not a mailto: URI"
        );
        assert!(matches!(
            parse_uri("https://example.com/report"),
            Err(ReportUriError::NotMailto(_))
        ));
        assert_eq!(
            parse_uri("mailto:dmarc@example.com!big"),
            Err(ReportUriError::BadSizeLimit {
                uri: "mailto:dmarc@example.com!big".into(),
                size: "big".into()
            })
        );
        assert!(matches!(
            parse_uri("mailto:@example.com"),
            Err(ReportUriError::InvalidAddress { .. })
        ));
        assert!(matches!(
            parse_uri("mailto:dmarc@localhost"),
            Err(ReportUriError::InvalidAddress { address, .. }) if address == "dmarc@localhost"
        ));
        assert!(matches!(
            parse_uri("mailto:dmarc%zz@example.com"),
            Err(ReportUriError::BadEscape(_))
        ));
        assert!(matches!(
            parse_uri("mailto:example.com"),
            Err(ReportUriError::NoAddress(_))
        ));
        let r = parse("v=DMARC1; p=none; rua=mailto:ok@example.com, bad@example.com");
        assert_eq!(r.rua.len(), 1);
        assert_eq!(r.invalid_uris.len(), 1);
    }

    #[test]
    fn record_selection() {
        assert!(is_dmarc("v=DMARC1; p=none"));
        assert!(is_dmarc("v=DMARC1"));
        assert!(is_dmarc(" V = DMARC1 ;p=none"));
        assert!(!is_dmarc("v=DMARC10; p=none"));
        assert!(!is_dmarc("v=spf1 -all"));
        assert!(!is_dmarc("p=none; v=DMARC1"));
    }
}
