//! Header fields of a raw RFC 5322 message: split, unfolded, looked up by name.
//!
//! Tolerant by design (mail in the wild is): CRLF or LF, 8-bit bytes (read as lossy
//! UTF-8), an mbox `From ` line first, no blank line before an absent body.

/// One header field: its name as written and its value with folding removed
/// (CRLF + WSP becomes the WSP, RFC 5322 §2.2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// The header block and the body of a raw message.
pub fn split_message(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        let line_end = raw[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..line_end];
        if line == b"\n" || line == b"\r\n" {
            return (&raw[..i], &raw[line_end..]);
        }
        i = line_end;
    }
    (raw, &[])
}

/// Every field of the header block, in order. Values keep their original line breaks
/// only as folding whitespace; `raw_value` callers who need the bytes use [`fields_raw`].
pub fn fields(raw: &[u8]) -> Vec<Field> {
    fields_raw(raw)
        .into_iter()
        .map(|f| Field {
            name: f.name,
            value: unfold(&f.value),
        })
        .collect()
}

/// Fields with their values exactly as written (folding included).
pub fn fields_raw(raw: &[u8]) -> Vec<Field> {
    let (head, _) = split_message(raw);
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<Field> = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if n == 0 && line.starts_with("From ") {
            continue; // mbox separator
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim_end();
            if !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
                out.push(Field {
                    name: name.to_string(),
                    value: value.to_string(),
                });
            }
        }
    }
    for f in &mut out {
        while f.value.ends_with(['\r', '\n']) {
            f.value.pop();
        }
    }
    out
}

/// Removes folding: line breaks followed by whitespace (RFC 5322 §2.2.3).
pub fn unfold(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", "\t")
        .trim()
        .to_string()
}

/// Values of the fields named `name` (case-insensitive), unfolded.
pub fn values<'a>(fields: &'a [Field], name: &str) -> impl Iterator<Item = &'a str> + 'a {
    let name = name.to_ascii_lowercase();
    fields
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(&name))
        .map(|f| f.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_unfolds_and_tolerates() {
        let raw = b"From sender@example.com Mon Jan  1 00:00:00 2024\nSubject: a\r\n folded\r\nX-Probe: 1\n\nbody\n";
        let f = fields(raw);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0],
            Field {
                name: "Subject".into(),
                value: "a folded".into()
            }
        );
        assert_eq!(values(&f, "x-probe").collect::<Vec<_>>(), ["1"]);
        assert_eq!(split_message(raw).1, b"body\n");
        // No blank line, no body; 8-bit bytes.
        let f = fields(b"Subject: caf\xe9\nTo: x@example.com");
        assert_eq!(f.len(), 2);
        assert!(f[0].value.starts_with("caf"));
        assert!(fields(b"").is_empty());
    }
}

/// Splits a leading RFC 5322 comment off `s` (which starts with `(`): its inner text and
/// the rest after the closing parenthesis. Nested comments and quoted-pairs are honoured;
/// `None` when the comment is never closed.
pub fn split_comment(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some((&s[1..i], &s[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod comment_tests {
    use super::split_comment;

    #[test]
    fn comments() {
        assert_eq!(split_comment("(a) b"), Some(("a", " b")));
        assert_eq!(split_comment("(a (b) c) d"), Some(("a (b) c", " d")));
        assert_eq!(split_comment("(a \\) b) c"), Some(("a \\) b", " c")));
        assert_eq!(split_comment("(open"), None);
    }
}
