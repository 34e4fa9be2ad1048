//! SORT and UID SORT (RFC 5256 §3, with RFC 5957 DISPLAYFROM/DISPLAYTO):
//! `SORT [RETURN (options)] (criteria) charset search-keys`, and the RETURN options SEARCH and
//! SORT share (RFC 4731 §3.1, RFC 5182 SAVE, RFC 5267 §3 ESORT, RFC 9394 §3.1 PARTIAL).

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

/// RFC 9394 §3.1 `partial-range`: positions in the results, 1 the first, or counted from the
/// last (-1) when `from_end`. Kept as written (`first` may exceed `last`), as the reply echoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialRange {
    pub first: u32,
    pub last: u32,
    pub from_end: bool,
}

impl PartialRange {
    /// The indexes (0-based, ascending) of the results the range names among `len`.
    pub fn indexes(&self, len: usize) -> std::ops::Range<usize> {
        let (lo, hi) = (
            self.first.min(self.last) as usize,
            self.first.max(self.last) as usize,
        );
        let (start, end) = if self.from_end {
            // -hi .. -lo: from the hi-th last to the lo-th last.
            (len.saturating_sub(hi), len.saturating_sub(lo - 1))
        } else {
            ((lo - 1).min(len), hi.min(len))
        };
        start..end.max(start)
    }
}

impl std::fmt::Display for PartialRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.from_end { "-" } else { "" };
        write!(f, "{sign}{}:{sign}{}", self.first, self.last)
    }
}

/// The RETURN options of SEARCH (RFC 4731 §3.1, RFC 5182 §2) and SORT (RFC 5267 §3.2), with
/// RFC 9394 PARTIAL. `RETURN ()` is `ALL`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    pub save: bool,
    pub partial: Option<PartialRange>,
    /// RFC 5267 §4.3 UPDATE: keep the search and tell of changes to its result (ADDTO,
    /// REMOVEFROM) while the mailbox stays selected.
    pub update: bool,
    /// RFC 5267 §4.2 CONTEXT: a hint that the client will page through the result; accepted,
    /// it changes nothing here.
    pub context: bool,
}

impl SearchReturn {
    /// RFC 5182 §2.4: SAVE alone answers no ESEARCH.
    pub fn save_only(&self) -> bool {
        self.save && !(self.min || self.max || self.all || self.count || self.partial.is_some())
    }
}

impl P<'_> {
    /// `RETURN (options)` after SEARCH or SORT, from `(`. An option this server does not offer
    /// is BAD. UPDATE and CONTEXT (RFC 5267 §4) are not result options: with nothing else the
    /// answer holds no result, as RFC 4731 §3.1 has it (only `RETURN ()` means ALL).
    pub(super) fn search_return(&mut self) -> R<SearchReturn> {
        let mut ret = SearchReturn::default();
        self.expect(b'(')?;
        if self.eat(b')') {
            ret.all = true;
            return Ok(ret);
        }
        loop {
            match self.keyword()?.as_str() {
                "MIN" => ret.min = true,
                "MAX" => ret.max = true,
                "ALL" => ret.all = true,
                "COUNT" => ret.count = true,
                "SAVE" => ret.save = true,
                "UPDATE" => ret.update = true,
                "CONTEXT" => ret.context = true,
                "PARTIAL" if ret.partial.is_none() => {
                    self.sp()?;
                    ret.partial = Some(self.partial_range()?);
                }
                o => return err(format!("unsupported RETURN option {o}")),
            }
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        // RFC 9394 §3.1: one PARTIAL or one ALL, not both.
        if ret.all && ret.partial.is_some() {
            return err("PARTIAL and ALL exclude each other");
        }
        Ok(ret)
    }

    /// RFC 9394 §4: `partial-range-first = nz-number ":" nz-number` or
    /// `partial-range-last = "-" nz-number ":" "-" nz-number`.
    fn partial_range(&mut self) -> R<PartialRange> {
        let from_end = self.eat(b'-');
        let first = self.nz_number()?;
        self.expect(b':')?;
        if from_end {
            self.expect(b'-')?;
        }
        let last = self.nz_number()?;
        Ok(PartialRange {
            first,
            last,
            from_end,
        })
    }

    /// After `SORT `: `(criteria) charset search-keys`. The charset is returned as written
    /// (upper-cased): an unknown one is NO [BADCHARSET], not a syntax error (RFC 5256 §3).
    pub(super) fn sort_command(&mut self, uid: bool) -> R<Command> {
        // RFC 5267 §3.2: `SORT [search-return-opts] SP sort-criteria ...`.
        let mut ret = None;
        if self.peek() != Some(b'(') {
            if self.keyword()? != "RETURN" {
                return err("expected RETURN or sort criteria");
            }
            self.sp()?;
            ret = Some(self.search_return()?);
            self.sp()?;
        }
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
            ret,
        })
    }
}
