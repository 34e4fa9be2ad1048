//! The admin listener: `/metrics` (Prometheus's text format), `/healthz` (the process
//! answers) and `/readyz` (the hub can do its work: the store answers reads and takes writes,
//! the outbound queue is not stuck). Plain HTTP, on loopback by default: it is for the
//! operator's monitoring on the same host or network segment, and it shows no patient data
//! (counts by protocol, result, reply code and route pattern only).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use mshub_metrics::{Collector, Exposition};
use mshub_mta::queue::{Queue, QueuedMessage};

use crate::hub::Hub;

/// A queued message whose next attempt is this late has not been looked at by the queue
/// runner: the queue is stuck (`/readyz` answers 503).
const STUCK_AFTER_SECS: i64 = 15 * 60;

/// Serves the admin routes on `listener` until `stopped`.
pub async fn serve(
    hub: Hub,
    listener: TcpListener,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    // Opened once: each scrape and probe then only lists it.
    let queue = Arc::new(Queue::open(hub.store.clone()).map_err(std::io::Error::other)?);
    mshub_metrics::register(Box::new(QueueGauges {
        queue: queue.clone(),
    }));
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(Admin { hub, queue }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopped.changed().await;
        })
        .await
}

async fn metrics() -> impl IntoResponse {
    let text = tokio::task::spawn_blocking(mshub_metrics::render)
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// 200 `ready`, or 503 with one line per reason.
/// What the probes read.
struct Admin {
    hub: Hub,
    queue: Arc<Queue>,
}

async fn readyz(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    let problems = tokio::task::spawn_blocking(move || not_ready(&admin.hub, &admin.queue))
        .await
        .unwrap_or_else(|_| vec!["the readiness check itself failed".into()]);
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", problems.join("\n")),
        )
    }
}

/// What keeps the hub from doing its work now (nothing: ready).
fn not_ready(hub: &Hub, queue: &Queue) -> Vec<String> {
    let mut problems = Vec::new();
    // Reachable: one read of a record (a query on PostgreSQL).
    if let Err(e) = hub.store.mailbox_by_id(mshub_store::MailboxId(0)) {
        problems.push(format!("store: cannot read: {e}"));
    }
    if let mshub_store::Health::WritesFailing { since, reason } = hub.store.health() {
        let secs = since.elapsed().map_or(0, |d| d.as_secs());
        problems.push(format!("store: writes failing for {secs} s: {reason}"));
    }
    match queue.list() {
        Ok(entries) => {
            let now = mshub_store::now();
            let late = entries
                .iter()
                .filter(|m| m.pending().next().is_some())
                .filter(|m| now - m.next_attempt > STUCK_AFTER_SECS)
                .count();
            if late > 0 {
                problems.push(format!(
                    "outbound queue: {late} message(s) not attempted for over {} minutes",
                    STUCK_AFTER_SECS / 60
                ));
            }
        }
        Err(e) => problems.push(format!("outbound queue: {e}")),
    }
    problems
}

/// The outbound queue's length and the age of its oldest message, read at each scrape.
struct QueueGauges {
    queue: Arc<Queue>,
}

impl Collector for QueueGauges {
    fn collect(&self, out: &mut Exposition) {
        let Ok(entries) = self.queue.list() else {
            return;
        };
        let now = mshub_store::now();
        let waiting: Vec<&QueuedMessage> = entries
            .iter()
            .filter(|m| m.pending().next().is_some())
            .collect();
        out.gauge(
            "mshub_queue_messages",
            "Messages in the outbound queue with a recipient still to deliver.",
            waiting.len() as f64,
        );
        let oldest = waiting.iter().map(|m| now - m.created).max().unwrap_or(0);
        out.gauge(
            "mshub_queue_oldest_seconds",
            "Age of the oldest message in the outbound queue (0 when empty).",
            oldest.max(0) as f64,
        );
    }
}
