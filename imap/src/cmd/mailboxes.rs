//! LIST and LSUB (with RFC 6154 special-use attributes and RFC 3348 child attributes),
//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE and STATUS (RFC 9051 §6.3).

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::mailbox::DELIMITER;
use mshub_store::{Flag, Mailbox};

use super::Done;
use crate::codec::{ListOptions, StatusItem};
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

/// The INBOX is named case-insensitively (RFC 9051 §5.1), in patterns too.
fn canonical_pattern(pattern: &str) -> String {
    match pattern.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("INBOX") => format!("INBOX{}", &pattern[5..]),
        _ => pattern.to_string(),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    fn account_id(&self) -> mshub_store::AccountId {
        self.account
            .as_ref()
            .map(|a| a.id)
            .unwrap_or(mshub_store::AccountId(0))
    }

    fn lookup(&mut self, tag: &str, name: &str) -> Result<Mailbox, Done> {
        match self.imap.store.mailbox(self.account_id(), name) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(Done::no(tag, "[NONEXISTENT] No such mailbox")),
            Err(e) => {
                self.store_failure(tag, &e);
                Err(Done::Flow(crate::session::Flow::Continue))
            }
        }
    }

    pub(super) fn list(
        &mut self,
        tag: &str,
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
        let mailboxes = match self.imap.store.mailboxes(self.account_id()) {
            Ok(m) => m,
            Err(e) => {
                self.store_failure(tag, &e);
                return Done::Flow(crate::session::Flow::Continue);
            }
        };
        for m in &mailboxes {
            if !fulls.iter().any(|f| matches(f, &m.name)) {
                continue;
            }
            let prefix = format!("{}{DELIMITER}", m.name);
            let children = mailboxes.iter().any(|c| c.name.starts_with(&prefix));
            // RFC 5258 §3.5 CHILDINFO: a subscribed mailbox below this one.
            let subscribed_child = options.recursive
                && mailboxes
                    .iter()
                    .any(|c| c.subscribed && c.name.starts_with(&prefix));
            if options.subscribed && !m.subscribed && !subscribed_child {
                continue;
            }
            let mut attrs = vec![if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }];
            if let Some(a) = m.special_use.and_then(|s| s.attribute()) {
                attrs.push(a);
            }
            if !options.lsub && (options.subscribed || options.return_subscribed) && m.subscribed {
                attrs.push("\\Subscribed");
            }
            let mut line = format!("{kind} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            line.extend_from_slice(&self.wire_name(&m.name));
            if subscribed_child {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            self.untagged_bytes(&line);
            // RFC 5819 LIST-STATUS: the STATUS right after its LIST line.
            if !options.status.is_empty() {
                match self.status_line(m, &options.status) {
                    Ok(line) => self.untagged_bytes(&line),
                    Err(e) => tracing::warn!(error = %e, "LIST-STATUS failed"),
                }
            }
        }
        Done::ok(tag, format!("{kind} completed"))
    }

    pub(super) fn create(&mut self, tag: &str, name: &str) -> Done {
        let name = name.trim_end_matches(DELIMITER);
        if name.eq_ignore_ascii_case("INBOX") {
            return Done::no(tag, "[ALREADYEXISTS] INBOX always exists");
        }
        let account = self.account_id();
        self.create_parents(account, name);
        match self.imap.store.create_mailbox(account, name, None) {
            Ok(_) => Done::ok(tag, "CREATE completed"),
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

    pub(super) fn delete(&mut self, tag: &str, name: &str) -> Done {
        let mailbox = match self.lookup(tag, name) {
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
            return Done::no(tag, "[HASCHILDREN] Delete the mailboxes inside it first");
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.id == mailbox.id)
        {
            self.selected = None;
        }
        match self.imap.store.delete_mailbox(mailbox.id) {
            Ok(()) => Done::ok(tag, "DELETE completed"),
            Err(e) => {
                self.store_failure(tag, &e);
                Done::Flow(crate::session::Flow::Continue)
            }
        }
    }

    pub(super) fn rename(&mut self, tag: &str, from: &str, to: &str) -> Done {
        let mailbox = match self.lookup(tag, from) {
            Ok(m) => m,
            Err(done) => return done,
        };
        let to = to.trim_end_matches(DELIMITER);
        let store = self.imap.store.clone();
        if let Ok(Some(_)) = store.mailbox(mailbox.account, to) {
            return Done::no(tag, "[ALREADYEXISTS] The new name is taken");
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
            return Done::no(tag, "[CANNOT] A mailbox cannot move inside itself");
        }
        if mailbox.special_use.is_some() {
            return Done::no(tag, "[CANNOT] Special-use mailboxes keep their names");
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
        Done::ok(tag, "RENAME completed")
    }

    pub(super) fn subscribe(&mut self, tag: &str, name: &str, on: bool) -> Done {
        let mailbox = match self.lookup(tag, name) {
            Ok(m) => m,
            Err(done) => return done,
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

    pub(super) fn status(&mut self, tag: &str, name: &str, items: &[StatusItem]) -> Done {
        let mailbox = match self.lookup(tag, name) {
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
    fn status_line(
        &self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<Vec<u8>, mshub_store::StoreError> {
        let needs_messages = items
            .iter()
            .any(|i| matches!(i, StatusItem::Unseen | StatusItem::Deleted));
        let messages = if needs_messages {
            self.imap.store.messages(mailbox.id)?
        } else {
            Vec::new()
        };
        // RFC 3501 §6.3.10: messages no session has claimed as recent yet (none for IMAP4rev2).
        let recent = if items.contains(&StatusItem::Recent) {
            self.status_recent(mailbox.id)?
        } else {
            0
        };
        let count = |f: &Flag, has: bool| {
            messages
                .iter()
                .filter(|m| m.flags.contains(f) == has)
                .count()
        };
        let values: Vec<String> = items
            .iter()
            .map(|i| match i {
                StatusItem::Messages => format!("MESSAGES {}", mailbox.exists),
                StatusItem::UidNext => format!("UIDNEXT {}", mailbox.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", mailbox.uid_validity.0),
                StatusItem::Unseen => format!("UNSEEN {}", count(&Flag::Seen, false)),
                StatusItem::Deleted => format!("DELETED {}", count(&Flag::Deleted, true)),
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
