//! A whole received message as `inspect` and the probe read it: MIME decoding of the body
//! (mail-parser), the verifier report inside, every Authentication-Results and
//! Received-SPF field. Malformed MIME is the common case here, not the exception.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::commands::inspect;
use mailauth_exporter::mail::body::body_text;

fuzz_target!(|data: &[u8]| {
    let _ = body_text(data);
    let _ = inspect::inspect_offline(data, &["mx.example.com".to_string()]);
});
