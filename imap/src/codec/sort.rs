//! SORT and UID SORT (RFC 5256 §3, with RFC 5957 DISPLAYFROM/DISPLAYTO):
//! `SORT (criteria) charset search-keys`.

use super::lexer::{err, P, R};
use super::*;

/// One sort key of RFC 5256 §3 (and RFC 5957 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// A sort key, in ascending order unless `reverse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub key: SortKey,
    pub reverse: bool,
}

impl P<'_> {
    /// After `SORT `: `(criteria) charset search-keys`. The charset is returned as written
    /// (upper-cased): an unknown one is NO [BADCHARSET], not a syntax error (RFC 5256 §3).
    pub(super) fn sort_command(&mut self, uid: bool) -> R<Command> {
        self.expect(b'(')?;
        let mut criteria = Vec::new();
        let mut reverse = false;
        loop {
            let word = self.keyword()?;
            let key = match word.as_str() {
                "REVERSE" if !reverse => {
                    reverse = true;
                    self.sp()?;
                    continue;
                }
                "ARRIVAL" => SortKey::Arrival,
                "CC" => SortKey::Cc,
                "DATE" => SortKey::Date,
                "FROM" => SortKey::From,
                "SIZE" => SortKey::Size,
                "SUBJECT" => SortKey::Subject,
                "TO" => SortKey::To,
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                other => return err(format!("unknown sort criterion {other}")),
            };
            criteria.push(SortCriterion { key, reverse });
            reverse = false;
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.sp()?;
        let charset = self.astring()?.to_ascii_uppercase();
        self.sp()?;
        let key = self.search_keys(0)?;
        self.end()?;
        Ok(Command::Sort {
            criteria,
            charset,
            key,
            uid,
        })
    }
}
