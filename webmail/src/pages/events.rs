//! The live announcement of new mail: `text/event-stream` (HTML Living Standard §9.2), one
//! `message` event per message arriving in the space's INBOX. It carries no content: the page
//! fetches what it shows (progressive enhancement, see `live.js`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use mshub_store::SpecialUse;

use crate::frame::{blocking, internal, App, SignedIn};
use crate::Webmail;

/// How often an open `/events` stream checks that its session may still see the space.
const SESSION_CHECK: Duration = Duration::from_secs(2);

pub async fn events(State(app): App, who: SignedIn) -> Response {
    let account = who.space.id;
    let inbox = match blocking({
        let app = app.clone();
        move || app.store.special_mailbox(account, SpecialUse::Inbox)
    })
    .await
    {
        Ok(Ok(m)) => m.id,
        Ok(Err(e)) => return internal("inbox", &e),
        Err(r) => return r,
    };
    let receiver = app.store.events().subscribe();
    // The stream lives as long as the session may still look at this space: a delegation the
    // patient revoked (or a session closed) ends it before it announces anything more, and
    // within a few seconds when nothing arrives.
    let token = who.token.clone();
    let still_allowed = move |app: &Webmail| {
        app.sessions
            .peek(&token)
            .is_some_and(|s| s.acting_for == account)
    };
    let check = tokio::time::interval(SESSION_CHECK);
    let stream = futures_util::stream::unfold(
        (receiver, check, app.clone()),
        move |(mut rx, mut check, app)| {
            let still_allowed = still_allowed.clone();
            async move {
                loop {
                    let change = tokio::select! {
                        change = rx.recv() => change,
                        _ = check.tick() => {
                            if still_allowed(&app) {
                                continue;
                            }
                            return None;
                        }
                    };
                    let announce = match change {
                        Ok(change) => {
                            change.mailbox == inbox
                                && matches!(change.kind, mshub_store::ChangeKind::Appended { .. })
                        }
                        // Fell behind: say something may have arrived.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    };
                    if !announce {
                        continue;
                    }
                    if !still_allowed(&app) {
                        return None;
                    }
                    let event = Event::default().event("message").data("new");
                    return Some((Ok::<_, Infallible>(event), (rx, check, app)));
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(20)))
        .into_response()
}
