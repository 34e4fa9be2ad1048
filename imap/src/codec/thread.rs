//! THREAD and UID THREAD (RFC 5256 §4): `THREAD algorithm charset search-keys`.

use super::lexer::{err, P, R};
use super::*;

/// The threading algorithms of RFC 5256 §3 (`THREAD=` capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

impl P<'_> {
    /// After `THREAD `: `algorithm charset search-keys`. An algorithm this server does not
    /// offer is a syntax error (BAD); an unknown charset is NO [BADCHARSET], as for SORT.
    pub(super) fn thread_command(&mut self, uid: bool) -> R<Command> {
        let algorithm = match self.keyword()?.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            other => return err(format!("unknown thread algorithm {other}")),
        };
        self.sp()?;
        let charset = self.astring()?.to_ascii_uppercase();
        self.sp()?;
        let key = self.search_keys(0)?;
        self.end()?;
        Ok(Command::Thread {
            algorithm,
            charset,
            key,
            uid,
        })
    }
}
