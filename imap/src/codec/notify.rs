//! NOTIFY (RFC 5465 §3, grammar in §8): `NOTIFY NONE` or `NOTIFY SET [STATUS] event-groups`.
//! The rules the grammar cannot say are checked here too, as syntax errors (BAD, as §5
//! requires): MessageNew and MessageExpunge go together, FlagChange and AnnotationChange
//! need both, fetch attributes only for the selected mailbox and never ones that set
//! `\Seen`, one selected filter at most. An event this server does not offer is parsed: the
//! session answers it with `NO [BADEVENT]`.

use super::lexer::{err, P, R};
use super::*;

/// `NOTIFY SET`: which events the client wants told of, unsolicited, and for which mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `SET STATUS`: a STATUS response now for each mailbox watched (§3).
    pub status: bool,
    pub groups: Vec<EventGroup>,
}

/// One `(filter events)`; no events: `NONE` (nothing for those mailboxes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGroup {
    pub filter: MailboxFilter,
    pub events: Vec<NotifyEvent>,
}

/// Which mailboxes an event group is about (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxFilter {
    Selected,
    /// As `Selected`, but expunges wait for a command that allows them (§6.1).
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// With the attributes to FETCH of each new message (selected mailbox only).
    MessageNew(Vec<FetchItem>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadataChange,
    ServerMetadataChange,
}

impl NotifyEvent {
    pub fn name(&self) -> &'static str {
        match self {
            NotifyEvent::MessageNew(_) => "MessageNew",
            NotifyEvent::MessageExpunge => "MessageExpunge",
            NotifyEvent::FlagChange => "FlagChange",
            NotifyEvent::AnnotationChange => "AnnotationChange",
            NotifyEvent::MailboxName => "MailboxName",
            NotifyEvent::SubscriptionChange => "SubscriptionChange",
            NotifyEvent::MailboxMetadataChange => "MailboxMetadataChange",
            NotifyEvent::ServerMetadataChange => "ServerMetadataChange",
        }
    }
}

impl P<'_> {
    /// After `NOTIFY `.
    pub(super) fn notify_command(&mut self) -> R<Command> {
        match self.keyword()?.as_str() {
            "NONE" => Ok(Command::Notify(None)),
            "SET" => {
                self.sp()?;
                let status = self.peek() != Some(b'(');
                if status {
                    if self.keyword()? != "STATUS" {
                        return err("expected STATUS or an event group");
                    }
                    self.sp()?;
                }
                let mut groups = vec![self.event_group()?];
                while self.eat(b' ') {
                    groups.push(self.event_group()?);
                }
                let selected = groups
                    .iter()
                    .filter(|g| {
                        matches!(
                            g.filter,
                            MailboxFilter::Selected | MailboxFilter::SelectedDelayed
                        )
                    })
                    .count();
                if selected > 1 {
                    return err("one selected or selected-delayed filter at most");
                }
                Ok(Command::Notify(Some(NotifySet { status, groups })))
            }
            other => err(format!("expected SET or NONE, not {other}")),
        }
    }

    fn event_group(&mut self) -> R<EventGroup> {
        self.expect(b'(')?;
        let filter = match self.keyword()?.as_str() {
            "SELECTED" => MailboxFilter::Selected,
            "SELECTED-DELAYED" => MailboxFilter::SelectedDelayed,
            "INBOXES" => MailboxFilter::Inboxes,
            "PERSONAL" => MailboxFilter::Personal,
            "SUBSCRIBED" => MailboxFilter::Subscribed,
            "SUBTREE" => {
                self.sp()?;
                MailboxFilter::Subtree(self.one_or_more_mailbox()?)
            }
            "MAILBOXES" => {
                self.sp()?;
                MailboxFilter::Mailboxes(self.one_or_more_mailbox()?)
            }
            other => return err(format!("unknown mailbox filter {other}")),
        };
        self.sp()?;
        let events = if self.eat(b'(') {
            let mut events = vec![self.event()?];
            while self.eat(b' ') {
                events.push(self.event()?);
            }
            self.expect(b')')?;
            events
        } else if self.keyword()? == "NONE" {
            Vec::new()
        } else {
            return err("expected a list of events or NONE");
        };
        self.expect(b')')?;
        check_events(&filter, &events)?;
        Ok(EventGroup { filter, events })
    }

    fn one_or_more_mailbox(&mut self) -> R<Vec<String>> {
        if !self.eat(b'(') {
            return Ok(vec![self.mailbox()?]);
        }
        let mut names = vec![self.mailbox()?];
        while self.eat(b' ') {
            names.push(self.mailbox()?);
        }
        self.expect(b')')?;
        Ok(names)
    }

    fn event(&mut self) -> R<NotifyEvent> {
        Ok(match self.keyword()?.as_str() {
            "MESSAGENEW" => {
                // `MessageNew (fetch-att …)`: a space, then a list, before the next event.
                let save = self.pos;
                if self.eat(b' ') && self.peek() == Some(b'(') {
                    NotifyEvent::MessageNew(self.fetch_items()?)
                } else {
                    self.pos = save;
                    NotifyEvent::MessageNew(Vec::new())
                }
            }
            "MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
            "FLAGCHANGE" => NotifyEvent::FlagChange,
            "ANNOTATIONCHANGE" => NotifyEvent::AnnotationChange,
            "MAILBOXNAME" => NotifyEvent::MailboxName,
            "SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
            "MAILBOXMETADATACHANGE" => NotifyEvent::MailboxMetadataChange,
            "SERVERMETADATACHANGE" => NotifyEvent::ServerMetadataChange,
            other => return err(format!("unknown event {other}")),
        })
    }
}

/// RFC 5465 §5: the rules between the events of one group.
fn check_events(filter: &MailboxFilter, events: &[NotifyEvent]) -> R<()> {
    let has = |f: fn(&NotifyEvent) -> bool| events.iter().any(f);
    let new = has(|e| matches!(e, NotifyEvent::MessageNew(_)));
    let expunge = has(|e| matches!(e, NotifyEvent::MessageExpunge));
    if new != expunge {
        return err("MessageNew and MessageExpunge go together");
    }
    if has(|e| matches!(e, NotifyEvent::FlagChange | NotifyEvent::AnnotationChange)) && !new {
        return err("FlagChange and AnnotationChange need MessageNew and MessageExpunge");
    }
    let selected = matches!(
        filter,
        MailboxFilter::Selected | MailboxFilter::SelectedDelayed
    );
    for e in events {
        if let NotifyEvent::MessageNew(items) = e {
            if !items.is_empty() && !selected {
                return err("fetch attributes are for the selected mailbox only");
            }
            if items.iter().any(FetchItem::sets_seen) {
                return err("a notification may not set \\Seen: use BODY.PEEK");
            }
        }
    }
    Ok(())
}
