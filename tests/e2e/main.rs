//! End-to-end tests: they run the real `mshub` binary as an operator would. One test binary
//! for all of them (one link, one place to look).

mod agenda;
mod api;
mod apps;
mod catalogue;
mod cli;
mod demo;
mod federation;
mod imap;
mod imap_interop;
mod lifecycle;
mod malformed;
mod smtp;
mod sso;
mod support;
mod vault;
mod webmail;
