//! LIST and LSUB (with RFC 6154 special-use attributes and RFC 3348 child attributes),
//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE and STATUS (RFC 9051 §6.3).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::mailbox::DELIMITER;
use mshub_store::{AccountId, FlagCounts, Mailbox, Store};

use super::Done;
use crate::codec::{ListOptions, StatusItem};
use crate::refusal::Refusal;
use crate::session::Session;

/// RFC 9051 §6.3.9: `*` matches anything, `%` anything but the hierarchy delimiter.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // ok[j]: pattern prefix of the current length matches name prefix of length j.
    let mut ok = vec![false; n.len() + 1];
    ok[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' | '%' => {
                for j in 0..=n.len() {
                    next[j] =
                        ok[j] || (j > 0 && next[j - 1] && (pc == '*' || n[j - 1] != DELIMITER));
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = ok[j - 1] && n[j - 1] == c;
                }
            }
        }
        ok = next;
    }
    ok[n.len()]
}

/// The most subscribed names without a mailbox an account keeps.
const MAX_DANGLING: usize = 1000;

/// A name a mailbox could have (as the store checks on CREATE).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && !name.chars().any(|c| c.is_control() || c == '*' || c == '%')
        && !name.starts_with(DELIMITER)
        && !name.contains("//")
}

/// The INBOX is named case-insensitively (RFC 9051 §5.1), in patterns too.
fn canonical_pattern(pattern: &str) -> String {
    match pattern.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("INBOX") => format!("INBOX{}", &pattern[5..]),
        _ => pattern.to_string(),
    }
}

