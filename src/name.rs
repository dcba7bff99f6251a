//! Domain names as text: the one spelling used as a key and in output, the ASCII form DNS
//! carries, the reverse-lookup name of an address, and the checks of a name's shape.
//!
//! Everything here is pure and depends on no other module of the crate, so that the
//! config, the checks, the resolver and the HTTP side can all use it without importing
//! each other (before it existed, the checks reached into `config` for
//! [`is_domain_name`] while `config` reached into the checks for the DMARC policy).

use std::net::IpAddr;

/// The longest name in presentation form without the trailing dot (RFC 1035 §2.3.4: 255
/// octets on the wire, which is 253 characters of text).
const MAX_NAME: usize = 253;
/// The longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// Lower-case, no trailing dot: the one spelling of a name used as a key and in output.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// An internationalised name in its ASCII (punycode) form, as DNS carries it
/// (`bücher.example` → `xn--bcher-kva.example`); ASCII names pass through lower-cased.
/// `None` when the name cannot be encoded (IDNA rejects it).
pub fn to_ascii_name(name: &str) -> Option<String> {
    if name.is_ascii() {
        return Some(normalize_name(name));
    }
    hickory_proto::rr::Name::from_utf8(name.trim_end_matches('.'))
        .ok()
        .map(|n| normalize_name(&n.to_ascii()))
}

/// The one spelling of a domain used as a key, a label and a query name: ASCII (punycode)
/// when the name converts, else lower-cased as given (a name that is not a valid IDN is
/// then refused by [`is_domain_name`] where it matters).
pub fn canonical(name: &str) -> String {
    to_ascii_name(name).unwrap_or_else(|| normalize_name(name))
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`, nibble form for IPv6).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

/// The lengths DNS allows, and nothing more: labels of 1 to 63 characters, 253 in all (a
/// trailing dot ignored). Any character passes; SPF (RFC 7208 §4.3) calls a name
/// malformed only for its shape, since a TXT-published name may hold any octet.
pub fn has_valid_labels(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.len() <= MAX_NAME
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= MAX_LABEL)
}

/// A host or service name as configs and records name one: [`has_valid_labels`], and
/// every label letters, digits, `-` and `_` (the underscore of `_dmarc`, `_25._tcp` and
/// DKIM selectors). Expects the ASCII form (see [`to_ascii_name`]).
pub fn is_domain_name(name: &str) -> bool {
    has_valid_labels(name)
        && name
            .trim_end_matches('.')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A name that is not a domain name: empty, a label too long, a character outside
/// letters, digits, `-` and `_`, or (given in Unicode) one IDNA refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid domain name {0:?}")]
pub struct InvalidDomainName(pub String);

/// A DKIM selector that is not a sequence of DNS labels (RFC 6376 §3.1: `selector =
/// sub-domain *( "." sub-domain )`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DKIM selector {0:?}")]
pub struct InvalidSelector(pub String);

/// A domain as the checks take it: lower-case ASCII, no trailing dot, of valid shape
/// ([`is_domain_name`]). Built only through [`DomainName::new`] or
/// [`DomainName::from_unicode`], so a check never meets an unchecked or differently
/// spelled name (two spellings would be two metric series). Shown, serialised and
/// compared as that text.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

impl DomainName {
    /// An ASCII name, normalised ([`normalize_name`]) then checked. A non-ASCII name is
    /// refused here; see [`DomainName::from_unicode`] for callers that accept IDNs.
    pub fn new(name: &str) -> Result<DomainName, InvalidDomainName> {
        let normal = normalize_name(name);
        if is_domain_name(&normal) {
            Ok(DomainName(normal))
        } else {
            Err(InvalidDomainName(name.to_string()))
        }
    }

    /// A name that may be internationalised: converted to its ASCII (punycode) form
    /// ([`to_ascii_name`]) first, then as [`DomainName::new`].
    pub fn from_unicode(name: &str) -> Result<DomainName, InvalidDomainName> {
        to_ascii_name(name)
            .and_then(|ascii| DomainName::new(&ascii).ok())
            .ok_or_else(|| InvalidDomainName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A DKIM selector: one or more DNS labels, no trailing dot. Its case is kept as written
/// (DNS compares names without case, and the selector label shows what was configured).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Selector(String);

impl Selector {
    pub fn new(selector: &str) -> Result<Selector, InvalidSelector> {
        let bare = selector.strip_suffix('.').unwrap_or(selector);
        if is_domain_name(bare) {
            Ok(Selector(bare.to_string()))
        } else {
            Err(InvalidSelector(selector.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Both show as their text: `{:?}` quotes it as it quotes a `String`, so a message that
/// formats a name with `{name:?}` reads the same whichever it holds.
macro_rules! text_newtype {
    ($t:ty) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl From<$t> for String {
            fn from(name: $t) -> String {
                name.0
            }
        }
    };
}
text_newtype!(DomainName);
text_newtype!(Selector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_names() {
        assert_eq!(
            to_ascii_name("Bücher.Example.").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(
            to_ascii_name("Example.COM.").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalize_name("MX1.Example.NET."), "mx1.example.net");
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn domain_names() {
        let label63 = "a".repeat(63);
        let long = [label63.as_str(); 4].join(".");
        for (name, valid) in [
            ("example.com", true),
            ("example.com.", true),
            ("_dmarc.example.com", true),
            ("s1", true),
            ("mx-1.example", true),
            ("", false),
            (".", false),
            ("a..b", false),
            (".example.com", false),
            ("exa mple.com", false),
            ("example.com/", false),
            ("bücher.example", false),
            ("*.example.com", false),
            (&label63, true),
            (&format!("{label63}a"), false),
            (&long[..253], true),
            (&format!("{}.", &long[..253]), true),
            (&long[..254], false),
        ] {
            assert_eq!(is_domain_name(name), valid, "{name:?}");
        }
    }

    #[test]
    fn domain_name_values_are_normalised_and_checked() {
        assert_eq!(
            DomainName::new("MX1.Example.NET.").unwrap(),
            "mx1.example.net"
        );
        assert_eq!(
            DomainName::new("a..b").unwrap_err().to_string(),
            "invalid domain name \"a..b\""
        );
        assert!(DomainName::new("bücher.example").is_err());
        let name = DomainName::new("example.com").unwrap();
        assert_eq!(format!("{name:?} {name}"), "\"example.com\" example.com");
        assert_eq!(
            DomainName::from_unicode("Bücher.Example.").unwrap(),
            "xn--bcher-kva.example"
        );
        assert!(DomainName::from_unicode("exa mple.com").is_err());
        assert_eq!(
            serde_json::to_string(&DomainName::new("example.com").unwrap()).unwrap(),
            "\"example.com\""
        );
    }

    #[test]
    fn selectors_keep_their_case_and_lose_a_trailing_dot() {
        assert_eq!(Selector::new("Google.").unwrap().to_string(), "Google");
        assert_eq!(Selector::new("s1.eu").unwrap(), "s1.eu");
        for bad in ["", ".", "s 1", "a..b"] {
            assert_eq!(
                Selector::new(bad).unwrap_err(),
                InvalidSelector(bad.to_string())
            );
        }
    }

    #[test]
    fn label_lengths_accept_any_character() {
        assert!(has_valid_labels("exa mple.com"));
        assert!(has_valid_labels("%{i}.example"));
        assert!(!has_valid_labels(""));
        assert!(!has_valid_labels("a..b"));
        assert!(!has_valid_labels(&"a".repeat(64)));
        assert!(has_valid_labels(&"a.".repeat(127)));
        assert!(!has_valid_labels(&"a.".repeat(128)));
    }
}
