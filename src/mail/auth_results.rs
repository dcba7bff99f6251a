//! `Authentication-Results` (RFC 8601) and `ARC-Authentication-Results` (RFC 8617).
//!
//! ```text
//! authres-payload = [CFWS] authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo ) [CFWS] CRLF
//! no-result       = [CFWS] ";" [CFWS] "none"
//! resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
//! methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
//! method          = Keyword [ [CFWS] "/" [CFWS] method-version ]
//! reasonspec      = "reason" [CFWS] "=" [CFWS] value
//! propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
//! pvalue          = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
//! arc-info        = instance [CFWS] ";" authres-payload            ; RFC 8617 §4.1.1
//! ```
//! Lenient where receivers are not: a field that breaks the grammar keeps every result
//! read before the fault, says where it failed in `error`, and parsing resumes at the
//! next `;` so that one malformed property does not hide the verdicts after it. A field
//! with no authserv-id at all (some MTAs write `spf=pass ...` straight away) is read as
//! results without an authserv-id.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Property {
    pub ptype: String,
    pub property: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResInfo {
    pub method: String,
    pub method_version: Option<u32>,
    pub result: String,
    pub reason: Option<String>,
    pub properties: Vec<Property>,
}

impl ResInfo {
    pub fn property(&self, ptype: &str, property: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| {
                p.ptype.eq_ignore_ascii_case(ptype) && p.property.eq_ignore_ascii_case(property)
            })
            .map(|p| p.value.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthResultsField {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    pub authserv_id: Option<String>,
    pub version: Option<u32>,
    /// Set by the caller from the mailbox's `trusted_authserv_ids` (RFC 8601 §5).
    pub trusted: bool,
    /// `none`: the server made no checks.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub none: bool,
    pub results: Vec<ResInfo>,
    pub error: Option<String>,
}

impl AuthResultsField {
    pub fn is_arc(&self) -> bool {
        self.field
            .eq_ignore_ascii_case("ARC-Authentication-Results")
    }
}

/// Every A-R and ARC-A-R field of a raw message, in order.
pub fn parse_message(raw: &[u8]) -> Vec<AuthResultsField> {
    super::header::fields_raw(raw)
        .into_iter()
        .filter(|f| {
            f.name.eq_ignore_ascii_case("Authentication-Results")
                || f.name.eq_ignore_ascii_case("ARC-Authentication-Results")
        })
        .map(|f| parse_value(&f.name, &f.value))
        .collect()
}

const MAX_COMMENT_DEPTH: usize = 32;

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

/// Where a field body leaves the RFC 8601 grammar: what was expected, the byte offset, and
/// the text there (25 bytes), which is what a person comparing with the raw header needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub what: String,
    pub offset: usize,
    pub near: Option<String>,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.what, self.offset)?;
        match &self.near {
            Some(near) => write!(f, " near {near:?}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for SyntaxError {}

type PResult<T> = Result<T, SyntaxError>;

fn is_tspecial(b: u8) -> bool {
    b"()<>@,;:\\\"/[]?=".contains(&b)
}

fn is_token_char(b: u8) -> bool {
    b > 32 && b < 127 && !is_tspecial(b)
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn near(&self) -> String {
        let start = self.pos.min(self.s.len());
        let end = (start + 25).min(self.s.len());
        String::from_utf8_lossy(&self.s[start..end]).into_owned()
    }

    fn fail<T>(&self, what: &str) -> PResult<T> {
        Err(SyntaxError {
            what: what.to_string(),
            offset: self.pos,
            near: Some(self.near()),
        })
    }

    /// [CFWS]: whitespace, folding and (nested) comments. A line break not followed by
    /// whitespace is a grammar error (bare CR/LF inside a field body).
    fn cfws(&mut self) -> PResult<bool> {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'\r' | b'\n') => {
                    let mut p = self.pos;
                    if self.s.get(p) == Some(&b'\r') {
                        p += 1;
                    }
                    if self.s.get(p) == Some(&b'\n') {
                        p += 1;
                    }
                    match self.s.get(p) {
                        Some(b' ' | b'\t') => self.pos = p,
                        None => self.pos = p,
                        _ => {
                            return self
                                .fail("bare CR/LF in field body (line break not followed by WSP)")
                        }
                    }
                }
                Some(b'(') => self.comment()?,
                _ => break,
            }
        }
        Ok(self.pos > start)
    }

