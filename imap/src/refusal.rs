//! Every reason the IMAP server refuses a command, each mapped to exactly one tagged answer —
//! its status (NO or BAD, RFC 9051 §7.1) and its response code (RFC 5530 and the extensions
//! that name one) — by [`Refusal::answer`]. Handlers say why; the words and codes on the wire
//! are written here only.

use std::borrow::Cow;
use std::fmt;

use mshub_store::StoreError;

/// The status of a tagged response (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    // ----- syntax and session state (BAD, RFC 9051 §7.1.5) -----
    /// The parser's message (RFC 9051 §9 grammar).
    Syntax(String),
    /// A command line over `max_line` once logged in.
    LineTooLong,
    /// A non-synchronising literal too large even to skip: the connection closes.
    LiteralTooLargeClosing,
    /// STARTTLS, LOGIN or AUTHENTICATE once logged in (RFC 9051 §6.2).
    AlreadyAuthenticated,
    /// A command of the authenticated or selected state before login.
    LogInFirst,
    /// A command of the selected state with no mailbox selected (RFC 9051 §6.4).
    NoMailboxSelected,
    /// QRESYNC parameters before `ENABLE QRESYNC` (RFC 7162 §3.2.5).
    QresyncNotEnabled,
    /// NOTIFY asked for an event this server does not offer (RFC 5465 §5): the ones it
    /// offers.
    BadEvent(&'static str),
    /// A sequence number beyond the mailbox (RFC 9051 §9 `seq-number`).
    InvalidSequenceNumber,
    SortWithoutCriterion,
    AlreadyTls,
    AuthResponseTooLong,
    AuthCancelled,
    AuthInvalidBase64,
    AuthInvalidPlain,
    AuthInvalidUtf8,
    /// Something else than DONE ended IDLE (RFC 2177).
    ExpectedDone,
    // ----- login (NO) -----
    LoginBeforeTls,
    AuthenticateBeforeTls,
    MechanismUnsupported,
    /// An authorisation identity other than the user's (RFC 4616 §2).
    CannotActAsAnotherUser,
    AuthenticationFailed,
    LoginThrottled {
        retry_after_secs: u64,
    },
    /// Too many password checks at once: nothing was checked.
    LoginBusy,
    AccountDisabled,
    AuthenticationUnavailable,
    // ----- mailboxes (NO) -----
    /// A name that is IMAP syntax but not modified UTF-7 (RFC 3501 §5.1.3).
    InvalidModifiedUtf7,
    NoSuchMailbox,
    /// The target of APPEND, COPY or MOVE does not exist (RFC 9051 §6.3.12, §6.4.7).
    NoSuchTarget,
    InboxExists,
    MailboxExists,
    NewNameTaken,
    HasChildren,
    RenameIntoItself,
    SpecialUseKeepsName,
    InvalidMailboxName,
    /// The store refused the name (its own words).
    StoreCannot(String),
    TooManySubscriptions,
    MailboxBusy,
    /// EXAMINEd: nothing in it may change (RFC 9051 §6.3.3).
    ReadOnly,
    // ----- messages (NO) -----
    /// SEARCH, SORT or THREAD with a charset other than UTF-8 or US-ASCII.
    BadCharset,
    /// A search with UPDATE beyond the ones a selection keeps (RFC 5267 §4.3).
    TooManyUpdates,
    /// A part FETCH BINARY cannot decode (RFC 3516 §4.2).
    UnknownCte,
    /// A literal over APPENDLIMIT, refused while framing it (RFC 7889).
    LiteralOverLimit {
        limit: u64,
    },
    /// The literals of one command over their total limit (RFC 3502).
    LiteralsOverTotal {
        limit: u64,
    },
    MessageOverLimit {
        limit: u64,
    },
    MessagesOverTotal {
        limit: u64,
    },
    EmptyMessage,
    /// A catenated message over APPENDLIMIT (RFC 4469 §6).
    CatenatedTooBig {
        limit: u64,
    },
    /// A CATENATE URL that names nothing of the user's (RFC 4469 §6); the URL as shown in the
    /// code (no `]` nor controls, erratum 4046).
    BadUrl {
        url: String,
        why: &'static str,
    },
    // ----- the server itself (NO) -----
    ServerBug,
}

