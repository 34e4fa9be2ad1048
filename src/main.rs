//! `mshub`: the command line. Wiring only: every capability lives in the workspace's crates.

mod cli;
mod config;
mod control;
mod demo;
mod filing;
mod hub;
mod operate;
mod serve;
mod tls;

fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mshub: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
