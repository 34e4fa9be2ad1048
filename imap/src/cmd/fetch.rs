//! FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2). Fetching a body section without `.PEEK`
//! sets `\Seen` (unless the mailbox is read-only) and reports the new FLAGS.

use std::collections::{BTreeSet, HashSet};

use tokio::io::{AsyncRead, AsyncWrite};

use mshub_store::{Flag, FlagOp, MessageMeta, Uid};

use super::Done;
use crate::codec::write::{literal, nstring};
use crate::codec::{FetchItem, SectionText, SeqSet};
use crate::date::format_date_time;
use crate::message::{BinaryError, Structure};
use crate::refusal::Refusal;
use crate::session::{Flow, Selected, Session};

fn section_label(item: &FetchItem) -> String {
    let FetchItem::BodySection {
        section, partial, ..
    } = item
    else {
        return String::new();
    };
    let mut s: Vec<String> = section.part.iter().map(u32::to_string).collect();
    match &section.text {
        None => {}
        Some(SectionText::Header) => s.push("HEADER".into()),
        Some(SectionText::Text) => s.push("TEXT".into()),
        Some(SectionText::Mime) => s.push("MIME".into()),
        Some(SectionText::HeaderFields { not, fields }) => {
            let quoted: Vec<String> = fields
                .iter()
                .map(|f| String::from_utf8_lossy(&crate::codec::write::quoted(f)).into_owned())
                .collect();
            s.push(format!(
                "HEADER.FIELDS{} ({})",
                if *not { ".NOT" } else { "" },
                quoted.join(" ")
            ));
        }
    }
    let mut label = format!("BODY[{}]", s.join("."));
    if let Some((start, _)) = partial {
        label.push_str(&format!("<{start}>"));
    }
    label
}

/// A literal of message bytes outside BINARY. RFC 9051 §4.3 (RFC 3501 §4.3): "unencoded binary
/// strings are not permitted, unless returned in a <literal8> in response to a BINARY.PEEK[...]
/// or BINARY[...] FETCH data item", a binary string being "any string with NUL characters".
/// The stored bytes cannot be re-encoded without changing what BODY[...] names, so each NUL is
/// sent as one 0x80 octet (as Dovecot does): sizes (RFC822.SIZE, BODYSTRUCTURE) and partial
/// offsets stay true, and BINARY[...] still gives the exact bytes in a literal8 (RFC 3516 §4.2).
fn text_literal(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.contains(&0) {
        let replaced: Vec<u8> = bytes
            .iter()
            .map(|&b| if b == 0 { 0x80 } else { b })
            .collect();
        literal(out, &replaced);
    } else {
        literal(out, bytes);
    }
}

/// Messages larger than this keep their ENVELOPE and BODYSTRUCTURE stored (smaller ones are
/// parsed from the store's memory of opened messages, which is faster than opening a record).
const STRUCTURE_STORED_ABOVE: u64 = 256 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// The stored structure of a message, computed and stored the first time.
    fn structure(
        &mut self,
        sel: &Selected,
        meta: &MessageMeta,
    ) -> Result<Structure, mshub_store::StoreError> {
        let (owner, mailbox) = (sel.mailbox.account, sel.mailbox.id);
        let store = self.imap.store.clone();
        if let Some(s) = store
            .derived(owner, meta.blob, Structure::KIND)?
            .and_then(|b| Structure::decode(&b))
        {
            return Ok(s);
        }
        let structure = Structure::of(&*self.parsed(mailbox, meta.uid)?);
        // A cache: a failure to keep it only costs a parse next time.
        if let Err(e) = store.put_derived(owner, meta.blob, Structure::KIND, &structure.encode()) {
            tracing::warn!(error = %e, "could not keep a message's structure");
        }
        Ok(structure)
    }
}

