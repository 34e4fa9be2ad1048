//! APPEND extensions, each test naming its RFC section: MULTIAPPEND (RFC 3502) — several
//! messages in one command, all or nothing, one APPENDUID set (RFC 4315 §3) — and CATENATE
//! (RFC 4469) — a message made of TEXT literals and IMAP URLs (RFC 5092) of the user's own
//! messages and sections — alone or together. Sessions are driven in memory.

mod common;

use common::*;
use mshub_store::{MailboxId, Uid};

const MSG: &[u8] = b"From: Labo <labo@hopital.mshub.test>\r\nTo: dr.martin@hopital.mshub.test\r\nSubject: Bilan\r\nDate: Mon, 2 Jun 2025 10:00:00 +0200\r\n\r\nCorps du bilan.\r\n";

const MULTIPART: &[u8] = b"From: Labo <labo@hopital.mshub.test>\r\nSubject: Resultats\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nPremiere partie.\r\n--b1\r\nContent-Type: text/plain; name=\"r.txt\"\r\n\r\nSeconde partie.\r\n--b1--\r\n";

fn mailbox(hub: &Hub, name: &str) -> (MailboxId, u32) {
    let m = hub.store.mailbox(hub.account(), name).unwrap().unwrap();
    (m.id, m.uid_validity.0)
}

fn stored(hub: &Hub, name: &str, uid: u32) -> Vec<u8> {
    let (id, _) = mailbox(hub, name);
    hub.store
        .read_message(id, Uid::try_from(uid).unwrap())
        .unwrap()
}

fn count(hub: &Hub, name: &str) -> usize {
    let (id, _) = mailbox(hub, name);
    hub.store.messages(id).unwrap().len()
}

/// `{n+}` CRLF and the bytes: a non-synchronising literal (RFC 7888).
fn lit(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{{{}+}}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

impl Client {
    /// Sends `tag ` + `raw` + CRLF and returns the lines up to the tagged one.
    async fn raw(&mut self, tag: &str, raw: &[u8]) -> Vec<String> {
        self.send(format!("{tag} ").as_bytes()).await;
        self.send(raw).await;
        self.send(b"\r\n").await;
        self.until(tag).await
    }

    async fn put(&mut self, mailbox: &str, msg: &[u8]) {
        let r = self.append_with("ap", mailbox, "()", msg).await;
        assert!(last(&r).starts_with("ap OK "), "{r:?}");
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ----- MULTIAPPEND (RFC 3502) -----

/// RFC 3502 §3 and RFC 4469 §2: both extensions are advertised in CAPABILITY.
#[tokio::test]
async fn capability_advertises_multiappend_and_catenate() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let caps = c.capabilities().await;
    assert!(caps.iter().any(|w| w == "MULTIAPPEND"), "{caps:?}");
    assert!(caps.iter().any(|w| w == "CATENATE"), "{caps:?}");
    assert!(!caps.iter().any(|w| w == "URLAUTH"), "{caps:?}");
}

/// RFC 3502 §6.3.11 with RFC 4315 §3: every message is stored with its own flags and date, and
/// the tagged OK carries one APPENDUID with the whole UID set.
#[tokio::test]
async fn multiappend_stores_every_message_with_one_appenduid_set() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.put("INBOX", MSG).await;
    let (_, v) = mailbox(&hub, "INBOX");
    let second = MSG.replace_ascii("Bilan", "Bilan 2");
    let third = MSG.replace_ascii("Bilan", "Bilan 3");
    let cmd = cat(&[
        b"APPEND INBOX (\\Seen) ",
        &lit(MSG),
        b" ($Label1 \\Flagged) \"02-Jun-2025 10:00:00 +0200\" ",
        &lit(&second),
        b" ",
        &lit(&third),
    ]);
    let r = c.raw("m", &cmd).await;
    assert_eq!(
        r,
        vec![format!("m OK [APPENDUID {v} 2:4] APPEND completed")]
    );
    assert_eq!(count(&hub, "INBOX"), 4);
    assert_eq!(stored(&hub, "INBOX", 3), second);
    assert_eq!(stored(&hub, "INBOX", 4), third);
    c.cmd("s", "SELECT INBOX").await;
    let r = c.cmd("f", "UID FETCH 2:4 (FLAGS INTERNALDATE)").await;
    assert!(r[0].contains("FLAGS (\\Seen \\Recent)"), "{r:?}");
    assert!(
        r[1].contains("\\Flagged") && r[1].contains("$Label1"),
        "{r:?}"
    );
    assert!(
        r[1].contains("INTERNALDATE \"02-Jun-2025 08:00:00 +0000\""),
        "{r:?}"
    );
    assert!(r[2].contains("FLAGS (\\Recent)"), "{r:?}");
}

/// RFC 3502 §6.3.11: each synchronising literal is asked for with its own continuation.
#[tokio::test]
async fn multiappend_asks_for_each_synchronising_literal() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.send(format!("m APPEND INBOX {{{}}}\r\n", MSG.len()).as_bytes())
        .await;
    assert!(c.line().await.starts_with("+ "));
    c.send(MSG).await;
    c.send(format!(" (\\Seen) {{{}}}\r\n", MSG.len()).as_bytes())
        .await;
    assert!(c.line().await.starts_with("+ "));
    c.send(MSG).await;
    c.send(b"\r\n").await;
    let r = c.until("m").await;
    let (_, v) = mailbox(&hub, "INBOX");
    assert_eq!(
        r,
        vec![format!("m OK [APPENDUID {v} 1:2] APPEND completed")]
    );
}