/// What a refusal answers: its status, response code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    pub code: Option<Cow<'static, str>>,
    pub text: Cow<'static, str>,
}

impl fmt::Display for Answer {
    /// The tagged response after its tag and status: `[CODE] text`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "[{code}] {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

impl Refusal {
    pub fn answer(&self) -> Answer {
        use Refusal as R;
        use Status::{Bad, No};
        let a = |status, code: Option<Cow<'static, str>>, text: Cow<'static, str>| Answer {
            status,
            code,
            text,
        };
        let none = None;
        let c = |code: &'static str| Some(Cow::Borrowed(code));
        match self {
            R::Syntax(why) => a(Bad, none, why.clone().into()),
            R::LineTooLong => a(Bad, none, "Command line too long".into()),
            R::LiteralTooLargeClosing => a(Bad, c("LIMIT"), "Literal too large, closing".into()),
            R::AlreadyAuthenticated => a(Bad, none, "Already authenticated".into()),
            R::LogInFirst => a(Bad, none, "Log in first".into()),
            R::NoMailboxSelected => a(Bad, none, "No mailbox selected".into()),
            R::QresyncNotEnabled => a(Bad, none, "QRESYNC is not enabled".into()),
            R::BadEvent(supported) => a(
                No,
                Some(format!("BADEVENT ({supported})").into()),
                "Unsupported NOTIFY events".into(),
            ),
            R::InvalidSequenceNumber => a(Bad, none, "Invalid message sequence number".into()),
            R::SortWithoutCriterion => a(Bad, none, "SORT needs at least one criterion".into()),
            R::AlreadyTls => a(Bad, none, "TLS is already active".into()),
            R::AuthResponseTooLong => a(Bad, none, "Authentication response too long".into()),
            R::AuthCancelled => a(Bad, none, "Authentication cancelled".into()),
            R::AuthInvalidBase64 => a(
                Bad,
                none,
                "Invalid base64 in authentication response".into(),
            ),
            R::AuthInvalidPlain => a(Bad, none, "Invalid PLAIN message".into()),
            R::AuthInvalidUtf8 => a(Bad, none, "Invalid UTF-8 in PLAIN message".into()),
            R::ExpectedDone => a(Bad, none, "Expected DONE".into()),
            R::LoginBeforeTls => a(
                No,
                c("PRIVACYREQUIRED"),
                "LOGIN is disabled before STARTTLS".into(),
            ),
            R::AuthenticateBeforeTls => a(
                No,
                c("PRIVACYREQUIRED"),
                "Authentication is disabled before STARTTLS".into(),
            ),
            R::MechanismUnsupported => a(
                No,
                c("CANNOT"),
                "Unsupported mechanism (AUTH=PLAIN only)".into(),
            ),
            R::CannotActAsAnotherUser => a(
                No,
                c("AUTHORIZATIONFAILED"),
                "Cannot act as another user".into(),
            ),
            R::AuthenticationFailed => {
                a(No, c("AUTHENTICATIONFAILED"), "Invalid credentials".into())
            }
            R::LoginThrottled { retry_after_secs } => a(
                No,
                c("UNAVAILABLE"),
                format!("Too many failed logins, try again in {retry_after_secs} s").into(),
            ),
            // RFC 5530 §3: UNAVAILABLE is temporary; nothing was checked, the client may retry.
            R::LoginBusy => a(
                No,
                c("UNAVAILABLE"),
                "Too many logins at once, try again in a few seconds".into(),
            ),
            R::AccountDisabled => a(No, c("CONTACTADMIN"), "This account is disabled".into()),
            R::AuthenticationUnavailable => a(
                No,
                c("UNAVAILABLE"),
                "Authentication is unavailable, try again later".into(),
            ),
            R::InvalidModifiedUtf7 => a(
                No,
                c("CANNOT"),
                "Invalid modified UTF-7 mailbox name".into(),
            ),
            R::NoSuchMailbox => a(No, c("NONEXISTENT"), "No such mailbox".into()),
            R::NoSuchTarget => a(No, c("TRYCREATE"), "No such mailbox".into()),
            R::InboxExists => a(No, c("ALREADYEXISTS"), "INBOX always exists".into()),
            R::MailboxExists => a(No, c("ALREADYEXISTS"), "Mailbox already exists".into()),
            R::NewNameTaken => a(No, c("ALREADYEXISTS"), "The new name is taken".into()),
            R::HasChildren => a(
                No,
                c("HASCHILDREN"),
                "Delete the mailboxes inside it first".into(),
            ),
            R::RenameIntoItself => a(
                No,
                c("CANNOT"),
                "A mailbox cannot move inside itself".into(),
            ),
            R::SpecialUseKeepsName => a(
                No,
                c("CANNOT"),
                "Special-use mailboxes keep their names".into(),
            ),
            R::InvalidMailboxName => a(No, c("CANNOT"), "Invalid mailbox name".into()),
            R::StoreCannot(why) => a(No, c("CANNOT"), why.clone().into()),
            R::TooManySubscriptions => a(
                No,
                c("LIMIT"),
                "Too many subscriptions without a mailbox".into(),
            ),
            R::MailboxBusy => a(No, c("INUSE"), "Mailbox busy, try again".into()),
            R::ReadOnly => a(No, c("READ-ONLY"), "The mailbox is read-only".into()),
            R::BadCharset => a(
                No,
                c("BADCHARSET (UTF-8 US-ASCII)"),
                "unsupported charset".into(),
            ),
            R::TooManyUpdates => a(
                No,
                c("LIMIT"),
                "Too many searches with UPDATE, CANCELUPDATE one first".into(),
            ),
            R::UnknownCte => a(
                No,
                c("UNKNOWN-CTE"),
                "A part has a transfer encoding this server cannot decode".into(),
            ),
            // RFC 7889: a message over APPENDLIMIT is refused with TOOBIG (the code of RFC
            // 4469 §6); the totals of one MULTIAPPEND stay LIMIT (RFC 5530 §3), a server limit.
            R::LiteralOverLimit { limit } => a(
                No,
                c("TOOBIG"),
                format!("Literal larger than APPENDLIMIT={limit}").into(),
            ),
            R::LiteralsOverTotal { limit } => a(
                No,
                c("LIMIT"),
                format!("Literals larger than {limit} octets in all").into(),
            ),
            R::MessageOverLimit { limit } => a(
                No,
                c("TOOBIG"),
                format!("Message larger than APPENDLIMIT={limit}").into(),
            ),
            R::MessagesOverTotal { limit } => a(
                No,
                c("LIMIT"),
                format!("Messages larger than {limit} octets in all").into(),
            ),
            R::EmptyMessage => a(No, c("CANNOT"), "Empty message".into()),
            R::CatenatedTooBig { limit } => a(
                No,
                c("TOOBIG"),
                format!("Catenated message larger than APPENDLIMIT={limit}").into(),
            ),
            R::BadUrl { url, why } => {
                a(No, Some(format!("BADURL {url}").into()), Cow::Borrowed(why))
            }
            R::ServerBug => a(No, c("SERVERBUG"), "Internal error, try again later".into()),
        }
    }

