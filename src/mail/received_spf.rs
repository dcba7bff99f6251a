//! `Received-SPF` (RFC 7208 §9.1): the SPF verdict a receiver recorded.
//!
//! ```text
//! header-field   = "Received-SPF:" [CFWS] result FWS [comment FWS] [ key-value-list ] CRLF
//! key-value-list = key-value-pair *( ";" [CFWS] key-value-pair ) [";"]
//! key-value-pair = key [CFWS] "=" ( dot-atom / quoted-string )
//! ```
//! Read leniently: pairs separated by spaces instead of ';' and values in angle brackets
//! occur in real mail and are kept as written (quotes removed).

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceivedSpf {
    /// Lower-case result (`pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`).
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub properties: BTreeMap<String, String>,
    /// The pairs in their order, for callers that care about duplicates.
    #[serde(skip)]
    pub pairs: Vec<(String, String)>,
}

const RESULTS: &[&str] = &[
    "pass",
    "fail",
    "softfail",
    "neutral",
    "none",
    "temperror",
    "permerror",
];

/// Why a Received-SPF field's value does not follow RFC 7208 §9.1; such a field is
/// skipped, not guessed at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceivedSpfError {
    /// `result = "pass" / "fail" / "softfail" / "neutral" / "none" / "temperror" /
    /// "permerror"`.
    #[error("unknown SPF result {0:?}")]
    UnknownResult(String),
    #[error("unterminated comment")]
    UnterminatedComment,
    /// `key-value-pair = key [CFWS] "=" ( dot-atom / quoted-string )`.
    #[error("expected '=' after key {0:?}")]
    MissingEquals(String),
    #[error("unterminated quoted value of {0}")]
    UnterminatedQuote(String),
    #[error("empty key")]
    EmptyKey,
}

pub fn parse_value(value: &str) -> Result<ReceivedSpf, ReceivedSpfError> {
    let text = super::header::unfold(value);
    let text = text.trim();
    let end = text
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(text.len());
    let result = text[..end].to_ascii_lowercase();
    if !RESULTS.contains(&result.as_str()) {
        return Err(ReceivedSpfError::UnknownResult(text[..end].to_string()));
    }
    let mut rest = text[end..].trim_start();
    let mut comment = None;
    if rest.starts_with('(') {
        let (inner, after) =
            super::header::split_comment(rest).ok_or(ReceivedSpfError::UnterminatedComment)?;
        comment = Some(inner.trim().to_string());
        rest = after.trim_start();
    }
    let mut pairs = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let bytes = rest;
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() || c == ';' {
            chars.next();
            continue;
        }
        // key
        let mut key_end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() || c == ';' {
                break;
            }
            key_end = i + c.len_utf8();
            chars.next();
        }
        let key = bytes[start..key_end].to_string();
        while chars.peek().is_some_and(|&(_, c)| c == ' ' || c == '\t') {
            chars.next();
        }
        if chars.peek().map(|&(_, c)| c) != Some('=') {
            return Err(ReceivedSpfError::MissingEquals(key));
        }
        chars.next();
        while chars.peek().is_some_and(|&(_, c)| c == ' ' || c == '\t') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek().map(|&(_, c)| c) == Some('"') {
            chars.next();
            let mut escaped = false;
            let mut closed = false;
            for (_, c) in chars.by_ref() {
                match c {
                    _ if escaped => {
                        value.push(c);
                        escaped = false;
                    }
                    '\\' => escaped = true,
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(ReceivedSpfError::UnterminatedQuote(key));
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() || c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if key.is_empty() {
            return Err(ReceivedSpfError::EmptyKey);
        }
        pairs.push((key.to_ascii_lowercase(), value));
    }
    let properties = pairs.iter().cloned().collect();
    Ok(ReceivedSpf {
        result,
        comment,
        properties,
        pairs,
    })
}

/// Every Received-SPF field of a raw message that parses.
pub fn parse_message(raw: &[u8]) -> Vec<ReceivedSpf> {
    let fields = super::header::fields(raw);
    super::header::values(&fields, "Received-SPF")
        .filter_map(|v| parse_value(v).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformant_field() {
        let r = parse_value(" pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender)\r\n receiver=mybox.example.org; client-ip=192.0.2.1; envelope-from=\"myname@example.com\"; helo=foo.example.com;").unwrap();
        assert_eq!(r.result, "pass");
        assert!(r
            .comment
            .as_deref()
            .unwrap()
            .starts_with("mybox.example.org: domain of"));
        assert_eq!(r.properties["client-ip"], "192.0.2.1");
        assert_eq!(r.properties["envelope-from"], "myname@example.com");
        assert_eq!(r.pairs.len(), 4);
    }

    #[test]
    fn lenient_and_errors() {
        let r = parse_value("Pass (x) identity=mailfrom; client-ip=192.0.2.1 helo=h.example; envelope-from=<a@b.example>").unwrap();
        assert_eq!(r.result, "pass");
        assert_eq!(r.properties["helo"], "h.example");
        assert_eq!(r.properties["envelope-from"], "<a@b.example>");
        assert_eq!(parse_value("softfail").unwrap().result, "softfail");
        use ReceivedSpfError::*;
        let refused = [
            ("maybe (x)", UnknownResult("maybe".into())),
            ("pass (unterminated", UnterminatedComment),
            ("pass key", MissingEquals("key".into())),
            ("pass k=\"open", UnterminatedQuote("k".into())),
            ("pass =v", EmptyKey),
        ];
        for (text, want) in refused {
            assert_eq!(parse_value(text).map(|_| ()), Err(want), "{text:?}");
        }
    }
}