/// RFC 3502 §6.3.11: if one message cannot be appended, none is — and no UID is spent.
#[tokio::test]
async fn multiappend_is_all_or_nothing() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    // An empty second message.
    let cmd = cat(&[b"APPEND INBOX ", &lit(MSG), b" () ", &lit(b"")]);
    let r = c.raw("a", &cmd).await;
    assert_eq!(r, vec!["a NO [CANNOT] Empty message".to_string()]);
    // A second message made of a URL that names nothing.
    let cmd = cat(&[
        b"APPEND INBOX ",
        &lit(MSG),
        b" CATENATE (URL \"/INBOX/;UID=7\")",
    ]);
    let r = c.raw("b", &cmd).await;
    assert_eq!(
        r,
        vec!["b NO [BADURL /INBOX/;UID=7] No such message".to_string()]
    );
    assert_eq!(count(&hub, "INBOX"), 0);
    let r = c.cmd("s", "STATUS INBOX (MESSAGES UIDNEXT)").await;
    assert!(r[0].ends_with("(MESSAGES 0 UIDNEXT 1)"), "{r:?}");
    // The session goes on: the next APPEND gets UID 1.
    let r = c.append_with("c", "INBOX", "()", MSG).await;
    assert!(last(&r).ends_with(" 1] APPEND completed"), "{r:?}");
}

/// RFC 3502 §6.3.11 and RFC 3501 §7.2.6: the appending session (selected) and another one are
/// told of the new keywords (FLAGS) before EXISTS, as for a single APPEND.
#[tokio::test]
async fn multiappend_to_a_selected_mailbox_announces_keywords_and_exists() {
    let hub = hub();
    let mut a = Client::login(&hub).await;
    let mut b = Client::login(&hub).await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    let cmd = cat(&[b"APPEND INBOX ($Urgent) ", &lit(MSG), b" ", &lit(MSG)]);
    let r = a.raw("m", &cmd).await;
    let flags = r.iter().position(|l| l.starts_with("* FLAGS (")).unwrap();
    let exists = r.iter().position(|l| l == "* 2 EXISTS").unwrap();
    assert!(flags < exists && r[flags].contains("$Urgent"), "{r:?}");
    assert!(last(&r).starts_with("m OK [APPENDUID "), "{r:?}");
    let r = b.cmd("n", "NOOP").await;
    let flags = r.iter().position(|l| l.starts_with("* FLAGS (")).unwrap();
    let exists = r.iter().position(|l| l == "* 2 EXISTS").unwrap();
    assert!(flags < exists && r[flags].contains("$Urgent"), "{r:?}");
}

/// RFC 3502 §6.3.11 leaves limits to the server: at most 1000 messages in one APPEND; beyond,
/// the command is refused whole.
#[tokio::test]
async fn multiappend_refuses_more_than_1000_messages() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let mut cmd = b"APPEND INBOX".to_vec();
    for _ in 0..1001 {
        cmd.push(b' ');
        cmd.extend_from_slice(&lit(b"x"));
    }
    let r = c.raw("m", &cmd).await;
    assert_eq!(
        r,
        vec!["m BAD [LIMIT] At most 1000 messages in one APPEND".to_string()]
    );
    assert_eq!(count(&hub, "INBOX"), 0);
    let mut cmd = b"APPEND INBOX".to_vec();
    for _ in 0..1000 {
        cmd.push(b' ');
        cmd.extend_from_slice(&lit(b"x"));
    }
    let r = c.raw("n", &cmd).await;
    let (_, v) = mailbox(&hub, "INBOX");
    assert_eq!(
        r,
        vec![format!("n OK [APPENDUID {v} 1:1000] APPEND completed")]
    );
}

