//! Authentication-Results / ARC-Authentication-Results: a whole message (as the mailbox
//! hands it over) and a single field value, both from any receiver on the Internet; the
//! receiver's part of that message (`trust`) and a DSN in it (`reply`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::mail::{auth_results, header, reply, trust};

fuzz_target!(|data: &[u8]| {
    let _ = auth_results::parse_message(data);
    // The trust boundary and the DSN reader read the same whole messages.
    let _ = trust::spf_inputs(data, &["mx.example.net".to_string()]);
    let _ = reply::bounce(data);
    let _ = header::fields(data);
    let _ = header::split_message(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = auth_results::parse_value("Authentication-Results", text);
        let _ = auth_results::parse_value("ARC-Authentication-Results", text);
        let _ = header::unfold(text);
    }
});
