//! SEARCH and UID SEARCH (RFC 9051 §6.4.4): flags, sizes and dates from the message records,
//! headers and text from the message (case-insensitive substrings). Replies `* SEARCH`, or
//! `* ESEARCH` once the client enabled IMAP4rev2.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::{MailboxId, MessageMeta, StoreError, Uid};

use super::Done;
use crate::codec::write::sequence_set;
use crate::codec::{SearchKey, SearchReturn, SeqSet, SortCriterion};
use crate::message::{header_lines, header_value, Parsed};
use crate::refusal::Refusal;
use crate::session::selected::{Row, SearchContext, MAX_CONTEXTS};
use crate::session::{store_flag, Flow, Selected, Session};

fn contains(haystack: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(haystack)
        .to_lowercase()
        .contains(&needle.to_lowercase())
}

/// Does a header field named `name` contain `needle` (any field of that name)?
/// Whether a header block holds anything decoding would change: an encoded word (RFC 2047
/// `=?`) or bytes outside ASCII.
fn needs_decoding(header: &[u8]) -> bool {
    !header.is_ascii() || header.windows(2).any(|w| w == b"=?")
}

fn header_contains(header: &[u8], name: &str, needle: &str) -> bool {
    header_lines(header).into_iter().any(|line| {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        String::from_utf8_lossy(&line[..colon])
            .trim()
            .eq_ignore_ascii_case(name)
            && (needle.is_empty() || contains(&line[colon + 1..], needle) || {
                // Folded lines compare unfolded (RFC 5322 §2.2.3).
                let value = String::from_utf8_lossy(&line[colon + 1..]);
                let unfolded = value.split_whitespace().collect::<Vec<_>>().join(" ");
                contains(unfolded.as_bytes(), needle)
            })
    })
}

/// RFC 3501 §6.4.4 (RFC 9051 §6.4.4): SENTBEFORE, SENTON and SENTSINCE compare the date the
/// Date: header states, its time and zone ignored (`Mon, 2 Jun 2025 23:30 -0500` was sent on
/// 2 June). The day as Unix seconds of its midnight.
fn sent_date(p: &Parsed) -> Option<i64> {
    if let Some(day) = header_value(p.header(), "Date")
        .as_deref()
        .and_then(written_day)
    {
        return Some(day);
    }
    let d = *mail_parser::MessageParser::default()
        .parse(p.header())?
        .date()?;
    if !(1..=12).contains(&d.month) || !(1..=31).contains(&d.day) {
        return None;
    }
    Some(
        crate::date::days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day))
            * 86400,
    )
}

/// The day of an RFC 5322 date-time (obsolete forms too: no day name, two-digit years,
/// comments, hyphens), as written.
fn written_day(value: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    // Comments out (not nested deeper than the header allows anyway).
    let mut clean = String::new();
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => clean.push(c),
            _ => {}
        }
    }
    let mut tokens = clean
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-')
        .filter(|t| !t.is_empty())
        .skip_while(|t| t.chars().all(|c| c.is_ascii_alphabetic()));
    let day: u32 = tokens.next()?.parse().ok()?;
    let month = tokens.next()?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| month.starts_with(m))? as u32 + 1;
    let year = tokens.next()?;
    if !year.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut year: i64 = year.parse().ok()?;
    // RFC 5322 §4.3: two-digit years are 1950-2049, three-digit ones add 1900.
    year += match year {
        0..=49 => 2000,
        50..=999 => 1900,
        _ => 0,
    };
    if !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
        return None;
    }
    Some(crate::date::days_from_civil(year, month, day) * 86400)
}

