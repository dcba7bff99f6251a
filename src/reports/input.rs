//! Bytes → report documents: a file or message as it arrives (bare XML or JSON, gzip,
//! zip, or a MIME message carrying any of them, or an ARF failure report) turned into
//! `Report`s.
//!
//! The kind is told by content, not by name: `PK\x03\x04` is a zip, `\x1f\x8b` a gzip,
//! `<` XML, `{` JSON, a header line a message. Names and MIME types only decide whether
//! a part that is none of these is worth a complaint (Amazon SES sends
//! `application/octet-stream`, Mimecast gzips with odd names, Google zips).
//!
//! Decompression is bounded (`Limits`): every gzip stream and zip member is read through
//! a limiting reader (`Read::take`), never trusting the sizes an archive declares, and is
//! refused past `max_member` bytes, past `max_ratio` times its compressed size (above a
//! small floor, since a short report legitimately compresses well), or when the input's
//! decompressed total passes `max_total`. A zip bomb is therefore an unreadable input,
//! not an outage. Nesting (a gzip in a zip in a message) is bounded by `max_depth`.

use std::io::{Cursor, Read};

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::aggregate::{self, AggregateError};
use super::failure::{self, FailureError};
use super::tlsrpt::{self, TlsRptError};
use super::{clip, Report};

/// What one input may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Decompressed bytes of one gzip stream or zip member.
    pub max_member: u64,
    /// Decompressed bytes of all members and streams of one input together.
    pub max_total: u64,
    /// Decompressed bytes per compressed byte, beyond `ratio_floor`.
    pub max_ratio: u64,
    /// Output below this size is never refused for its ratio: a 300-byte gzip of a small
    /// report may inflate 1:30, a 20 KB one of a repetitive report beyond 1:200.
    pub ratio_floor: u64,
    /// Members read from one zip archive, and parts from one message.
    pub max_members: usize,
    /// Containers inside containers (message → zip → gzip → XML is 3).
    pub max_depth: u8,
    /// Records kept from one aggregate report.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_member: 64 * 1024 * 1024,
            max_total: 64 * 1024 * 1024,
            max_ratio: 200,
            ratio_floor: 1024 * 1024,
            max_members: 100,
            max_depth: 4,
            max_records: aggregate::MAX_RECORDS,
        }
    }
}

/// Why an input (or a part of it) holds no readable report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the input is empty")]
    Empty,
    #[error("not a report: {0}")]
    NotAReport(&'static str),
    #[error("the message carries no report (no XML, JSON, gzip or zip part, no ARF part)")]
    NoReportInMessage,
    #[error("decompresses to more than {limit} bytes (zip bomb guard)")]
    DecompressedTooLarge { limit: u64 },
    #[error("decompresses more than {ratio}:1 from {compressed} bytes (zip bomb guard)")]
    RatioTooHigh { ratio: u64, compressed: u64 },
    #[error("containers nested more than {0} deep")]
    NestedTooDeep(u8),
    #[error("bad gzip: {0}")]
    Gzip(String),
    #[error("bad zip: {0}")]
    Zip(String),
    #[error("zip member {member:?}: {source}")]
    InMember {
        member: String,
        source: Box<ReadError>,
    },
    #[error("message part {part:?}: {source}")]
    InPart {
        part: String,
        source: Box<ReadError>,
    },
    #[error("DMARC aggregate report: {0}")]
    Aggregate(#[from] AggregateError),
    #[error("TLS report: {0}")]
    TlsRpt(#[from] TlsRptError),
    #[error("DMARC failure report: {0}")]
    Failure(#[from] FailureError),
}

/// The reports read from one input, and what could not be read beside them (a message
/// with one good and one broken attachment gives one report and one problem).
#[derive(Debug, Default)]
pub struct Unpacked {
    pub reports: Vec<Report>,
    pub problems: Vec<ReadError>,
}

/// Every report in `bytes`; an error when it holds none (the first reason why).
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Unpacked, ReadError> {
    let mut reader = Unpacker {
        limits,
        total_left: limits.max_total,
        out: Unpacked::default(),
    };
    reader.document(bytes, None, 0, true)?;
    if reader.out.reports.is_empty() {
        return Err(reader
            .out
            .problems
            .into_iter()
            .next()
            .unwrap_or(ReadError::NotAReport("nothing found")));
    }
    Ok(reader.out)
}

/// What the first bytes say the content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Zip,
    Gzip,
    Xml,
    Json,
    Message,
    Unknown,
}

fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.starts_with(b"PK\x03\x04") {
        return Sniffed::Zip;
    }
    if bytes.starts_with(b"\x1f\x8b") {
        return Sniffed::Gzip;
    }
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| text[i]) {
        Some(b'<') => return Sniffed::Xml,
        Some(b'{') => return Sniffed::Json,
        _ => {}
    }
    // A message starts with a header field: `Name:` of printable ASCII without spaces
    // (RFC 5322 §3.6.8), or an mbox `From ` line.
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let name_len = first_line.iter().position(|&b| b == b':');
    if bytes.starts_with(b"From ")
        || name_len.is_some_and(|n| {
            n > 0
                && n < 80
                && first_line[..n]
                    .iter()
                    .all(|&b| b.is_ascii_graphic() && b != b':')
        })
    {
        return Sniffed::Message;
    }
    Sniffed::Unknown
}