/// RFC 7889 §4 per message, RFC 3502 §6.3.11 for the whole: a synchronising literal over
/// APPENDLIMIT is refused before its bytes are sent, and the messages before it are not kept.
#[tokio::test]
async fn multiappend_with_a_literal_over_appendlimit_appends_nothing() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.send(&cat(&[b"m APPEND INBOX ", &lit(MSG), b" {20971521}\r\n"]))
        .await;
    let r = c.until("m").await;
    assert_eq!(
        r,
        vec!["m NO [TOOBIG] Literal larger than APPENDLIMIT=20971520".to_string()]
    );
    assert_eq!(count(&hub, "INBOX"), 0);
    let r = c.cmd("n", "NOOP").await;
    assert_eq!(r, vec!["n OK NOOP completed".to_string()]);
}

/// RFC 7888 §4: a non-synchronising literal over the limit is read and dropped, and so are the
/// messages after it in the same command: none of their bytes is taken for a command.
#[tokio::test]
async fn multiappend_skips_the_rest_of_a_command_after_an_oversized_literal() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let big = vec![b'a'; 20 * 1024 * 1024 + 1];
    let cmd = cat(&[
        b"APPEND INBOX ",
        &lit(MSG),
        b" ",
        &lit(&big),
        b" ",
        &lit(b"x NOOP\r\ny LOGOUT"),
    ]);
    let r = c.raw("m", &cmd).await;
    assert_eq!(
        r,
        vec!["m NO [TOOBIG] Literal larger than APPENDLIMIT=20971520".to_string()]
    );
    let r = c.cmd("n", "NOOP").await;
    assert_eq!(r, vec!["n OK NOOP completed".to_string()]);
    assert_eq!(count(&hub, "INBOX"), 0);
}

// ----- CATENATE (RFC 4469) -----

/// RFC 4469 §3 and §5 with RFC 5092 §9: TEXT literals and relative IMAP URLs — a whole message,
/// its HEADER, TEXT, a MIME part, a part's MIME header and `;PARTIAL` — are joined in order.
#[tokio::test]
async fn catenate_joins_text_literals_and_url_parts() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.put("INBOX", MSG).await;
    c.cmd("c", "CREATE \"Dossiers patients\"").await;
    c.put("\"Dossiers patients\"", MULTIPART).await;
    let (_, v) = mailbox(&hub, "INBOX");
    let (_, w) = mailbox(&hub, "Dossiers patients");
    c.cmd("d", "CREATE Brouillons").await;
    let (_, d) = mailbox(&hub, "Brouillons");
    let cmd = cat(&[
        b"APPEND Brouillons (\\Draft) CATENATE (URL \"/INBOX;UIDVALIDITY=",
        v.to_string().as_bytes(),
        b"/;UID=1/;SECTION=HEADER\" TEXT ",
        &lit(b"Transmis :\r\n"),
        b" URL \"/INBOX;UIDVALIDITY=",
        v.to_string().as_bytes(),
        b"/;UID=1/;SECTION=TEXT\" URL \"/Dossiers%20patients;UIDVALIDITY=",
        w.to_string().as_bytes(),
        b"/;UID=1/;SECTION=2.MIME\" URL \"/Dossiers%20patients/;UID=1/;SECTION=2\" URL /inbox/;UID=1/;PARTIAL=0.4)",
    ]);
    let r = c.raw("m", &cmd).await;
    assert_eq!(r, vec![format!("m OK [APPENDUID {d} 1] APPEND completed")]);
    let header_end = MSG.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let expected = cat(&[
        &MSG[..header_end],
        b"Transmis :\r\n",
        &MSG[header_end..],
        b"Content-Type: text/plain; name=\"r.txt\"\r\n\r\n",
        b"Seconde partie.",
        b"From",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&stored(&hub, "Brouillons", 1)),
        String::from_utf8_lossy(&expected)
    );
    c.cmd("s", "SELECT Brouillons").await;
    let r = c.cmd("f", "FETCH 1 FLAGS").await;
    assert!(r[0].contains("\\Draft"), "{r:?}");
}

/// RFC 4469 §6 (BADURL, the URL in the code, bare as RFC 4469 erratum 4046 has it): a URL
/// naming no message, section or mailbox of this user, a changed UIDVALIDITY, or one of
/// another server, fails the APPEND with nothing stored.
#[tokio::test]
async fn catenate_refuses_urls_that_name_nothing_with_badurl() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.put("INBOX", MSG).await;
    let (_, v) = mailbox(&hub, "INBOX");
    let stale = v.wrapping_add(1);
    let cases = [
        (
            format!("/INBOX;UIDVALIDITY={stale}/;UID=1"),
            "UIDVALIDITY changed",
        ),
        ("/INBOX/;UID=2".to_string(), "No such message"),
        ("/INBOX/;UID=1/;SECTION=3".to_string(), "No such section"),
        ("/Nowhere/;UID=1".to_string(), "No such mailbox"),
        (
            "imap://other@elsewhere.example/INBOX/;UID=1".to_string(),
            "Not a URL of this user's messages",
        ),
        (
            "/INBOX/;UID=0".to_string(),
            "Not a URL of this user's messages",
        ),
    ];
    for (n, (url, why)) in cases.iter().enumerate() {
        let tag = format!("b{n}");
        let cmd = cat(&[
            b"APPEND INBOX CATENATE (TEXT ",
            &lit(b"Subject: x\r\n\r\n"),
            b" URL \"",
            url.as_bytes(),
            b"\")",
        ]);
        let r = c.raw(&tag, &cmd).await;
        assert_eq!(r, vec![format!("{tag} NO [BADURL {url}] {why}")]);
    }
    assert_eq!(count(&hub, "INBOX"), 1);
}

