//! IMAP syntax (RFC 9051 §9), the subset this server supports: a complete command (its line and
//! any literals the session framed for it) to a typed [`Command`], and the quoting helpers
//! responses are written with. Pure functions: no sockets, no store.
//!
//! A small hand parser: imap-codec was not available offline when this crate was written.

mod append;
mod items;
mod lexer;
pub mod mutf7;
mod notify;
mod parser;
mod sort;
mod thread;
pub mod write;

use std::collections::BTreeSet;

pub use append::{
    parse_imap_url, AppendData, AppendMessage, CatPart, ImapUrl, MAX_APPEND_MESSAGES,
};
pub use lexer::{literal_at_end, tag_of};
pub use notify::{EventGroup, MailboxFilter, NotifyEvent, NotifySet};
pub use parser::parse_command;
pub use sort::{PartialRange, SearchReturn, SortCriterion, SortKey};
pub use thread::ThreadAlgorithm;

/// Nesting limit for parenthesised lists and search keys: garbage must not overflow the stack.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub command: Command,
}

/// One element of a sequence set; `None` stands for `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqRange(pub Option<u32>, pub Option<u32>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqSet {
    Ranges(Vec<SeqRange>),
    /// RFC 5182 `$`: the messages the last `SEARCH RETURN (SAVE)` found.
    Saved,
}

impl SeqSet {
    /// Whether the ranges name `n`, `*` being `max` (never true for `$`, which the session
    /// resolves).
    pub fn contains(&self, n: u32, max: u32) -> bool {
        let SeqSet::Ranges(ranges) = self else {
            return false;
        };
        ranges.iter().any(|SeqRange(a, b)| {
            let a = a.unwrap_or(max);
            let b = b.unwrap_or(max);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            (lo..=hi).contains(&n)
        })
    }

    /// The largest explicit number (to check sequence numbers against EXISTS).
    pub fn max_explicit(&self) -> u32 {
        let SeqSet::Ranges(ranges) = self else {
            return 0;
        };
        ranges
            .iter()
            .flat_map(|SeqRange(a, b)| [a.unwrap_or(0), b.unwrap_or(0)])
            .max()
            .unwrap_or(0)
    }
}

/// LIST's selection and return options (RFC 5258, RFC 5819), and LSUB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub lsub: bool,
    /// Selection option SUBSCRIBED (and LSUB).
    pub subscribed: bool,
    /// Selection option RECURSIVEMATCH: parents of matching subscribed mailboxes too.
    pub recursive: bool,
    /// Selection option SPECIAL-USE (RFC 6154 §3): special-use mailboxes only.
    pub special_use: bool,
    /// Return option SUBSCRIBED.
    pub return_subscribed: bool,
    /// Return option `STATUS (...)`.
    pub status: Vec<StatusItem>,
}

/// What a client remembers of a mailbox (RFC 7162 §3.2.5 QRESYNC parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uid_validity: u32,
    pub modseq: u64,
    pub known_uids: Option<SeqSet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields { not: bool, fields: Vec<String> },
    Text,
    Mime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Flags,
    Uid,
    InternalDate,
    Rfc822Size,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Envelope,
    BodyStructure,
    /// `BODY` without a section: the non-extensible structure.
    Body,
    BodySection {
        section: Section,
        peek: bool,
        partial: Option<(u32, u32)>,
    },
    ModSeq,
    /// RFC 3516 `BINARY[part]`: the part with its content-transfer-encoding undone.
    Binary {
        part: Vec<u32>,
        peek: bool,
        partial: Option<(u32, u32)>,
    },
    BinarySize {
        part: Vec<u32>,
    },
}

impl FetchItem {
    /// Whether fetching it sets `\Seen` (RFC 9051 §6.4.5: BODY[…], BINARY[…], RFC822 and
    /// RFC822.TEXT, not their PEEK forms).
    pub fn sets_seen(&self) -> bool {
        matches!(
            self,
            FetchItem::BodySection { peek: false, .. }
                | FetchItem::Binary { peek: false, .. }
                | FetchItem::Rfc822
                | FetchItem::Rfc822Text
        )
    }
}

