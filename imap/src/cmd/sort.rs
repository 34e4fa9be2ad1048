//! SORT and UID SORT (RFC 5256 §3, with RFC 5957 DISPLAYFROM and DISPLAYTO): the messages the
//! search keys match (evaluated as SEARCH does), ordered by the criteria, ties broken by
//! sequence number. Replies `* SORT`, or with RETURN options `* ESEARCH` in sort order (RFC 5267
//! §3 ESORT, with RFC 9394 PARTIAL).

use std::cmp::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};

use mail_parser::{Address, MessageParser};
use mshub_store::{MailboxId, MessageMeta, StoreError};

use super::search::{esearch_line, keep_context, room_for_update, saved_uids};
use super::Done;
use crate::codec::{SearchKey, SearchReturn, SortCriterion, SortKey};
use crate::refusal::Refusal;
use crate::session::selected::SortValue as Value;
use crate::session::{Flow, Selected, Session};

/// RFC 5256 §2.1 `subj-blob`: `[...]` and the blanks after it, at the start of `s`.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find([']', '['])?;
    if rest.as_bytes()[close] != b']' {
        return None;
    }
    Some(rest[close + 1..].trim_start())
}

/// RFC 5256 §2.1 `subj-leader` without its blanks: `*subj-blob subj-refwd`, where
/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`. `s` is lower-cased.
fn strip_refwd(s: &str) -> Option<&str> {
    let mut r = s;
    while let Some(x) = strip_blob(r) {
        r = x;
    }
    let r = r
        .strip_prefix("re")
        .or_else(|| r.strip_prefix("fwd"))
        .or_else(|| r.strip_prefix("fw"))?
        .trim_start();
    let r = strip_blob(r).unwrap_or(r);
    r.strip_prefix(':')
}

/// RFC 5256 §2.1: the base subject of a (decoded) subject, lower-cased for the
/// case-insensitive comparison.
pub(crate) fn base_subject(subject: &str) -> String {
    base_subject_and_reply(subject).0
}

/// The base subject (RFC 5256 §2.1), and whether the subject is a reply or forward as THREAD
/// REFERENCES step 5 has it (RFC 5256 §4): a `subj-refwd` or a "(fwd)" `subj-trailer` was
/// removed.
pub(crate) fn base_subject_and_reply(subject: &str) -> (String, bool) {
    let mut reply = false;
    // (1) Blanks to single spaces.
    let mut s = subject
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    loop {
        // (2) Trailing "(fwd)" and blanks.
        loop {
            let t = s.trim_end();
            match t.strip_suffix("(fwd)") {
                Some(x) => {
                    s = x.to_string();
                    reply = true;
                }
                None => {
                    s = t.to_string();
                    break;
                }
            }
        }
        // (3)-(5) Leading "re:", "fw:", "fwd:" (after blobs), then one leading blob unless it
        // is the whole subject, until nothing changes.
        loop {
            let before = s.clone();
            loop {
                let t = s.trim_start();
                if let Some(rest) = strip_refwd(t) {
                    s = rest.to_string();
                    reply = true;
                } else if t.len() != s.len() {
                    s = t.to_string();
                } else {
                    break;
                }
            }
            if let Some(rest) = strip_blob(&s) {
                if !rest.is_empty() {
                    s = rest.to_string();
                }
            }
            if s == before {
                break;
            }
        }
        // (6) "[fwd: ... ]".
        if s.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            continue;
        }
        return (s, reply);
    }
}

/// The first address of a list: its display name and its `mailbox@host`.
fn first_address(a: Option<&Address>) -> (String, String) {
    let Some(addr) = a.and_then(Address::first) else {
        return (String::new(), String::new());
    };
    (
        addr.name().unwrap_or_default().trim().to_string(),
        addr.address().unwrap_or_default().trim().to_string(),
    )
}

/// RFC 5256 §3: FROM, TO and CC sort by the `addr-mailbox` (local part) of the first address.
fn mailbox_of(a: Option<&Address>) -> String {
    let (_, address) = first_address(a);
    match address.rfind('@') {
        Some(at) => address[..at].to_lowercase(),
        None => address.to_lowercase(),
    }
}

/// RFC 5957 §3: the display name of the first address, else its address.
fn display_of(a: Option<&Address>) -> String {
    let (name, address) = first_address(a);
    if name.is_empty() { address } else { name }.to_lowercase()
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// The values of message `meta` for `criteria` (RFC 5256 §3); the header is read only for
    /// criteria that need it.
    pub(super) fn sort_values(
        &mut self,
        mailbox: MailboxId,
        meta: &MessageMeta,
        criteria: &[SortCriterion],
    ) -> Result<Vec<Value>, StoreError> {
        let needs_header = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        let parsed = if needs_header {
            Some(self.parsed(mailbox, meta.uid)?)
        } else {
            None
        };
        let message = parsed
            .as_ref()
            .and_then(|p| MessageParser::default().parse_headers(p.header()));
        Ok(criteria
            .iter()
            .map(|c| {
                let m = message.as_ref();
                match c.key {
                    SortKey::Arrival => Value::Num(meta.internal_date),
                    SortKey::Size => Value::Num(meta.size as i64),
                    // RFC 5256 §2.2: the Date: header in UTC, else the internal date.
                    SortKey::Date => Value::Num(
                        m.and_then(|m| m.date())
                            .filter(|d| d.is_valid())
                            .map_or(meta.internal_date, |d| d.to_timestamp()),
                    ),
                    SortKey::Subject => {
                        Value::Text(base_subject(m.and_then(|m| m.subject()).unwrap_or("")))
                    }
                    SortKey::From => Value::Text(mailbox_of(m.and_then(|m| m.from()))),
                    SortKey::To => Value::Text(mailbox_of(m.and_then(|m| m.to()))),
                    SortKey::Cc => Value::Text(mailbox_of(m.and_then(|m| m.cc()))),
                    SortKey::DisplayFrom => Value::Text(display_of(m.and_then(|m| m.from()))),
                    SortKey::DisplayTo => Value::Text(display_of(m.and_then(|m| m.to()))),
                }
            })
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn sort(
        &mut self,
        tag: &str,
        sel: &mut Selected,
        criteria: &[SortCriterion],
        charset: &str,
        key: &SearchKey,
        uid: bool,
        ret: Option<SearchReturn>,
    ) -> Done {
        if criteria.is_empty() {
            return Done::refused(tag, Refusal::SortWithoutCriterion);
        }
        if charset != "UTF-8" && charset != "US-ASCII" {
            return Done::refused(tag, Refusal::BadCharset);
        }
        if ret.as_ref().is_some_and(|r| r.update) {
            if let Err(refusal) = room_for_update(sel, tag) {
                return Done::refused(tag, refusal);
            }
        }
        let mailbox = sel.mailbox.id;
        let Some(found) = self.search_matches(tag, sel, key) else {
            return Done::Flow(Flow::Continue);
        };
        let mut rows = Vec::with_capacity(found.len());
        for (seq, meta) in found {
            match self.sort_values(mailbox, &meta, criteria) {
                Ok(values) => rows.push((values, seq, meta.uid, meta.modseq.0)),
                Err(e) => {
                    self.store_failure(tag, &e);
                    return Done::Flow(Flow::Continue);
                }
            }
        }
        rows.sort_by(|a, b| {
            for (i, c) in criteria.iter().enumerate() {
                let o = a.0[i].cmp(&b.0[i]);
                let o = if c.reverse { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.1.cmp(&b.1)
        });
        let found: Vec<u32> = rows
            .iter()
            .map(|(_, seq, u, _)| if uid { u.get() } else { *seq })
            .collect();
        if let Some(ret) = ret {
            // RFC 5267 §3.1: ESEARCH in sort order. SAVE (RFC 5182) keeps the messages as a
            // set, whatever their order.
            if ret.update {
                let kept = rows.iter().map(|(v, _, u, _)| (v.clone(), *u)).collect();
                keep_context(sel, tag, key, criteria, kept);
            }
            if ret.save {
                let uids: Vec<_> = rows.iter().map(|(_, _, u, _)| *u).collect();
                let saved = saved_uids(&ret, &uids);
                sel.saved = saved;
            }
            if !ret.save_only() {
                let modseqs: Vec<u64> = rows.iter().map(|(_, _, _, m)| *m).collect();
                let modseqs = key.uses_modseq().then_some(&modseqs[..]);
                let line = esearch_line(tag, uid, &ret, &found, modseqs);
                self.untagged(&line);
            }
        } else {
            let mut line = String::from("SORT");
            for n in &found {
                line.push(' ');
                line.push_str(&n.to_string());
            }
            self.untagged(&line);
        }
        Done::ok(
            tag,
            if uid {
                "UID SORT completed"
            } else {
                "SORT completed"
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::base_subject;

    #[test]
    fn base_subjects() {
        for (subject, base) in [
            ("Résultats", "résultats"),
            ("Re: Résultats", "résultats"),
            ("RE: re: Fwd: résultats", "résultats"),
            ("Re[2]: résultats", "résultats"),
            ("[labo] Re: résultats", "résultats"),
            ("[labo] résultats (fwd)", "résultats"),
            ("[Fwd: Re: résultats]", "résultats"),
            ("[labo]", "[labo]"),
            ("  Fw:   a   b  ", "a b"),
            ("", ""),
        ] {
            assert_eq!(base_subject(subject), base, "{subject}");
        }
    }
}
