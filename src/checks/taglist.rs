//! The `tag=value; tag=value` syntax of the DNS TXT records that use it: DKIM keys
//! (RFC 6376 §3.2), DMARC (RFC 7489 §6.4), MTA-STS (RFC 8461 §3.1), TLS-RPT (RFC 8460 §3)
//! and BIMI. One splitter, [`split`], so that every record reads `;`, `=` and white space
//! alike; what each record then does with a part differs (DKIM tag names are
//! case-sensitive, DMARC reports every problem instead of stopping at the first), so that
//! is left to the record's parser. [`parse`] is the strict reading the newer records use.

use std::collections::HashSet;

/// What is wrong with a tag list, naming the part at fault. The messages are the ones the
/// findings carry (`dmarc.syntax`, `dkim.invalid_key`, `mta_sts.invalid`, …).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A non-empty part without `=`.
    #[error("{0:?} is not a tag=value pair")]
    NotAPair(String),
    /// A tag name that is empty or holds other than letters, digits, `_` and `-`.
    #[error("{0:?} has an invalid tag name")]
    InvalidName(String),
    /// The same tag twice (RFC 6376 §3.2: "Tags with duplicate names MUST NOT occur").
    #[error("tag {0}= appears more than once")]
    Repeated(String),
}

/// One `tag=value` part, as written: `name` and `value` trimmed, not case-folded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The whole part (trimmed), for messages.
    pub part: &'a str,
    pub name: &'a str,
    pub value: &'a str,
}

/// The parts of `text` in order, empty ones (`;;`, a trailing `;`) skipped. A part without
/// `=` is an error item and the walk goes on after it, for parsers that report every
/// problem.
pub fn split(text: &str) -> impl Iterator<Item = Result<Tag<'_>, TagError>> {
    text.split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((name, value)) => Ok(Tag {
                part,
                name: name.trim(),
                value: value.trim(),
            }),
            None => Err(TagError::NotAPair(part.to_string())),
        })
}

/// The tag names met so far, to refuse a repeated one.
#[derive(Debug, Default)]
pub struct Seen(HashSet<String>);

impl Seen {
    /// `Ok` the first time `name` is met, [`TagError::Repeated`] after.
    pub fn first(&mut self, name: &str) -> Result<(), TagError> {
        if self.0.insert(name.to_string()) {
            Ok(())
        } else {
            Err(TagError::Repeated(name.to_string()))
        }
    }
}

/// Pairs in order (tag names lower-cased and checked, values trimmed), or the first
/// problem.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, TagError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = Seen::default();
    for tag in split(text) {
        let tag = tag?;
        let name = tag.name.to_ascii_lowercase();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(TagError::InvalidName(tag.part.to_string()));
        }
        seen.first(&name)?;
        out.push((name, tag.value.to_string()));
    }
    Ok(out)
}

pub fn get<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The TXT records at a name that start with `prefix` (case-sensitive, as these RFCs say).
pub fn records_starting(texts: &[String], prefix: &str) -> Vec<String> {
    texts
        .iter()
        .filter(|t| t.trim_start().starts_with(prefix))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_problems() {
        let t = parse("v=STSv1; id=2024a;").unwrap();
        assert_eq!(get(&t, "id"), Some("2024a"));
        assert_eq!(
            parse("v=STSv1; junk"),
            Err(TagError::NotAPair("junk".into()))
        );
        assert_eq!(parse("v=1; V=2"), Err(TagError::Repeated("v".into())));
        assert_eq!(parse("=x"), Err(TagError::InvalidName("=x".into())));
        assert_eq!(
            parse("v=1; a b=2"),
            Err(TagError::InvalidName("a b=2".into()))
        );
    }

    #[test]
    fn names_lower_cased_values_trimmed_empty_parts_skipped() {
        assert_eq!(
            parse(" ; V = STSv1 ;; ID= x=y ; ").unwrap(),
            [
                ("v".to_string(), "STSv1".to_string()),
                ("id".to_string(), "x=y".to_string())
            ]
        );
        assert_eq!(parse("").unwrap(), []);
    }

    #[test]
    fn split_keeps_case_and_goes_on_after_a_bad_part() {
        let parts: Vec<_> = split("K=rsa; junk ;p= A B ").collect();
        assert_eq!(
            parts,
            [
                Ok(Tag {
                    part: "K=rsa",
                    name: "K",
                    value: "rsa"
                }),
                Err(TagError::NotAPair("junk".into())),
                Ok(Tag {
                    part: "p= A B",
                    name: "p",
                    value: "A B"
                }),
            ]
        );
    }

    #[test]
    fn messages_name_the_part() {
        assert_eq!(
            TagError::NotAPair("junk".into()).to_string(),
            "\"junk\" is not a tag=value pair"
        );
        assert_eq!(
            TagError::Repeated("p".into()).to_string(),
            "tag p= appears more than once"
        );
        assert_eq!(
            TagError::InvalidName("=x".into()).to_string(),
            "\"=x\" has an invalid tag name"
        );
    }
}
