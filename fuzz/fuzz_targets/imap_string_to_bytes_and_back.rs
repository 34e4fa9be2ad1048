//! Known-answer inverse: what the IMAP writers produce, the parser reads back.
//! The harness is `fuzz/harness/imap_string_to_bytes_and_back.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/imap_string_to_bytes_and_back.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
