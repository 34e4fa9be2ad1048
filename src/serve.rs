//! `mshub serve`: every service in one process, until SIGINT or SIGTERM.
//!
//! Binds every listener first (a port in use fails the start with its address), prints where
//! each service listens (tests read the `  <service>  <address>` lines), then runs them.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};

use mshub_imap::Imap;
use mshub_mta::{Listeners, Mta};
use mshub_webmail::Webmail;

use crate::hub::Hub;
use crate::tls;

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))
}

pub async fn run(hub: Hub) -> anyhow::Result<()> {
    // Handlers first: a signal sent as soon as "ready" is printed must stop us cleanly.
    let shutdown = Shutdown::install()?;
    let identity = tls::load_identity(&hub.config.tls)?;
    // One certificate for every server, replaced on SIGHUP (a renewal without a restart).
    let certificate = mshub_mta::tls::ServedCertificate::new(&identity)?;
    let listen = &hub.config.listen;
    let mta = Mta::with_served_certificate(
        hub.config.mta.clone(),
        hub.store.clone(),
        hub.directory.clone(),
        &identity,
        certificate.clone(),
        crate::filing::filers(&hub),
    )?;
    let listeners = Listeners {
        relay: bind(listen.smtp_relay, "the SMTP relay").await?,
        submission: bind(listen.submission, "SMTP submission").await?,
        submissions: bind(listen.submissions, "SMTP submission over TLS").await?,
    };
    let imap = Imap::new(
        hub.config.imap.clone(),
        hub.store.clone(),
        hub.directory.clone(),
        mshub_mta::tls::served_config(certificate.clone(), None)?,
    );
    let imap_listeners = mshub_imap::Listeners {
        imap: bind(listen.imap, "IMAP").await?,
        imaps: bind(listen.imaps, "IMAP over TLS").await?,
    };
    let mut webmail_config = hub.config.webmail.clone();
    webmail_config.agenda = hub.config.agenda.clone();
    let webmail = Webmail::with_config(
        webmail_config,
        hub.store.clone(),
        hub.directory.clone(),
        mta.clone(),
    )
    .context("[webmail.saml]")?;
    webmail.enable_prescriptions(hub.prescriptions.clone());
    let dated = mshub_vault::Vault::new(hub.store.clone(), hub.directory.clone())
        .derive_care_dates()
        .context("dating the care relationships of existing spaces")?;
    if dated > 0 {
        tracing::info!(
            dated,
            "care relationships: médecins traitants dated from the audit chain"
        );
    }
    let https = bind(listen.https, "HTTPS").await?;
    let admin = bind(listen.admin, "metrics and health").await?;
    let https_tls = mshub_mta::tls::served_config(certificate.clone(), None)?;
    println!(
        "mshub ready: hub domain {}, data in {}",
        hub.config.hub_domain,
        hub.config.data_dir.display()
    );
    let served = [
        (
            "smtp-relay",
            listeners.relay.local_addr()?,
            "SMTP relay, STARTTLS required",
        ),
        (
            "submission",
            listeners.submission.local_addr()?,
            "SMTP submission, STARTTLS",
        ),
        (
            "submissions",
            listeners.submissions.local_addr()?,
            "SMTP submission, TLS",
        ),
        ("imap", imap_listeners.imap.local_addr()?, "IMAP, STARTTLS"),
        ("imaps", imap_listeners.imaps.local_addr()?, "IMAP, TLS"),
        ("https", https.local_addr()?, "web inbox and API"),
        (
            "admin",
            admin.local_addr()?,
            "metrics and health, plain HTTP",
        ),
    ];
    for (key, addr, what) in served {
        println!("  {key:<12} {addr:<22} {what}");
    }
    tracing::info!(data = %hub.config.data_dir.display(), "mshub ready");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let control = crate::control::socket_path(&hub.config);
    let control_task = tokio::spawn(crate::control::serve(hub.clone(), control, stopped.clone()));
    let mta_task = tokio::spawn(mta.serve(listeners, stopped.clone()));
    let imap_task = tokio::spawn(imap.serve(imap_listeners, stopped.clone()));
    let reminders_task = tokio::spawn(reminders(hub.clone(), stopped.clone()));
    let lifecycle_task = tokio::spawn(crate::lifecycle::run(hub.clone(), stopped.clone()));
    let admin_task = tokio::spawn(crate::admin::serve(hub.clone(), admin, stopped.clone()));
    let https_task = tokio::spawn(webmail.serve(https, https_tls, stopped));
    shutdown
        .wait(|| reload_certificate(&hub, &certificate))
        .await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    // Acknowledged mail is already durable: waiting is only for a tidy exit.
    let _ = tokio::time::timeout(Duration::from_secs(5), mta_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), imap_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), https_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reminders_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), lifecycle_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), admin_task).await;
    match control_task.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "control socket"),
        Err(e) => tracing::warn!(error = %e, "control socket task"),
        Ok(Ok(())) => {}
    }
    // Acknowledged writes are on disk already; what was applied since (caches, markers) is
    // written now, or the log says how much could not be.
    match hub.store.close() {
        Ok(()) => tracing::info!("store closed: everything applied is on disk"),
        Err(e) => tracing::error!(error = %e, "store closed with writes lost"),
    }
    println!("mshub stopped");
    Ok(())
}

