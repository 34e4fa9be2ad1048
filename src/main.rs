//! `mshub`: the command line. Wiring only: every capability lives in the workspace's crates.

mod admin;
mod check_config;
mod cli;
mod config;
mod control;
mod demo;
mod filing;
mod hub;
mod letter;
mod lifecycle;
mod migrate;
mod operate;
mod roster;
mod serve;
mod tls;

fn main() -> std::process::ExitCode {
    return_large_allocations_to_the_system();
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mshub: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Every password check (argon2id, m = 19 MiB) allocates 19 MiB. Once glibc has freed one such
/// mmap'd block it raises its mmap threshold above that size and serves the next ones from its
/// heaps, which keep them resident: about 19 MiB of RSS per concurrent login, for as long as
/// the process lives (measured on IMAP sessions, BENCHMARKS.md). A fixed threshold keeps large
/// blocks (4 MiB and more) mmap'd, so they go back to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_allocations_to_the_system() {
    // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_allocations_to_the_system() {}
