//! The hub tried as an attacker would: each finding of the trust-at-the-edges review replayed
//! against the real binary with real clients (Python's smtplib and imaplib, curl, raw sockets,
//! a TLS scanner). Each test failed on the hub before its fix; the module named after the
//! finding is the test that now guards it.

mod agenda;
mod at_rest;
mod document_ids;
mod imap_preauth;
mod login_memory;
mod login_throttle;
mod relay;
mod tls_scan;
mod web;
