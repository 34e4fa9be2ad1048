//! The commands, one family per file, and the state each needs (RFC 9051 §6).

mod append;
mod auth;
mod copy;
mod fetch;
mod idle;
mod info;
mod mailboxes;
pub(crate) mod notify;
mod search;
mod select;
mod sort;
mod store;
mod thread;

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::AccountId;

use crate::codec::{Command, FetchItem, MailboxFilter, Tagged};
use crate::refusal::{Refusal, Status};
use crate::session::{store_flags, Flow, Selected, Session};

/// Which states a command is valid in.
#[derive(PartialEq, Eq)]
enum Needs {
    Any,
    NotAuthenticated,
    Authenticated,
    Selected,
}

fn needs(c: &Command) -> Needs {
    use Command as C;
    match c {
        C::Capability | C::Noop | C::Logout | C::Id | C::Check => Needs::Any,
        C::StartTls | C::Login { .. } | C::Authenticate { .. } => Needs::NotAuthenticated,
        C::Close | C::Unselect | C::Expunge { .. } | C::Fetch { .. } | C::Store { .. } => {
            Needs::Selected
        }
        C::Copy { .. } | C::Search { .. } | C::Sort { .. } | C::Thread { .. } => Needs::Selected,
        C::CancelUpdate(_) => Needs::Selected,
        _ => Needs::Authenticated,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// Checks the session's state once for every command (RFC 9051 §3, §6): the commands of
    /// the authenticated state are then run for the account logged in, and those of the
    /// selected state against the selected mailbox itself, never against none.
    pub(crate) async fn dispatch(&mut self, Tagged { tag, command }: Tagged) -> Flow {
        tracing::debug!(command = command.name(), "command");
        let needs = needs(&command);
        let state = match self.state_for(needs) {
            Ok(state) => state,
            Err(refusal) => return self.refuse(&tag, &refusal),
        };
        let command = if self.rev2 {
            command
        } else {
            match decode_names(command) {
                Some(c) => c,
                // A name that is well-formed IMAP syntax but not modified UTF-7 names no
                // mailbox: NO, not BAD (RFC 3501 §5.1.3, as Dovecot answers).
                None => {
                    if let State::Selected(sel) = state {
                        self.selected = Some(*sel);
                    }
                    return Done::refused(&tag, Refusal::InvalidModifiedUtf7)
                        .with_updates(self, false);
                }
            }
        };
        // Which updates may follow the command (RFC 9051 §7.5.1: no EXPUNGE after FETCH,
        // STORE or SEARCH, which are the commands clients pipeline by sequence number).
        let expunge_ok = !matches!(
            command,
            Command::Fetch { uid: false, .. }
                | Command::Store { uid: false, .. }
                | Command::Search { uid: false, .. }
                | Command::Sort { uid: false, .. }
                | Command::Thread { uid: false, .. }
                | Command::Copy {
                    uid: false,
                    moving: false,
                    ..
                }
        );
        let done = match state {
            State::Selected(sel) => self.in_selected(&tag, *sel, command),
            State::Authenticated(account) => self.authenticated(&tag, account, command).await,
            State::Any => self.any_state(&tag, command).await,
        };
        done.with_updates(self, expunge_ok)
    }

    /// The state `needs` asks for, with what it holds (the selection is taken out of the
    /// session while the command runs), or why the command may not run now.
    fn state_for(&mut self, needs: Needs) -> Result<State, Refusal> {
        let account = self.account.as_ref().map(|a| a.id);
        Ok(match (needs, account) {
            (Needs::Any | Needs::NotAuthenticated, None) | (Needs::Any, Some(_)) => State::Any,
            (Needs::NotAuthenticated, Some(_)) => return Err(Refusal::AlreadyAuthenticated),
            (Needs::Authenticated | Needs::Selected, None) => return Err(Refusal::LogInFirst),
            (Needs::Authenticated, Some(account)) => State::Authenticated(account),
            (Needs::Selected, Some(_)) => State::Selected(Box::new(
                self.selected.take().ok_or(Refusal::NoMailboxSelected)?,
            )),
        })
    }

    /// A command of the selected state, given the selection; it is put back afterwards,
    /// unless the command gives it up (CLOSE, UNSELECT).
    fn in_selected(&mut self, tag: &str, mut sel: Selected, command: Command) -> Done {
        let done = match command {
            Command::Close => return self.close(tag, sel, true),
            Command::Unselect => return self.close(tag, sel, false),
            Command::Expunge { uids } => self.expunge(tag, &sel, uids.as_ref()),
            Command::Fetch {
                set,
                mut items,
                uid,
                changed_since,
                vanished,
            } => 'fetch: {
                if vanished && !self.qresync {
                    // Answered at once, before any update.
                    break 'fetch self.refuse(tag, &Refusal::QresyncNotEnabled).into();
                }
                // RFC 7162 §3.1: these turn CONDSTORE on; CHANGEDSINCE implies MODSEQ.
                if changed_since.is_some() && !items.contains(&FetchItem::ModSeq) {
                    items.push(FetchItem::ModSeq);
                }
                self.condstore |= items.contains(&FetchItem::ModSeq);
                if vanished {
                    self.vanished_earlier(&sel, &set, changed_since.unwrap_or(0));
                }
                self.fetch(tag, &mut sel, &set, &items, uid, changed_since)
            }
            Command::Store {
                set,
                op,
                silent,
                flags,
                unchanged_since,
                uid,
            } => {
                self.condstore |= unchanged_since.is_some();
                self.store(
                    tag,
                    &mut sel,
                    &set,
                    op,
                    silent,
                    &store_flags(&flags),
                    unchanged_since,
                    uid,
                )
            }
            Command::Copy {
                set,
                mailbox,
                uid,
                moving,
            } => self.copy(tag, &sel, &set, &mailbox, uid, moving),
            Command::Search { key, uid, ret } => {
                self.condstore |= key.uses_modseq();
                self.search(tag, &mut sel, &key, uid, ret)
            }
            Command::Sort {
                criteria,
                charset,
                key,
                uid,
                ret,
            } => {
                self.condstore |= key.uses_modseq();
                self.sort(tag, &mut sel, &criteria, &charset, &key, uid, ret)
            }
            Command::Thread {
                algorithm,
                charset,
                key,
                uid,
            } => {
                self.condstore |= key.uses_modseq();
                self.thread(tag, &sel, algorithm, &charset, &key, uid)
            }
            // RFC 5267 §4.3: the updates of the searches tagged so stop.
            Command::CancelUpdate(tags) => {
                sel.contexts.retain(|c| !tags.contains(&c.tag));
                Done::ok(tag, "CANCELUPDATE completed")
            }
            // `needs` and this match list the same commands.
            other => {
                tracing::error!(command = other.name(), "not a selected-state command");
                Done::refused(tag, Refusal::ServerBug)
            }
        };
        self.selected = Some(sel);
        done
    }

    /// A command valid in any state, or only before login.
    async fn any_state(&mut self, tag: &str, command: Command) -> Done {
        match command {
            Command::Capability => self.capability(tag),
            Command::Noop | Command::Check => self.noop(tag),
            Command::Logout => self.logout(tag),
            Command::Id => self.id(tag),
            Command::StartTls => self.starttls(tag),
            Command::Login { user, password } => self.login(tag, user, password).await,
            Command::Authenticate { mechanism, initial } => {
                self.authenticate(tag, mechanism, initial).await
            }
            // `needs` and `state_for` keep the others from here.
            other => {
                tracing::error!(command = other.name(), "not a command of any state");
                Done::refused(tag, Refusal::ServerBug)
            }
        }
    }

    /// A command of the authenticated state (also valid once a mailbox is selected), for the
    /// account logged in.
    async fn authenticated(&mut self, tag: &str, account: AccountId, command: Command) -> Done {
        match command {
            Command::Enable(caps) => self.enable(tag, caps),
            Command::Namespace => self.namespace(tag),
            Command::List {
                reference,
                patterns,
                options,
            } => self.list(tag, account, &reference, &patterns, &options),
            Command::Create(m) => self.create(tag, account, &m),
            Command::Delete(m) => self.delete(tag, account, &m),
            Command::Rename(a, b) => self.rename(tag, account, &a, &b),
            Command::Subscribe(m) => self.subscribe(tag, account, &m, true),
            Command::Unsubscribe(m) => self.subscribe(tag, account, &m, false),
            Command::Status(m, items) => self.status(tag, account, &m, &items),
            Command::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                if qresync.is_some() && !self.qresync {
                    // RFC 7162 §3.2.5: only after ENABLE QRESYNC; answered at once, before
                    // any update.
                    return self.refuse(tag, &Refusal::QresyncNotEnabled).into();
                }
                self.condstore |= condstore;
                self.select(tag, account, &mailbox, read_only, qresync.as_ref())
            }
            Command::Append { mailbox, messages } => self.append(tag, account, &mailbox, messages),
            Command::Idle => self.idle(tag, account).await,
            Command::Notify(set) => self.notify(tag, account, set),
            // `needs` and `state_for` keep the others from here.
            other => {
                tracing::error!(command = other.name(), "not an authenticated-state command");
                Done::refused(tag, Refusal::ServerBug)
            }
        }
    }
}

