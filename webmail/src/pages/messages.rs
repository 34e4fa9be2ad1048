//! Messages: the inbox and the sent folder (newest first, paged), reading a message (plain
//! text, or HTML through an allow-list sanitizer with remote content blocked), its
//! attachments, what the filers did with them, the reply to a professional, and the live
//! announcement of new mail (server-sent events, progressive enhancement).
//!
//! The rule "a patient answers, never starts" is the MTA's: a reply goes through
//! [`mshub_mta::Mta::submit`], which refuses what the page should not have offered anyway.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mshub_directory::{AccountKind, Address};
use mshub_mta::FilingOutcome;
use mshub_store::{Flag, FlagOp, MailboxId, MessageMeta, SpecialUse, Uid};

use super::format::iso_utc;
use super::{blocking, datetime_fr, error_page, internal, page, see_other, App, Area, SignedIn};
use crate::session::same_secret;
use crate::summary::Summary;
use crate::Webmail;

/// Messages per page of a list.
pub const PAGE_SIZE: usize = 25;
/// A reply with its attachments, at most (the MTA's own limit applies too).
pub const MAX_REPLY: usize = 20 * 1024 * 1024;

#[derive(Deserialize, Default)]
pub struct Paging {
    #[serde(default)]
    page: usize,
}

/// Who a correspondent is, as the directory knows it.
#[derive(Clone)]
pub(crate) struct Correspondent {
    name: String,
    /// Profession and specialty, or the kind of mailbox.
    role: Option<String>,
    organisation: Option<String>,
    is_professional: bool,
}

/// The correspondent of `address`, from the webmail's short-lived cache of directory
/// identities (see [`crate::summary::Identities`]): an inbox page names the same few senders
/// again and again.
fn correspondent(
    app: &Webmail,
    address: Option<&str>,
    fallback: Option<&str>,
) -> Arc<Correspondent> {
    if let Some(a) = address {
        if let Some(c) = app.identities.get(a) {
            return c;
        }
    }
    let c = Arc::new(lookup_correspondent(app, address, fallback));
    match address {
        // Only known accounts are cached: an unknown sender's name is the message's own.
        Some(a) if c.role.is_some() => app.identities.put(a, c.clone()),
        _ => {}
    }
    c
}

fn lookup_correspondent(
    app: &Webmail,
    address: Option<&str>,
    fallback: Option<&str>,
) -> Correspondent {
    let unknown = || Correspondent {
        name: fallback
            .or(address)
            .unwrap_or("expéditeur inconnu")
            .to_string(),
        role: None,
        organisation: None,
        is_professional: false,
    };
    let Some(address) = address.and_then(|a| Address::try_from(a).ok()) else {
        return unknown();
    };
    let Ok(Some(account)) = app.directory.account_by_address(&address) else {
        return unknown();
    };
    let organisation = app
        .directory
        .organisations_of(&address)
        .ok()
        .and_then(|o| o.first().map(|o| o.kind.display_name()));
    let (role, is_professional) = match &account.kind {
        AccountKind::Professional {
            profession,
            specialty,
            ..
        } => (
            Some(if specialty.is_empty() {
                profession.label_fr().to_string()
            } else {
                format!("{}, {specialty}", profession.label_fr())
            }),
            true,
        ),
        AccountKind::Organisation { .. } => (Some("messagerie d'organisation".into()), true),
        AccountKind::Application { .. } => (Some("application référencée".into()), false),
        AccountKind::Patient { .. } => (Some("patient".into()), false),
    };
    Correspondent {
        name: account.kind.display_name(),
        role,
        organisation,
        is_professional,
    }
}

fn correspondent_line(c: &Correspondent) -> Markup {
    html! {
        strong { (c.name) }
        @if let Some(role) = &c.role { ", " (role) }
        @if let Some(org) = &c.organisation { " — " (org) }
    }
}

