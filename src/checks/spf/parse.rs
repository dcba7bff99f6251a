//! The SPF record grammar (RFC 7208 §4.5, §4.6.1, §12). Parsing is separate from
//! evaluation so that a syntax error can name the term at fault.
//!
//! ```text
//! record           = version terms *SP
//! version          = "v=spf1"
//! terms            = *( 1*SP ( directive / modifier ) )
//! directive        = [ qualifier ] mechanism
//! qualifier        = "+" / "-" / "?" / "~"
//! mechanism        = ( all / include / a / mx / ptr / ip4 / ip6 / exists )
//! modifier         = redirect / explanation / unknown-modifier
//! unknown-modifier = name "=" macro-string
//! dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    pub fn prefix(self) -> &'static str {
        match self {
            Qualifier::Pass => "+",
            Qualifier::Fail => "-",
            Qualifier::SoftFail => "~",
            Qualifier::Neutral => "?",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    A {
        domain: Option<String>,
        cidr4: u8,
        cidr6: u8,
    },
    Mx {
        domain: Option<String>,
        cidr4: u8,
        cidr6: u8,
    },
    Ptr(Option<String>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(String),
}

impl Mechanism {
    /// Mechanisms that cost a DNS query and count toward the limit of 10 (§4.6.4).
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
    /// The term as written, for messages.
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<String>,
    pub exp: Option<String>,
}

impl Record {
    pub fn all(&self) -> Option<Qualifier> {
        self.directives
            .iter()
            .find(|d| d.mechanism == Mechanism::All)
            .map(|d| d.qualifier)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub term: String,
    pub reason: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "term {:?}: {}", self.term, self.reason)
    }
}

/// §4.5: a record is a TXT record starting with "v=spf1" followed by a space or its end.
pub fn is_spf(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"v=spf1") && (b.len() == 6 || b[6] == b' ')
}

fn err(term: &str, reason: impl Into<String>) -> SyntaxError {
    SyntaxError {
        term: term.to_string(),
        reason: reason.into(),
    }
}

/// What is wrong in a macro-string (§7.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MacroError {
    /// `macro-literal = %x21-24 / %x26-7E`: visible ASCII only.
    #[error("character {0:?} is not allowed")]
    BadCharacter(char),
    #[error("unterminated macro")]
    Unterminated,
    /// `macro-letter = "s" / "l" / "o" / "d" / "i" / "p" / "h" / "c" / "r" / "t" / "v"`,
    /// with c, r and t only in `exp=` explanations.
    #[error("unknown macro letter {0:?}")]
    UnknownLetter(char),
    /// `transformers = *DIGIT [ "r" ]`: a digit count of 0 is meaningless (§7.3).
    #[error("a macro's digit transformer must be at least 1")]
    ZeroDigits,
    /// `delimiter = "." / "-" / "+" / "," / "/" / "_" / "="`.
    #[error("bad macro delimiters {0:?}")]
    BadDelimiters(String),
    /// `macro-expand = ( "%{" … "}" ) / "%%" / "%_" / "%-"`.
    #[error("'%' followed by {0:?}")]
    BadEscape(Option<char>),
}

/// §7.1 macro-string: literals and `%{letter [digits] [r] [delimiters]}`, `%%`, `%_`, `%-`.
pub fn check_macro_string(s: &str, allow_exp_letters: bool) -> Result<(), MacroError> {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if !(c as u32 >= 0x21 && c as u32 <= 0x7e) {
            return Err(MacroError::BadCharacter(c));
        }
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('%' | '_' | '-') => {}
            Some('{') => {
                let letter = chars.next().ok_or(MacroError::Unterminated)?;
                let lower = letter.to_ascii_lowercase();
                let ok = "slodiphv".contains(lower) || (allow_exp_letters && "crt".contains(lower));
                if !ok {
                    return Err(MacroError::UnknownLetter(letter));
                }
                let mut body = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => body.push(ch),
                        None => return Err(MacroError::Unterminated),
                    }
                }
                let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
                let mut rest = &body[digits.len()..];
                if !digits.is_empty() && digits.parse::<u32>().map_or(true, |n| n == 0) {
                    return Err(MacroError::ZeroDigits);
                }
                if let Some(r) = rest.strip_prefix(['r', 'R']) {
                    rest = r;
                }
                if !rest.chars().all(|c| ".-+,/_=".contains(c)) {
                    return Err(MacroError::BadDelimiters(rest.to_string()));
                }
            }
            other => return Err(MacroError::BadEscape(other)),
        }
    }
    Ok(())
}