/// The state a command runs in (RFC 9051 §3), with what that state holds.
enum State {
    /// Any state, or not authenticated: nothing held.
    Any,
    Authenticated(AccountId),
    /// Boxed: a selection is large, and moves with the command.
    Selected(Box<Selected>),
}

/// IMAP4rev1 mailbox names are in modified UTF-7 (RFC 3501 §5.1.3); the store's in UTF-8.
fn decode_names(command: Command) -> Option<Command> {
    use crate::codec::mutf7::decode;
    use Command as C;
    Some(match command {
        C::List {
            reference,
            patterns,
            options,
        } => C::List {
            reference: decode(&reference)?,
            patterns: patterns.iter().map(|p| decode(p)).collect::<Option<_>>()?,
            options,
        },
        C::Create(m) => C::Create(decode(&m)?),
        C::Delete(m) => C::Delete(decode(&m)?),
        C::Rename(a, b) => C::Rename(decode(&a)?, decode(&b)?),
        C::Subscribe(m) => C::Subscribe(decode(&m)?),
        C::Unsubscribe(m) => C::Unsubscribe(decode(&m)?),
        C::Status(m, items) => C::Status(decode(&m)?, items),
        C::Notify(Some(mut set)) => {
            for group in &mut set.groups {
                if let MailboxFilter::Subtree(names) | MailboxFilter::Mailboxes(names) =
                    &mut group.filter
                {
                    for n in names.iter_mut() {
                        *n = decode(n)?;
                    }
                }
            }
            C::Notify(Some(set))
        }
        C::Select {
            mailbox,
            read_only,
            condstore,
            qresync,
        } => C::Select {
            mailbox: decode(&mailbox)?,
            read_only,
            condstore,
            qresync,
        },
        C::Append { mailbox, messages } => C::Append {
            mailbox: decode(&mailbox)?,
            messages,
        },
        C::Copy {
            set,
            mailbox,
            uid,
            moving,
        } => C::Copy {
            set,
            mailbox: decode(&mailbox)?,
            uid,
            moving,
        },
        other => other,
    })
}

