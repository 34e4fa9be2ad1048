//! THREAD and UID THREAD (RFC 5256 §4–5): the messages the search keys match (evaluated as
//! SEARCH does), threaded by ORDEREDSUBJECT or REFERENCES, sent dates as SORT's DATE (§2.2) and
//! base subjects as SORT's SUBJECT (§2.1). Replies `* THREAD`.
//!
//! The work is bounded by the mailbox: one container per message and per message-id it
//! references (at most [`MAX_REFERENCES`] each), every walk up a thread bounded by the number
//! of containers, and no recursion (a chain of replies may be as long as the mailbox).

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncWrite};

use mail_parser::MessageParser;

use super::sort::base_subject_and_reply;
use super::Done;
use crate::codec::{SearchKey, ThreadAlgorithm};
use crate::message::header_value;
use crate::refusal::Refusal;
use crate::session::{Flow, Selected, Session};

/// Most references kept of one message: the first (the thread's start) and the last ones, as
/// RFC 5322 §3.6.4 suggests a long References field be shortened.
const MAX_REFERENCES: usize = 100;

/// What threading needs of one message found.
#[derive(Debug, Clone, Default)]
struct Item {
    /// Its number in the reply: sequence number, or UID for UID THREAD.
    number: u32,
    /// Sequence number: ties of sent dates (RFC 5256 §2.2).
    seq: u32,
    /// Sent date (RFC 5256 §2.2), Unix seconds.
    date: i64,
    /// Base subject (RFC 5256 §2.1), lower-cased.
    subject: String,
    /// A reply or forward (RFC 5256 §4 REFERENCES step 5.B).
    reply: bool,
    message_id: Option<String>,
    /// References, else the first message-id of In-Reply-To (RFC 5256 §4 step 1).
    references: Vec<String>,
}

/// The `msg-id`s of a header value (RFC 5322 §3.6.4): what is between `<` and `>`, folding
/// white space removed. Message-ids compare case-sensitively (RFC 5256 §4 step 1).
fn msg_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let id: String = rest[open + 1..open + close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !id.is_empty() {
            ids.push(id);
        }
        rest = &rest[open + close + 1..];
    }
    ids
}

impl Item {
    fn new(number: u32, seq: u32, internal_date: i64, header: &[u8]) -> Self {
        let parsed = MessageParser::default().parse_headers(header);
        let m = parsed.as_ref();
        let (subject, reply) = base_subject_and_reply(m.and_then(|m| m.subject()).unwrap_or(""));
        // RFC 5256 §2.2: the Date: header in UTC, else the internal date.
        let date = m
            .and_then(|m| m.date())
            .filter(|d| d.is_valid())
            .map_or(internal_date, |d| d.to_timestamp());
        let message_id =
            header_value(header, "Message-ID").and_then(|v| msg_ids(&v).into_iter().next());
        let mut references = header_value(header, "References")
            .map(|v| msg_ids(&v))
            .unwrap_or_default();
        if references.is_empty() {
            references.extend(
                header_value(header, "In-Reply-To").and_then(|v| msg_ids(&v).into_iter().next()),
            );
        }
        if references.len() > MAX_REFERENCES {
            let tail = references.split_off(references.len() - (MAX_REFERENCES - 1));
            references.truncate(1);
            references.extend(tail);
        }
        Item {
            number,
            seq,
            date,
            subject,
            reply,
            message_id,
            references,
        }
    }

    fn key(&self) -> (i64, u32) {
        (self.date, self.seq)
    }
}

/// RFC 5256 §4 ORDEREDSUBJECT: messages sorted by base subject then sent date, one thread per
/// base subject whose first message is the parent of all the others, threads ordered by the
/// sent date of their first message.
fn ordered_subject(items: &[Item]) -> String {
    let mut order: Vec<&Item> = items.iter().collect();
    order.sort_by(|a, b| a.subject.cmp(&b.subject).then(a.key().cmp(&b.key())));
    let mut threads: Vec<Vec<&Item>> = Vec::new();
    for item in order {
        match threads.last_mut() {
            Some(t) if t[0].subject == item.subject => t.push(item),
            _ => threads.push(vec![item]),
        }
    }
    threads.sort_by_key(|t| t[0].key());
    let mut out = String::new();
    for t in threads {
        out.push_str(&format!("({}", t[0].number));
        match &t[1..] {
            [] => {}
            // §5: a single child is written in the parent's list.
            [only] => out.push_str(&format!(" {}", only.number)),
            children => {
                out.push(' ');
                for c in children {
                    out.push_str(&format!("({})", c.number));
                }
            }
        }
        out.push(')');
    }
    out
}