/// RFC 7162 §3.1.5 (with RFC 4731): the highest mod-sequence of the messages an ESEARCH
/// returns. With ALL or COUNT that is every message found; otherwise only the message(s) MIN
/// and MAX name and those of the PARTIAL page (RFC 9394). `modseqs` are those of the messages
/// found, in result order; `None` when no message is returned.
fn esearch_modseq(ret: &SearchReturn, modseqs: &[u64]) -> Option<u64> {
    if ret.all || ret.count {
        return modseqs.iter().copied().max();
    }
    let min = if ret.min { modseqs.first() } else { None };
    let max = if ret.max { modseqs.last() } else { None };
    let page = ret
        .partial
        .map(|p| &modseqs[p.indexes(modseqs.len())])
        .unwrap_or_default();
    min.into_iter().chain(max).chain(page).copied().max()
}

/// The `ESEARCH` response (without `* `) of RFC 4731 §3.1, RFC 5267 §3.1 for SORT and RFC 9394
/// §3.1 PARTIAL: `found` in result order (mailbox order for SEARCH, sort order for SORT, so
/// that MIN and MAX are its ends and ALL keeps its order); `modseqs` theirs when the search
/// keys named MODSEQ (RFC 7162 §3.1.5).
pub(super) fn esearch_line(
    tag: &str,
    uid: bool,
    ret: &SearchReturn,
    found: &[u32],
    modseqs: Option<&[u64]>,
) -> String {
    let mut line = format!("ESEARCH (TAG \"{tag}\")");
    if uid {
        line.push_str(" UID");
    }
    if let (Some(min), Some(max)) = (found.first(), found.last()) {
        if ret.min {
            line.push_str(&format!(" MIN {min}"));
        }
        if ret.max {
            line.push_str(&format!(" MAX {max}"));
        }
        if ret.all {
            line.push_str(&format!(" ALL {}", sequence_set(found)));
        }
    }
    if let Some(p) = ret.partial {
        // RFC 9394 §3.1: the range as asked, then the page, NIL if the range holds nothing.
        let page = &found[p.indexes(found.len())];
        let set = if page.is_empty() {
            "NIL".to_string()
        } else {
            sequence_set(page)
        };
        line.push_str(&format!(" PARTIAL ({p} {set})"));
    }
    if ret.count {
        line.push_str(&format!(" COUNT {}", found.len()));
    }
    if let Some(highest) = modseqs.and_then(|m| esearch_modseq(ret, m)) {
        line.push_str(&format!(" MODSEQ {highest}"));
    }
    line
}

/// The UIDs `SAVE` keeps (RFC 5182 §2.1), ascending: those found, only those MIN/MAX
/// return when they are the only result options (§2.4), or with PARTIAL the page returned
/// (RFC 9394 §3.2). `found` in result order.
pub(super) fn saved_uids(ret: &SearchReturn, found: &[Uid]) -> Vec<Uid> {
    // RFC 5182 §2.4: SAVE with MIN and/or MAX and no other result option saves only the
    // message(s) returned; with ALL, COUNT (or nothing else) every match.
    let extremes_only = (ret.min || ret.max) && !ret.all && !ret.count && ret.partial.is_none();
    let mut saved = match ret.partial {
        Some(p) => found[p.indexes(found.len())].to_vec(),
        None if extremes_only => {
            let mut picked = Vec::new();
            // In result order: for ESORT, MIN and MAX are the first and last in sort order
            // (RFC 5267 §3.2).
            if ret.min {
                picked.extend(found.first().copied());
            }
            if ret.max {
                picked.extend(found.last().copied());
            }
            picked.dedup();
            picked
        }
        None => found.to_vec(),
    };
    saved.sort();
    saved
}

/// RFC 5267 §4.3: whether one more search with UPDATE tagged `tag` may be kept (one with the
/// same tag replaces it).
pub(super) fn room_for_update(sel: &Selected, tag: &str) -> Result<(), Refusal> {
    if sel.contexts.len() >= MAX_CONTEXTS && !sel.contexts.iter().any(|c| c.tag == tag) {
        return Err(Refusal::TooManyUpdates);
    }
    Ok(())
}

