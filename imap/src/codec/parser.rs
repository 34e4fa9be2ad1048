//! The command grammar of RFC 9051 §9 (with RFC 7888 LITERAL+), over one framed command: its
//! line with each literal's bytes following its `{n}` CRLF, without the final CRLF.

use std::collections::BTreeSet;

use super::lexer::{atom_char, err, P, R};
use super::*;

impl P<'_> {
    /// RFC 5258 §3 and §6 `list-select-opts` (with RFC 6154 §3 SPECIAL-USE): an option this
    /// server does not know is a syntax error, hence BAD.
    fn list_select_options(&mut self, options: &mut ListOptions) -> R<()> {
        self.expect(b'(')?;
        if self.eat(b')') {
            return Ok(());
        }
        loop {
            match self.keyword()?.as_str() {
                "SUBSCRIBED" => options.subscribed = true,
                "RECURSIVEMATCH" => options.recursive = true,
                "SPECIAL-USE" => options.special_use = true,
                // RFC 5258 §3.1: no remote mailboxes here, so every mailbox is local.
                "REMOTE" => {}
                o => return err(format!("unknown LIST selection option {o}")),
            }
            if self.eat(b')') {
                return Ok(());
            }
            self.sp()?;
        }
    }

    /// RFC 5258 §3 and §6 `list-return-opts` (with RFC 5819 STATUS and RFC 6154 §4
    /// SPECIAL-USE): an option this server does not know is a syntax error, hence BAD.
    fn list_return_options(&mut self, options: &mut ListOptions) -> R<()> {
        self.expect(b'(')?;
        if self.eat(b')') {
            return Ok(());
        }
        loop {
            match self.keyword()?.as_str() {
                "SUBSCRIBED" => options.return_subscribed = true,
                // Child and special-use attributes are always returned (RFC 5258 §4 and
                // RFC 6154 §2 allow it).
                "CHILDREN" | "SPECIAL-USE" => {}
                "STATUS" => {
                    self.sp()?;
                    options.status = self.status_items()?;
                }
                o => return err(format!("unknown LIST return option {o}")),
            }
            if self.eat(b')') {
                return Ok(());
            }
            self.sp()?;
        }
    }

    fn command(&mut self) -> R<Command> {
        use Command as C;
        let name = self.keyword()?;
        let cmd = match name.as_str() {
            "CAPABILITY" => C::Capability,
            "NOOP" => C::Noop,
            "CHECK" => C::Check,
            "LOGOUT" => C::Logout,
            "STARTTLS" => C::StartTls,
            "NAMESPACE" => C::Namespace,
            "CLOSE" => C::Close,
            "UNSELECT" => C::Unselect,
            "EXPUNGE" => C::Expunge { uids: None },
            "IDLE" => C::Idle,
            "CANCELUPDATE" => {
                let mut tags = Vec::new();
                loop {
                    self.sp()?;
                    let tag = String::from_utf8(self.quoted()?)
                        .map_err(|_| super::SyntaxError("tag not UTF-8".into()))?;
                    tags.push(tag);
                    if self.peek() != Some(b' ') {
                        break;
                    }
                }
                C::CancelUpdate(tags)
            }
            "LOGIN" => {
                self.sp()?;
                let user = self.astring()?;
                self.sp()?;
                let password = self.astring()?;
                C::Login { user, password }
            }
            "AUTHENTICATE" => {
                self.sp()?;
                let mechanism = self.keyword()?;
                let initial = if self.eat(b' ') {
                    let v = self.take_while(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
                    Some(String::from_utf8_lossy(v).into_owned())
                } else {
                    None
                };
                C::Authenticate { mechanism, initial }
            }
            "ID" => {
                self.sp()?;
                if self.peek() == Some(b'(') {
                    self.option_list(0)?;
                } else {
                    let nil = self.keyword()?;
                    if nil != "NIL" {
                        return err("ID takes a list or NIL");
                    }
                }
                C::Id
            }
            "ENABLE" => {
                let mut caps = Vec::new();
                while self.eat(b' ') {
                    caps.push(self.keyword()?);
                }
                if caps.is_empty() {
                    return err("ENABLE needs a capability");
                }
                C::Enable(caps)
            }
            "LIST" | "LSUB" => {
                self.sp()?;
                let mut options = ListOptions {
                    lsub: name == "LSUB",
                    subscribed: name == "LSUB",
                    ..ListOptions::default()
                };
                if name == "LIST" && self.peek() == Some(b'(') {
                    self.list_select_options(&mut options)?;
                    if options.recursive && !options.subscribed {
                        return err("RECURSIVEMATCH needs another selection option");
                    }
                    self.sp()?;
                }
                let reference = self.mailbox()?;
                self.sp()?;
                let patterns = if name == "LIST" && self.peek() == Some(b'(') {
                    self.expect(b'(')?;
                    let mut patterns = vec![self.list_mailbox()?];
                    while self.eat(b' ') {
                        patterns.push(self.list_mailbox()?);
                    }
                    self.expect(b')')?;
                    patterns
                } else {
                    vec![self.list_mailbox()?]
                };
                if name == "LIST" && self.eat(b' ') {
                    let ret = self.keyword()?;
                    if ret != "RETURN" {
                        return err("expected RETURN");
                    }
                    self.sp()?;
                    self.list_return_options(&mut options)?;
                }
                C::List {
                    reference,
                    patterns,
                    options,
                }
            }
            "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" => {
                self.sp()?;
                let m = self.mailbox()?;
                match name.as_str() {
                    "CREATE" => C::Create(m),
                    "DELETE" => C::Delete(m),
                    "SUBSCRIBE" => C::Subscribe(m),
                    _ => C::Unsubscribe(m),
                }
            }
            "RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                C::Rename(from, self.mailbox()?)
            }
            "STATUS" => {
                self.sp()?;
                let m = self.mailbox()?;
                self.sp()?;
                C::Status(m, self.status_items()?)
            }
            "SELECT" | "EXAMINE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                let (mut condstore, mut qresync) = (false, None);
                if self.eat(b' ') {
                    self.expect(b'(')?;
                    loop {
                        match self.keyword()?.as_str() {
                            "CONDSTORE" => condstore = true,
                            "QRESYNC" => qresync = Some(self.qresync()?),
                            _ => return err("unsupported SELECT parameter"),
                        }
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                }
                C::Select {
                    mailbox,
                    read_only: name == "EXAMINE",
                    condstore,
                    qresync,
                }
            }
            "APPEND" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                // RFC 3502 MULTIAPPEND and RFC 4469 CATENATE: see `append.rs`.
                let messages = self.append_messages()?;
                C::Append { mailbox, messages }
            }
            "UID" => {
                self.sp()?;
                let sub = self.keyword()?;
                self.sp()?;
                return self.set_command(&sub, true);
            }
            "SORT" => {
                self.sp()?;
                return self.sort_command(false);
            }
            "THREAD" => {
                self.sp()?;
                return self.thread_command(false);
            }
            "NOTIFY" => {
                self.sp()?;
                let notify = self.notify_command()?;
                self.end()?;
                return Ok(notify);
            }
            "FETCH" | "STORE" | "COPY" | "MOVE" | "SEARCH" => {
                self.sp()?;
                return self.set_command(&name, false);
            }
            other => return err(format!("unknown command {other}")),
        };
        self.end()?;
        Ok(cmd)
    }

    /// ` (uidvalidity modseq [known-uids [(seq-match-data)]])` after QRESYNC.
    fn qresync(&mut self) -> R<Qresync> {
        self.sp()?;
        self.expect(b'(')?;
        let uid_validity = self.nz_number()?;
        self.sp()?;
        let modseq = self.number()?;
        let mut known_uids = None;
        if self.eat(b' ') {
            known_uids = Some(self.seq_set()?);
            if self.eat(b' ') {
                // The sequence-match data only narrows what is sent: all of it is sent.
                self.option_list(0)?;
            }
        }
        self.expect(b')')?;
        Ok(Qresync {
            uid_validity,
            modseq,
            known_uids,
        })
    }

    fn set_command(&mut self, name: &str, uid: bool) -> R<Command> {
        use Command as C;
        let cmd = match name {
            "FETCH" => {
                let set = self.seq_set()?;
                self.sp()?;
                let items = self.fetch_items()?;
                let (mut changed_since, mut vanished) = (None, false);
                if self.eat(b' ') {
                    self.expect(b'(')?;
                    loop {
                        match self.keyword()?.as_str() {
                            "CHANGEDSINCE" => {
                                self.sp()?;
                                changed_since = Some(self.number()?);
                            }
                            "VANISHED" => vanished = true,
                            _ => return err("unsupported FETCH modifier"),
                        }
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                    if vanished && (changed_since.is_none() || !uid) {
                        return err("VANISHED needs UID FETCH with CHANGEDSINCE");
                    }
                }
                C::Fetch {
                    set,
                    items,
                    uid,
                    changed_since,
                    vanished,
                }
            }
            "STORE" => {
                let set = self.seq_set()?;
                self.sp()?;
                let mut unchanged_since = None;
                if self.peek() == Some(b'(') {
                    self.expect(b'(')?;
                    if self.keyword()? != "UNCHANGEDSINCE" {
                        return err("unknown STORE modifier");
                    }
                    self.sp()?;
                    unchanged_since = Some(self.number()?);
                    self.expect(b')')?;
                    self.sp()?;
                }
                let op = match self.peek() {
                    Some(b'+') => StoreOp::Add,
                    Some(b'-') => StoreOp::Remove,
                    _ => StoreOp::Replace,
                };
                if op != StoreOp::Replace {
                    self.pos += 1;
                }
                let what = self.keyword()?;
                let silent = match what.as_str() {
                    "FLAGS" => false,
                    "FLAGS.SILENT" => true,
                    _ => return err("expected FLAGS or FLAGS.SILENT"),
                };
                self.sp()?;
                let flags = if self.peek() == Some(b'(') {
                    self.flag_list()?
                } else {
                    let mut f = BTreeSet::new();
                    f.insert(self.flag()?);
                    while self.eat(b' ') {
                        f.insert(self.flag()?);
                    }
                    f
                };
                C::Store {
                    set,
                    op,
                    silent,
                    flags,
                    unchanged_since,
                    uid,
                }
            }
            "COPY" | "MOVE" => {
                let set = self.seq_set()?;
                self.sp()?;
                C::Copy {
                    set,
                    mailbox: self.mailbox()?,
                    uid,
                    moving: name == "MOVE",
                }
            }
            "SEARCH" => {
                let save = self.pos;
                let mut ret = None;
                if self.keyword().ok().as_deref() == Some("RETURN") {
                    self.sp()?;
                    ret = Some(self.search_return()?);
                    self.sp()?;
                } else {
                    self.pos = save;
                }
                let save = self.pos;
                if self.keyword().ok().as_deref() == Some("CHARSET") {
                    self.sp()?;
                    let cs = self.astring()?.to_ascii_uppercase();
                    if cs != "UTF-8" && cs != "US-ASCII" {
                        return err("[BADCHARSET (UTF-8 US-ASCII)] unsupported charset");
                    }
                    self.sp()?;
                } else {
                    self.pos = save;
                }
                C::Search {
                    key: self.search_keys(0)?,
                    uid,
                    ret,
                }
            }
            "SORT" => return self.sort_command(uid),
            "THREAD" => return self.thread_command(uid),
            "EXPUNGE" if uid => C::Expunge {
                uids: Some(self.seq_set()?),
            },
            other => return err(format!("unknown command UID {other}")),
        };
        self.end()?;
        Ok(cmd)
    }
}