/// A message flag as a command names it (RFC 9051 §2.3.2): a system flag or a keyword, an
/// atom kept as written. The session turns it into the store's own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    Keyword(String),
}

impl Flag {
    /// A system flag by its name (`\Seen`, any case), or a keyword (RFC 9051 §9
    /// `flag-keyword`: an atom of at most 255 octets).
    pub fn parse(s: &str) -> Option<Flag> {
        Some(match s.to_ascii_lowercase().as_str() {
            "\\seen" => Flag::Seen,
            "\\answered" => Flag::Answered,
            "\\flagged" => Flag::Flagged,
            "\\deleted" => Flag::Deleted,
            "\\draft" => Flag::Draft,
            _ => {
                let atom = !s.is_empty()
                    && s.len() <= 255
                    && s.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
                if !atom {
                    return None;
                }
                Flag::Keyword(s.to_string())
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Flag(Flag, bool),
    New,
    Old,
    Recent,
    Header(String, String),
    Body(String),
    Text(String),
    Since(i64),
    Before(i64),
    On(i64),
    SentSince(i64),
    SentBefore(i64),
    SentOn(i64),
    Larger(u64),
    /// RFC 7162 §3.1.5: MODSEQ at least this.
    ModSeq(u64),
    Smaller(u64),
    Uid(SeqSet),
    Seq(SeqSet),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    And(Vec<SearchKey>),
}

impl SearchKey {
    /// Whether the key names MODSEQ (which turns CONDSTORE on, RFC 7162 §3.1).
    pub fn uses_modseq(&self) -> bool {
        match self {
            SearchKey::ModSeq(_) => true,
            SearchKey::Not(k) => k.uses_modseq(),
            SearchKey::Or(a, b) => a.uses_modseq() || b.uses_modseq(),
            SearchKey::And(keys) => keys.iter().any(SearchKey::uses_modseq),
            _ => false,
        }
    }

    /// Whether the key names sequence numbers, whose messages change when others are
    /// expunged or arrive (`*`).
    pub fn uses_sequence_numbers(&self) -> bool {
        match self {
            SearchKey::Seq(_) => true,
            SearchKey::Not(k) => k.uses_sequence_numbers(),
            SearchKey::Or(a, b) => a.uses_sequence_numbers() || b.uses_sequence_numbers(),
            SearchKey::And(keys) => keys.iter().any(SearchKey::uses_sequence_numbers),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Size,
    HighestModSeq,
    Recent,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Check,
    Logout,
    StartTls,
    Login {
        user: String,
        password: String,
    },
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    Id,
    Enable(Vec<String>),
    Namespace,
    List {
        reference: String,
        /// RFC 5258: one pattern or a parenthesised list of them.
        patterns: Vec<String>,
        options: ListOptions,
    },
    Create(String),
    Delete(String),
    Rename(String, String),
    Subscribe(String),
    Unsubscribe(String),
    Status(String, Vec<StatusItem>),
    Select {
        mailbox: String,
        read_only: bool,
        /// RFC 7162 §3.1.8: `SELECT mailbox (CONDSTORE)`.
        condstore: bool,
        /// RFC 7162 §3.2.5: `SELECT mailbox (QRESYNC (...))`.
        qresync: Option<Qresync>,
    },
    Close,
    Unselect,
    Expunge {
        uids: Option<SeqSet>,
    },
    /// RFC 3502 MULTIAPPEND: one message or more; RFC 4469 CATENATE: each a literal or parts.
    Append {
        mailbox: String,
        messages: Vec<AppendMessage>,
    },
    Fetch {
        set: SeqSet,
        items: Vec<FetchItem>,
        uid: bool,
        /// RFC 7162 §3.1.4 CHANGEDSINCE.
        changed_since: Option<u64>,
        /// RFC 7162 §3.2.6 VANISHED (UID FETCH with CHANGEDSINCE, QRESYNC enabled).
        vanished: bool,
    },
    Store {
        set: SeqSet,
        op: StoreOp,
        silent: bool,
        flags: BTreeSet<Flag>,
        unchanged_since: Option<u64>,
        uid: bool,
    },
    Copy {
        set: SeqSet,
        mailbox: String,
        uid: bool,
        moving: bool,
    },
    Search {
        key: SearchKey,
        uid: bool,
        /// RFC 4731 RETURN options (MIN, MAX, COUNT, ALL, with RFC 5182 SAVE and RFC 9394
        /// PARTIAL); `Some` asks for ESEARCH.
        ret: Option<SearchReturn>,
    },
    /// RFC 5256 §3 SORT / UID SORT.
    Sort {
        criteria: Vec<SortCriterion>,
        /// Upper-cased; only UTF-8 and US-ASCII are supported (NO [BADCHARSET] otherwise).
        charset: String,
        key: SearchKey,
        uid: bool,
        /// RFC 5267 §3 ESORT: `SORT RETURN (...)`, answered by ESEARCH in sort order.
        ret: Option<SearchReturn>,
    },
    /// RFC 5256 §4 THREAD / UID THREAD.
    Thread {
        algorithm: ThreadAlgorithm,
        /// Upper-cased, as SORT's.
        charset: String,
        key: SearchKey,
        uid: bool,
    },
    Idle,
    /// RFC 5465: `None` for `NOTIFY NONE`.
    Notify(Option<NotifySet>),
    /// RFC 5267 §4.3 (formal syntax §5): `CANCELUPDATE SP quoted *(SP quoted)`, the tags of
    /// the searches whose updates stop.
    CancelUpdate(Vec<String>),
}

impl Command {
    /// The command's name, for logs (never its arguments: credentials, patient data).
    pub fn name(&self) -> &'static str {
        use Command as C;
        match self {
            C::Capability => "CAPABILITY",
            C::Noop => "NOOP",
            C::Check => "CHECK",
            C::Logout => "LOGOUT",
            C::StartTls => "STARTTLS",
            C::Login { .. } => "LOGIN",
            C::Authenticate { .. } => "AUTHENTICATE",
            C::Id => "ID",
            C::Enable(_) => "ENABLE",
            C::Namespace => "NAMESPACE",
            C::List { options, .. } if options.lsub => "LSUB",
            C::List { .. } => "LIST",
            C::Create(_) => "CREATE",
            C::Delete(_) => "DELETE",
            C::Rename(..) => "RENAME",
            C::Subscribe(_) => "SUBSCRIBE",
            C::Unsubscribe(_) => "UNSUBSCRIBE",
            C::Status(..) => "STATUS",
            C::Select {
                read_only: true, ..
            } => "EXAMINE",
            C::Select { .. } => "SELECT",
            C::Close => "CLOSE",
            C::Unselect => "UNSELECT",
            C::Expunge { uids: None } => "EXPUNGE",
            C::Expunge { .. } => "UID EXPUNGE",
            C::Append { .. } => "APPEND",
            C::Fetch { .. } => "FETCH",
            C::Store { .. } => "STORE",
            C::Copy { moving: true, .. } => "MOVE",
            C::Copy { .. } => "COPY",
            C::Search { .. } => "SEARCH",
            C::Sort { .. } => "SORT",
            C::Thread { .. } => "THREAD",
            C::Idle => "IDLE",
            C::Notify(_) => "NOTIFY",
            C::CancelUpdate(_) => "CANCELUPDATE",
        }
    }
}

/// Why a command was not understood: the text of the tagged `BAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod flag_tests {
    use super::Flag;

    #[test]
    fn system_flags_in_any_case_and_keywords_as_written() {
        assert_eq!(Flag::parse("\\SEEN"), Some(Flag::Seen));
        assert_eq!(Flag::parse("\\Draft"), Some(Flag::Draft));
        assert_eq!(
            Flag::parse("$Forwarded"),
            Some(Flag::Keyword("$Forwarded".into()))
        );
        assert_eq!(Flag::parse(""), None);
        assert_eq!(Flag::parse(&"k".repeat(256)), None);
        assert_eq!(Flag::parse("a]b"), None);
    }
}