/// Keeps a search with UPDATE (RFC 5267 §4.3): `rows` its result in result order.
pub(super) fn keep_context(
    sel: &mut Selected,
    tag: &str,
    key: &SearchKey,
    criteria: &[SortCriterion],
    rows: Vec<Row>,
) {
    sel.contexts.retain(|c| c.tag != tag);
    sel.contexts.push(SearchContext {
        tag: tag.to_string(),
        key: key.clone(),
        criteria: criteria.to_vec(),
        rows,
    });
}

struct Ctx<'a> {
    sel: &'a Selected,
    mailbox: MailboxId,
    max_seq: u32,
    max_uid: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    fn load(
        &mut self,
        ctx: &Ctx,
        uid: Uid,
        cache: &mut Option<Arc<Parsed>>,
    ) -> Option<Arc<Parsed>> {
        if cache.is_none() {
            *cache = self.parsed(ctx.mailbox, uid).ok();
        }
        cache.clone()
    }

    fn eval(
        &mut self,
        key: &SearchKey,
        ctx: &Ctx,
        seq: u32,
        m: &MessageMeta,
        cache: &mut Option<Arc<Parsed>>,
    ) -> bool {
        use SearchKey as K;
        let day = |t: i64| t.div_euclid(86400) * 86400;
        match key {
            K::All => true,
            // RFC 3501 §6.4.4: `\Recent` as this session has it; none for IMAP4rev2.
            K::Recent => ctx.sel.is_recent(m.uid),
            K::New => ctx.sel.is_recent(m.uid) && !m.flags.contains(&mshub_store::Flag::Seen),
            K::Old => !ctx.sel.is_recent(m.uid),
            K::Flag(f, has) => m.flags.contains(&store_flag(f)) == *has,
            K::Larger(n) => m.size > *n,
            K::ModSeq(n) => m.modseq.0 >= *n,
            K::Smaller(n) => m.size < *n,
            K::Since(d) => day(m.internal_date) >= *d,
            K::Before(d) => day(m.internal_date) < *d,
            K::On(d) => day(m.internal_date) == *d,
            K::Uid(SeqSet::Saved) | K::Seq(SeqSet::Saved) => {
                ctx.sel.saved.binary_search(&m.uid).is_ok()
            }
            K::Uid(set) => set.contains(m.uid.get(), ctx.max_uid),
            K::Seq(set) => set.contains(seq, ctx.max_seq),
            K::Not(k) => !self.eval(k, ctx, seq, m, cache),
            K::Or(a, b) => self.eval(a, ctx, seq, m, cache) || self.eval(b, ctx, seq, m, cache),
            K::And(keys) => keys.iter().all(|k| self.eval(k, ctx, seq, m, cache)),
            K::Header(name, needle) => self.load(ctx, m.uid, cache).is_some_and(|p| {
                header_contains(p.header(), name, needle)
                    // Decoding (RFC 2047 encoded words, raw UTF-8) can only change the answer
                    // for a header that has any: the rest is compared as it is.
                    || (needs_decoding(p.header())
                        && p.decoded()
                            .headers
                            .iter()
                            .any(|(n, v)| n == name && contains(v.as_bytes(), needle)))
            }),
            K::Body(needle) => self.load(ctx, m.uid, cache).is_some_and(|p| {
                contains(p.text(), needle) || contains(p.decoded().text.as_bytes(), needle)
            }),
            K::Text(needle) => self.load(ctx, m.uid, cache).is_some_and(|p| {
                contains(&p.raw, needle)
                    || contains(p.decoded().text.as_bytes(), needle)
                    || p.decoded()
                        .headers
                        .iter()
                        .any(|(_, v)| contains(v.as_bytes(), needle))
            }),
            K::SentSince(d) | K::SentBefore(d) | K::SentOn(d) => {
                let Some(sent) = self.load(ctx, m.uid, cache).and_then(|p| sent_date(&p)) else {
                    return false;
                };
                match key {
                    K::SentSince(_) => sent >= *d,
                    K::SentBefore(_) => sent < *d,
                    _ => sent == *d,
                }
            }
        }
    }

    /// Does `key` match message `meta`, sequence number `seq` of `sel`?
    fn matches(&mut self, sel: &Selected, key: &SearchKey, seq: u32, meta: &MessageMeta) -> bool {
        let ctx = Ctx {
            sel,
            mailbox: sel.mailbox.id,
            max_seq: sel.uids.len() as u32,
            max_uid: sel.uids.last().map_or(0, |u| u.get()),
        };
        self.eval(key, &ctx, seq, meta, &mut None)
    }

    /// RFC 5267 §4.3: after the untagged updates that told of `changed` (flags, new messages)
    /// and `gone` (expunged), the ESEARCH ADDTO and REMOVEFROM of each search kept with
    /// UPDATE, one response per search. Only the messages changed are evaluated again — all
    /// of them for a search by sequence numbers, as those numbers may now name other
    /// messages.
    pub(crate) fn update_contexts(
        &mut self,
        sel: &mut Selected,
        changed: &[MessageMeta],
        gone: &[Uid],
    ) {
        if sel.contexts.is_empty() {
            return;
        }
        let mut contexts = std::mem::take(&mut sel.contexts);
        // Only the messages the client knows of (an expunge not yet told keeps its message).
        let changed: Vec<(u32, &MessageMeta)> = changed
            .iter()
            .filter_map(|m| sel.seq_of(m.uid).map(|seq| (seq, m)))
            .collect();
        // Numbers shift after an expunge, and `*` moves with a new message: a search by
        // numbers is evaluated again whole (new messages are among the changed ones).
        let renumbered = !gone.is_empty() || !changed.is_empty();
        // The session's view after the updates: every message, as the client now knows it.
        let everything: Vec<(u32, &MessageMeta)> = sel
            .uids
            .iter()
            .enumerate()
            .filter_map(|(i, u)| sel.known.get(u).map(|m| (i as u32 + 1, m)))
            .collect();
        let mut lines = Vec::new();
        for context in &mut contexts {
            let mut left: BTreeSet<Uid> = gone.iter().copied().collect();
            let mut joined = Vec::new();
            let again = if renumbered && context.key.uses_sequence_numbers() {
                &everything
            } else {
                &changed
            };
            for &(seq, meta) in again {
                let was = context.rows.iter().any(|r| r.1 == meta.uid);
                let now = self.matches(sel, &context.key, seq, meta);
                if was && !now {
                    left.insert(meta.uid);
                } else if now && !was {
                    match self.sort_values(sel.mailbox.id, meta, &context.criteria) {
                        Ok(values) => joined.push((values, meta.uid)),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot read a message to sort it");
                        }
                    }
                }
            }
            if let Some(line) = context.apply(&left, joined) {
                lines.push(line);
            }
        }
        sel.contexts = contexts;
        for line in lines {
            self.untagged(&line);
        }
    }

    /// The messages `key` matches, in mailbox order, each with its sequence number (for SORT,
    /// RFC 5256 §3, which takes the search keys SEARCH does). `None` once a store failure was
    /// reported to the client.
    pub(super) fn search_matches(
        &mut self,
        tag: &str,
        sel: &Selected,
        key: &SearchKey,
    ) -> Option<Vec<(u32, MessageMeta)>> {
        let ctx = Ctx {
            sel,
            mailbox: sel.mailbox.id,
            max_seq: sel.uids.len() as u32,
            max_uid: sel.uids.last().map_or(0, |u| u.get()),
        };
        let (fresh, gone) = match self.changes_since_told(sel) {
            Ok(c) => c,
            Err(e) => {
                self.store_failure(tag, &e);
                return None;
            }
        };
        let mut found = Vec::new();
        for (i, u) in sel.uids.iter().enumerate() {
            if gone.contains(u) {
                continue;
            }
            let Some(meta) = fresh.get(u).or_else(|| sel.known.get(u)) else {
                continue;
            };
            let mut cache = None;
            if self.eval(key, &ctx, i as u32 + 1, meta, &mut cache) {
                found.push((i as u32 + 1, meta.clone()));
            }
        }
        Some(found)
    }

    /// What changed in the selected mailbox since the client was last told: the messages
    /// changed (by UID) and those expunged. With [`Selected::known`], the messages as the
    /// store holds them now, without reading each one: when nothing changed (the common
    /// case), one read of the mailbox record.
    fn changes_since_told(
        &self,
        sel: &Selected,
    ) -> Result<(HashMap<Uid, MessageMeta>, HashSet<Uid>), StoreError> {
        let id = sel.mailbox.id;
        let now = self.imap.store.mailbox_by_id(id)?;
        let told = sel.mailbox.highest_modseq;
        if now.is_some_and(|m| m.highest_modseq == told && sel.expunges_told == told) {
            return Ok(Default::default());
        }
        let fresh = self.imap.store.changed_since(id, told)?;
        let gone = self.imap.store.expunged_since(id, sel.expunges_told)?;
        Ok((
            fresh.into_iter().map(|m| (m.uid, m)).collect(),
            gone.into_iter().collect(),
        ))
    }

    pub(super) fn search(
        &mut self,
        tag: &str,
        sel: &mut Selected,
        key: &SearchKey,
        uid: bool,
        ret: Option<SearchReturn>,
    ) -> Done {
        let update = ret.as_ref().is_some_and(|r| r.update);
        if update {
            if let Err(refusal) = room_for_update(sel, tag) {
                return Done::refused(tag, refusal);
            }
        }
        let Some(matches) = self.search_matches(tag, sel, key) else {
            return Done::Flow(Flow::Continue);
        };
        let found: Vec<u32> = matches
            .iter()
            .map(|(seq, m)| if uid { m.uid.get() } else { *seq })
            .collect();
        let found_uids: Vec<_> = matches.iter().map(|(_, m)| m.uid).collect();
        // The MODSEQ of each message found, in the same order.
        let modseqs: Vec<u64> = matches.iter().map(|(_, m)| m.modseq.0).collect();
        if let Some(r) = ret.as_ref().filter(|r| r.save) {
            let saved = saved_uids(r, &found_uids);
            sel.saved = saved;
        }
        if update {
            let rows = found_uids.iter().map(|u| (Vec::new(), *u)).collect();
            keep_context(sel, tag, key, &[], rows);
        }
        if ret.as_ref().is_some_and(SearchReturn::save_only) {
            // RFC 5182 §2.4: SAVE alone answers no ESEARCH.
        } else if self.rev2 || ret.is_some() {
            // RFC 9051 §6.4.4: IMAP4rev2 answers ESEARCH, as RETURN (ALL) without RETURN.
            let ret = ret.unwrap_or(SearchReturn {
                all: true,
                ..SearchReturn::default()
            });
            let modseqs = key.uses_modseq().then_some(&modseqs[..]);
            let line = esearch_line(tag, uid, &ret, &found, modseqs);
            self.untagged(&line);
        } else {
            let mut line = String::from("SEARCH");
            for n in &found {
                line.push(' ');
                line.push_str(&n.to_string());
            }
            // RFC 7162 §3.1.5: the highest MODSEQ of the messages found.
            if key.uses_modseq() && !found.is_empty() {
                let highest = modseqs.iter().copied().max().unwrap_or(0);
                line.push_str(&format!(" (MODSEQ {highest})"));
            }
            self.untagged(&line);
        }
        Done::ok(
            tag,
            if uid {
                "UID SEARCH completed"
            } else {
                "SEARCH completed"
            },
        )
    }
}