/// MIME types a report is sent as (DESIGN.md § Reports), and file names that say
/// "report" when the type is `application/octet-stream`.
fn looks_like_a_report(content_type: &str, name: Option<&str>) -> bool {
    let telling_name = name.is_some_and(|n| {
        let n = n.to_ascii_lowercase();
        [".xml", ".gz", ".gzip", ".zip", ".json"]
            .iter()
            .any(|ext| n.ends_with(ext))
    });
    matches!(
        content_type,
        "text/xml"
            | "application/xml"
            | "application/gzip"
            | "application/x-gzip"
            | "application/zip"
            | "application/x-zip-compressed"
            | "application/tlsrpt+json"
            | "application/tlsrpt+gzip"
    ) || (content_type == "application/octet-stream" && telling_name)
}

struct Unpacker<'l> {
    limits: &'l Limits,
    /// Decompressed bytes this input may still produce.
    total_left: u64,
    out: Unpacked,
}

impl Unpacker<'_> {
    /// Reads the reports in `bytes` into `self.out`. `message_allowed` is false inside
    /// archives and for message parts, where a header-like first line is text, not mail.
    fn document(
        &mut self,
        bytes: &[u8],
        name: Option<&str>,
        depth: u8,
        message_allowed: bool,
    ) -> Result<(), ReadError> {
        if depth > self.limits.max_depth {
            return Err(ReadError::NestedTooDeep(self.limits.max_depth));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ReadError::Empty);
        }
        match sniff(bytes) {
            Sniffed::Zip => self.zip(bytes, depth),
            Sniffed::Gzip => {
                let inner = self.inflate(flate2::read::MultiGzDecoder::new(bytes), bytes.len())?;
                let inner_name = name.map(|n| n.trim_end_matches(".gz").to_string());
                self.document(&inner, inner_name.as_deref(), depth + 1, false)
            }
            Sniffed::Xml => {
                let report = aggregate::parse_with_cap(bytes, self.limits.max_records)?;
                self.out.reports.push(Report::Aggregate(report));
                Ok(())
            }
            Sniffed::Json => {
                let report = tlsrpt::parse(bytes)?;
                self.out.reports.push(Report::TlsRpt(report));
                Ok(())
            }
            Sniffed::Message if message_allowed => self.message(bytes, depth),
            Sniffed::Message | Sniffed::Unknown => Err(ReadError::NotAReport(
                "neither XML, JSON, gzip, zip nor a mail message",
            )),
        }
    }

    /// Decompressed bytes of `reader`, within the member, ratio and total bounds.
    fn inflate(&mut self, reader: impl Read, compressed: usize) -> Result<Vec<u8>, ReadError> {
        let compressed = compressed as u64;
        let ratio_limit = compressed
            .saturating_mul(self.limits.max_ratio)
            .max(self.limits.ratio_floor);
        let size_limit = self.limits.max_member.min(self.total_left);
        let limit = size_limit.min(ratio_limit);
        let mut out = Vec::new();
        reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| ReadError::Gzip(clip(&e.to_string())))?;
        if out.len() as u64 > limit {
            return Err(if ratio_limit < size_limit {
                ReadError::RatioTooHigh {
                    ratio: self.limits.max_ratio,
                    compressed,
                }
            } else {
                ReadError::DecompressedTooLarge { limit: size_limit }
            });
        }
        self.total_left -= out.len() as u64;
        Ok(out)
    }

    /// Every member of a zip archive; a member past the bounds refuses the whole input
    /// (a bomb is not read around), a member that is no report is a problem beside the
    /// others.
    fn zip(&mut self, bytes: &[u8], depth: u8) -> Result<(), ReadError> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| ReadError::Zip(clip(&e.to_string())))?;
        for index in 0..archive.len().min(self.limits.max_members) {
            let mut member = archive
                .by_index(index)
                .map_err(|e| ReadError::Zip(clip(&e.to_string())))?;
            if member.is_dir() {
                continue;
            }
            let name = member.name().map(|n| clip(&n)).unwrap_or_default();
            // The declared compressed size is a claim; the archive's length is not.
            let compressed = member.compressed_size().min(bytes.len() as u64) as usize;
            let inner = self
                .inflate(&mut member, compressed)
                .map_err(|e| match e {
                    ReadError::Gzip(reason) => ReadError::Zip(reason),
                    other => other,
                })
                .map_err(|e| in_member(&name, e))?;
            if let Err(e) = self.document(&inner, Some(&name), depth + 1, false) {
                self.out.problems.push(in_member(&name, e));
            }
        }
        Ok(())
    }

    /// The reports a message carries: an ARF failure report, or parts holding aggregate
    /// or TLS reports (attached or inline, forwarded messages included), or else a
    /// plain-text failure report.
    fn message(&mut self, raw: &[u8], depth: u8) -> Result<(), ReadError> {
        let message = MessageParser::default()
            .parse(raw)
            .ok_or(ReadError::NotAReport("an unparsable mail message"))?;
        if failure::is_arf(&message) {
            let report = failure::parse(raw)?;
            self.out.reports.push(Report::Failure(report));
            return Ok(());
        }
        let before = self.out.reports.len();
        for (index, part) in message
            .parts
            .iter()
            .enumerate()
            .take(self.limits.max_members.saturating_mul(4))
        {
            let content_type = part
                .content_type()
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|| "text/plain".into());
            let name = part.attachment_name().map(clip);
            let label = name
                .clone()
                .unwrap_or_else(|| format!("{index} ({content_type})"));
            let result = match &part.body {
                PartType::Multipart(_) => continue,
                PartType::Message(inner) => {
                    self.document(inner.raw_message(), name.as_deref(), depth + 1, true)
                }
                PartType::Text(text) | PartType::Html(text) => {
                    self.part(text.as_bytes(), &content_type, name.as_deref(), depth)
                }
                PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                    self.part(bytes, &content_type, name.as_deref(), depth)
                }
            };
            match result {
                Ok(()) => {}
                // Parts that are no report and do not claim to be one (the explanation
                // text, a logo, a forwarded ordinary message) are no problem.
                Err(ReadError::NotAReport(_) | ReadError::NoReportInMessage)
                    if !looks_like_a_report(&content_type, name.as_deref()) => {}
                Err(e) => self.out.problems.push(ReadError::InPart {
                    part: label,
                    source: Box::new(e),
                }),
            }
        }
        if self.out.reports.len() > before {
            return Ok(());
        }
        match failure::parse(raw) {
            Ok(report) => {
                self.out.reports.push(Report::Failure(report));
                Ok(())
            }
            Err(_) if self.out.problems.is_empty() => Err(ReadError::NoReportInMessage),
            // The problems already say why: read() returns the first.
            Err(_) => Ok(()),
        }
    }

    /// One leaf part: tried when its content sniffs as a report format; text parts only
    /// when they start like XML or JSON (the human explanation beside a report is not one).
    fn part(
        &mut self,
        bytes: &[u8],
        content_type: &str,
        name: Option<&str>,
        depth: u8,
    ) -> Result<(), ReadError> {
        let sniffed = sniff(bytes);
        let is_text = content_type.starts_with("text/") && content_type != "text/xml";
        let worth = match sniffed {
            Sniffed::Zip | Sniffed::Gzip | Sniffed::Json => true,
            Sniffed::Xml => !is_text || starts_like_a_report(bytes),
            Sniffed::Message | Sniffed::Unknown => false,
        };
        if !worth {
            return Err(ReadError::NotAReport("a message part of no report format"));
        }
        self.document(bytes, name, depth + 1, false)
    }
}

