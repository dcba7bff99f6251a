//! DNS responses as they come off the network (`dns::wire::read_response`): the first two
//! bytes are taken as the id we asked with, so that inputs get past the id check and into
//! the message and its records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailauth_exporter::resolver::{wire, RecordType};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let id = u16::from_be_bytes([data[0], data[1]]);
    for rtype in [RecordType::Txt, RecordType::Mx, RecordType::Tlsa] {
        let _ = wire::read_response(data, id, "example.test", rtype);
    }
});
