//! A text/calendar part (RFC 5545, iTIP RFC 5546) of an incoming message.

use mshub_agenda::ics::read_invitation;
use mshub_agenda::IcsLimits;

pub fn run(data: &[u8]) {
    let _ = read_invitation(data, &IcsLimits::default());
}
