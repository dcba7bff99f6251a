//! Reverse DNS of each sending IP, forward confirmation (FCrDNS) and the HELO name.
//!
//! CONTRACT: keep these public names and fields; add freely.

use std::net::IpAddr;

use serde::Serialize;

use crate::dns::Dns;
use crate::findings::Finding;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PtrIpReport {
    pub ip: Option<IpAddr>,
    pub ptr_names: Vec<String>,
    /// The PTR name whose A/AAAA records contain the IP.
    pub forward_confirmed: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PtrReport {
    pub ips: Vec<PtrIpReport>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub answered: bool,
}

pub async fn check(dns: &dyn Dns, sending_ips: &[IpAddr], helo: Option<&str>) -> PtrReport {
    let _ = (dns, sending_ips, helo);
    PtrReport {
        answered: true,
        ..Default::default()
    }
}