/// RFC 4469 §6 (TOOBIG) with RFC 7889: a catenated message over APPENDLIMIT is refused.
#[tokio::test]
async fn catenate_over_appendlimit_is_toobig() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let mut big = MSG.to_vec();
    big.extend(vec![b'a'; 11 * 1024 * 1024]);
    c.put("INBOX", &big).await;
    let cmd = b"APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1/;SECTION=TEXT\")";
    let r = c.raw("t", cmd).await;
    assert_eq!(
        r,
        vec!["t NO [TOOBIG] Catenated message larger than APPENDLIMIT=20971520".to_string()]
    );
    assert_eq!(count(&hub, "INBOX"), 1);
}

/// RFC 4469 §5 with RFC 9051 §4.3 and RFC 3516 §4.4: a TEXT `literal` is CHAR8 — 8-bit octets
/// yes, NUL no (BAD) — while a TEXT `literal8` (BINARY is advertised) may hold NUL.
#[tokio::test]
async fn catenate_text_takes_8bit_in_a_literal_and_nul_only_in_a_literal8() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let eight_bit = "Subject: r\u{e9}sultat\r\n\r\nCaf\u{e9}\r\n".as_bytes();
    let cmd = cat(&[b"APPEND INBOX CATENATE (TEXT ", &lit(eight_bit), b")"]);
    let r = c.raw("a", &cmd).await;
    assert!(last(&r).starts_with("a OK [APPENDUID "), "{r:?}");
    assert_eq!(stored(&hub, "INBOX", 1), eight_bit);
    let nul = b"Subject: x\r\n\r\na\0b\r\n";
    let cmd = cat(&[b"APPEND INBOX CATENATE (TEXT ", &lit(nul), b")"]);
    let r = c.raw("b", &cmd).await;
    assert_eq!(
        r,
        vec!["b BAD NUL in a TEXT literal: send it as a literal8 (~{n})".to_string()]
    );
    let cmd = cat(&[b"APPEND INBOX CATENATE (TEXT ~", &lit(nul), b")"]);
    let r = c.raw("c", &cmd).await;
    assert!(last(&r).starts_with("c OK [APPENDUID "), "{r:?}");
    assert_eq!(stored(&hub, "INBOX", 2), nul);
    assert_eq!(count(&hub, "INBOX"), 2);
}

/// RFC 4469 §5: CATENATE is one form of a MULTIAPPEND message; a plain message and a
/// catenated one go in together, in order, under one APPENDUID.
#[tokio::test]
async fn multiappend_mixes_plain_and_catenated_messages() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    c.put("INBOX", MSG).await;
    let (_, v) = mailbox(&hub, "INBOX");
    let cmd = cat(&[
        b"APPEND INBOX (\\Seen) ",
        &lit(MULTIPART),
        b" ($Fwd) CATENATE (TEXT ",
        &lit(b"Subject: Fwd\r\n\r\n"),
        b" URL \"/INBOX/;UID=1/;SECTION=TEXT\")",
    ]);
    let r = c.raw("m", &cmd).await;
    assert_eq!(
        r,
        vec![format!("m OK [APPENDUID {v} 2:3] APPEND completed")]
    );
    assert_eq!(stored(&hub, "INBOX", 2), MULTIPART);
    assert_eq!(
        stored(&hub, "INBOX", 3),
        b"Subject: Fwd\r\n\r\nCorps du bilan.\r\n"
    );
}

/// RFC 4469 §5: `CATENATE ()` is not the grammar (one part at least): BAD, nothing stored.
#[tokio::test]
async fn catenate_needs_one_part() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    let r = c.raw("a", b"APPEND INBOX CATENATE ()").await;
    assert!(last(&r).starts_with("a BAD "), "{r:?}");
    assert_eq!(count(&hub, "INBOX"), 0);
}

trait ReplaceAscii {
    fn replace_ascii(&self, from: &str, to: &str) -> Vec<u8>;
}

impl ReplaceAscii for [u8] {
    fn replace_ascii(&self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8_lossy(self)
            .replacen(from, to, 1)
            .into_bytes()
    }
}