/// The cached summary of a message, parsed once from its decrypted bytes.
fn summary(app: &Webmail, mailbox: MailboxId, uid: Uid) -> Arc<Summary> {
    if let Some(s) = app.summaries.get(mailbox, uid) {
        return s;
    }
    let parsed = match app.store.read_message(mailbox, uid) {
        Ok(raw) => Summary::parse(&raw),
        Err(e) => {
            tracing::warn!(%mailbox, %uid, error = %e, "message unreadable");
            return Arc::new(Summary {
                subject: "(message illisible)".into(),
                ..Summary::default()
            });
        }
    };
    app.summaries.put(mailbox, uid, parsed)
}

/// A line of a list: a conversation of the inbox (shown by its newest message), or a message
/// of the sent folder.
struct Row {
    uid: Uid,
    seen: bool,
    date: i64,
    summary: Arc<Summary>,
    who: Arc<Correspondent>,
    /// Messages in the conversation.
    count: usize,
}

struct Listing {
    mailbox: MailboxId,
    /// Lines in all (conversations, or messages in the sent folder).
    lines: usize,
    /// Messages in the folder.
    total: usize,
    unread: usize,
    rows: Vec<Row>,
}

/// The conversations of `mailbox` as of `list`: cached, or built from the summaries (which
/// may decrypt messages: never with `cached_only`).
fn threads_of(
    app: &Webmail,
    mailbox: &mshub_store::Mailbox,
    list: &crate::listing::List,
    cached_only: bool,
) -> Option<Arc<crate::conversations::Threads>> {
    if let Some(t) = app.threads.cached(mailbox) {
        return Some(t);
    }
    if cached_only {
        return None;
    }
    Some(app.threads.build(mailbox.id, list, |uid| {
        summary(app, mailbox.id, uid).thread.clone()
    }))
}

/// A page of a folder. With `cached_only`, it does no slow work (no message decryption, no
/// rebuild of the list, no directory read) and gives `None` where that would be needed, so it
/// can run on the async workers: the common case of an inbox looked at again.
fn listing(
    app: &Webmail,
    who: &SignedIn,
    use_: SpecialUse,
    page_no: usize,
    cached_only: bool,
) -> mshub_store::Result<Option<Listing>> {
    let mailbox = app.store.special_mailbox(who.space.id, use_)?;
    let list = if cached_only {
        match app.lists.cached(&mailbox) {
            Some(l) => l,
            None => return Ok(None),
        }
    } else {
        app.lists.get(&app.store, &mailbox)?
    };
    // The inbox by conversation, newest first; the sent folder message by message. Only the
    // page's lines are gathered (a folder may hold tens of thousands).
    let skip = page_no.saturating_mul(PAGE_SIZE);
    let (line_count, lines): (usize, Vec<(Uid, bool, i64, usize)>) = if use_ == SpecialUse::Inbox {
        let Some(threads) = threads_of(app, &mailbox, &list, cached_only) else {
            return Ok(None);
        };
        (
            threads.list.len(),
            threads
                .list
                .iter()
                .skip(skip)
                .take(PAGE_SIZE)
                .map(|c| (c.latest(), c.unread == 0, c.arrived, c.uids.len()))
                .collect(),
        )
    } else {
        (
            list.entries.len(),
            list.entries
                .iter()
                .rev()
                .skip(skip)
                .take(PAGE_SIZE)
                .map(|e| (e.uid, e.seen, e.arrived, 1))
                .collect(),
        )
    };
    let mut rows = Vec::with_capacity(PAGE_SIZE);
    for &(uid, seen, date, count) in &lines {
        let s = match app.summaries.get(mailbox.id, uid) {
            Some(s) => s,
            None if cached_only => return Ok(None),
            None => summary(app, mailbox.id, uid),
        };
        // In the sent folder the correspondent is the recipient.
        let (addr, name) = if use_ == SpecialUse::Sent {
            (s.to.first().map(String::as_str), None)
        } else {
            (s.from_address.as_deref(), s.from_name.as_deref())
        };
        let who = match addr.and_then(|a| app.identities.get(a)) {
            Some(c) => c,
            None if cached_only => return Ok(None),
            None => correspondent(app, addr, name),
        };
        rows.push(Row {
            uid,
            seen,
            date,
            who,
            summary: s,
            count,
        });
    }
    Ok(Some(Listing {
        mailbox: mailbox.id,
        lines: line_count,
        total: list.entries.len(),
        unread: list.unread,
        rows,
    }))
}

