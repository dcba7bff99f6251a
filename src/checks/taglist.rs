//! The `tag=value; tag=value` syntax shared by the newer TXT records (MTA-STS RFC 8461
//! §3.1, TLS-RPT RFC 8460 §3, BIMI): split into pairs with the problems named.

/// Pairs in order (tag names lower-cased, values trimmed), or the first problem.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not a tag=value pair"))?;
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!("{part:?} has an invalid tag name"));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("tag {name}= appears more than once"));
        }
        out.push((name, value.trim().to_string()));
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
        assert!(parse("v=STSv1; junk").is_err());
        assert!(parse("v=1; v=2").is_err());
        assert!(parse("=x").is_err());
    }
}
