//! `Received` trace fields (RFC 5321 §4.4): which client handed a message to which host.
//!
//! The probe needs the client IP and HELO name that the receiving server saw, to evaluate
//! SPF itself. Receivers that write `Received-SPF` say so there; many (rspamd, most
//! Postfix set-ups) only write `Authentication-Results`, which carries no client IP, so
//! the receiver's own `Received` line is the place to read it:
//!
//! ```text
//! Received: from mail.example.com (unknown [192.0.2.10])
//!         by mx.example.net (Postfix) with ESMTPS id 4F1A2; Tue, 1 Dec 2026 09:22:13 +0000
//! ```
//! Only the hop stamped by a trusted host counts (found by `mail::trust`): the lines below
//! it are the sender's to write.

use std::net::IpAddr;

/// One hop: the client as the stamping host saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The name the client gave in HELO/EHLO (`from <name>`).
    pub helo: Option<String>,
    /// The client's address (the bracketed TCP-info).
    pub ip: Option<IpAddr>,
    /// The host that stamped the line (`by <name>`).
    pub by: Option<String>,
    /// The protocol it was received with (`with ESMTPS`), lower-case: the RFC 3848 /
    /// RFC 5321 §4.4 `Protocol` (`smtp esmtp esmtps esmtpsa lmtp ...`).
    pub with: Option<String>,
}

/// Reads one `Received` value; `None` when it names no client and no host.
pub fn parse(value: &str) -> Option<Hop> {
    // The date follows the last ';'; comments may hold anything, so walk the tokens.
    let text = value.rsplit_once(';').map_or(value, |(t, _)| t);
    let mut hop = Hop {
        helo: None,
        ip: None,
        by: None,
        with: None,
    };
    let tokens = Tokens { rest: text };
    let mut clause = "";
    for tok in tokens {
        match tok {
            Token::Comment(c) if clause == "from" && hop.ip.is_none() => hop.ip = bracketed_ip(c),
            Token::Comment(_) => {}
            Token::Word(w) => {
                let lower = w.to_ascii_lowercase();
                match lower.as_str() {
                    "from" | "by" | "via" | "with" | "id" | "for" => clause = keyword(&lower),
                    _ if clause == "from" && hop.helo.is_none() => {
                        hop.helo = Some(w.trim_matches(['[', ']']).to_string());
                        if hop.ip.is_none() {
                            hop.ip = bracketed_ip(w);
                        }
                    }
                    _ if clause == "by" && hop.by.is_none() => hop.by = Some(lower),
                    _ if clause == "with" && hop.with.is_none() => hop.with = Some(lower),
                    _ => {}
                }
            }
        }
    }
    (hop.helo.is_some() || hop.by.is_some() || hop.ip.is_some()).then_some(hop)
}

fn keyword(k: &str) -> &'static str {
    match k {
        "from" => "from",
        "by" => "by",
        "via" => "via",
        "with" => "with",
        "id" => "id",
        _ => "for",
    }
}

/// The first `[address]` in `text` (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
fn bracketed_ip(text: &str) -> Option<IpAddr> {
    let start = text.find('[')?;
    let end = start + text[start..].find(']')?;
    let inner = &text[start + 1..end];
    let inner = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    inner.parse().ok()
}

enum Token<'a> {
    Word(&'a str),
    Comment(&'a str),
}

struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let s = self.rest.trim_start();
        if s.is_empty() {
            return None;
        }
        if let Some(inner) = s.strip_prefix('(') {
            return Some(match super::header::split_comment(s) {
                Some((comment, rest)) => {
                    self.rest = rest;
                    Token::Comment(comment)
                }
                None => {
                    self.rest = "";
                    Token::Comment(inner)
                }
            });
        }
        let end = s
            .find(|c: char| c.is_whitespace() || c == '(')
            .unwrap_or(s.len());
        self.rest = &s[end..];
        Some(Token::Word(&s[..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(v: &str) -> Hop {
        parse(v).unwrap()
    }

    #[test]
    fn postfix_line() {
        let h = hop("from mail.example.test (unknown [127.0.5.10]) by mx.receiver.test (Postfix) with ESMTPS id 651FC550403 for <probe@receiver.test>; Tue,  1 Dec 2026 09:22:13 +0000 (UTC)");
        assert_eq!(h.helo.as_deref(), Some("mail.example.test"));
        assert_eq!(h.ip, Some("127.0.5.10".parse().unwrap()));
        assert_eq!(h.by.as_deref(), Some("mx.receiver.test"));
        assert_eq!(h.with.as_deref(), Some("esmtps"));
    }

    #[test]
    fn ipv6_and_rdns_in_comment() {
        let h = hop("from out.example.com (out.example.com [IPv6:2001:db8::25]) by MX.Example.NET with ESMTP; Mon, 1 Jan 2024 00:00:00 +0000");
        assert_eq!(h.ip, Some("2001:db8::25".parse().unwrap()));
        assert_eq!(h.by.as_deref(), Some("mx.example.net"));
    }

    #[test]
    fn address_literal_as_helo_and_nested_comment() {
        let h = hop("from [192.0.2.7] (helo (odd) [192.0.2.7]) by mx.example.net; x");
        assert_eq!(h.helo.as_deref(), Some("192.0.2.7"));
        assert_eq!(h.ip, Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn lmtp_hop_has_no_client_ip() {
        let h = hop("from mx.receiver.test by imap.receiver.test with LMTP id iPo9 (envelope-from <a@b>) for <c@d>; Tue, 01 Dec 2026 09:22:13 +0000");
        assert_eq!(h.ip, None);
        assert_eq!(h.by.as_deref(), Some("imap.receiver.test"));
        assert_eq!(h.with.as_deref(), Some("lmtp"));
    }

    #[test]
    fn garbage_is_none_or_empty() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("; only a date"), None);
        assert_eq!(parse("from (unterminated [10.0.0.1"), None);
        assert_eq!(parse("from x [999.1.1.1]").unwrap().ip, None);
    }
}
