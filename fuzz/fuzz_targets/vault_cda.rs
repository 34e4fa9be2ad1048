//! A CDA R2 document (HL7), alone or inside an XDM archive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mshub_vault::cda::parse_cda;

fuzz_target!(|data: &[u8]| {
    let _ = parse_cda(data, "doc.xml");
});
