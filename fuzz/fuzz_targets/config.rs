//! The TOML configuration and the domains file: written by people, reloaded at run time,
//! so a typo must be an error, never a crash of the running exporter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::config::{domains_file, parse_nameserver, Config};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, std::path::Path::new("fuzz.toml"));
        let _ = domains_file::parse(text);
        let _ = parse_nameserver(text);
    }
});
