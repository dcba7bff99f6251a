//! The body of an auto-responder's report (port25-style verifier), and the probe token
//! read from a header block.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::mail::{mailbox, verifier_report};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(report) = verifier_report::parse(&text) {
        let _ = report.result_for("spf");
        let _ = report.echoed_header("X-Mailauth-Probe");
    }
    let _ = mailbox::header_token(&text);
});
