//! How reporters pack a report before mailing it: gzip, zip, and base64 wrapped at 76
//! columns as MIME requires. The integration tests reach it as `util::attachments`; the
//! unit tests of `src/reports/input.rs` include this file through `#[path]`, so both build
//! their samples the same way.
#![allow(dead_code)]

use std::io::{Cursor, Write};

/// `data` gzip-compressed, as Google sends an aggregate report (`.xml.gz`).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A zip archive of `members` (name, contents), deflated, as Microsoft sends a report.
pub fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, data) in members {
        w.start_file(*name, options).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// `data` in base64, lines of 76 characters joined by CRLF (RFC 2045 §6.8).
pub fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    text.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}