fn needs_content(item: &FetchItem) -> bool {
    !matches!(
        item,
        FetchItem::Flags
            | FetchItem::Uid
            | FetchItem::InternalDate
            | FetchItem::Rfc822Size
            | FetchItem::ModSeq
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn fetch(
        &mut self,
        tag: &str,
        sel: &mut Selected,
        set: &SeqSet,
        items: &[FetchItem],
        uid: bool,
        changed_since: Option<u64>,
    ) -> Done {
        let uids = match sel.resolve(set, uid) {
            Ok(u) => u,
            Err(e) => return Done::refused(tag, e),
        };
        let (mailbox, read_only) = (sel.mailbox.id, sel.read_only);
        let store = self.imap.store.clone();
        let mut metas: Vec<MessageMeta> = Vec::with_capacity(uids.len());
        for u in &uids {
            match store.message(mailbox, *u) {
                // RFC 7162 §3.1.4: CHANGEDSINCE keeps the messages changed after it.
                Ok(Some(m)) if changed_since.is_none_or(|c| m.modseq.0 > c) => metas.push(m),
                Ok(Some(_)) => {}
                // Expunged by another session and not yet reported: nothing to show.
                Ok(None) => {}
                Err(e) => {
                    self.store_failure(tag, &e);
                    return Done::Flow(Flow::Continue);
                }
            }
        }
        let mut flags_changed: HashSet<Uid> = HashSet::new();
        let mut unknown_cte = false;
        if !read_only && items.iter().any(FetchItem::sets_seen) {
            let unseen: Vec<Uid> = metas
                .iter()
                .filter(|m| !m.flags.contains(&Flag::Seen))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let seen: BTreeSet<Flag> = [Flag::Seen].into_iter().collect();
                match store.store_flags(mailbox, &unseen, FlagOp::Add, &seen, None) {
                    Ok(update) => {
                        for new in update.updated {
                            flags_changed.insert(new.uid);
                            if let Some(m) = metas.iter_mut().find(|m| m.uid == new.uid) {
                                *m = new;
                            }
                        }
                    }
                    Err(e) => {
                        self.store_failure(tag, &e);
                        return Done::Flow(Flow::Continue);
                    }
                }
            }
        }
        // RFC 3501 §7.2.6: keywords another session set are announced before these FETCH show
        // them.
        if items.contains(&FetchItem::Flags) || !flags_changed.is_empty() {
            self.announce_keywords(sel, metas.iter().map(|m| &m.flags));
        }
        let content = items.iter().any(needs_content);
        // ENVELOPE / BODYSTRUCTURE / BODY only: a large message answers from its stored
        // structure, without being decrypted and parsed again.
        let structure_only = content
            && items.iter().filter(|i| needs_content(i)).all(|i| {
                matches!(
                    i,
                    FetchItem::Envelope | FetchItem::BodyStructure | FetchItem::Body
                )
            });
        for meta in &metas {
            let Some(seq) = sel.seq_of(meta.uid) else {
                continue;
            };
            let structure = if structure_only && meta.size > STRUCTURE_STORED_ABOVE {
                match self.structure(sel, meta) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::error!(error = %e, uid = %meta.uid, "cannot read a message");
                        self.untagged(&format!("{seq} FETCH (UID {})", meta.uid));
                        continue;
                    }
                }
            } else {
                None
            };
            let parsed = if content && structure.is_none() {
                match self.parsed(mailbox, meta.uid) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::error!(error = %e, uid = %meta.uid, "cannot read a message");
                        self.untagged(&format!("{seq} FETCH (UID {})", meta.uid));
                        continue;
                    }
                }
            } else {
                None
            };
            let mut out: Vec<Vec<u8>> = Vec::new();
            let mut has_uid = false;
            let mut has_flags = false;
            for item in items {
                let mut b = Vec::new();
                match item {
                    FetchItem::Uid => {
                        has_uid = true;
                        b.extend_from_slice(format!("UID {}", meta.uid).as_bytes());
                    }
                    FetchItem::Flags => {
                        has_flags = true;
                        b.extend_from_slice(
                            format!("FLAGS {}", sel.flag_list(meta.uid, &meta.flags)).as_bytes(),
                        );
                    }
                    FetchItem::InternalDate => b.extend_from_slice(
                        format!("INTERNALDATE \"{}\"", format_date_time(meta.internal_date))
                            .as_bytes(),
                    ),
                    FetchItem::Rfc822Size => {
                        b.extend_from_slice(format!("RFC822.SIZE {}", meta.size).as_bytes())
                    }
                    FetchItem::ModSeq => {
                        b.extend_from_slice(format!("MODSEQ ({})", meta.modseq.0).as_bytes())
                    }
                    FetchItem::Envelope | FetchItem::BodyStructure | FetchItem::Body
                        if structure.is_some() =>
                    {
                        let Some(st) = &structure else { continue };
                        let (label, bytes) = match item {
                            FetchItem::Envelope => ("ENVELOPE ", &st.envelope),
                            FetchItem::BodyStructure => ("BODYSTRUCTURE ", &st.extensible),
                            _ => ("BODY ", &st.basic),
                        };
                        b.extend_from_slice(label.as_bytes());
                        b.extend_from_slice(bytes);
                    }
                    _ => {
                        let Some(p) = &parsed else { continue };
                        match item {
                            FetchItem::Envelope => {
                                b.extend_from_slice(b"ENVELOPE ");
                                b.extend_from_slice(p.envelope());
                            }
                            FetchItem::BodyStructure => {
                                b.extend_from_slice(b"BODYSTRUCTURE ");
                                b.extend_from_slice(&p.body_structure(true));
                            }
                            FetchItem::Body => {
                                b.extend_from_slice(b"BODY ");
                                b.extend_from_slice(&p.body_structure(false));
                            }
                            FetchItem::Rfc822 => {
                                b.extend_from_slice(b"RFC822 ");
                                text_literal(&mut b, &p.raw);
                            }
                            FetchItem::Rfc822Header => {
                                b.extend_from_slice(b"RFC822.HEADER ");
                                text_literal(&mut b, p.header());
                            }
                            FetchItem::Rfc822Text => {
                                b.extend_from_slice(b"RFC822.TEXT ");
                                text_literal(&mut b, p.text());
                            }
                            FetchItem::BodySection {
                                section, partial, ..
                            } => {
                                b.extend_from_slice(section_label(item).as_bytes());
                                b.push(b' ');
                                match p.section(section) {
                                    Some(bytes) => {
                                        let bytes = match partial {
                                            Some((start, len)) => {
                                                let s = (*start as usize).min(bytes.len());
                                                let e = s
                                                    .saturating_add(*len as usize)
                                                    .min(bytes.len());
                                                bytes[s..e].to_vec()
                                            }
                                            None => bytes,
                                        };
                                        text_literal(&mut b, &bytes);
                                    }
                                    // RFC 9051 §6.4.5: a missing part is NIL... or empty.
                                    None => nstring(&mut b, None),
                                }
                            }
                            FetchItem::Binary { part, partial, .. } => {
                                let label = part
                                    .iter()
                                    .map(u32::to_string)
                                    .collect::<Vec<_>>()
                                    .join(".");
                                b.extend_from_slice(format!("BINARY[{label}]").as_bytes());
                                if let Some((start, _)) = partial {
                                    b.extend_from_slice(format!("<{start}>").as_bytes());
                                }
                                b.push(b' ');
                                match p.binary(part) {
                                    Ok(bytes) => {
                                        let bytes = match partial {
                                            Some((start, len)) => {
                                                let s = (*start as usize).min(bytes.len());
                                                let e = s
                                                    .saturating_add(*len as usize)
                                                    .min(bytes.len());
                                                bytes[s..e].to_vec()
                                            }
                                            None => bytes,
                                        };
                                        // RFC 3516 literal8 when the bytes hold a NUL.
                                        if bytes.contains(&0) {
                                            b.push(b'~');
                                        }
                                        literal(&mut b, &bytes);
                                    }
                                    Err(BinaryError::NoSuchPart) => nstring(&mut b, None),
                                    Err(BinaryError::UnknownEncoding) => {
                                        unknown_cte = true;
                                        continue;
                                    }
                                }
                            }
                            FetchItem::BinarySize { part } => {
                                let label = part
                                    .iter()
                                    .map(u32::to_string)
                                    .collect::<Vec<_>>()
                                    .join(".");
                                match p.binary(part) {
                                    Ok(bytes) => b.extend_from_slice(
                                        format!("BINARY.SIZE[{label}] {}", bytes.len()).as_bytes(),
                                    ),
                                    Err(BinaryError::NoSuchPart) => b.extend_from_slice(
                                        format!("BINARY.SIZE[{label}] 0").as_bytes(),
                                    ),
                                    Err(BinaryError::UnknownEncoding) => {
                                        unknown_cte = true;
                                        continue;
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                out.push(b);
            }
            if uid && !has_uid {
                out.push(format!("UID {}", meta.uid).into_bytes());
            }
            if flags_changed.contains(&meta.uid) && !has_flags {
                out.push(format!("FLAGS {}", sel.flag_list(meta.uid, &meta.flags)).into_bytes());
                has_flags = true;
                if self.condstore && !items.contains(&FetchItem::ModSeq) {
                    out.push(format!("MODSEQ ({})", meta.modseq.0).into_bytes());
                }
            }
            if has_flags {
                sel.known.insert(meta.uid, meta.clone());
            }
            // RFC 9051 §9: msg-att holds one item at least (none when UNKNOWN-CTE took it).
            if out.is_empty() {
                continue;
            }
            let mut line = format!("{seq} FETCH (").into_bytes();
            line.extend_from_slice(&out.join(&b' '));
            line.push(b')');
            self.untagged_bytes(&line);
        }
        if unknown_cte {
            return Done::refused(tag, Refusal::UnknownCte);
        }
        Done::ok(
            tag,
            if uid {
                "UID FETCH completed"
            } else {
                "FETCH completed"
            },
        )
    }
}
