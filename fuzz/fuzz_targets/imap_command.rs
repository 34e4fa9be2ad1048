//! An IMAP command line as the server frames it, and the helpers run on it.
//! The harness is `fuzz/harness/imap_command.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/imap_command.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