async fn list(app: Arc<Webmail>, who: SignedIn, use_: SpecialUse, page_no: usize) -> Response {
    let (title, base, area_label) = match use_ {
        SpecialUse::Sent => ("Messages envoyés", "/sent", "Destinataire"),
        _ => ("Messages reçus", "/", "Expéditeur"),
    };
    // Most views find everything cached: no hop to the blocking pool then.
    let fast = match listing(&app, &who, use_, page_no, true) {
        Ok(l) => l,
        Err(e) => return internal("message list", &e),
    };
    let l = match fast {
        Some(l) => l,
        None => {
            let for_list = who.clone();
            match blocking(move || listing(&app, &for_list, use_, page_no, false)).await {
                Ok(Ok(Some(l))) => l,
                Ok(Ok(None)) => return internal("message list", &"no listing"),
                Ok(Err(e)) => return internal("message list", &e),
                Err(r) => return r,
            }
        }
    };
    let pages = l.lines.div_ceil(PAGE_SIZE).max(1);
    let content = html! {
        p class="actions" {
            @if use_ == SpecialUse::Sent {
                a href="/" { "Messages reçus" }
            } @else {
                a href="/sent" { "Messages envoyés" }
            }
        }
        p class="meta" {
            (l.total) " message" @if l.total > 1 { "s" }
            @if use_ != SpecialUse::Sent {
                ", dont " (l.unread) " non lu" @if l.unread > 1 { "s" }
                ", en " (l.lines) " conversation" @if l.lines > 1 { "s" }
            }
            "."
        }
        p id="live" role="status" aria-live="polite" data-href=(base) {}
        @if l.rows.is_empty() {
            p { "Aucun message." }
        } @else {
            ul class="messages" {
                @for row in &l.rows {
                    li class=[(!row.seen).then_some("unread")] {
                        @if !row.seen { span class="tag unread" { "Non lu" } " " }
                        a class="subject" href={ "/m/" (l.mailbox) "/" (row.uid) } { (row.summary.subject) }
                        @if row.count > 1 { " " span class="tag" { (row.count) " messages" } }
                        div class="meta" {
                            span class="visually-hidden" { (area_label) " : " }
                            (correspondent_line(&row.who))
                        }
                        div class="meta" {
                            time datetime=(iso_utc(row.date)) { (datetime_fr(row.date)) }
                            @if !row.summary.attachments.is_empty() {
                                " · " span class="tag" {
                                    (row.summary.attachments.len()) " pièce"
                                    @if row.summary.attachments.len() > 1 { "s" } " jointe"
                                    @if row.summary.attachments.len() > 1 { "s" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if pages > 1 {
            nav class="pager" aria-label="Pages" {
                @if page_no > 0 {
                    a href={ (base) "?page=" (page_no - 1) } rel="prev" { "Plus récents" }
                }
                span { "Page " (page_no + 1) " sur " (pages) }
                @if page_no + 1 < pages {
                    a href={ (base) "?page=" (page_no + 1) } rel="next" { "Plus anciens" }
                }
            }
        }
    };
    page(title, Some(&who), Area::Messages, content)
}

pub async fn inbox(State(app): App, who: SignedIn, Query(p): Query<Paging>) -> Response {
    list(app, who, SpecialUse::Inbox, p.page).await
}

pub async fn sent(State(app): App, who: SignedIn, Query(p): Query<Paging>) -> Response {
    list(app, who, SpecialUse::Sent, p.page).await
}

/// `text/event-stream` (HTML Living Standard §9.2): one `message` event per message arriving
/// in the space's INBOX. Carries no content: the page fetches what it shows.
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

/// The message `uid` of `mailbox`, if the mailbox belongs to the space being looked at.
fn owned(
    app: &Webmail,
    who: &SignedIn,
    mailbox: u64,
    uid: u32,
) -> Result<Option<(MailboxId, Uid, MessageMeta)>, Response> {
    let mailbox = MailboxId(mailbox);
    let Ok(uid) = Uid::try_from(uid) else {
        return Ok(None);
    };
    match app.store.mailbox_by_id(mailbox) {
        Ok(Some(m)) if m.account == who.space.id => {}
        Ok(_) => return Ok(None),
        Err(e) => return Err(internal("mailbox", &e)),
    }
    match app.store.message(mailbox, uid) {
        Ok(Some(meta)) => Ok(Some((mailbox, uid, meta))),
        Ok(None) => Ok(None),
        Err(e) => Err(internal("message", &e)),
    }
}

/// HTML mail reduced to an allow-list: no script, style, form, frame or image; links only to
/// https and mailto, opened without referrer. Remote content never loads (the page's CSP
/// forbids it as well).
fn sanitize(html: &str) -> (String, bool) {
    let had_remote = html.to_ascii_lowercase().contains("<img");
    let clean = ammonia::Builder::default()
        .rm_tags(["img"])
        .url_schemes(["https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(html)
        .to_string();
    (clean, had_remote)
}

#[derive(Deserialize, Default)]
pub struct ReadQuery {
    #[serde(default)]
    sent: Option<String>,
}

pub async fn read(
    State(app): App,
    who: SignedIn,
    Path((mailbox, uid)): Path<(u64, u32)>,
    Query(q): Query<ReadQuery>,
) -> Response {
    let for_read = who.clone();
    let loaded = blocking(move || -> Result<Option<_>, Response> {
        let Some((mailbox, uid, meta)) = owned(&app, &for_read, mailbox, uid)? else {
            return Ok(None);
        };
        let raw = app
            .store
            .read_message(mailbox, uid)
            .map_err(|e| internal("message read", &e))?;
        // A relative reading on the patient's behalf leaves it unread for the patient.
        if for_read.is_owner() && !meta.flags.contains(&Flag::Seen) {
            if let Err(e) =
                app.store
                    .store_flags(mailbox, &[uid], FlagOp::Add, &[Flag::Seen].into(), None)
            {
                tracing::warn!(error = %e, "could not mark a message seen");
            }
        }
        let filings = app
            .mta
            .delivery()
            .filing_outcomes(mailbox, uid)
            .unwrap_or_default();
        let mailbox_use = app
            .store
            .mailbox_by_id(mailbox)
            .ok()
            .flatten()
            .and_then(|m| m.special_use);
        let summary = Summary::parse(&raw);
        let from = correspondent(
            &app,
            summary.from_address.as_deref(),
            summary.from_name.as_deref(),
        );
        let may_answer = summary
            .from_address
            .as_deref()
            .and_then(|a| Address::try_from(a).ok())
            .is_some_and(|a| {
                from.is_professional
                    && app
                        .mta
                        .conversations()
                        .has_written(for_read.space.id, &a)
                        .unwrap_or(false)
            });
        let thread = conversation_of(&app, &for_read, &summary, mailbox, uid)
            .map_err(|e| internal("conversation", &e))?;
        Ok(Some((
            (mailbox, uid, meta, raw, filings, mailbox_use),
            (summary, from, may_answer, thread),
        )))
    })
    .await;
    let ((mailbox, uid, meta, raw, filings, mailbox_use), (summary, from, may_answer, thread)) =
        match loaded {
            Ok(Ok(Some(v))) => v,
            Ok(Ok(None)) => return super::not_found(),
            Ok(Err(r)) | Err(r) => return r,
        };
    let Some(message) = MessageParser::default().parse(&raw) else {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Message illisible",
            "Ce message est mal formé et ne peut pas être affiché.",
        );
    };
    let text =
        message
            .text_body
            .first()
            .and_then(|&i| match &message.parts.get(i as usize)?.body {
                PartType::Text(t) => Some(t.to_string()),
                _ => None,
            });
    let html_part =
        message
            .html_body
            .first()
            .and_then(|&i| match &message.parts.get(i as usize)?.body {
                PartType::Html(h) => Some(h.to_string()),
                _ => None,
            });
    let attachments: Vec<(usize, String, String, usize)> = message
        .attachments()
        .enumerate()
        .map(|(n, p)| {
            let name = p.attachment_name().unwrap_or("pièce jointe").to_string();
            let ctype = p
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
                .unwrap_or_else(|| "application/octet-stream".into());
            (n, name, ctype, p.contents().len())
        })
        .collect();
    let back = if mailbox_use == Some(SpecialUse::Sent) {
        "/sent"
    } else {
        "/"
    };
    let content = html! {
        p { a href=(back) { "← Retour à la liste" } }
        @if q.sent.is_some() {
            p class="notice" role="status" { "Votre réponse a été envoyée. Elle figure dans vos messages envoyés." }
        }
        dl class="meta" {
            dt { "De" } dd { (correspondent_line(&from)) @if let Some(a) = &summary.from_address { " <" (a) ">" } }
            @if !summary.to.is_empty() { dt { "À" } dd { (summary.to.join(", ")) } }
            dt { "Date" } dd { time datetime=(iso_utc(summary.date.unwrap_or(meta.internal_date))) { (datetime_fr(summary.date.unwrap_or(meta.internal_date))) } }
        }
        @match (&text, &html_part) {
            (_, Some(h)) if text.as_deref().is_none_or(|t| t.trim().is_empty()) => {
                @let (clean, had_remote) = sanitize(h);
                @if had_remote { p class="hint" { "Les images et contenus distants de ce message ont été bloqués." } }
                div class="body-html" { (PreEscaped(clean)) }
            }
            (Some(t), _) => { pre class="body-text" { (t) } }
            _ => { p class="hint" { "Ce message n'a pas de texte." } }
        }
        @if !thread.is_empty() {
            h2 { "Dans cette conversation" }
            ul class="plain" {
                @for t in &thread {
                    li {
                        time datetime=(iso_utc(t.arrived)) { (datetime_fr(t.arrived)) } " — "
                        @if t.sent { "Vous" } @else { (t.from) }
                        " : "
                        a href={ "/m/" (t.mailbox) "/" (t.uid) } { (t.subject) }
                        @if !t.seen { " " span class="tag unread" { "Non lu" } }
                    }
                }
            }
        }
        @if !attachments.is_empty() {
            h2 { "Pièces jointes" }
            ul class="plain" {
                @for (n, name, ctype, size) in &attachments {
                    li {
                        a href={ "/m/" (mailbox) "/" (uid) "/part/" (n) } download { (name) }
                        span class="meta" { " (" (ctype) ", " (human_size(*size)) ")" }
                    }
                }
            }
        }
        @let shown: Vec<_> = filings.iter().filter(|f| !matches!(f.outcome, FilingOutcome::NotApplicable)).collect();
        @if !shown.is_empty() {
            h2 { "Classement automatique" }
            ul class="plain" {
                @for f in shown {
                    @match &f.outcome {
                        FilingOutcome::Filed { summary } => li class="notice" { (filer_label(&f.filer)) " : " (summary) }
                        FilingOutcome::Failed { reason } => li class="error" { (filer_label(&f.filer)) " : non classé — " (reason) }
                        FilingOutcome::NotApplicable => {}
                    }
                }
            }
        }
        @if may_answer && who.may_reply() {
            h2 { "Répondre" }
            form method="post" action={ "/m/" (mailbox) "/" (uid) "/reply" } enctype="multipart/form-data" {
                (who.csrf())
                label for="body" { "Votre réponse à " (from.name) }
                textarea id="body" name="body" required {}
                label for="attachment" { "Joindre des fichiers (facultatif, 20 Mo au total)" }
                input type="file" id="attachment" name="attachment" multiple;
                p { button type="submit" { "Envoyer la réponse" } }
            }
        } @else if mailbox_use != Some(SpecialUse::Sent) {
            p class="hint" {
                @if !who.may_reply() {
                    "Votre délégation permet la lecture seulement."
                } @else {
                    "Vous ne pouvez répondre qu'aux professionnels de santé qui vous ont écrit."
                }
            }
        }
    };
    page(&summary.subject, Some(&who), Area::Messages, content)
}

/// Another message of the conversation, for the list under the one being read.
struct ThreadLine {
    mailbox: MailboxId,
    uid: Uid,
    arrived: i64,
    sent: bool,
    seen: bool,
    from: String,
    subject: String,
}

/// The other messages of `of`'s conversation, in the inbox and the sent folder, oldest
/// first.
fn conversation_of(
    app: &Webmail,
    who: &SignedIn,
    of: &Summary,
    current_mailbox: MailboxId,
    current: Uid,
) -> mshub_store::Result<Vec<ThreadLine>> {
    let Some(key) = &of.thread else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for use_ in [SpecialUse::Inbox, SpecialUse::Sent] {
        let mailbox = app.store.special_mailbox(who.space.id, use_)?;
        let list = app.lists.get(&app.store, &mailbox)?;
        let Some(threads) = threads_of(app, &mailbox, &list, false) else {
            continue;
        };
        let Some(conversation) = threads.of_key(key) else {
            continue;
        };
        for &uid in &conversation.uids {
            if mailbox.id == current_mailbox && uid == current {
                continue;
            }
            let Ok(i) = list.entries.binary_search_by_key(&uid, |e| e.uid) else {
                continue;
            };
            let s = summary(app, mailbox.id, uid);
            out.push(ThreadLine {
                mailbox: mailbox.id,
                uid,
                arrived: list.entries[i].arrived,
                sent: use_ == SpecialUse::Sent,
                seen: list.entries[i].seen || use_ == SpecialUse::Sent,
                from: s
                    .from_name
                    .clone()
                    .or_else(|| s.from_address.clone())
                    .unwrap_or_default(),
                subject: s.subject.clone(),
            });
        }
    }
    out.sort_by_key(|t| t.arrived);
    Ok(out)
}

fn filer_label(filer: &str) -> &str {
    match filer {
        "vault" => "Documents",
        "agenda" => "Agenda",
        "prescription" => "Ordonnance",
        other => other,
    }
}

pub fn human_size(n: usize) -> String {
    match n {
        n if n < 1024 => format!("{n} o"),
        n if n < 1024 * 1024 => format!("{} Ko", n.div_ceil(1024)),
        n => format!("{:.1} Mo", n as f64 / (1024.0 * 1024.0)),
    }
}

/// Types a browser may be handed as they are; anything else is a download of opaque bytes.
fn safe_type(ctype: &str) -> &'static str {
    match ctype.to_ascii_lowercase().as_str() {
        "application/pdf" => "application/pdf",
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        "image/gif" => "image/gif",
        "text/plain" => "text/plain; charset=utf-8",
        "text/calendar" => "text/calendar; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `Content-Disposition: attachment` with the name in RFC 6266 / RFC 8187 form.
pub fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

pub async fn attachment(
    State(app): App,
    who: SignedIn,
    Path((mailbox, uid, index)): Path<(u64, u32, usize)>,
) -> Response {
    let found = blocking(
        move || -> Result<Option<(String, String, Vec<u8>)>, Response> {
            let Some((mailbox, uid, _)) = owned(&app, &who, mailbox, uid)? else {
                return Ok(None);
            };
            let raw = app
                .store
                .read_message(mailbox, uid)
                .map_err(|e| internal("message read", &e))?;
            let Some(message) = MessageParser::default().parse(&raw) else {
                return Ok(None);
            };
            let part = message.attachments().nth(index).map(|p| {
                let ctype = p
                    .content_type()
                    .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                    .unwrap_or_default();
                let name = p.attachment_name().unwrap_or("piece-jointe").to_string();
                (ctype, name, p.contents().to_vec())
            });
            Ok(part)
        },
    )
    .await;
    match found {
        Ok(Ok(Some((ctype, name, bytes)))) => (
            [
                (CONTENT_TYPE, safe_type(&ctype).to_string()),
                (CONTENT_DISPOSITION, disposition("attachment", &name)),
            ],
            bytes,
        )
            .into_response(),
        Ok(Ok(None)) => super::not_found(),
        Ok(Err(r)) | Err(r) => r,
    }
}

/// What the reply form posted.
struct ReplyForm {
    csrf: String,
    body: String,
    attachments: Vec<(String, String, Vec<u8>)>,
}

async fn read_reply_form(mut multipart: Multipart) -> Result<ReplyForm, String> {
    let mut form = ReplyForm {
        csrf: String::new(),
        body: String::new(),
        attachments: Vec::new(),
    };
    let mut total = 0usize;
    while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let ctype = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let bytes = field.bytes().await.map_err(|e| e.body_text())?;
        total += bytes.len();
        if total > MAX_REPLY {
            return Err("la réponse et ses pièces jointes dépassent 20 Mo".into());
        }
        match name.as_str() {
            "_csrf" => form.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "body" => form.body = String::from_utf8_lossy(&bytes).into_owned(),
            "attachment" => {
                // A file input left empty still posts a part, without name or content.
                if let Some(file_name) = file_name.filter(|n| !n.is_empty()) {
                    if !bytes.is_empty() {
                        form.attachments.push((ctype, file_name, bytes.to_vec()));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(form)
}

/// The reply, as RFC 5322 bytes with CRLF line ends: threaded (In-Reply-To, References,
/// RFC 5322 §3.6.4) so the professional's client files it with the conversation.
fn compose_reply(
    who: &SignedIn,
    hub_domain: &str,
    original: &Summary,
    to: &str,
    form: &ReplyForm,
) -> Result<Vec<u8>, String> {
    let subject = if original.subject.to_ascii_lowercase().starts_with("re:") {
        original.subject.clone()
    } else {
        format!("Re: {}", original.subject)
    };
    let mut references: Vec<String> = original.references.clone();
    if let Some(id) = &original.message_id {
        references.push(id.clone());
    }
    let message_id = format!("{}@{hub_domain}", crate::session::random_token());
    let body = form.body.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut builder = mail_builder::MessageBuilder::new()
        .from((who.space.kind.display_name(), who.space.address.to_string()))
        .to(to.to_string())
        .subject(subject)
        .message_id(message_id)
        .date(mshub_store::now())
        .text_body(body);
    if let Some(id) = &original.message_id {
        builder = builder.in_reply_to(id.clone());
    }
    if !references.is_empty() {
        builder = builder.references(references);
    }
    for (ctype, name, bytes) in &form.attachments {
        builder = builder.attachment(ctype.clone(), name.clone(), bytes.clone());
    }
    builder.write_to_vec().map_err(|e| e.to_string())
}

/// The message answered, or why the reply was refused.
type Submitted = Result<(MailboxId, Uid), String>;

pub async fn reply(
    State(app): App,
    who: SignedIn,
    Path((mailbox, uid)): Path<(u64, u32)>,
    multipart: Multipart,
) -> Response {
    let form = match read_reply_form(multipart).await {
        Ok(f) => f,
        Err(reason) => return error_page(StatusCode::BAD_REQUEST, "Réponse non envoyée", &reason),
    };
    if !same_secret(&form.csrf, &who.session.csrf) {
        return crate::csrf::forbidden();
    }
    if !who.may_reply() {
        return error_page(
            StatusCode::FORBIDDEN,
            "Réponse non envoyée",
            "Votre délégation permet la lecture seulement.",
        );
    }
    if form.body.trim().is_empty() {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Réponse non envoyée",
            "La réponse est vide : écrivez un message avant de l'envoyer.",
        );
    }
    let sent = blocking(move || -> Result<Option<Submitted>, Response> {
        let Some((mailbox, uid, _)) = owned(&app, &who, mailbox, uid)? else {
            return Ok(None);
        };
        let raw = app
            .store
            .read_message(mailbox, uid)
            .map_err(|e| internal("message read", &e))?;
        let original = Summary::parse(&raw);
        let Some(to) = original.from_address.clone() else {
            return Ok(Some(Err("le message d'origine n'a pas d'expéditeur".into())));
        };
        let message = match compose_reply(&who, app.directory.hub_domain().as_str(), &original, &to, &form) {
            Ok(m) => m,
            Err(e) => return Ok(Some(Err(format!("la réponse n'a pas pu être composée ({e})")))),
        };
        match app.mta.submit(&who.space, &[to], &message) {
            Ok(_) => {
                tracing::info!(account = %who.space.id, delegated = !who.is_owner(), "reply submitted");
                Ok(Some(Ok((mailbox, uid))))
            }
            Err(refusal) => Ok(Some(Err(refusal_fr(&refusal)))),
        }
    })
    .await;
    match sent {
        Ok(Ok(Some(Ok((mailbox, uid))))) => see_other(&format!("/m/{mailbox}/{uid}?sent=1")),
        Ok(Ok(Some(Err(reason)))) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Réponse non envoyée",
            &format!("Envoi refusé : {reason}"),
        ),
        Ok(Ok(None)) => super::not_found(),
        Ok(Err(r)) | Err(r) => r,
    }
}

/// The MTA's refusal, in words a patient reads.
pub(crate) fn refusal_fr(refusal: &mshub_mta::refusal::Refusal) -> String {
    use mshub_mta::refusal::Refusal;
    match refusal {
        Refusal::PatientCannotStart(_) => {
            "vous ne pouvez écrire qu'à un professionnel de santé qui vous a écrit".into()
        }
        Refusal::PatientCannotWriteToPatient => {
            "un patient ne peut pas écrire à un autre patient".into()
        }
        Refusal::MessageTooBig(max) => format!(
            "le message dépasse la taille autorisée ({})",
            human_size(*max)
        ),
        other => {
            let reply = other.reply();
            format!(
                "le service de messagerie a refusé le message ({} {})",
                reply.code,
                reply.lines.join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizing_removes_scripts_images_and_unsafe_links() {
        let (clean, remote) = sanitize(
            "<p onclick=\"x()\">Bonjour<script>alert(1)</script></p>\
             <img src=\"https://tracker.example/p.gif\"><a href=\"javascript:x()\">a</a>\
             <a href=\"https://ok.example/\">b</a><style>p{}</style><form><input></form>",
        );
        assert!(remote);
        assert!(!clean.contains("script"));
        assert!(!clean.contains("onclick"));
        assert!(!clean.contains("img"));
        assert!(!clean.contains("javascript"));
        assert!(!clean.contains("<style"));
        assert!(!clean.contains("<form"));
        assert!(clean.contains("href=\"https://ok.example/\""));
        assert!(clean.contains("noopener"));
    }

    #[test]
    fn disposition_keeps_non_ascii_names_in_rfc_8187_form() {
        let d = disposition("attachment", "compte rendu é.pdf");
        assert!(d.starts_with("attachment; filename=\"compte rendu _.pdf\""));
        assert!(d.ends_with("filename*=UTF-8''compte%20rendu%20%C3%A9.pdf"));
    }

    #[test]
    fn only_known_types_are_served_as_themselves() {
        assert_eq!(safe_type("application/PDF"), "application/pdf");
        assert_eq!(safe_type("text/html"), "application/octet-stream");
        assert_eq!(safe_type("image/svg+xml"), "application/octet-stream");
    }
}
