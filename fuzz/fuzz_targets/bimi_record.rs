//! BIMI records (`default._bimi`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::checks::newer_records;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = newer_records::lint_bimi(text);
    }
});
