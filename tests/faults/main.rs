//! Fault injection: the hub is killed (or stopped with SIGTERM) under load, its key-value
//! store's file system fills up then is freed, and on the scale-out path its PostgreSQL crashes
//! and its object store (Garage) is killed, then both come back. Each case reports what was
//! sent, acknowledged, found, missing and duplicated, and holds the hub to: nothing
//! acknowledged lost, nothing refused delivered, no UID given to two messages, and mail
//! acknowledged again within 5 s after the fault ends.
//!
//! The file system cases mount a small tmpfs and need root (as in CI); otherwise they say
//! they did not run, and the same fault is injected in process through the store's hook.

mod disk_full;
#[path = "../e2e/garage.rs"]
mod garage;
mod kill9;
#[path = "../../store/tests/support/pg.rs"]
mod pg;
mod scaleout;
mod support;