    fn comment(&mut self) -> PResult<()> {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return self.fail("unterminated comment"),
                Some(b'(') => {
                    depth += 1;
                    if depth > MAX_COMMENT_DEPTH {
                        return self.fail("comments nested too deeply");
                    }
                }
                Some(b')') => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                Some(b'\\') => self.pos = (self.pos + 1).min(self.s.len()),
                _ => {}
            }
            self.pos = (self.pos + 1).min(self.s.len());
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("")
    }

    /// Keyword = ldh-str: letters, digits, '-' (not ending in '-').
    fn keyword(&mut self) -> Option<String> {
        let start = self.pos;
        let k = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if k.is_empty() || k.ends_with('-') {
            self.pos = start;
            return None;
        }
        Some(k.to_string())
    }

    fn digits(&mut self) -> Option<u32> {
        let d = self.take_while(|b| b.is_ascii_digit());
        d.parse().ok()
    }

    fn quoted_string(&mut self) -> PResult<String> {
        // caller saw '"'
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return self.fail("unterminated quoted-string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    if let Some(b) = self.peek() {
                        out.push(b);
                        self.pos += 1;
                    }
                }
                Some(b'\r' | b'\n') => self.pos += 1, // folding inside quotes
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// value = token / quoted-string (RFC 2045).
    fn value(&mut self) -> PResult<String> {
        if self.peek() == Some(b'"') {
            return self.quoted_string();
        }
        let t = self.take_while(is_token_char);
        if t.is_empty() {
            return self.fail("expected token");
        }
        Ok(t.to_string())
    }

    /// pvalue: quoted-string, `[local-part] "@" domain-name`, or token; the address form is
    /// tried first because a token stops at '@' and '='.
    fn pvalue(&mut self) -> PResult<String> {
        if self.peek() == Some(b'"') {
            let q = self.quoted_string()?;
            // A quoted local-part followed by @domain.
            if self.peek() == Some(b'@') {
                let start = self.pos;
                self.pos += 1;
                let d = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !d.is_empty() {
                    return Ok(format!("{q}@{d}"));
                }
                self.pos = start;
            }
            return Ok(q);
        }
        let start = self.pos;
        let local = self.take_while(|b| is_atext(b) || b == b'.');
        if self.peek() == Some(b'@') {
            self.pos += 1;
            let domain = self
                .take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            if !domain.is_empty() && self.boundary() {
                return Ok(format!("{local}@{domain}"));
            }
        }
        self.pos = start;
        let t = self.take_while(is_token_char);
        if t.is_empty() {
            return match self.peek() {
                Some(c) => self.fail(&format!(
                    "invalid character {:?} at start of pvalue",
                    c as char
                )),
                None => self.fail("expected property value"),
            };
        }
        if !self.boundary() {
            let end = self.pos
                + self.s[self.pos..]
                    .iter()
                    .position(|&b| b == b' ' || b == b';')
                    .unwrap_or(self.s.len() - self.pos);
            let whole = String::from_utf8_lossy(&self.s[start..end]).into_owned();
            self.pos = start;
            return self.fail(&format!(
                "pvalue {whole:?} is neither token, quoted-string nor [local-part]@domain"
            ));
        }
        Ok(t.to_string())
    }

    /// True at a place where a value may end.
    fn boundary(&self) -> bool {
        matches!(
            self.peek(),
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(')
        )
    }
}

/// Parses one field value (everything after `Name:`).
pub fn parse_value(field_name: &str, value: &str) -> AuthResultsField {
    let mut field = AuthResultsField {
        field: field_name.to_string(),
        instance: None,
        authserv_id: None,
        version: None,
        trusted: false,
        none: false,
        results: Vec::new(),
        error: None,
    };
    let mut c = Cursor {
        s: value.as_bytes(),
        pos: 0,
    };
    if let Err(e) = parse_payload(&mut c, &mut field) {
        // The first fault is the one to report.
        field.error.get_or_insert_with(|| e.to_string());
    }
    field
}

