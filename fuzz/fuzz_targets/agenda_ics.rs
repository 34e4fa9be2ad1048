//! A text/calendar part (RFC 5545, iTIP RFC 5546) of an incoming message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mshub_agenda::ics::read_invitation;
use mshub_agenda::IcsLimits;

fuzz_target!(|data: &[u8]| {
    let _ = read_invitation(data, &IcsLimits::default());
});
