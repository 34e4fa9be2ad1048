//! # mshub-imap (not built yet)
//!
//! Will own IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) over the store's mailboxes, for the
//! professionals' mail clients and patients who prefer one: STARTTLS and implicit TLS, IDLE on
//! the store's change events, CONDSTORE/QRESYNC on its MODSEQs, one `cmd/<command>.rs` per
//! command on top of imap-codec, and a sans-I/O session.