fn parse_payload(c: &mut Cursor<'_>, field: &mut AuthResultsField) -> PResult<()> {
    let arc = field
        .field
        .eq_ignore_ascii_case("ARC-Authentication-Results");
    c.cfws()?;
    if arc {
        // instance = "i" [CFWS] "=" [CFWS] 1*DIGIT
        if !(c.eat(b'i') || c.eat(b'I')) {
            return c.fail("expected i= instance tag");
        }
        c.cfws()?;
        if !c.eat(b'=') {
            return c.fail("expected '=' after i");
        }
        c.cfws()?;
        field.instance = Some(c.digits().ok_or_else(|| SyntaxError {
            what: "expected instance number".into(),
            offset: c.pos,
            near: None,
        })?);
        c.cfws()?;
        if !c.eat(b';') {
            return c.fail("expected ';' after instance");
        }
        c.cfws()?;
    }
    let id_start = c.pos;
    let id = c.value();
    let after_id = c.pos;
    let spaced = c.cfws()?;
    match (&id, c.peek()) {
        // Some MTAs omit the authserv-id: "spf=pass ...". Read results from the start.
        (Ok(_), Some(b'=')) if !arc && !spaced => {
            c.pos = id_start;
            let err = c.fail::<()>("expected ';' after authserv-id").unwrap_err();
            parse_resinfos(c, field, false)?;
            field.error.get_or_insert_with(|| err.to_string());
            return Ok(());
        }
        (Ok(id), _) => field.authserv_id = Some(id.clone()),
        (Err(e), _) => return Err(e.clone()),
    }
    if spaced && c.peek().is_some_and(|b| b.is_ascii_digit()) {
        field.version = c.digits();
        c.cfws()?;
    }
    if c.peek() != Some(b';') {
        c.pos = c.pos.max(after_id);
        return c.fail("expected ';' after authserv-id");
    }
    // no-result: ";" [CFWS] "none"
    let save = c.pos;
    c.pos += 1;
    c.cfws()?;
    if c.s[c.pos..].len() >= 4 && c.s[c.pos..c.pos + 4].eq_ignore_ascii_case(b"none") && {
        let p = c.pos;
        c.pos += 4;
        let ok = c.cfws().is_ok() && c.peek().is_none();
        c.pos = if ok { c.pos } else { p };
        ok
    } {
        field.none = true;
        return Ok(());
    }
    c.pos = save;
    parse_resinfos(c, field, true)
}

/// 1*resinfo, each introduced by ';' (the first without one when `leading_semicolon` is
/// false). On a fault: record it, skip to the next ';', go on.
fn parse_resinfos(
    c: &mut Cursor<'_>,
    field: &mut AuthResultsField,
    mut leading_semicolon: bool,
) -> PResult<()> {
    loop {
        c.cfws()?;
        if c.peek().is_none() {
            if field.results.is_empty() && field.error.is_none() {
                return c.fail("expected resinfo");
            }
            return Ok(());
        }
        if leading_semicolon {
            if !c.eat(b';') {
                return c.fail("expected ';' before resinfo");
            }
            c.cfws()?;
            if c.peek().is_none() {
                return c.fail("trailing ';' with no resinfo");
            }
        }
        leading_semicolon = true;
        match parse_resinfo(c) {
            Ok(r) => field.results.push(r),
            Err(e) => {
                field.error.get_or_insert_with(|| e.to_string());
                // Resume at the next ';' outside quotes and comments.
                skip_to_semicolon(c);
            }
        }
    }
}

fn skip_to_semicolon(c: &mut Cursor<'_>) {
    while let Some(b) = c.peek() {
        match b {
            b';' => return,
            b'"' => {
                let _ = c.quoted_string();
            }
            b'(' => {
                if c.comment().is_err() {
                    c.pos = c.s.len();
                }
            }
            _ => c.pos += 1,
        }
    }
}

