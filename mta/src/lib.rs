//! # mshub-mta (not built yet)
//!
//! Will own SMTP (RFC 5321) for the hub: the relay port for hospital systems and peer
//! operators (STARTTLS required), submission for mail clients (STARTTLS and implicit TLS,
//! AUTH only after TLS), the trust-space policy of DESIGN §4 with one exact reply per refusal,
//! durable acceptance (`250` only after fsync), delivery into the store's mailboxes followed by
//! the registered filers (vault, agenda), the outbound queue with retries, and DSNs (RFC 3464).
//!
//! The SMTP codec will live in `codec/` without any dependency on the store.
