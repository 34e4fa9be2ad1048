//! SMTP commands as the session reads them, fed in chunks, then DATA / BDAT bodies.
//! The harness is `fuzz/harness/smtp_command.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/smtp_command.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
