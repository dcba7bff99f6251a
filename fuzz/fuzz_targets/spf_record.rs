//! SPF records (RFC 7208 §4–§7): parsing, and expanding any macro-string the parser
//! accepts (its length must stay bounded by the input, whatever the transformers say).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::checks::spf::macros::{expand, MacroContext};
use mailauth_exporter::checks::spf::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse::parse(text);
    for exp_letters in [false, true] {
        if parse::check_macro_string(text, exp_letters).is_ok() {
            let ctx = MacroContext {
                sender: "user.name@sub.example.com",
                domain: "sub.example.com",
                ip: Some("2001:db8::1".parse().unwrap()),
                helo: "mx.example.com",
                validated: "unknown",
            };
            let _ = expand(text, &ctx);
        }
    }
});
