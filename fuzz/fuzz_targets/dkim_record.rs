//! DKIM key records (RFC 6376 §3.6.1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::checks::dkim::key;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = key::parse(text);
    }
});
