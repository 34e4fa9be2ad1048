//! `mshub serve`: every service in one process, until SIGINT or SIGTERM.
//!
//! The protocol services (SMTP, IMAP, HTTPS) are registered here as their crates are built;
//! until then `serve` opens and checks everything they share (store, directory, TLS) and says
//! plainly which listeners are not served yet.

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::hub::Hub;
use crate::tls;

pub async fn run(hub: Hub) -> anyhow::Result<()> {
    // Handlers first: a signal sent as soon as "ready" is printed must stop us cleanly.
    let shutdown = Shutdown::install()?;
    // Fail at start, not at the first client, if the certificate or key is unusable.
    let _tls = tls::server_config(&hub.config.tls)?;
    let listen = &hub.config.listen;
    let services = [
        ("SMTP relay (STARTTLS)", listen.smtp_relay),
        ("SMTP submission (STARTTLS)", listen.submission),
        ("SMTP submission (TLS)", listen.submissions),
        ("IMAP (STARTTLS)", listen.imap),
        ("IMAP (TLS)", listen.imaps),
        ("HTTPS web inbox", listen.https),
    ];
    println!(
        "mshub ready: hub domain {}, data in {}",
        hub.config.hub_domain,
        hub.config.data_dir.display()
    );
    for (name, addr) in services {
        println!("  {name:<28} {addr}  not served yet");
    }
    tracing::info!(data = %hub.config.data_dir.display(), "mshub ready");
    shutdown.wait().await;
    tracing::info!("shutting down");
    println!("mshub stopped");
    Ok(())
}

/// SIGINT or SIGTERM.
struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