/// Parses one framed command (without its final CRLF).
pub fn parse_command(b: &[u8]) -> Result<Tagged, SyntaxError> {
    let mut p = P { b, pos: 0 };
    let tag = p.take_while(|c| atom_char(c) && c != b'+');
    if tag.is_empty() {
        return err("missing tag");
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    p.sp()?;
    let command = p.command()?;
    Ok(Tagged { tag, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Command {
        parse_command(s.as_bytes()).unwrap().command
    }

    #[test]
    fn parses_commands_with_literals_and_sets() {
        assert_eq!(
            cmd("a LOGIN {3}\r\nbob \"p\\\"w\""),
            Command::Login {
                user: "bob".into(),
                password: "p\"w".into()
            }
        );
        assert!(matches!(
            cmd("a UID FETCH 1:*,4 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.10>)"),
            Command::Fetch { uid: true, .. }
        ));
        assert!(matches!(
            cmd("a search or seen (not flagged from \"x\") 2:4"),
            Command::Search { uid: false, .. }
        ));
        assert!(matches!(
            cmd("a APPEND inbox (\\Seen) \" 2-Jun-2025 10:00:00 +0200\" {2+}\r\nhi"),
            Command::Append { .. }
        ));
        assert_eq!(literal_at_end(b"a APPEND x {12+}"), Some((12, true)));
        assert_eq!(literal_at_end(b"a APPEND x {12"), None);
    }

    /// A cheap fuzz: random splices of IMAP-looking tokens never panic the parser.
    #[test]
    fn random_token_soup_never_panics() {
        let tokens: [&[u8]; 28] = [
            b"a ",
            b"UID ",
            b"FETCH ",
            b"STORE ",
            b"SEARCH ",
            b"APPEND ",
            b"LIST ",
            b"(",
            b")",
            b"[",
            b"]",
            b"<",
            b">",
            b"{",
            b"}",
            b"{3}\r\n",
            b"{0+}\r\n",
            b"\"",
            b"\\",
            b"*",
            b":",
            b",",
            b"1",
            b"4294967296",
            b"BODY.PEEK",
            b"HEADER.FIELDS",
            b" ",
            b"\xff",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut line = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for i in 0..(x % 24) {
                line.extend_from_slice(
                    tokens[((x >> (i % 8 * 8)) as usize + i as usize) % tokens.len()],
                );
            }
            let _ = parse_command(&line);
            let _ = literal_at_end(&line);
            let _ = tag_of(&line);
        }
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(1000), ")".repeat(1000));
        assert!(parse_command(deep.as_bytes()).is_err());
        assert!(parse_command(b"a FROB").is_err());
        assert!(parse_command(b"a SELECT \"\xff\"").is_err());
        assert!(parse_command(b"a LOGIN {999}\r\nx").is_err());
        assert!(parse_command(b"").is_err());
        assert_eq!(tag_of(b"x1 FOO"), "x1");
    }
}
