//! Messages: the inbox and the sent folder (newest first, paged), reading a message (plain
//! text, or HTML through an allow-list sanitizer with remote content blocked), its
//! attachments and what the filers did with them. The reply form posts to [`super::reply`];
//! new mail is announced by [`super::events`].

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mshub_directory::Address;
use mshub_mta::FilingOutcome;
use mshub_store::{Flag, FlagOp, MailboxId, SpecialUse, Uid};

use crate::correspondent::{correspondent, Correspondent};
use crate::download::disposition;
use crate::format::{datetime_fr, human_size, iso_utc};
use crate::frame::{blocking, error_page, internal, page, App, Area, SignedIn};
use crate::mailbox_access::owned;
use crate::summary::Summary;
use crate::Webmail;

/// Messages per page of a list.
pub const PAGE_SIZE: usize = 25;

#[derive(Deserialize, Default)]
pub struct Paging {
    #[serde(default)]
    page: usize,
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
            Ok(Ok(None)) => return crate::frame::not_found(),
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
        Ok(Ok(None)) => crate::frame::not_found(),
        Ok(Err(r)) | Err(r) => r,
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
    fn only_known_types_are_served_as_themselves() {
        assert_eq!(safe_type("application/PDF"), "application/pdf");
        assert_eq!(safe_type("text/html"), "application/octet-stream");
        assert_eq!(safe_type("image/svg+xml"), "application/octet-stream");
    }
}
