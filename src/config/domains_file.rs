//! Domains listed in a file that a platform generates, re-read when it changes: one
//! domain per line (`#` comments), or Prometheus `file_sd` JSON
//! (`[{"targets": ["example.com", ...], "labels": {...}}]`). Such domains get the default
//! checks; a `[[domain]]` entry of the same name wins.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::name::DomainName;

/// The domains of a file and the lines that were skipped (`line: reason`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DomainList {
    pub domains: Vec<DomainName>,
    pub skipped: Vec<String>,
}

#[derive(Deserialize)]
struct FileSdGroup {
    targets: Vec<String>,
}

/// Why the domains file gave no list (the running list is then kept).
#[derive(Debug, thiserror::Error)]
pub enum DomainsFileError {
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        source: InvalidFileSd,
    },
}

/// A file that starts with `[` (so meant as file_sd JSON) that is not file_sd JSON. A bad
/// line of the plain form is only skipped; a broken JSON document has no lines to keep.
#[derive(Debug, thiserror::Error)]
#[error("invalid file_sd JSON at line {}: {source}", source.line())]
pub struct InvalidFileSd {
    source: serde_json::Error,
}

pub fn read(path: &Path) -> Result<DomainList, DomainsFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| DomainsFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|source| DomainsFileError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

pub fn parse(text: &str) -> Result<DomainList, InvalidFileSd> {
    let mut list = DomainList::default();
    let mut seen = HashSet::new();
    let mut add =
        |list: &mut DomainList, raw: &str, where_: String| match DomainName::new(raw.trim()) {
            Err(_) => list
                .skipped
                .push(format!("{where_}: invalid domain name {raw:?}")),
            Ok(name) => {
                if seen.insert(name.clone()) {
                    list.domains.push(name);
                }
            }
        };
    if text.trim_start().starts_with('[') {
        let groups: Vec<FileSdGroup> =
            serde_json::from_str(text).map_err(|source| InvalidFileSd { source })?;
        for (g, group) in groups.iter().enumerate() {
            for target in &group.targets {
                add(&mut list, target, format!("group {}", g + 1));
            }
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or("").trim();
            if !content.is_empty() {
                add(&mut list, content, format!("line {}", n + 1));
            }
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_with_comments_and_duplicates() {
        let list = parse("# customers\nexample.com\n  Example.ORG.  # trailing comment\n\nexample.com\nbad name\n").unwrap();
        assert_eq!(list.domains, ["example.com", "example.org"]);
        assert_eq!(list.skipped, ["line 6: invalid domain name \"bad name\""]);
    }

    #[test]
    fn file_sd_json() {
        let list = parse(r#"[{"targets":["a.example","b.example"],"labels":{"team":"x"}},{"targets":["c.example"]}]"#).unwrap();
        assert_eq!(list.domains, ["a.example", "b.example", "c.example"]);
        assert!(parse("[{\"targets\": 5}]")
            .unwrap_err()
            .to_string()
            .starts_with("invalid file_sd JSON at line 1: "));
    }
}
