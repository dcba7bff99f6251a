//! MTA-STS: the `_mta-sts` TXT record (RFC 8461 §3.1) and the policy file fetched over
//! HTTPS (§3.2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::checks::{mta_sts, newer_records};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = newer_records::lint_mta_sts(text);
        let _ = mta_sts::parse_policy(text);
    }
});