/// A container of RFC 5256 §4 REFERENCES: a message found (`item`), or a dummy standing for a
/// message referenced but not found.
#[derive(Debug, Default)]
struct Node {
    item: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// The containers; node 0 is the root of step 2.
struct Tree<'a> {
    items: &'a [Item],
    nodes: Vec<Node>,
}

const ROOT: usize = 0;

impl<'a> Tree<'a> {
    fn add(&mut self, item: Option<usize>) -> usize {
        self.nodes.push(Node {
            item,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    /// Whether `a` is `b` or one of its ancestors (a walk bounded by the number of nodes).
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        if a != b && self.nodes[a].children.is_empty() {
            // The usual case of a message arriving after its parent: nothing to walk.
            return false;
        }
        let mut n = Some(b);
        for _ in 0..=self.nodes.len() {
            match n {
                Some(x) if x == a => return true,
                Some(x) => n = self.nodes[x].parent,
                None => return false,
            }
        }
        true
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    /// The nodes under the root, each after all of its descendants (the root last).
    fn post_order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![(ROOT, false)];
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                out.push(n);
            } else {
                stack.push((n, true));
                stack.extend(self.nodes[n].children.iter().map(|&c| (c, false)));
            }
        }
        out
    }

    /// The message a node sorts and is named by: its own, or a dummy's first child's.
    fn first_item(&self, n: usize) -> Option<&'a Item> {
        let mut n = n;
        for _ in 0..self.nodes.len() {
            if let Some(i) = self.nodes[n].item {
                return Some(&self.items[i]);
            }
            n = *self.nodes[n].children.first()?;
        }
        None
    }

    fn sort_key(&self, n: usize) -> (i64, u32) {
        self.first_item(n).map_or((i64::MAX, u32::MAX), Item::key)
    }

    /// Steps 4 and 6: siblings by sent date, a dummy by its first child, the youngest
    /// generations first.
    fn sort(&mut self) {
        for n in self.post_order() {
            let mut children = std::mem::take(&mut self.nodes[n].children);
            children.sort_by_key(|&c| self.sort_key(c));
            self.nodes[n].children = children;
        }
    }

    /// Step 3: a dummy without children goes; a dummy with children is replaced by them,
    /// except at the top where that is done only for a single child.
    fn prune(&mut self) {
        for n in self.post_order() {
            let children = std::mem::take(&mut self.nodes[n].children);
            let mut kept = Vec::with_capacity(children.len());
            for c in children {
                if self.nodes[c].item.is_some() {
                    kept.push(c);
                    continue;
                }
                let grand = std::mem::take(&mut self.nodes[c].children);
                if grand.is_empty() {
                    self.nodes[c].parent = None;
                } else if n != ROOT || grand.len() == 1 {
                    for g in grand {
                        self.nodes[g].parent = Some(n);
                        kept.push(g);
                    }
                    self.nodes[c].parent = None;
                } else {
                    self.nodes[c].children = grand;
                    kept.push(c);
                }
            }
            self.nodes[n].children = kept;
        }
    }

    /// Step 5: threads at the top with the same base subject gathered.
    fn gather_subjects(&mut self) {
        let tops = self.nodes[ROOT].children.clone();
        let subject = |t: &Tree, n: usize| -> Option<String> {
            t.first_item(n)
                .map(|i| i.subject.clone())
                .filter(|s| !s.is_empty())
        };
        let is_dummy = |t: &Tree, n: usize| t.nodes[n].item.is_none();
        let is_reply = |t: &Tree, n: usize| t.nodes[n].item.is_some_and(|i| t.items[i].reply);
        // 5.B: one message per subject, a dummy or a message that is not a reply preferred.
        let mut table: HashMap<String, usize> = HashMap::new();
        for &n in &tops {
            let Some(s) = subject(self, n) else { continue };
            match table.get(&s) {
                None => {
                    table.insert(s, n);
                }
                Some(&t) => {
                    if !is_dummy(self, t)
                        && (is_dummy(self, n) || (is_reply(self, t) && !is_reply(self, n)))
                    {
                        table.insert(s, n);
                    }
                }
            }
        }
        // 5.C: the other threads of each subject merged into the table's.
        let mut removed = vec![false; self.nodes.len()];
        let mut added = Vec::new();
        for &n in &tops {
            if removed[n] {
                continue;
            }
            let Some(s) = subject(self, n) else { continue };
            let Some(&t) = table.get(&s) else { continue };
            if t == n {
                continue;
            }
            if is_dummy(self, t) && is_dummy(self, n) {
                for c in std::mem::take(&mut self.nodes[n].children) {
                    self.link(t, c);
                }
                removed[n] = true;
            } else if is_dummy(self, t) || (is_reply(self, n) && !is_reply(self, t)) {
                self.link(t, n);
                removed[n] = true;
            } else {
                let d = self.add(None);
                removed.push(false);
                self.link(d, t);
                self.link(d, n);
                removed[t] = true;
                removed[n] = true;
                added.push(d);
                table.insert(s, d);
            }
        }
        let mut tops: Vec<usize> = tops.into_iter().filter(|&n| !removed[n]).collect();
        tops.extend(added.into_iter().filter(|&d| !removed[d]));
        for &n in &tops {
            self.nodes[n].parent = Some(ROOT);
        }
        self.nodes[ROOT].children = tops;
    }

    /// RFC 5256 §5 `thread-list`s of the root's children: a chain of single children flat,
    /// several children each in parentheses after their parent.
    fn write(&self) -> String {
        enum Step {
            Open,
            Node(usize),
            Close,
        }
        let mut out = String::new();
        let mut stack = Vec::new();
        for &n in self.nodes[ROOT].children.iter().rev() {
            stack.extend([Step::Close, Step::Node(n), Step::Open]);
        }
        let space = |out: &mut String| {
            if out.ends_with(|c: char| c.is_ascii_digit()) {
                out.push(' ');
            }
        };
        while let Some(step) = stack.pop() {
            match step {
                Step::Open => {
                    space(&mut out);
                    out.push('(');
                }
                Step::Close => out.push(')'),
                Step::Node(mut n) => loop {
                    if let Some(i) = self.nodes[n].item {
                        space(&mut out);
                        out.push_str(&self.items[i].number.to_string());
                    }
                    match self.nodes[n].children[..] {
                        [] => break,
                        [only] => n = only,
                        ref several => {
                            for &c in several.iter().rev() {
                                stack.extend([Step::Close, Step::Node(c), Step::Open]);
                            }
                            break;
                        }
                    }
                },
            }
        }
        out
    }
}