fn parse_resinfo(c: &mut Cursor<'_>) -> PResult<ResInfo> {
    let method = match c.keyword() {
        Some(m) => m.to_ascii_lowercase(),
        None => return c.fail("expected method"),
    };
    c.cfws()?;
    let mut method_version = None;
    if c.eat(b'/') {
        c.cfws()?;
        method_version = Some(match c.digits() {
            Some(v) => v,
            None => return c.fail("expected method-version"),
        });
        c.cfws()?;
    }
    if !c.eat(b'=') {
        return c.fail("expected '=' after method");
    }
    c.cfws()?;
    let result = match c.keyword() {
        Some(r) => r.to_ascii_lowercase(),
        None => return c.fail("expected result keyword"),
    };
    let mut info = ResInfo {
        method,
        method_version,
        result,
        reason: None,
        properties: Vec::new(),
    };
    loop {
        let spaced = c.cfws()?;
        match c.peek() {
            None | Some(b';') => return Ok(info),
            _ if !spaced => return c.fail("expected whitespace after result"),
            _ => {}
        }
        let word_start = c.pos;
        let Some(word) = c.keyword() else {
            return c.fail("expected reason or property");
        };
        c.cfws()?;
        if word.eq_ignore_ascii_case("reason")
            && info.reason.is_none()
            && info.properties.is_empty()
            && c.peek() == Some(b'=')
        {
            c.pos += 1;
            c.cfws()?;
            info.reason = Some(c.value()?);
            continue;
        }
        if !c.eat(b'.') {
            c.pos = word_start + word.len();
            return c.fail("expected '.' in propspec (ptype.property)");
        }
        c.cfws()?;
        let Some(property) = c.keyword() else {
            return c.fail("expected property");
        };
        c.cfws()?;
        if !c.eat(b'=') {
            return c.fail("expected '=' after property");
        }
        c.cfws()?;
        let value = c.pvalue()?;
        info.properties.push(Property {
            ptype: word.to_ascii_lowercase(),
            property: property.to_ascii_lowercase(),
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar(v: &str) -> AuthResultsField {
        parse_value("Authentication-Results", v)
    }

    #[test]
    fn full_field_with_comments_quotes_and_folding() {
        let f = ar(" mx.receiver.test;\r\n\tdkim=pass header.d=example.test header.s=s2048 header.b=\"k/pKtLXU\";\r\n dmarc=pass (policy=reject) header.from=example.test; spf=pass (mx.receiver.test: domain of monitor@example.test designates 127.0.0.1 as permitted sender) smtp.mailfrom=monitor@example.test");
        assert_eq!(f.error, None);
        assert_eq!(f.authserv_id.as_deref(), Some("mx.receiver.test"));
        let methods: Vec<(&str, &str)> = f
            .results
            .iter()
            .map(|r| (r.method.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            methods,
            [("dkim", "pass"), ("dmarc", "pass"), ("spf", "pass")]
        );
        assert_eq!(f.results[0].property("header", "b"), Some("k/pKtLXU"));
        assert_eq!(
            f.results[2].property("smtp", "mailfrom"),
            Some("monitor@example.test")
        );
    }

    #[test]
    fn reason_version_and_none() {
        let f = ar("example.org 1; dkim/1=fail reason=\"bad signature\" header.i=@example.com");
        assert_eq!(f.error, None);
        assert_eq!(f.version, Some(1));
        assert_eq!(f.results[0].method_version, Some(1));
        assert_eq!(f.results[0].reason.as_deref(), Some("bad signature"));
        assert_eq!(f.results[0].property("header", "i"), Some("@example.com"));
        let n = ar("example.org; none");
        assert!(n.none && n.results.is_empty() && n.error.is_none());
    }

    #[test]
    fn arc_instance() {
        let f = parse_value(
            "ARC-Authentication-Results",
            " i=2; mx.google.com; arc=pass (i=1 spf=pass)",
        );
        assert_eq!(
            (f.instance, f.authserv_id.as_deref(), f.error.as_deref()),
            (Some(2), Some("mx.google.com"), None)
        );
        assert_eq!(f.results[0].method, "arc");
    }

    #[test]
    fn faults_keep_what_was_read_and_say_where() {
        let f = ar("mx.example.com; spf=pass smtp.mailfrom=a@example.com; dkim=pass header.b=ab/cd; dmarc=fail header.from=example.com;");
        assert_eq!(f.results.len(), 2, "{f:?}");
        assert_eq!(
            f.results[1].method, "dmarc",
            "parsing resumes after the bad property"
        );
        assert!(
            f.error.as_deref().unwrap().contains("pvalue \"ab/cd\""),
            "{:?}",
            f.error
        );
        let f = ar("mx.example.com; spf=pass;");
        assert_eq!(f.results.len(), 1);
        assert!(f.error.unwrap().contains("trailing ';'"));
        // No authserv-id at all.
        let f = ar("spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=none");
        assert_eq!(f.authserv_id, None);
        assert_eq!(f.results.len(), 2);
        assert!(f.error.is_some());
    }

    #[test]
    fn never_panics_on_junk() {
        for s in [
            "",
            ";",
            "(",
            "((((",
            "\"",
            "a;b=",
            "a; b/=c",
            "a; b=c d.",
            "a; b=c d.e=",
            "\r\n",
            "x;\nbad",
            "a; b=c d.e=\"unterminated",
        ] {
            let _ = ar(s);
        }
        let deep = format!("a; b=c {}", "(".repeat(10_000));
        assert!(ar(&deep).error.is_some());
    }
}
