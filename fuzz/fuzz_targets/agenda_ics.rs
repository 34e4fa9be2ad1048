//! A text/calendar part (RFC 5545, iTIP RFC 5546) of an incoming message.
//! The harness is `fuzz/harness/agenda_ics.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/agenda_ics.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