/// RFC 5256 §4 REFERENCES.
fn references(items: &[Item]) -> String {
    let mut tree = Tree {
        items,
        nodes: vec![Node::default()],
    };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    // Step 1.
    for (i, item) in items.iter().enumerate() {
        // 1.A: each reference the parent of the next, unless that one already has a parent or
        // the link would make a loop.
        let mut refs = Vec::with_capacity(item.references.len());
        for r in &item.references {
            let n = match ids.get(r.as_str()) {
                Some(&n) => n,
                None => {
                    let n = tree.add(None);
                    ids.insert(r, n);
                    n
                }
            };
            refs.push(n);
        }
        for w in refs.windows(2) {
            let (p, c) = (w[0], w[1]);
            if tree.nodes[c].parent.is_none() && !tree.is_ancestor(c, p) {
                tree.link(p, c);
            }
        }
        // The message's container: the one its message-id was referenced by if still empty;
        // a message without a message-id, or with one already taken, is unique.
        let m = match item.message_id.as_deref() {
            Some(id) => match ids.get(id) {
                Some(&n) if tree.nodes[n].item.is_none() => {
                    tree.nodes[n].item = Some(i);
                    n
                }
                Some(_) => tree.add(Some(i)),
                None => {
                    let n = tree.add(Some(i));
                    ids.insert(id, n);
                    n
                }
            },
            None => tree.add(Some(i)),
        };
        // 1.B: the last reference is the parent, replacing any earlier link, unless that would
        // make a loop.
        tree.unlink(m);
        if let Some(&p) = refs.last() {
            if !tree.is_ancestor(m, p) {
                tree.link(p, m);
            }
        }
    }
    // Step 2: the messages without a parent under the root.
    for n in 1..tree.nodes.len() {
        if tree.nodes[n].parent.is_none() {
            tree.link(ROOT, n);
        }
    }
    tree.prune();
    tree.sort();
    tree.gather_subjects();
    tree.sort();
    tree.write()
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn thread(
        &mut self,
        tag: &str,
        sel: &Selected,
        algorithm: ThreadAlgorithm,
        charset: &str,
        key: &SearchKey,
        uid: bool,
    ) -> Done {
        if charset != "UTF-8" && charset != "US-ASCII" {
            return Done::refused(tag, Refusal::BadCharset);
        }
        let mailbox = sel.mailbox.id;
        let Some(found) = self.search_matches(tag, sel, key) else {
            return Done::Flow(Flow::Continue);
        };
        let mut items = Vec::with_capacity(found.len());
        for (seq, meta) in found {
            let parsed = match self.parsed(mailbox, meta.uid) {
                Ok(p) => p,
                Err(e) => {
                    self.store_failure(tag, &e);
                    return Done::Flow(Flow::Continue);
                }
            };
            let number = if uid { meta.uid.get() } else { seq };
            items.push(Item::new(number, seq, meta.internal_date, parsed.header()));
        }
        let threads = match algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(&items),
            ThreadAlgorithm::References => references(&items),
        };
        // RFC 5256 §5: `thread-data = "THREAD" [SP 1*thread-list]`.
        let mut line = String::from("THREAD");
        if !threads.is_empty() {
            line.push(' ');
            line.push_str(&threads);
        }
        self.untagged(&line);
        Done::ok(
            tag,
            if uid {
                "UID THREAD completed"
            } else {
                "THREAD completed"
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u32, id: &str, refs: &[&str], subject: &str) -> Item {
        let (subject, reply) = base_subject_and_reply(subject);
        Item {
            number: n,
            seq: n,
            date: i64::from(n),
            subject,
            reply,
            message_id: (!id.is_empty()).then(|| id.to_string()),
            references: refs.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn message_ids_are_read_between_angle_brackets() {
        assert_eq!(
            msg_ids("<a@x> (comment) <b\r\n @y>< > <c"),
            vec!["a@x".to_string(), "b@y".to_string()]
        );
        assert!(msg_ids("none").is_empty());
    }

    /// RFC 5256 §5's example shape: `(3 6 (4 23)(44 7 96))`.
    #[test]
    fn nesting_follows_the_grammar() {
        let items = [
            item(3, "3", &[], "x"),
            item(6, "6", &["3"], "x"),
            item(4, "4", &["3", "6"], "x"),
            item(23, "23", &["3", "6", "4"], "x"),
            item(44, "44", &["3", "6"], "x"),
            item(7, "7", &["3", "6", "44"], "x"),
            item(96, "96", &["3", "6", "44", "7"], "x"),
        ];
        assert_eq!(references(&items), "(3 6 (4 23)(44 7 96))");
    }

    /// A chain as long as a big mailbox is threaded without recursion, and a message naming
    /// itself among its references is no loop.
    #[test]
    fn long_chains_and_self_references_are_bounded() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("m{i}")).collect();
        let items: Vec<Item> = (0..20_000)
            .map(|i| {
                let refs: Vec<&str> = if i == 0 {
                    vec!["m0"]
                } else {
                    vec![ids[i - 1].as_str()]
                };
                item(i as u32 + 1, &ids[i], &refs, "long")
            })
            .collect();
        let out = references(&items);
        assert!(out.starts_with("(1 2 3 "), "{}", &out[..20]);
        assert!(out.ends_with(" 20000)"));
        assert_eq!(out.matches('(').count(), 1);
    }
}
