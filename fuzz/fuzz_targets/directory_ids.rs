//! The validating constructors of INS, RPPS, mail address and domain.
//! The harness is `fuzz/harness/directory_ids.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/directory_ids.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