    /// The exact refusal for a store error (RFC 5530 response codes); an unexpected one is
    /// logged here.
    pub fn from_store(e: &StoreError) -> Self {
        match e {
            StoreError::NoSuchMailbox(_) => Refusal::NoSuchMailbox,
            StoreError::MailboxExists(_) => Refusal::MailboxExists,
            StoreError::InvalidMailboxName { .. } | StoreError::SpecialUseMailbox(_) => {
                Refusal::StoreCannot(e.to_string())
            }
            StoreError::Contention(_) => Refusal::MailboxBusy,
            _ => {
                tracing::error!(error = %e, "store error");
                Refusal::ServerBug
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answer = self.answer();
        write!(f, "{} {answer}", answer.status)
    }
}

#[cfg(test)]
mod tests {
    use super::{Refusal as R, Status};
    use crate::{APPEND_LIMIT, APPEND_MAX_TOTAL};
    use Status::{Bad, No};

    /// Each refusal, the status and code it must answer with, and its whole text on the wire.
    #[test]
    fn each_refusal_has_its_status_and_code() {
        let url = || R::BadUrl {
            url: "imap://x/INBOX/;UID=9".into(),
            why: "No such message",
        };
        let table: Vec<(R, Status, Option<&str>, &str)> = vec![
            (
                R::Syntax("Unknown command".into()),
                Bad,
                None,
                "Unknown command",
            ),
            (R::LineTooLong, Bad, None, "Command line too long"),
            (
                R::LiteralTooLargeClosing,
                Bad,
                Some("LIMIT"),
                "[LIMIT] Literal too large, closing",
            ),
            (R::AlreadyAuthenticated, Bad, None, "Already authenticated"),
            (R::LogInFirst, Bad, None, "Log in first"),
            (R::NoMailboxSelected, Bad, None, "No mailbox selected"),
            (R::QresyncNotEnabled, Bad, None, "QRESYNC is not enabled"),
            (
                R::InvalidSequenceNumber,
                Bad,
                None,
                "Invalid message sequence number",
            ),
            (
                R::SortWithoutCriterion,
                Bad,
                None,
                "SORT needs at least one criterion",
            ),
            (R::AlreadyTls, Bad, None, "TLS is already active"),
            (
                R::AuthResponseTooLong,
                Bad,
                None,
                "Authentication response too long",
            ),
            (R::AuthCancelled, Bad, None, "Authentication cancelled"),
            (
                R::AuthInvalidBase64,
                Bad,
                None,
                "Invalid base64 in authentication response",
            ),
            (R::AuthInvalidPlain, Bad, None, "Invalid PLAIN message"),
            (
                R::AuthInvalidUtf8,
                Bad,
                None,
                "Invalid UTF-8 in PLAIN message",
            ),
            (R::ExpectedDone, Bad, None, "Expected DONE"),
            (
                R::LoginBeforeTls,
                No,
                Some("PRIVACYREQUIRED"),
                "[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS",
            ),
            (
                R::AuthenticateBeforeTls,
                No,
                Some("PRIVACYREQUIRED"),
                "[PRIVACYREQUIRED] Authentication is disabled before STARTTLS",
            ),
            (
                R::MechanismUnsupported,
                No,
                Some("CANNOT"),
                "[CANNOT] Unsupported mechanism (AUTH=PLAIN only)",
            ),
            (
                R::CannotActAsAnotherUser,
                No,
                Some("AUTHORIZATIONFAILED"),
                "[AUTHORIZATIONFAILED] Cannot act as another user",
            ),
            (
                R::AuthenticationFailed,
                No,
                Some("AUTHENTICATIONFAILED"),
                "[AUTHENTICATIONFAILED] Invalid credentials",
            ),
            (
                R::LoginThrottled {
                    retry_after_secs: 42,
                },
                No,
                Some("UNAVAILABLE"),
                "[UNAVAILABLE] Too many failed logins, try again in 42 s",
            ),
            (
                R::LoginBusy,
                No,
                Some("UNAVAILABLE"),
                "[UNAVAILABLE] Too many logins at once, try again in a few seconds",
            ),
            (
                R::AccountDisabled,
                No,
                Some("CONTACTADMIN"),
                "[CONTACTADMIN] This account is disabled",
            ),
            (
                R::AuthenticationUnavailable,
                No,
                Some("UNAVAILABLE"),
                "[UNAVAILABLE] Authentication is unavailable, try again later",
            ),
            (
                R::InvalidModifiedUtf7,
                No,
                Some("CANNOT"),
                "[CANNOT] Invalid modified UTF-7 mailbox name",
            ),
            (
                R::NoSuchMailbox,
                No,
                Some("NONEXISTENT"),
                "[NONEXISTENT] No such mailbox",
            ),
            (
                R::NoSuchTarget,
                No,
                Some("TRYCREATE"),
                "[TRYCREATE] No such mailbox",
            ),
            (
                R::InboxExists,
                No,
                Some("ALREADYEXISTS"),
                "[ALREADYEXISTS] INBOX always exists",
            ),
            (
                R::MailboxExists,
                No,
                Some("ALREADYEXISTS"),
                "[ALREADYEXISTS] Mailbox already exists",
            ),
            (
                R::NewNameTaken,
                No,
                Some("ALREADYEXISTS"),
                "[ALREADYEXISTS] The new name is taken",
            ),
            (
                R::HasChildren,
                No,
                Some("HASCHILDREN"),
                "[HASCHILDREN] Delete the mailboxes inside it first",
            ),
            (
                R::RenameIntoItself,
                No,
                Some("CANNOT"),
                "[CANNOT] A mailbox cannot move inside itself",
            ),
            (
                R::SpecialUseKeepsName,
                No,
                Some("CANNOT"),
                "[CANNOT] Special-use mailboxes keep their names",
            ),
            (
                R::InvalidMailboxName,
                No,
                Some("CANNOT"),
                "[CANNOT] Invalid mailbox name",
            ),
            (
                R::StoreCannot("bad name".into()),
                No,
                Some("CANNOT"),
                "[CANNOT] bad name",
            ),
            (
                R::TooManySubscriptions,
                No,
                Some("LIMIT"),
                "[LIMIT] Too many subscriptions without a mailbox",
            ),
            (
                R::MailboxBusy,
                No,
                Some("INUSE"),
                "[INUSE] Mailbox busy, try again",
            ),
            (
                R::ReadOnly,
                No,
                Some("READ-ONLY"),
                "[READ-ONLY] The mailbox is read-only",
            ),
            (
                R::BadCharset,
                No,
                Some("BADCHARSET (UTF-8 US-ASCII)"),
                "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
            ),
            (
                R::UnknownCte,
                No,
                Some("UNKNOWN-CTE"),
                "[UNKNOWN-CTE] A part has a transfer encoding this server cannot decode",
            ),
            (
                R::LiteralOverLimit {
                    limit: APPEND_LIMIT,
                },
                No,
                Some("TOOBIG"),
                "[TOOBIG] Literal larger than APPENDLIMIT=20971520",
            ),
            (
                R::LiteralsOverTotal {
                    limit: APPEND_MAX_TOTAL,
                },
                No,
                Some("LIMIT"),
                "[LIMIT] Literals larger than 67108864 octets in all",
            ),
            (
                R::MessageOverLimit {
                    limit: APPEND_LIMIT,
                },
                No,
                Some("TOOBIG"),
                "[TOOBIG] Message larger than APPENDLIMIT=20971520",
            ),
            (
                R::MessagesOverTotal {
                    limit: APPEND_MAX_TOTAL,
                },
                No,
                Some("LIMIT"),
                "[LIMIT] Messages larger than 67108864 octets in all",
            ),
            (
                R::TooManyUpdates,
                No,
                Some("LIMIT"),
                "[LIMIT] Too many searches with UPDATE, CANCELUPDATE one first",
            ),
            (
                R::EmptyMessage,
                No,
                Some("CANNOT"),
                "[CANNOT] Empty message",
            ),
            (
                R::CatenatedTooBig {
                    limit: APPEND_LIMIT,
                },
                No,
                Some("TOOBIG"),
                "[TOOBIG] Catenated message larger than APPENDLIMIT=20971520",
            ),
            (
                url(),
                No,
                Some("BADURL imap://x/INBOX/;UID=9"),
                "[BADURL imap://x/INBOX/;UID=9] No such message",
            ),
            (
                R::ServerBug,
                No,
                Some("SERVERBUG"),
                "[SERVERBUG] Internal error, try again later",
            ),
        ];
        for (refusal, status, code, wire) in table {
            let answer = refusal.answer();
            assert_eq!(answer.status, status, "{refusal:?}");
            assert_eq!(answer.code.as_deref(), code, "{refusal:?}");
            assert_eq!(answer.to_string(), wire, "{refusal:?}");
            assert_eq!(refusal.to_string(), format!("{status} {wire}"));
        }
    }
}