/// What a command left to do: its tagged reply, written after the untagged updates.
pub(crate) enum Done {
    Ok {
        tag: String,
        text: String,
    },
    /// NO or BAD, as the refusal answers.
    Refused {
        tag: String,
        refusal: Refusal,
    },
    /// The command wrote everything itself (or ended the session).
    Flow(Flow),
}

impl Done {
    pub fn ok(tag: &str, text: impl Into<String>) -> Self {
        Done::Ok {
            tag: tag.into(),
            text: text.into(),
        }
    }

    pub fn refused(tag: &str, refusal: Refusal) -> Self {
        Done::Refused {
            tag: tag.into(),
            refusal,
        }
    }

    fn with_updates<S: AsyncRead + AsyncWrite + Unpin + Send>(
        self,
        session: &mut Session<S>,
        expunge: bool,
    ) -> Flow {
        let (tag, reply) = match self {
            Done::Flow(flow) => return flow,
            Done::Ok { tag, text } => (tag, Ok(text)),
            Done::Refused { tag, refusal } => (tag, Err(refusal)),
        };
        if let Err(e) = session.sync(expunge) {
            tracing::error!(error = %e, "cannot read the selected mailbox");
        }
        match reply {
            Ok(text) => {
                session.tagged(&tag, Status::Ok, &text);
                Flow::Continue
            }
            Err(refusal) => session.refuse(&tag, &refusal),
        }
    }
}

impl From<Flow> for Done {
    fn from(f: Flow) -> Self {
        Done::Flow(f)
    }
}