/// §7.1 domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand.
fn check_domain_spec(term: &str, spec: &str) -> Result<String, SyntaxError> {
    if spec.is_empty() {
        return Err(err(term, "empty domain"));
    }
    check_macro_string(spec, false).map_err(|e| err(term, e.to_string()))?;
    if spec.ends_with('}') {
        return Ok(spec.to_string());
    }
    let trimmed = spec.strip_suffix('.').unwrap_or(spec);
    let toplabel = trimmed.rsplit('.').next().unwrap_or("");
    let has_dot = trimmed.contains('.');
    let valid_top = !toplabel.is_empty()
        && toplabel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && toplabel.bytes().any(|b| b.is_ascii_alphabetic())
        && !toplabel.starts_with('-')
        && !toplabel.ends_with('-');
    if !has_dot || !valid_top {
        return Err(err(
            term,
            format!("{spec:?} does not end in a valid top-level label"),
        ));
    }
    Ok(spec.to_string())
}

fn cidr(term: &str, text: &str, max: u8) -> Result<u8, SyntaxError> {
    if text.is_empty()
        || (text.len() > 1 && text.starts_with('0'))
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err(term, format!("bad CIDR length {text:?}")));
    }
    match text.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(err(term, format!("CIDR length {text} is over {max}"))),
    }
}

/// The dual-cidr-length at the end of an a/mx term: `/N`, `//N` or `/N//N`. Taken from
/// the right, since a domain-spec may itself contain '/' (RFC 7208 §7.1: any visible
/// character but '%').
fn split_cidr(rest: &str) -> (&str, &str) {
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut end = rest.len();
    if let Some(i) = rest[..end].rfind("//") {
        if is_num(&rest[i + 2..end]) {
            end = i;
        }
    }
    if let Some(i) = rest[..end].rfind('/') {
        if is_num(&rest[i + 1..end]) && !rest[..i].ends_with('/') {
            end = i;
        }
    }
    // A trailing '/' or '/x' that is not a number is a bad CIDR, not part of the name,
    // when the term has no domain-spec at all (`a/x`).
    if end == rest.len() && !rest.starts_with(':') {
        if let Some(i) = rest.find('/') {
            end = i;
        }
    }
    (&rest[..end], &rest[end..])
}

/// Splits `[":" domain-spec] [dual-cidr-length]` of a and mx.
fn domain_and_cidr(term: &str, rest: &str) -> Result<(Option<String>, u8, u8), SyntaxError> {
    let (spec_part, cidr_part) = split_cidr(rest);
    let domain = match spec_part.strip_prefix(':') {
        Some(spec) => Some(check_domain_spec(term, spec)?),
        None if spec_part.is_empty() => None,
        None => return Err(err(term, "unexpected text after the mechanism name")),
    };
    let (mut c4, mut c6) = (32, 128);
    if !cidr_part.is_empty() {
        let body = &cidr_part[1..];
        if let Some(v6) = body.strip_prefix('/') {
            c6 = cidr(term, v6, 128)?;
        } else if let Some((v4, v6)) = body.split_once("//") {
            c4 = cidr(term, v4, 32)?;
            c6 = cidr(term, v6, 128)?;
        } else {
            c4 = cidr(term, body, 32)?;
        }
    }
    Ok((domain, c4, c6))
}

