//! The validating constructors of the identifiers that arrive in SMTP envelopes, IMAP LOGIN,
//! web forms and XDM metadata: INS, RPPS, mail address, domain.

use mshub_directory::{Address, Domain, Ins, Rpps};

pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Ins::try_from(s);
    let _ = Rpps::try_from(s);
    let _ = Domain::try_from(s);
    let _ = Address::try_from(s);
}
