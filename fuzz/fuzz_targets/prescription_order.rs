//! A prescriber's ordonnance.json, in a message and alone, and a QR link's parts.
//! The harness is `fuzz/harness/prescription_order.rs`, shared with the replay of the corpus as a test.
#![no_main]

#[path = "../harness/prescription_order.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