/// Runs `f` on the account's subscribed names without a mailbox (RFC 9051 §6.3.7 lets a client
/// subscribe to a name that does not exist, and RFC 3501 §6.3.6 keeps a subscription when its
/// mailbox is deleted), kept by the store; what `f` changed is written back. A store failure
/// is logged and reads as no such name.
fn dangling<T>(
    store: &Arc<Store>,
    account: AccountId,
    f: impl FnOnce(&mut BTreeSet<String>) -> T,
) -> T {
    let before = store.subscribed_names(account).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "reading subscribed names failed");
        BTreeSet::new()
    });
    let mut names = before.clone();
    let out = f(&mut names);
    if names != before {
        if let Err(e) = store.set_subscribed_names(account, &before, &names) {
            tracing::warn!(error = %e, "recording subscribed names failed");
        }
    }
    out
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    fn lookup(&mut self, tag: &str, account: AccountId, name: &str) -> Result<Mailbox, Done> {
        match self.imap.store.mailbox(account, name) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(Done::refused(tag, Refusal::NoSuchMailbox)),
            Err(e) => {
                self.store_failure(tag, &e);
                Err(Done::Flow(crate::session::Flow::Continue))
            }
        }
    }

    pub(super) fn list(
        &mut self,
        tag: &str,
        account: AccountId,
        reference: &str,
        patterns: &[String],
        options: &ListOptions,
    ) -> Done {
        let kind = if options.lsub { "LSUB" } else { "LIST" };
        if patterns.iter().all(String::is_empty) {
            // RFC 9051 §6.3.9: the hierarchy delimiter and the root name.
            self.untagged(&format!("{kind} (\\Noselect) \"/\" \"\""));
            return Done::ok(tag, format!("{kind} completed"));
        }
        let fulls: Vec<String> = patterns
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| canonical_pattern(&format!("{reference}{p}")))
            .collect();
        let matching = |name: &str| fulls.iter().any(|f| matches(f, name));
        let mailboxes = match self.imap.store.mailboxes(account) {
            Ok(m) => m,
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(crate::session::Flow::Continue);
            }
        };
        let existing: HashMap<&str, &Mailbox> =
            mailboxes.iter().map(|m| (m.name.as_str(), m)).collect();
        let mut subscribed: BTreeSet<String> = dangling(&self.imap.store, account, |d| d.clone());
        subscribed.extend(
            mailboxes
                .iter()
                .filter(|m| m.subscribed)
                .map(|m| m.name.clone()),
        );
        // The names considered: the mailboxes, then (when selecting subscriptions) the
        // subscribed names without a mailbox and their superiors (RFC 5258 §3.1 and §3.5,
        // RFC 3501 §6.3.9).
        let mut names: Vec<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
        if options.subscribed {
            let mut extra = BTreeSet::new();
            for s in &subscribed {
                extra.insert(s.as_str());
                extra.extend(s.match_indices(DELIMITER).map(|(i, _)| &s[..i]));
            }
            names.extend(extra.into_iter().filter(|n| !existing.contains_key(n)));
        }
        for name in names {
            if !matching(name) {
                continue;
            }
            let mailbox = existing.get(name).copied();
            if options.special_use && mailbox.and_then(|m| m.special_use).is_none() {
                continue;
            }
            let prefix = format!("{name}{DELIMITER}");
            let is_subscribed = subscribed.contains(name);
            let subscribed_below: Vec<&String> = subscribed
                .iter()
                .filter(|s| s.starts_with(&prefix))
                .collect();
            // RFC 5258 §3.5 CHILDINFO: a subscribed mailbox below this one.
            let child_info =
                options.subscribed && options.recursive && !subscribed_below.is_empty();
            // The superior of a subscription the patterns do not reach (RFC 3501 §6.3.9 for
            // LSUB with `%`, RFC 5258 §3.1 and §3.5 for RECURSIVEMATCH: not when the children
            // are returned themselves).
            let stands_for_children = subscribed_below.iter().any(|s| !matching(s));
            if options.subscribed && !is_subscribed {
                let selected = if options.lsub {
                    stands_for_children
                } else {
                    options.recursive && stands_for_children
                };
                if !selected {
                    continue;
                }
            }
            let children = mailboxes.iter().any(|c| c.name.starts_with(&prefix));
            let mut attrs = Vec::new();
            if mailbox.is_none() {
                // RFC 5258 §3 `\NonExistent` (which implies `\Noselect`); LSUB predates it.
                attrs.push(if options.lsub {
                    "\\Noselect"
                } else {
                    "\\NonExistent"
                });
            } else if options.lsub && !is_subscribed {
                attrs.push("\\Noselect");
            }
            if children {
                attrs.push("\\HasChildren");
            } else if mailbox.is_some() {
                attrs.push("\\HasNoChildren");
            }
            if let Some(a) = mailbox
                .and_then(|m| m.special_use)
                .and_then(|s| s.attribute())
            {
                attrs.push(a);
            }
            if !options.lsub && (options.subscribed || options.return_subscribed) && is_subscribed {
                attrs.push("\\Subscribed");
            }
            let mut line = format!("{kind} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            line.extend_from_slice(&self.wire_name(name));
            if child_info {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            self.untagged_bytes(&line);
            // RFC 5819 LIST-STATUS: the STATUS right after its LIST line, for a mailbox that
            // exists (§2: none for a `\NonExistent` name).
            if let Some(m) = mailbox.filter(|_| !options.status.is_empty()) {
                match self.status_line(m, &options.status) {
                    Ok(line) => self.untagged_bytes(&line),
                    Err(e) => tracing::warn!(error = %e, "LIST-STATUS failed"),
                }
            }
        }
        Done::ok(tag, format!("{kind} completed"))
    }

    pub(super) fn create(&mut self, tag: &str, account: AccountId, name: &str) -> Done {
        let name = name.trim_end_matches(DELIMITER);
        if name.eq_ignore_ascii_case("INBOX") {
            return Done::refused(tag, Refusal::InboxExists);
        }
        self.create_parents(account, name);
        match self.imap.store.create_mailbox(account, name, None) {
            Ok(_) => {
                self.adopt_subscriptions(account);
                Done::ok(tag, "CREATE completed")
            }
            Err(e) => {
                self.store_failure(tag, &e);
                Done::Flow(crate::session::Flow::Continue)
            }
        }
    }

    /// RFC 9051 §6.3.4 and §6.3.6: missing superior names are created too.
    fn create_parents(&self, account: mshub_store::AccountId, name: &str) {
        let store = &self.imap.store;
        let levels: Vec<&str> = name.split(DELIMITER).collect();
        for i in 1..levels.len() {
            let parent = levels[..i].join("/");
            if matches!(store.mailbox(account, &parent), Ok(None)) {
                let _ = store.create_mailbox(account, &parent, None);
            }
        }
    }

    pub(super) fn delete(&mut self, tag: &str, account: AccountId, name: &str) -> Done {
        let mailbox = match self.lookup(tag, account, name) {
            Ok(m) => m,
            Err(done) => return done,
        };
        let prefix = format!("{}{DELIMITER}", mailbox.name);
        let has_children = self
            .imap
            .store
            .mailboxes(mailbox.account)
            .map(|all| all.iter().any(|m| m.name.starts_with(&prefix)))
            .unwrap_or(false);
        if has_children {
            return Done::refused(tag, Refusal::HasChildren);
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.id == mailbox.id)
        {
            self.selected = None;
        }
        match self.imap.store.delete_mailbox(mailbox.id) {
            Ok(()) => {
                // RFC 3501 §6.3.6, RFC 9051 §6.3.7: the subscription outlives the mailbox.
                if mailbox.subscribed {
                    dangling(&self.imap.store, mailbox.account, |names| {
                        if names.len() < MAX_DANGLING {
                            names.insert(mailbox.name.clone());
                        }
                    });
                }
                Done::ok(tag, "DELETE completed")
            }
            Err(e) => {
                self.store_failure(tag, &e);
                Done::Flow(crate::session::Flow::Continue)
            }
        }
    }

    pub(super) fn rename(&mut self, tag: &str, account: AccountId, from: &str, to: &str) -> Done {
        let mailbox = match self.lookup(tag, account, from) {
            Ok(m) => m,
            Err(done) => return done,
        };
        let to = to.trim_end_matches(DELIMITER);
        let store = self.imap.store.clone();
        if let Ok(Some(_)) = store.mailbox(mailbox.account, to) {
            return Done::refused(tag, Refusal::NewNameTaken);
        }
        let prefix = format!("{}{DELIMITER}", mailbox.name);
        let children: Vec<Mailbox> = store
            .mailboxes(mailbox.account)
            .map(|all| {
                all.into_iter()
                    .filter(|m| m.name.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default();
        if to.starts_with(&prefix) {
            return Done::refused(tag, Refusal::RenameIntoItself);
        }
        if mailbox.special_use.is_some() {
            return Done::refused(tag, Refusal::SpecialUseKeepsName);
        }
        self.create_parents(mailbox.account, to);
        if let Err(e) = store.rename_mailbox(mailbox.id, to) {
            self.store_failure(tag, &e);
            return Done::Flow(crate::session::Flow::Continue);
        }
        // The store renames one mailbox: its inferiors follow here (RFC 9051 §6.3.6).
        for child in children {
            let new = format!("{to}{}", &child.name[mailbox.name.len()..]);
            if let Err(e) = store.rename_mailbox(child.id, &new) {
                tracing::warn!(error = %e, "renaming an inferior mailbox failed");
            }
        }
        self.adopt_subscriptions(mailbox.account);
        Done::ok(tag, "RENAME completed")
    }

    /// A subscribed name that has a mailbox again: the subscription goes back to the store.
    fn adopt_subscriptions(&self, account: AccountId) {
        let store = &self.imap.store;
        let names = dangling(store, account, |names| names.clone());
        if names.is_empty() {
            return;
        }
        let Ok(mailboxes) = store.mailboxes(account) else {
            return;
        };
        for m in mailboxes.iter().filter(|m| names.contains(&m.name)) {
            if m.subscribed || store.set_subscribed(m.id, true).is_ok() {
                dangling(store, account, |names| names.remove(&m.name));
            }
        }
    }

    pub(super) fn subscribe(
        &mut self,
        tag: &str,
        account: AccountId,
        name: &str,
        on: bool,
    ) -> Done {
        let store = self.imap.store.clone();
        let name = name.trim_end_matches(DELIMITER);
        let mailbox = match store.mailbox(account, name) {
            Ok(Some(m)) => m,
            Ok(None) if !valid_name(name) => {
                return Done::refused(tag, Refusal::InvalidMailboxName);
            }
            // RFC 9051 §6.3.7: a name without a mailbox may be subscribed (as Dovecot does).
            Ok(None) => {
                // Whether the subscription list changed as asked.
                let done = dangling(&store, account, |names| {
                    if !on {
                        names.remove(name)
                    } else if names.len() < MAX_DANGLING || names.contains(name) {
                        names.insert(name.to_string());
                        true
                    } else {
                        false
                    }
                });
                return match (done, on) {
                    (true, true) => Done::ok(tag, "SUBSCRIBE completed"),
                    (true, false) => Done::ok(tag, "UNSUBSCRIBE completed"),
                    (false, true) => Done::refused(tag, Refusal::TooManySubscriptions),
                    (false, false) => Done::refused(tag, Refusal::NoSuchMailbox),
                };
            }
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(crate::session::Flow::Continue);
            }
        };
        match self.imap.store.set_subscribed(mailbox.id, on) {
            Ok(()) if on => Done::ok(tag, "SUBSCRIBE completed"),
            Ok(()) => Done::ok(tag, "UNSUBSCRIBE completed"),
            Err(e) => {
                self.store_failure(tag, &e);
                Done::Flow(crate::session::Flow::Continue)
            }
        }
    }

    pub(super) fn status(
        &mut self,
        tag: &str,
        account: AccountId,
        name: &str,
        items: &[StatusItem],
    ) -> Done {
        let mailbox = match self.lookup(tag, account, name) {
            Ok(m) => m,
            Err(done) => return done,
        };
        match self.status_line(&mailbox, items) {
            Ok(line) => {
                self.untagged_bytes(&line);
                Done::ok(tag, "STATUS completed")
            }
            Err(e) => {
                self.store_failure(tag, &e);
                Done::Flow(crate::session::Flow::Continue)
            }
        }
    }

    /// `STATUS name (items)`, without the leading `* `.
    pub(super) fn status_line(
        &self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<Vec<u8>, mshub_store::StoreError> {
        let counts = if items
            .iter()
            .any(|i| matches!(i, StatusItem::Unseen | StatusItem::Deleted))
        {
            self.imap.store.flag_counts(mailbox)?
        } else {
            FlagCounts::default()
        };
        // RFC 3501 §6.3.10: messages no session has claimed as recent yet (none for IMAP4rev2).
        let recent = if items.contains(&StatusItem::Recent) {
            self.status_recent(mailbox.id)?
        } else {
            0
        };
        let values: Vec<String> = items
            .iter()
            .map(|i| match i {
                StatusItem::Messages => format!("MESSAGES {}", mailbox.exists),
                StatusItem::UidNext => format!("UIDNEXT {}", mailbox.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", mailbox.uid_validity.0),
                StatusItem::Unseen => format!("UNSEEN {}", counts.unseen),
                StatusItem::Deleted => format!("DELETED {}", counts.deleted),
                StatusItem::Size => format!("SIZE {}", mailbox.size),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", mailbox.highest_modseq.0),
                StatusItem::Recent => format!("RECENT {recent}"),
            })
            .collect();
        let mut line = b"STATUS ".to_vec();
        line.extend_from_slice(&self.wire_name(&mailbox.name));
        line.extend_from_slice(format!(" ({})", values.join(" ")).as_bytes());
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn list_wildcards() {
        assert!(matches("*", "a/b"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(matches("INBOX", "INBOX"));
        assert!(!matches("Sen", "Sent"));
        assert!(matches("S*t", "Sent"));
    }
}
