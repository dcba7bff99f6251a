//! Macro expansion (RFC 7208 §7).

use std::net::IpAddr;

/// The values macros expand to for one evaluation.
pub struct MacroContext<'a> {
    pub sender: &'a str,
    pub domain: &'a str,
    pub ip: Option<IpAddr>,
    pub helo: &'a str,
    /// `%{p}`: the validated domain name of the IP, or "unknown".
    pub validated: &'a str,
}

impl MacroContext<'_> {
    fn local_part(&self) -> &str {
        self.sender.rsplit_once('@').map_or("postmaster", |(l, _)| {
            if l.is_empty() {
                "postmaster"
            } else {
                l
            }
        })
    }

    fn sender_domain(&self) -> &str {
        self.sender.rsplit_once('@').map_or(self.sender, |(_, d)| d)
    }

    fn value(&self, letter: char) -> Option<String> {
        Some(match letter {
            's' => self.sender.to_string(),
            'l' => self.local_part().to_string(),
            'o' => self.sender_domain().to_string(),
            'd' => self.domain.to_string(),
            'i' => match self.ip? {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => v6
                    .octets()
                    .iter()
                    .flat_map(|b| [b >> 4, b & 0x0f])
                    .map(|n| format!("{n:x}"))
                    .collect::<Vec<_>>()
                    .join("."),
            },
            'p' => self.validated.to_string(),
            'v' => if self.ip.is_some_and(|ip| ip.is_ipv6()) {
                "ip6"
            } else {
                "in-addr"
            }
            .to_string(),
            'h' => self.helo.to_string(),
            'c' => self.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            'r' => "unknown".to_string(),
            't' => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string(),
            _ => return None,
        })
    }
}

/// True when expanding `spec` needs facts about the sender (not only the domain), so a
/// lint walk with no sender cannot query it.
pub fn needs_sender(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    ["%{s", "%{l", "%{o", "%{i", "%{p", "%{h", "%{v", "%{c"]
        .iter()
        .any(|m| lower.contains(m))
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Expands a macro-string already validated by the parser.
pub fn expand(spec: &str, ctx: &MacroContext<'_>) -> String {
    let mut out = String::new();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('_') => out.push(' '),
            Some('-') => out.push_str("%20"),
            Some('{') => {
                let letter = chars.next().unwrap_or('d');
                let mut body = String::new();
                for ch in chars.by_ref() {
                    if ch == '}' {
                        break;
                    }
                    body.push(ch);
                }
                let value = ctx.value(letter.to_ascii_lowercase()).unwrap_or_default();
                let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
                let rest = &body[digits.len()..];
                let (reverse, delims) = match rest.strip_prefix(['r', 'R']) {
                    Some(d) => (true, d),
                    None => (false, rest),
                };
                let delims = if delims.is_empty() { "." } else { delims };
                let mut parts: Vec<&str> = value.split(|c| delims.contains(c)).collect();
                if reverse {
                    parts.reverse();
                }
                if let Ok(n) = digits.parse::<usize>() {
                    if n < parts.len() {
                        parts = parts.split_off(parts.len() - n);
                    }
                }
                let joined = parts.join(".");
                if letter.is_ascii_uppercase() {
                    out.push_str(&url_escape(&joined));
                } else {
                    out.push_str(&joined);
                }
            }
            _ => out.push('%'),
        }
    }
    out
}

/// §7.3: an expanded domain over 253 octets loses labels on the left until it fits.
pub fn truncate_domain(mut name: String) -> String {
    while name.trim_end_matches('.').len() > 253 {
        match name.find('.') {
            Some(i) => name = name[i + 1..].to_string(),
            None => break,
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(ip: &str) -> MacroContext<'static> {
        MacroContext {
            sender: "strong-bad@email.example.com",
            domain: "email.example.com",
            ip: Some(ip.parse().unwrap()),
            helo: "mx.example.org",
            validated: "unknown",
        }
    }

    /// The examples of RFC 7208 §7.4.
    #[test]
    fn rfc_examples() {
        let c = ctx("192.0.2.3");
        assert_eq!(expand("%{s}", &c), "strong-bad@email.example.com");
        assert_eq!(expand("%{o}", &c), "email.example.com");
        assert_eq!(expand("%{d}", &c), "email.example.com");
        assert_eq!(expand("%{d4}", &c), "email.example.com");
        assert_eq!(expand("%{d3}", &c), "email.example.com");
        assert_eq!(expand("%{d2}", &c), "example.com");
        assert_eq!(expand("%{d1}", &c), "com");
        assert_eq!(expand("%{dr}", &c), "com.example.email");
        assert_eq!(expand("%{d2r}", &c), "example.email");
        assert_eq!(expand("%{l}", &c), "strong-bad");
        assert_eq!(expand("%{l-}", &c), "strong.bad");
        assert_eq!(expand("%{lr}", &c), "strong-bad");
        assert_eq!(expand("%{lr-}", &c), "bad.strong");
        assert_eq!(expand("%{l1r-}", &c), "strong");
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", &c),
            "3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(
            expand("%{lr-}.lp._spf.%{d2}", &c),
            "bad.strong.lp._spf.example.com"
        );
        assert_eq!(
            expand("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", &c),
            "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(
            expand("%{d2}.trusted-domains.example.net", &c),
            "example.com.trusted-domains.example.net"
        );
        let c6 = ctx("2001:db8::cb01");
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", &c6),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
        assert_eq!(expand("%%%_%-", &c), "% %20");
        assert_eq!(expand("%{S}", &c), "strong-bad%40email.example.com");
    }

    #[test]
    fn sender_macros_are_detected() {
        assert!(needs_sender("%{i}._spf.example.com"));
        assert!(!needs_sender("%{d}._spf.example.com"));
    }
}