/// How often the agenda looks for appointments to remind patients of.
const REMINDER_PERIOD: Duration = Duration::from_secs(60);

/// Sends the agenda's due appointment reminders every [`REMINDER_PERIOD`], and announces the
/// prevention calendar once a day, until stopped. A reminder or notice is marked sent in the
/// same commit as the message, so a stop loses or doubles none.
async fn reminders(hub: Hub, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let agenda = std::sync::Arc::new(mshub_agenda::Agenda::with_limits(
        hub.store.clone(),
        hub.directory.clone(),
        (&hub.config.agenda).into(),
    ));
    // Several nodes may share the store: the one holding the lease sends, the others stand by
    // (and take over within two periods if it dies).
    let node = mshub_store::BlobId::random().to_string();
    loop {
        let agenda = agenda.clone();
        let store = hub.store.clone();
        let node = node.clone();
        let sent = tokio::task::spawn_blocking(move || {
            let now = mshub_store::now();
            if !store.lease(
                "agenda-reminders",
                &node,
                now,
                2 * REMINDER_PERIOD.as_secs(),
            )? {
                return Ok(0);
            }
            agenda.send_due_reminders(now).map_err(anyhow::Error::from)
        })
        .await;
        match sent {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(reminders = n, "appointment reminders sent"),
            Ok(Err(e)) => tracing::warn!(error = %e, "appointment reminders"),
            Err(e) => tracing::warn!(error = %e, "appointment reminders task"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REMINDER_PERIOD) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// SIGHUP: the certificate and key files are read again and presented to new connections;
/// a pair that does not load (a half-written file, a key of another certificate) is refused
/// and the current one kept.
fn reload_certificate(hub: &Hub, served: &mshub_mta::tls::ServedCertificate) {
    let reloaded = tls::load_identity(&hub.config.tls)
        .and_then(|identity| served.replace(&identity).map_err(anyhow::Error::from));
    match reloaded {
        Ok(()) => tracing::info!(
            cert = %hub.config.tls.cert.display(),
            "certificate reloaded: new connections get it"
        ),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "certificate not reloaded, the current one stays")
        }
    }
}

/// SIGINT or SIGTERM; SIGHUP reloads the certificate.
struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Shutdown {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            hangup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// Until SIGINT or SIGTERM, running `on_hangup` at each SIGHUP.
    async fn wait(mut self, on_hangup: impl Fn()) {
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => return,
                _ = self.terminate.recv() => return,
                _ = self.hangup.recv() => on_hangup(),
            }
        }
    }
}