/// XML that is a report rather than HTML: its first element is `feedback` (after an
/// optional declaration and prefix).
fn starts_like_a_report(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    head.contains("feedback")
}

fn in_member(name: &str, e: ReadError) -> ReadError {
    ReadError::InMember {
        member: name.to_string(),
        source: Box::new(e),
    }
}

/// The same gzip, zip and base64 builders as the integration tests (`tests/util`).
#[cfg(test)]
#[path = "../../tests/util/attachments.rs"]
mod attachments;

#[cfg(test)]
mod tests {
    use super::attachments::{base64_lines, gzip, zip};
    use super::*;

    const XML: &str = "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Example</org_name>\
        <email>d@example.net</email><report_id>r1</report_id><date_range><begin>1</begin><end>2</end>\
        </date_range></report_metadata><policy_published><domain>example.com</domain><p>none</p>\
        </policy_published><record><row><source_ip>192.0.2.1</source_ip><count>7</count></row></record></feedback>";
    const JSON: &str = r#"{"organization-name": "Org", "report-id": "t1", "policies": [{"summary": {"total-successful-session-count": 4}}]}"#;

    fn messages(reports: &[Report]) -> Vec<u64> {
        reports
            .iter()
            .map(|r| match r {
                Report::Aggregate(a) => a.messages,
                Report::TlsRpt(t) => t.policies.iter().map(|p| p.successful).sum(),
                Report::Failure(_) => 0,
            })
            .collect()
    }

