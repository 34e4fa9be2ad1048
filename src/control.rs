//! The control socket: while the hub runs it holds the store's lock, so operator commands
//! (`mshub account …`, `domain …`, `queue …`, `audit …`, `catalogue …`) are forwarded to it through a Unix
//! socket in the data directory, readable by the hub's user only, and run there by the same
//! code ([`crate::operate`]).
//!
//! Protocol: one JSON request line `{"args": [...], "stdin": "..."}`, one JSON reply line
//! `{"ok": bool, "stdout": "...", "error": "..."}`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::hub::Hub;
use crate::operate::{self, Operation};

#[derive(Serialize, Deserialize)]
struct Request {
    args: Vec<String>,
    stdin: String,
}

#[derive(Serialize, Deserialize)]
struct Response {
    ok: bool,
    stdout: String,
    error: String,
}

#[derive(Parser)]
#[command(name = "mshub")]
struct Forwarded {
    #[command(subcommand)]
    op: Operation,
}

/// Largest request accepted (a command line and a password).
const MAX_REQUEST: u64 = 64 * 1024;

pub fn socket_path(config: &Config) -> PathBuf {
    config.data_dir.join("control.sock")
}

/// This process's arguments without the global `--config FILE` (the hub has its own).
fn forwarded_args() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--config" {
            args.next();
        } else if !a.starts_with("--config=") {
            out.push(a);
        }
    }
    out
}

/// Client side: runs `op` in the running hub and prints what it printed.
pub fn forward(config: &Config, op: &Operation) -> anyhow::Result<()> {
    let path = socket_path(config);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).with_context(|| {
        format!(
            "the data directory is in use, but the running hub does not answer on {}",
            path.display()
        )
    })?;
    let mut stdin = String::new();
    if op.reads_stdin() {
        std::io::stdin()
            .lock()
            .read_line(&mut stdin)
            .context("reading standard input")?;
    }
    let mut request = serde_json::to_vec(&Request {
        args: op.forwarded_args(forwarded_args()),
        stdin,
    })?;
    request.push(b'\n');
    stream.write_all(&request)?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .context("reading the hub's answer")?;
    let response: Response =
        serde_json::from_str(&line).context("the hub's answer is not understood")?;
    print!("{}", response.stdout);
    if !response.ok {
        bail!("{}", response.error);
    }
    Ok(())
}

/// Server side: answers on the control socket until `stop` turns true.
pub async fn serve(
    hub: Hub,
    path: PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let hub = hub.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(hub, stream).await {
                tracing::warn!(error = %e, "control request failed");
            }
        });
    }
    remove(&path);
    Ok(())
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

async fn answer(hub: Hub, stream: tokio::net::UnixStream) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::io::AsyncReadExt::take(tokio::io::BufReader::new(read), MAX_REQUEST)
        .read_line(&mut line)
        .await?;
    let request: Request = serde_json::from_str(&line).context("malformed control request")?;
    // Argon2 and fsyncs: off the async workers.
    let response = tokio::task::spawn_blocking(move || run(&hub, request)).await?;
    let mut bytes = serde_json::to_vec(&response)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    Ok(())
}

fn run(hub: &Hub, request: Request) -> Response {
    let args = std::iter::once("mshub".to_string()).chain(request.args);
    let op = match Forwarded::try_parse_from(args) {
        Ok(f) => f.op,
        Err(e) => {
            return Response {
                ok: false,
                stdout: String::new(),
                error: e.to_string(),
            }
        }
    };
    tracing::info!("operator command through the control socket");
    let mut stdout = Vec::new();
    let outcome = operate::run(hub, op, &mut request.stdin.as_bytes(), &mut stdout);
    Response {
        ok: outcome.is_ok(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        error: outcome.err().map(|e| format!("{e:#}")).unwrap_or_default(),
    }
}
