//! Received-SPF (RFC 7208 §9.1): a whole message and a single field value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::mail::received_spf;

fuzz_target!(|data: &[u8]| {
    let _ = received_spf::parse_message(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = received_spf::parse_value(text);
    }
});
