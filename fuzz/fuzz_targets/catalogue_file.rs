//! The application catalogue file (parsed after its signature is verified).
//! The harness is `fuzz/harness/catalogue_file.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/catalogue_file.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
