//! Config errors that point at the spot: `FILE:LINE:COLUMN: key KEY: problem`.

use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key path, with the table header it sits under (`domain.sending_ips`).
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn io(path: &Path, err: std::io::Error) -> Self {
        Self::plain(path, &format!("cannot read config file: {err}"))
    }

    pub fn plain(path: &Path, message: &str) -> Self {
        Self {
            path: path.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: message.to_string(),
        }
    }

    pub fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> Self {
        let message = err.message().trim().to_string();
        match err.span() {
            Some(span) => Self::at(path, text, span, message),
            None => Self::plain(path, &message),
        }
    }

    /// An error located at byte range `span` of `text`.
    pub fn at(path: &Path, text: &str, span: Range<usize>, message: String) -> Self {
        let start = span.start.min(text.len());
        let (line, column) = line_col(text, start);
        Self {
            path: path.to_path_buf(),
            line: Some(line),
            column: Some(column),
            key: key_at(text, start),
            message,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The key written on the line of `offset`, prefixed by the `[table]`/`[[array]]` header
/// it sits under. Reading the text is simpler and more faithful to what the user wrote
/// than reconstructing the path from the deserializer.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(text, offset);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
    if line.starts_with('[') {
        let header = line
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        return (!header.is_empty()).then_some(header);
    }
    let key = line
        .split('=')
        .next()
        .map(|k| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty());
    match (table, key) {
        (Some(t), Some(k)) if !t.is_empty() => Some(format!("{t}.{k}")),
        (_, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    }
}
