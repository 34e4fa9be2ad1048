//! A DICOM file: structural check, read of its attributes, rendering of its first frame.
//! The harness is `fuzz/harness/vault_dicom.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/vault_dicom.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
