//! End-to-end tests: they run the real `mshub` binary as an operator would. One test binary
//! for all of them (one link, one place to look).

mod agenda;
mod api;
mod apps;
mod attacks;
mod browser_run;
mod care;
mod catalogue;
mod cli;
mod demo;
mod federation;
mod garage;
mod imaging;
mod imap;
mod imap_append;
mod imap_fetch;
mod imap_flags;
mod imap_interop;
mod imap_list;
mod imap_misc;
mod imap_sort;
mod imap_thread;
mod lifecycle;
mod malformed;
mod medical_profile;
mod own_appointments;
mod phone;
mod prescription;
mod s3_blobs;
mod scaleout;
mod smtp;
mod sso;
mod support;
mod uploads;
mod vault;
mod webmail;
