//! Bytes as the `report` command and the report sources get them (a file or a mailed
//! message): gzip, zip, MIME and ARF unpacked, then DMARC aggregate XML, TLS-RPT JSON and
//! failure reports parsed. Anyone can mail these bytes; every path must end without a
//! panic and within the bounds of `reports::Limits`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::reports::{aggregate, failure, read, tlsrpt, Limits};

fuzz_target!(|data: &[u8]| {
    let _ = read(data, &Limits::default());
    let _ = aggregate::parse(data);
    let _ = tlsrpt::parse(data);
    let _ = failure::parse(data);
});
