//! Readers of the reports that receivers mail to a domain's `rua`/`ruf` and TLS-RPT
//! addresses: DMARC aggregate (`aggregate`), DMARC failure (`failure`) and SMTP TLS
//! (`tlsrpt`) reports, and `input`, which turns the bytes of a file or a message into those
//! reports (gzip, zip, MIME).
//!
//! Everything here is a pure function of bytes: no I/O, no config, no metrics. Every
//! length, count and decompressed size is bounded, because these bytes are written by
//! anybody who can send mail to the address: a report is an unauthenticated claim, and a
//! hostile one must end in bounded time and memory.

pub mod aggregate;
pub mod failure;
pub mod input;
pub mod sender;
pub mod source;
pub mod source_table;
pub mod tally;
pub mod tlsrpt;

#[cfg(test)]
mod corpus_tests;

use serde::Serialize;

pub use aggregate::AggregateReport;
pub use failure::FailureReport;
pub use input::{read, Limits, ReadError, Unpacked};
pub use tlsrpt::TlsReport;

/// One report, as `report --format json` prints it (DESIGN.md § Reports): the `kind`
/// field names the variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Report {
    #[serde(rename = "dmarc_aggregate")]
    Aggregate(AggregateReport),
    #[serde(rename = "dmarc_failure")]
    Failure(FailureReport),
    #[serde(rename = "tls_rpt")]
    TlsRpt(TlsReport),
}

/// Longest text kept from any one field (org names, comments, domains): longer text is
/// cut, so one 50 MB text node costs 50 MB of reading, not of memory.
pub const MAX_TEXT: usize = 512;

/// `text` trimmed and cut to `MAX_TEXT` bytes on a character boundary.
pub(crate) fn clip(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_TEXT {
        return text.to_string();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// A result keyword as the JSON prints it: trimmed, lower-cased, cut (real reporters
/// write `PASS`, `Fail`, ` none `).
pub(crate) fn keyword(text: &str) -> String {
    clip(text).to_ascii_lowercase()
}

/// `None` for empty text, else the clipped text: `<domain></domain>` says nothing.
pub(crate) fn non_empty(text: &str) -> Option<String> {
    let t = clip(text);
    (!t.is_empty()).then_some(t)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date of a day count since 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds since the epoch of an RFC 3339 date-time (`2016-04-01T23:59:59Z`), the form
/// RFC 8460 §4.4 gives TLS-RPT's `start-datetime`/`end-datetime`:
/// ```text
/// date-time = full-date "T" full-time ; full-time = partial-time time-offset
/// time-offset = "Z" / time-numoffset ; time-numoffset = ("+" / "-") time-hour ":" time-minute
/// ```
/// Lenient as reporters need: a missing offset is read as UTC (Microsoft writes
/// `2024-03-26T00:00:00`), a space for `T`, fractions of a second are dropped.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = t.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    if t.len() < 19 || t[4] != b'-' || t[7] != b'-' || !matches!(t[10], b'T' | b't' | b' ') {
        return None;
    }
    if t[13] != b':' || t[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &t[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hm = [*h1, *h2, *m1, *m2];
            if !hm.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let minutes = i64::from((h1 - b'0') * 10 + (h2 - b'0')) * 60
                + i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// An epoch second as `2024-03-06T00:00:00Z`, for the text output.
pub fn format_epoch(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2016-04-01T23:59:59Z"), Some(1_459_555_199));
        assert_eq!(parse_rfc3339("2024-09-03T00:00:00Z"), Some(1_725_321_600));
        // Microsoft's form without an offset is UTC.
        assert_eq!(parse_rfc3339("2024-03-26T00:00:00"), Some(1_711_411_200));
        assert_eq!(
            parse_rfc3339("2024-03-26T02:00:00+02:00"),
            Some(1_711_411_200)
        );
        assert_eq!(
            parse_rfc3339("2024-03-25T23:00:00.123-01:00"),
            Some(1_711_411_200)
        );
        assert_eq!(parse_rfc3339("2024-03-26 00:00:00Z"), Some(1_711_411_200));
        assert_eq!(parse_rfc3339("2024-13-26T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339(""), None);
        assert_eq!(parse_rfc3339("2024-03-26T00:00:00+2"), None);
    }

    #[test]
    fn epochs_format_back() {
        assert_eq!(format_epoch(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_epoch(1_709_769_599), "2024-03-06T23:59:59Z");
        for s in [0, 951_782_400, 1_459_555_199, 4_102_444_800, -86_400] {
            assert_eq!(parse_rfc3339(&format_epoch(s)), Some(s));
        }
    }

    #[test]
    fn text_is_clipped_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let c = clip(&long);
        assert!(c.len() <= MAX_TEXT && c.chars().all(|ch| ch == 'é'));
        assert_eq!(clip("  a  "), "a");
        assert_eq!(keyword(" PASS "), "pass");
        assert_eq!(non_empty("  "), None);
    }
}
