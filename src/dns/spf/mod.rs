//! SPF (RFC 7208): the record at the domain, the whole include/redirect tree walked with
//! the receiver's counting, and each configured sending IP evaluated to its real result.
//!
//! CONTRACT (used by the scheduler, metrics, `check` and the mail probe): keep these
//! public names and fields; add freely.

use std::net::IpAddr;

use serde::Serialize;

use crate::dns::Dns;
use crate::findings::Finding;

/// RFC 7208 §2.6 results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

/// Which identity an IP was evaluated for (RFC 7208 §2.3, §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    MailFrom,
    Helo,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfIpResult {
    pub ip: IpAddr,
    pub identity: Identity,
    pub result: SpfResult,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpfReport {
    /// The `v=spf1` record at the domain (`None`: no record, or the lookup failed).
    pub record: Option<String>,
    /// `-all ~all ?all +all`, or `None` when the top-level record has no `all`.
    pub all: Option<&'static str>,
    /// DNS-querying terms over the whole tree (RFC 7208 §4.6.4), for a sender matching nothing.
    pub dns_lookups: u32,
    pub void_lookups: u32,
    pub ip_results: Vec<SpfIpResult>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    /// False when a DNS failure left the check unanswered (`findings` then holds `dns.error`).
    #[serde(skip)]
    pub answered: bool,
}

/// Lints the SPF of `domain` and evaluates each sending IP (for `postmaster@domain`, and
/// for the HELO identity too when `helo` is set).
pub async fn check(
    dns: &dyn Dns,
    domain: &str,
    sending_ips: &[IpAddr],
    helo: Option<&str>,
) -> SpfReport {
    let _ = (dns, domain, sending_ips, helo);
    SpfReport {
        answered: true,
        ..Default::default()
    }
}

/// RFC 7208 §4 check_host(): the result a receiver would reach for mail from `ip` with
/// MAIL FROM `sender` (or `postmaster@helo` when empty) after HELO `helo`.
pub async fn check_host(
    dns: &dyn Dns,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> SpfResult {
    let _ = (dns, ip, domain, sender, helo);
    SpfResult::None
}
