//! What to check for one domain. Built in one place per source: [`DomainSpec::named`] for a
//! bare name (the domains file, `/probe` with `probe_any_domain`), the config's
//! `Config::domain_spec` for a `[[domain]]` entry (which adds `[dns] blocklists`), and the
//! `check` command's own flags through [`DomainSpec::named`] and field updates.

use std::net::IpAddr;

use super::dmarc::Policy;

/// What to check for one domain (from the config or the `check` command line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainSpec {
    /// Lower-case ASCII (punycode), no trailing dot.
    pub name: String,
    pub dkim_selectors: Vec<String>,
    pub sending_ips: Vec<IpAddr>,
    pub helo: Option<String>,
    pub expect_dmarc_policy: Option<Policy>,
    pub parked: bool,
    /// DNS blocklists to look the sending IPs up in (`[dns] blocklists`).
    pub blocklists: Vec<String>,
}

impl DomainSpec {
    /// A domain with nothing but its name: SPF, DMARC, MX and the optional records.
    /// The name is normalised (lower case, punycode, no trailing dot).
    pub fn named(name: &str) -> DomainSpec {
        DomainSpec {
            name: crate::name::canonical(name),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(DomainSpec::named("Example.COM.").name, "example.com");
        assert_eq!(
            DomainSpec::named("Bücher.example").name,
            "xn--bcher-kva.example"
        );
        assert!(DomainSpec::named("example.com").blocklists.is_empty());
    }
}