fn parse_directive(term: &str) -> Result<Directive, SyntaxError> {
    let (qualifier, rest) = match term.chars().next() {
        Some('+') => (Qualifier::Pass, &term[1..]),
        Some('-') => (Qualifier::Fail, &term[1..]),
        Some('~') => (Qualifier::SoftFail, &term[1..]),
        Some('?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let name_len = rest.find([':', '/']).unwrap_or(rest.len());
    // (the mechanism name ends at the first ':' or '/'; what follows is parsed per mechanism)
    let name = rest[..name_len].to_ascii_lowercase();
    let args = &rest[name_len..];
    let mechanism = match name.as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "include" | "exists" => {
            let spec = args
                .strip_prefix(':')
                .ok_or_else(|| err(term, format!("{name} needs ':domain'")))?;
            let domain = check_domain_spec(term, spec)?;
            if name == "include" {
                Mechanism::Include(domain)
            } else {
                Mechanism::Exists(domain)
            }
        }
        "a" => {
            let (domain, cidr4, cidr6) = domain_and_cidr(term, args)?;
            Mechanism::A {
                domain,
                cidr4,
                cidr6,
            }
        }
        "mx" => {
            let (domain, cidr4, cidr6) = domain_and_cidr(term, args)?;
            Mechanism::Mx {
                domain,
                cidr4,
                cidr6,
            }
        }
        "ptr" => match args.strip_prefix(':') {
            Some(spec) => Mechanism::Ptr(Some(check_domain_spec(term, spec)?)),
            None if args.is_empty() => Mechanism::Ptr(None),
            None => return Err(err(term, "unexpected text after ptr")),
        },
        "ip4" | "ip6" => {
            let value = args
                .strip_prefix(':')
                .ok_or_else(|| err(term, format!("{name} needs ':address'")))?;
            let (addr, len) = match value.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (value, None),
            };
            if name == "ip4" {
                let ip: Ipv4Addr = addr
                    .parse()
                    .map_err(|_| err(term, format!("{addr:?} is not an IPv4 address")))?;
                Mechanism::Ip4(ip, len.map_or(Ok(32), |l| cidr(term, l, 32))?)
            } else {
                let ip: Ipv6Addr = addr
                    .parse()
                    .map_err(|_| err(term, format!("{addr:?} is not an IPv6 address")))?;
                Mechanism::Ip6(ip, len.map_or(Ok(128), |l| cidr(term, l, 128))?)
            }
        }
        _ => return Err(err(term, "unknown mechanism")),
    };
    Ok(Directive {
        qualifier,
        mechanism,
        text: term.to_string(),
    })
}

