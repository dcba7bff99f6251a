//! DKIM key records (RFC 6376 §3.6.1) of each configured selector.
//!
//! CONTRACT: keep these public names and fields; add freely.

use serde::Serialize;

use crate::dns::Dns;
use crate::findings::Finding;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DkimKeyReport {
    pub selector: String,
    /// The key record as published (character-strings joined); `None` when absent/unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// `rsa` or `ed25519`; `None` when there is no usable key.
    pub key_type: Option<String>,
    /// Read from the key itself (RSA modulus length; 256 for ed25519).
    pub key_bits: Option<u32>,
    /// `t=y`.
    pub testing: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DkimReport {
    pub keys: Vec<DkimKeyReport>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub answered: bool,
}

pub async fn check(dns: &dyn Dns, domain: &str, selectors: &[String]) -> DkimReport {
    let _ = (dns, domain, selectors);
    DkimReport {
        answered: true,
        ..Default::default()
    }
}
