//! A CDA R2 document (HL7), alone or inside an XDM archive.
//! The harness is `fuzz/harness/vault_cda.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/vault_cda.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
