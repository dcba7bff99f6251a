//! DMARC records (RFC 7489 §6.3) and their report URIs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::checks::dmarc::{self, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse::parse(text);
        let _ = parse::is_dmarc(text);
        let _ = parse::parse_uri(text);
        let _ = dmarc::Policy::parse(text);
    }
});
