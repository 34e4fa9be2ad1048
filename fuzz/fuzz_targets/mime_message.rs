//! A delivered message's MIME structure: the parse and walk of its parts the vault does when
//! filing, the headers the MTA's policy reads (`MessageHeaders::parse`), and the prefilters of
//! the delivery pipeline (vault, agenda, prescription).
//! The part walk is `fuzz/harness/mime_message.rs`, shared with the replay of the corpus.
#![no_main]

#[path = "../harness/mime_message.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::walk_parts(data);
    let _ = mshub_mta::policy::MessageHeaders::parse(data);
    let _ = mshub_vault::may_carry_documents(data);
    let _ = mshub_agenda::may_carry_invitation(data);
    let _ = mshub_prescription::may_carry_order(data);
});