/// Parses a record already selected by [`is_spf`].
pub fn parse(text: &str) -> Result<Record, SyntaxError> {
    if !is_spf(text) {
        return Err(err(text, "the record does not start with v=spf1"));
    }
    let mut record = Record::default();
    // §4.6.1: terms are separated by spaces (one or more).
    for term in text[6..].split(' ').filter(|t| !t.is_empty()) {
        // A modifier is `name=`; a mechanism never contains '=' before ':' or '/'.
        let eq = term.find('=');
        let sep = term.find([':', '/']);
        let is_modifier = match (eq, sep) {
            (Some(e), Some(s)) => e < s,
            (Some(_), None) => true,
            _ => false,
        };
        if is_modifier {
            let (name, value) = term.split_at(eq.unwrap_or(0));
            let value = &value[1..];
            let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid_name {
                return Err(err(term, "invalid modifier name"));
            }
            match name.to_ascii_lowercase().as_str() {
                "redirect" => {
                    if record.redirect.is_some() {
                        return Err(err(term, "redirect= appears more than once"));
                    }
                    record.redirect = Some(check_domain_spec(term, value)?);
                }
                "exp" => {
                    if record.exp.is_some() {
                        return Err(err(term, "exp= appears more than once"));
                    }
                    record.exp = Some(check_domain_spec(term, value)?);
                }
                _ => check_macro_string(value, true).map_err(|e| err(term, e.to_string()))?,
            }
        } else {
            record.directives.push(parse_directive(term)?);
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_records() {
        assert!(is_spf("v=spf1"));
        assert!(is_spf("V=SPF1 -all"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("spf2.0/pra -all"));
    }

    #[test]
    fn parses_every_mechanism() {
        let r = parse("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a a:mail.example.com/28//64 mx/24 ptr:example.com exists:%{i}._spf.%{d} include:_spf.example.net ~all redirect=_spf.example.org exp=exp.%{d} foo=bar").unwrap();
        assert_eq!(r.directives.len(), 9);
        assert_eq!(
            r.directives[0].mechanism,
            Mechanism::Ip4("192.0.2.0".parse().unwrap(), 24)
        );
        assert_eq!(
            r.directives[3].mechanism,
            Mechanism::A {
                domain: Some("mail.example.com".into()),
                cidr4: 28,
                cidr6: 64
            }
        );
        assert_eq!(
            r.directives[4].mechanism,
            Mechanism::Mx {
                domain: None,
                cidr4: 24,
                cidr6: 128
            }
        );
        assert_eq!(r.all(), Some(Qualifier::SoftFail));
        assert_eq!(r.redirect.as_deref(), Some("_spf.example.org"));
        assert_eq!(
            r.directives
                .iter()
                .filter(|d| d.mechanism.queries_dns())
                .count(),
            6
        );
    }

    /// RFC 7208 §7.1: a domain-spec may hold any visible character but '%' (suite
    /// cases a-colon-domain and mx-colon-domain); the CIDR suffix is read from the right.
    #[test]
    fn domain_spec_with_colon_and_slash() {
        let r =
            parse("v=spf1 a:foo:bar/baz.example.com mx:foo:bar/baz.example.com/24//64").unwrap();
        assert_eq!(
            r.directives[0].mechanism,
            Mechanism::A {
                domain: Some("foo:bar/baz.example.com".into()),
                cidr4: 32,
                cidr6: 128
            }
        );
        assert_eq!(
            r.directives[1].mechanism,
            Mechanism::Mx {
                domain: Some("foo:bar/baz.example.com".into()),
                cidr4: 24,
                cidr6: 64
            }
        );
        assert!(parse("v=spf1 a/x").is_err());
        assert!(parse("v=spf1 a//").is_err());
    }

    #[test]
    fn errors_name_the_term() {
        let e = |t: &str| parse(t).unwrap_err();
        assert_eq!(e("v=spf1 ip4:192.0.2.300 -all").term, "ip4:192.0.2.300");
        assert_eq!(e("v=spf1 include -all").term, "include");
        assert_eq!(e("v=spf1 foo:bar -all").reason, "unknown mechanism");
        assert_eq!(e("v=spf1 ip4:192.0.2.0/33").term, "ip4:192.0.2.0/33");
        assert_eq!(e("v=spf1 a:example.1 -all").term, "a:example.1");
        assert_eq!(
            e("v=spf1 exists:%{z}.example.com").term,
            "exists:%{z}.example.com"
        );
        assert_eq!(
            e("v=spf1 redirect=a.example redirect=b.example").term,
            "redirect=b.example"
        );
        assert_eq!(e("v=spf1 -all/24").term, "-all/24");
        assert_eq!(e("v=spf1 mx//129").term, "mx//129");
        assert_eq!(e("v=spf1 1x=y").term, "1x=y");
    }

    #[test]
    fn macros() {
        assert!(check_macro_string("%{i}._spf.%{d2r.-}%%%_%-", false).is_ok());
        assert!(check_macro_string("%{c}", true).is_ok());
        use MacroError::*;
        let refused = [
            ("%{c}", UnknownLetter('c')),
            ("%{d0}", ZeroDigits),
            ("%x", BadEscape(Some('x'))),
            ("a%", BadEscape(None)),
            ("%{d", Unterminated),
            ("%{", Unterminated),
            ("%{d2r:}", BadDelimiters(":".into())),
            ("a b", BadCharacter(' ')),
        ];
        for (text, want) in refused {
            assert_eq!(check_macro_string(text, false), Err(want), "{text:?}");
        }
        assert_eq!(
            parse("v=spf1 include:%{d0}.example")
                .unwrap_err()
                .to_string(),
            "term \"include:%{d0}.example\": a macro's digit transformer must be at least 1"
        );
    }
}