    fn read_default(bytes: &[u8]) -> Result<Unpacked, ReadError> {
        read(bytes, &Limits::default())
    }

    #[test]
    fn bare_gzip_and_zip_are_read() {
        assert_eq!(
            messages(&read_default(XML.as_bytes()).unwrap().reports),
            [7]
        );
        assert_eq!(
            messages(&read_default(JSON.as_bytes()).unwrap().reports),
            [4]
        );
        assert_eq!(
            messages(&read_default(&gzip(XML.as_bytes())).unwrap().reports),
            [7]
        );
        let z = zip(&[
            ("a.xml", XML.as_bytes()),
            ("b.json.gz", &gzip(JSON.as_bytes())),
        ]);
        assert_eq!(messages(&read_default(&z).unwrap().reports), [7, 4]);
    }

    #[test]
    fn a_zip_bomb_is_refused_by_size() {
        // 80 MiB of zeros deflate to about 80 KB: past the 64 MiB member limit.
        let zeros = vec![0u8; 80 * 1024 * 1024];
        let bomb = zip(&[("report.xml", &zeros)]);
        let limits = Limits {
            max_ratio: u64::MAX,
            ..Limits::default()
        };
        let err = read(&bomb, &limits).unwrap_err();
        assert!(
            matches!(&err, ReadError::InMember { source, .. }
                if matches!(**source, ReadError::DecompressedTooLarge { .. })),
            "{err}"
        );
        // With the default limits the ratio (about 1:1000) refuses it first.
        let err = read_default(&bomb).unwrap_err();
        assert!(
            matches!(&err, ReadError::InMember { source, .. }
                if matches!(**source, ReadError::RatioTooHigh { .. })),
            "{err}"
        );
        let err = read_default(&gzip(&zeros)).unwrap_err();
        assert!(matches!(err, ReadError::RatioTooHigh { .. }), "{err}");
    }

