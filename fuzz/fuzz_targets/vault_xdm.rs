//! An XDM archive (a zip), a METADATA.XML and a patientId (CX) value.
//! The harness is `fuzz/harness/vault_xdm.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/vault_xdm.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
