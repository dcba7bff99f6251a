//! What to check for one domain, its name and selectors already checked
//! ([`DomainName`], [`Selector`]). Built in one place per source: [`DomainSpec::named`] for a
//! bare name (the domains file, `/probe` with `probe_any_domain`), the config's
//! `Config::domain_spec` for a `[[domain]]` entry (which adds `[dns] blocklists`), and the
//! `check` command's own flags through [`DomainSpec::named`] and field updates.

use std::net::IpAddr;

use super::dmarc::Policy;
use crate::name::{DomainName, Selector};

/// What to check for one domain (from the config or the `check` command line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainSpec {
    pub name: DomainName,
    pub dkim_selectors: Vec<Selector>,
    pub sending_ips: Vec<IpAddr>,
    pub helo: Option<String>,
    pub expect_dmarc_policy: Option<Policy>,
    pub parked: bool,
    /// DNS blocklists to look the sending IPs up in (`[dns] blocklists`).
    pub blocklists: Vec<String>,
}

impl DomainSpec {
    /// A domain with nothing but its name: SPF, DMARC, MX and the optional records.
    pub fn named(name: DomainName) -> DomainSpec {
        DomainSpec {
            name,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_spec_checks_only_the_name() {
        let spec = DomainSpec::named(DomainName::new("Example.COM.").unwrap());
        assert_eq!(spec.name, "example.com");
        assert!(spec.blocklists.is_empty() && spec.dkim_selectors.is_empty());
    }
}