    #[test]
    fn the_total_of_all_members_is_bounded() {
        let block = vec![b' '; 3 * 1024 * 1024];
        let mut doc = XML.as_bytes().to_vec();
        doc.extend_from_slice(&block);
        let z = zip(&[("a.xml", &doc), ("b.xml", &doc), ("c.xml", &doc)]);
        let limits = Limits {
            max_total: 7 * 1024 * 1024,
            max_ratio: u64::MAX,
            ..Limits::default()
        };
        let err = read(&z, &limits).unwrap_err();
        assert!(
            matches!(&err, ReadError::InMember { source, member }
                if member == "c.xml" && matches!(**source, ReadError::DecompressedTooLarge { .. })),
            "{err}"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut data = gzip(XML.as_bytes());
        for _ in 0..6 {
            data = gzip(&data);
        }
        assert_eq!(
            read_default(&data).unwrap_err(),
            ReadError::NestedTooDeep(4)
        );
    }

    #[test]
    fn a_message_with_gzip_zip_and_tlsrpt_parts() {
        let raw = format!(
            "From: noreply-dmarc-support@google.com\r\nTo: rua@example.com\r\nSubject: Report domain: example.com\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate report.\r\n\
--b1\r\nContent-Type: application/gzip; name=\"a.xml.gz\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
--b1\r\nContent-Type: application/octet-stream; name=\"weird-name.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
--b1\r\nContent-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n\
--b1--\r\n",
            base64_lines(&gzip(XML.as_bytes())),
            base64_lines(&zip(&[("x.xml", XML.as_bytes())])),
            JSON.replace('=', "=3D")
        );
        let out = read_default(raw.as_bytes()).unwrap();
        assert_eq!(messages(&out.reports), [7, 7, 4]);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn a_broken_attachment_is_a_problem_beside_the_good_one() {
        let raw = format!(
            "From: a@example.net\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: application/zip; name=r.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
--b\r\nContent-Type: text/xml\r\n\r\n{XML}\r\n--b--\r\n",
            base64_lines(b"PK\x03\x04 not really a zip")
        );
        let out = read_default(raw.as_bytes()).unwrap();
        assert_eq!(messages(&out.reports), [7]);
        assert!(matches!(&out.problems[..], [ReadError::InPart { .. }]));
    }

    #[test]
    fn an_arf_message_is_a_failure_report() {
        let raw = "From: a@receiver.example\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nA failure.\r\n\
--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\nReported-Domain: example.com\r\nAuth-Failure: dmarc\r\n\r\n--b--\r\n";
        let out = read_default(raw.as_bytes()).unwrap();
        assert!(matches!(&out.reports[..], [Report::Failure(f)] if f.auth_failure == ["dmarc"]));
    }

    #[test]
    fn a_forwarded_report_and_x_gzip_with_a_telling_name() {
        let inner = format!(
            "From: dmarc@mimecast.example\r\nSubject: Report\r\nContent-Type: application/x-gzip; name=\"odd name\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64_lines(&gzip(XML.as_bytes()))
        );
        let raw = format!(
            "From: admin@example.com\r\nSubject: Fwd: Report\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nSee the attached report.\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n\
--b\r\nContent-Type: application/octet-stream; name=\"example.com!x.json\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
--b--\r\n",
            base64_lines(JSON.as_bytes())
        );
        let out = read_default(raw.as_bytes()).unwrap();
        assert_eq!(messages(&out.reports), [7, 4]);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
    }

    #[test]
    fn a_plain_text_failure_report_is_read_from_a_message() {
        let raw = "From: noreply@receiver.example\r\nSubject: DMARC failure\r\n\r\n\
Sender Domain: example.com\r\nSender IP Address: 192.0.2.9\r\nDKIM Alignment: fail\r\n";
        let out = read_default(raw.as_bytes()).unwrap();
        assert!(matches!(&out.reports[..], [Report::Failure(f)]
            if f.source_ip.as_deref() == Some("192.0.2.9") && f.auth_failure == ["dkim"]));
    }

    #[test]
    fn an_octet_stream_with_a_telling_name_that_is_no_report_is_a_problem() {
        let raw = format!(
            "From: a@example.net\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: application/octet-stream; name=report.xml.gz\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
--b--\r\n",
            base64_lines(b"\x00\x01\x02 not gzip")
        );
        let err = read_default(raw.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, ReadError::InPart { part, .. } if part == "report.xml.gz"),
            "{err}"
        );
    }

    #[test]
    fn what_holds_no_report_is_refused() {
        assert_eq!(read_default(b"").unwrap_err(), ReadError::Empty);
        assert_eq!(read_default(b" \r\n").unwrap_err(), ReadError::Empty);
        assert!(matches!(
            read_default(b"\x00\x01binary").unwrap_err(),
            ReadError::NotAReport(_)
        ));
        assert_eq!(
            read_default(b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n").unwrap_err(),
            ReadError::NoReportInMessage
        );
        assert!(matches!(
            read_default(b"\x1f\x8b\x08\x00garbage").unwrap_err(),
            ReadError::Gzip(_)
        ));
        assert!(matches!(
            read_default(b"PK\x03\x04garbage").unwrap_err(),
            ReadError::Zip(_)
        ));
        assert!(matches!(
            read_default(b"<html></html>").unwrap_err(),
            ReadError::Aggregate(AggregateError::NotFeedback(_))
        ));
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"PK\x03\x04"), Sniffed::Zip);
        assert_eq!(sniff(b"\x1f\x8b\x08"), Sniffed::Gzip);
        assert_eq!(sniff(b"\xef\xbb\xbf <?xml"), Sniffed::Xml);
        assert_eq!(sniff(b"\n {"), Sniffed::Json);
        assert_eq!(sniff(b"Return-Path: <a@b>\r\n"), Sniffed::Message);
        assert_eq!(sniff(b"From a@b Mon Jan 1\n"), Sniffed::Message);
        assert_eq!(sniff(b"hello world: no"), Sniffed::Unknown);
    }
}
