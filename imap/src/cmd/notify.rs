//! NOTIFY (RFC 5465): the client says which events it wants told of, unsolicited, and for
//! which mailboxes; the session then writes them as they happen — between commands, not only
//! in IDLE (§1): for the selected mailbox as EXISTS, EXPUNGE and FETCH (with the attributes
//! asked for a new message, §5.2), for other mailboxes as STATUS (§5.2-§5.3), and a created,
//! renamed or deleted mailbox as LIST (§5.4, with OLDNAME after a rename, `\NonExistent`
//! after a delete).
//!
//! Supported events: MessageNew, MessageExpunge, FlagChange, MailboxName. Asking for another
//! (annotations, metadata, subscriptions) is `NO [BADEVENT (…)]` listing these (§5). When this
//! session falls too far behind the store's events, it says `* OK [NOTIFICATIONOVERFLOW]` and
//! stops notifying, as after `NOTIFY NONE` (§5.8).

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::{self, error::TryRecvError};

use mshub_store::mailbox::DELIMITER;
use mshub_store::{AccountId, Change, ChangeKind, Mailbox, MailboxId, SpecialUse, Uid};

use super::Done;
use crate::codec::{
    FetchItem, MailboxFilter, NotifyEvent, NotifySet, SeqRange, SeqSet, StatusItem,
};
use crate::refusal::Refusal;
use crate::session::Session;

/// The events this server can tell of (the list of `[BADEVENT]`).
pub(crate) const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName";

/// A session's NOTIFY settings (none: the base protocol's updates only).
pub(crate) struct Notify {
    account: AccountId,
    /// What to tell of the selected mailbox; `None`: nothing unsolicited about it.
    selected: Option<SelectedEvents>,
    /// The groups about other mailboxes, in the client's order.
    others: Vec<(MailboxFilter, OtherEvents)>,
    /// The account's mailboxes as last known: the name a deleted or renamed one had.
    known: HashMap<MailboxId, Mailbox>,
    /// The store's events; `None` after `NOTIFY NONE` or an overflow.
    pub(crate) changes: Option<broadcast::Receiver<Change>>,
}

struct SelectedEvents {
    /// `selected-delayed`: expunges wait for a command that allows them (§6.1).
    delayed: bool,
    fetch: Vec<FetchItem>,
    messages: bool,
    flags: bool,
}

#[derive(Clone, Copy)]
struct OtherEvents {
    messages: bool,
    flags: bool,
    names: bool,
}

impl Notify {
    /// Whether `filter` (about mailboxes other than the selected one) covers `mailbox`.
    fn covers(filter: &MailboxFilter, mailbox: &Mailbox) -> bool {
        let same = |a: &str, b: &str| {
            a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
        };
        match filter {
            MailboxFilter::Selected | MailboxFilter::SelectedDelayed => false,
            MailboxFilter::Inboxes => mailbox.special_use == Some(SpecialUse::Inbox),
            MailboxFilter::Personal => true,
            MailboxFilter::Subscribed => mailbox.subscribed,
            MailboxFilter::Mailboxes(names) => names.iter().any(|n| same(n, &mailbox.name)),
            MailboxFilter::Subtree(names) => names.iter().any(|n| {
                same(n, &mailbox.name)
                    || mailbox
                        .name
                        .strip_prefix(n.as_str())
                        .is_some_and(|rest| rest.starts_with(DELIMITER))
            }),
        }
    }

