//! TLS-RPT records (RFC 8460 §3).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::checks::{newer_records, taglist};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = newer_records::lint_tls_rpt(text);
        let _ = taglist::parse(text);
    }
});