    /// The events wanted for `mailbox` (not the selected one), from every group covering it.
    fn wanted(&self, mailbox: &Mailbox) -> Option<OtherEvents> {
        self.others
            .iter()
            .filter(|(filter, _)| Self::covers(filter, mailbox))
            .map(|(_, e)| *e)
            .reduce(|a, b| OtherEvents {
                messages: a.messages || b.messages,
                flags: a.flags || b.flags,
                names: a.names || b.names,
            })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// `NOTIFY SET …` or `NOTIFY NONE` (RFC 5465 §3): replaces the previous settings.
    pub(super) fn notify(&mut self, tag: &str, account: AccountId, set: Option<NotifySet>) -> Done {
        let Some(set) = set else {
            self.notify = Some(Notify {
                account,
                selected: None,
                others: Vec::new(),
                known: HashMap::new(),
                changes: None,
            });
            return Done::ok(tag, "NOTIFY completed");
        };
        let unsupported: Vec<&str> = set
            .groups
            .iter()
            .flat_map(|g| &g.events)
            .filter(|e| {
                !matches!(
                    e,
                    NotifyEvent::MessageNew(_)
                        | NotifyEvent::MessageExpunge
                        | NotifyEvent::FlagChange
                        | NotifyEvent::MailboxName
                )
            })
            .map(NotifyEvent::name)
            .collect();
        if !unsupported.is_empty() {
            return Done::refused(tag, Refusal::BadEvent(SUPPORTED));
        }
        // Subscribed before anything is read: no change after this point is missed.
        let changes = self.imap.store.events().subscribe();
        let mailboxes = match self.imap.store.mailboxes(account) {
            Ok(m) => m,
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(crate::session::Flow::Continue);
            }
        };
        let mut selected = None;
        let mut others = Vec::new();
        for group in set.groups {
            let has = |f: fn(&NotifyEvent) -> bool| group.events.iter().any(f);
            let messages = has(|e| matches!(e, NotifyEvent::MessageNew(_)));
            let flags = has(|e| matches!(e, NotifyEvent::FlagChange));
            match group.filter {
                MailboxFilter::Selected | MailboxFilter::SelectedDelayed => {
                    let fetch = group
                        .events
                        .iter()
                        .find_map(|e| match e {
                            NotifyEvent::MessageNew(items) => Some(items.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    selected = Some(SelectedEvents {
                        delayed: group.filter == MailboxFilter::SelectedDelayed,
                        fetch,
                        messages,
                        flags,
                    });
                }
                filter => {
                    let names = has(|e| matches!(e, NotifyEvent::MailboxName));
                    if messages || names {
                        others.push((
                            filter,
                            OtherEvents {
                                messages,
                                flags,
                                names,
                            },
                        ));
                    }
                }
            }
        }
        let notify = Notify {
            account,
            selected,
            others,
            known: mailboxes.iter().map(|m| (m.id, m.clone())).collect(),
            changes: Some(changes),
        };
        // §3 STATUS: where message events are now watched, what the mailbox holds now.
        if set.status {
            let current = self.selected.as_ref().map(|s| s.mailbox.id);
            for m in &mailboxes {
                if Some(m.id) != current && notify.wanted(m).is_some_and(|e| e.messages) {
                    self.notify_status(m, &[StatusItem::UidValidity]);
                }
            }
        }
        self.notify = Some(notify);
        Done::ok(tag, "NOTIFY completed")
    }

    /// Writes what the events received so far tell of, without waiting (between commands and
    /// in IDLE). Returns whether anything was received.
    pub(crate) fn notify_pending(&mut self) -> bool {
        let Some(mut changes) = self.notify.as_mut().and_then(|n| n.changes.take()) else {
            return false;
        };
        let mut any = false;
        loop {
            match changes.try_recv() {
                Ok(change) => {
                    any = true;
                    self.notified(&change);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => {
                    self.notification_overflow();
                    return true;
                }
                Err(TryRecvError::Closed) => return any,
            }
        }
        if let Some(n) = self.notify.as_mut() {
            n.changes = Some(changes);
        }
        any
    }

    /// §5.8: too far behind the store's changes to tell each: says so, and notifications
    /// stop (the client may NOTIFY again).
    pub(crate) fn notification_overflow(&mut self) {
        self.untagged(
            "OK [NOTIFICATIONOVERFLOW] Too many changes at once: notifications stopped, \
             NOTIFY again to restart them",
        );
        if let Some(n) = self.notify.as_mut() {
            n.changes = None;
        }
    }

    /// Takes the event receiver out while waiting on it (put back with
    /// [`Session::notify_resume`]); `None` when no notification is wanted.
    pub(crate) fn notify_receiver(&mut self) -> Option<broadcast::Receiver<Change>> {
        self.notify.as_mut().and_then(|n| n.changes.take())
    }

    pub(crate) fn notify_resume(&mut self, changes: broadcast::Receiver<Change>) {
        if let Some(n) = self.notify.as_mut() {
            n.changes = Some(changes);
        }
    }

    /// One change of the store, told as the settings ask.
    pub(crate) fn notified(&mut self, change: &Change) {
        let Some(notify) = self.notify.as_ref() else {
            return;
        };
        if change.account != notify.account {
            return;
        }
        let selected_id = self.selected.as_ref().map(|s| s.mailbox.id);
        if Some(change.mailbox) == selected_id {
            self.notify_selected(change);
            return;
        }
        let store = self.imap.store.clone();
        let now = match store.mailbox_by_id(change.mailbox) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a mailbox to notify of it");
                return;
            }
        };
        let Some(notify) = self.notify.as_mut() else {
            return;
        };
        let before = match (&change.kind, &now) {
            (ChangeKind::MailboxDeleted, _) => notify.known.remove(&change.mailbox),
            (_, Some(m)) => notify.known.insert(m.id, m.clone()),
            (_, None) => notify.known.get(&change.mailbox).cloned(),
        };
        let Some(about) = now.as_ref().or(before.as_ref()) else {
            return;
        };
        let Some(wanted) = notify.wanted(about) else {
            return;
        };
        match (&change.kind, &now) {
            (ChangeKind::Appended { .. } | ChangeKind::Expunged { .. }, Some(m))
                if wanted.messages =>
            {
                self.notify_status(m, &[]);
            }
            (ChangeKind::FlagsChanged { .. }, Some(m)) if wanted.flags => {
                self.notify_status(m, &[]);
            }
            (ChangeKind::MailboxCreated, Some(m)) if wanted.names => {
                self.notify_list(&m.name, "", None);
            }
            (ChangeKind::MailboxRenamed, Some(m)) if wanted.names => {
                let old = before.map(|b| b.name).filter(|old| *old != m.name);
                self.notify_list(&m.name, "", old.as_deref());
            }
            (ChangeKind::MailboxDeleted, _) if wanted.names => {
                if let Some(gone) = before {
                    self.notify_list(&gone.name, "\\NonExistent", None);
                }
            }
            _ => {}
        }
    }

    /// A change of the selected mailbox: the usual updates, now (§5.2, §5.3), and for new
    /// messages the attributes the client asked for.
    fn notify_selected(&mut self, change: &Change) {
        let Some(events) = self.notify.as_ref().and_then(|n| n.selected.as_ref()) else {
            return;
        };
        let wanted = match change.kind {
            ChangeKind::Appended { .. } | ChangeKind::Expunged { .. } => events.messages,
            ChangeKind::FlagsChanged { .. } => events.flags,
            _ => false,
        };
        if !wanted {
            return;
        }
        let expunge = !events.delayed;
        let fetch = events.fetch.clone();
        let before: Option<Uid> = self.selected.as_ref().and_then(|s| s.uids.last().copied());
        if let Err(e) = self.sync(expunge) {
            tracing::error!(error = %e, "cannot read the selected mailbox");
            return;
        }
        if fetch.is_empty() {
            return;
        }
        let Some(mut sel) = self.selected.take() else {
            return;
        };
        let new: Vec<u32> = sel
            .uids
            .iter()
            .filter(|u| before.is_none_or(|b| **u > b))
            .map(|u| u.get())
            .collect();
        if let (Some(first), Some(last)) = (new.first(), new.last()) {
            let set = SeqSet::Ranges(vec![SeqRange(Some(*first), Some(*last))]);
            // Untagged FETCH only: its tagged reply is not written.
            let _ = self.fetch("*", &mut sel, &set, &fetch, true, None);
        }
        self.selected = Some(sel);
    }

    /// `* STATUS` of a mailbox other than the selected one (§5.2): MESSAGES, UIDNEXT, UNSEEN
    /// (and HIGHESTMODSEQ once CONDSTORE is on), with `more` first.
    fn notify_status(&mut self, mailbox: &Mailbox, more: &[StatusItem]) {
        let mut items = more.to_vec();
        items.extend([
            StatusItem::Messages,
            StatusItem::UidNext,
            StatusItem::Unseen,
        ]);
        if self.condstore {
            items.push(StatusItem::HighestModSeq);
        }
        match self.status_line(mailbox, &items) {
            Ok(line) => self.untagged_bytes(&line),
            Err(e) => tracing::warn!(error = %e, "cannot count a mailbox to notify of it"),
        }
    }

    /// `* LIST (attribute) "/" name` for a mailbox created, renamed (with its old name) or
    /// deleted (§5.4).
    fn notify_list(&mut self, name: &str, attribute: &str, old: Option<&str>) {
        let mut line = format!("LIST ({attribute}) \"{DELIMITER}\" ").into_bytes();
        line.extend_from_slice(&self.wire_name(name));
        if let Some(old) = old {
            line.extend_from_slice(b" (\"OLDNAME\" (");
            line.extend_from_slice(&self.wire_name(old));
            line.extend_from_slice(b"))");
        }
        self.untagged_bytes(&line);
    }
}
