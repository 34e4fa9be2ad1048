//! Conformance points an independent IMAP test suite checked (each test names its RFC section):
//! COPYUID sets, MODSEQ in ESEARCH MIN/MAX, invalid mailbox names, ENVELOPE groups and odd
//! address lists, SEARCH on the Date: header and on address headers. Sessions are driven in
//! memory, as in `session.rs`.

mod common;

use common::*;

fn uid_validity(hub: &Hub, name: &str) -> u32 {
    hub.store
        .mailbox(hub.account(), name)
        .unwrap()
        .unwrap()
        .uid_validity
        .0
}

impl Client {
    async fn append(&mut self, mailbox: &str, flags: &str, msg: &[u8]) {
        let r = self.append_with("ap", mailbox, flags, msg).await;
        assert!(last(&r).starts_with("ap OK "), "{r:?}");
    }
}

fn message(headers: &str) -> Vec<u8> {
    format!("{headers}\r\nSubject: test\r\n\r\nBody.\r\n")
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

const PLAIN: &str = "From: Labo <labo@hopital.mshub.test>\r\nTo: dr.martin@hopital.mshub.test\r\nDate: Mon, 2 Jun 2025 10:00:00 +0200";

fn modseqs(r: &[String]) -> Vec<u64> {
    r.iter()
        .filter_map(|l| {
            let i = l.find("MODSEQ (")? + 8;
            l[i..].split(')').next()?.parse().ok()
        })
        .collect()
}

/// RFC 4315 §3 (and RFC 9051 §7.1 COPYUID): the source and destination UID sets are whole and
/// in corresponding order, as compact ranges.
#[tokio::test]
async fn copyuid_carries_the_whole_uid_sets() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    for _ in 0..8 {
        c.append("INBOX", "()", &message(PLAIN)).await;
    }
    c.cmd("c", "CREATE Dest").await;
    c.cmd("s", "SELECT INBOX").await;
    // Holes in the source: UIDs 4 and 6 go.
    c.cmd("d", "UID STORE 4,6 +FLAGS.SILENT (\\Deleted)").await;
    c.cmd("e", "EXPUNGE").await;
    let v = uid_validity(&hub, "Dest");
    let r = c.cmd("f", "UID COPY 1:3,5,7:8 Dest").await;
    assert_eq!(
        r,
        vec![format!("f OK [COPYUID {v} 1:3,5,7:8 1:6] COPY completed")]
    );
    // Sequence numbers 2:* are UIDs 2, 3, 5, 7 and 8.
    let r = c.cmd("g", "COPY 2:* Dest").await;
    assert_eq!(
        r,
        vec![format!("g OK [COPYUID {v} 2:3,5,7:8 7:11] COPY completed")]
    );
    // Out of order in the command: the sets still correspond (ascending source).
    let r = c.cmd("h", "UID MOVE 8,1,5 Dest").await;
    assert_eq!(r[0], format!("* OK [COPYUID {v} 1,5,8 12:14] Moved"));
    assert_eq!(last(&r), "h OK MOVE completed");
    // Every destination UID the sets named exists.
    c.cmd("i", "SELECT Dest").await;
    let r = c.cmd("j", "UID SEARCH UID 1:14").await;
    assert_eq!(r[0], "* SEARCH 1 2 3 4 5 6 7 8 9 10 11 12 13 14");
}

/// RFC 7162 §3.1.5 (with RFC 4731 §3.1): with MIN and/or MAX alone, the MODSEQ an ESEARCH
/// returns is the highest of the messages MIN and MAX name; with ALL or COUNT, of all found.
#[tokio::test]
async fn esearch_min_max_report_the_modseq_of_the_messages_returned() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    for _ in 0..4 {
        c.append("INBOX", "()", &message(PLAIN)).await;
    }
    c.cmd("s", "SELECT INBOX (CONDSTORE)").await;
    // Message 2 changes last: the highest MODSEQ of the mailbox, neither MIN nor MAX.
    c.cmd("a", "STORE 1 +FLAGS (\\Answered)").await;
    c.cmd("b", "STORE 2 +FLAGS (\\Flagged)").await;
    let m = modseqs(&c.cmd("c", "FETCH 1:4 (MODSEQ)").await);
    assert_eq!(m.len(), 4, "{m:?}");
    assert!(m[1] > m[0] && m[1] > m[3], "{m:?}");
    let r = c.cmd("d", "SEARCH RETURN (MIN) MODSEQ 1").await;
    assert_eq!(r[0], format!("* ESEARCH (TAG \"d\") MIN 1 MODSEQ {}", m[0]));
    let r = c.cmd("e", "SEARCH RETURN (MAX) MODSEQ 1").await;
    assert_eq!(r[0], format!("* ESEARCH (TAG \"e\") MAX 4 MODSEQ {}", m[3]));
    let r = c.cmd("f", "UID SEARCH RETURN (MIN MAX) MODSEQ 1").await;
    assert_eq!(
        r[0],
        format!(
            "* ESEARCH (TAG \"f\") UID MIN 1 MAX 4 MODSEQ {}",
            m[0].max(m[3])
        )
    );
    let r = c.cmd("g", "SEARCH RETURN (MIN COUNT) MODSEQ 1").await;
    assert_eq!(
        r[0],
        format!("* ESEARCH (TAG \"g\") MIN 1 COUNT 4 MODSEQ {}", m[1])
    );
    let r = c.cmd("h", "SEARCH RETURN (ALL) MODSEQ 1").await;
    assert_eq!(
        r[0],
        format!("* ESEARCH (TAG \"h\") ALL 1:4 MODSEQ {}", m[1])
    );
    let r = c.cmd("i", "SEARCH MODSEQ 1").await;
    assert_eq!(r[0], format!("* SEARCH 1 2 3 4 (MODSEQ {})", m[1]));
}

/// RFC 3501 §5.1.3: a mailbox name that is not modified UTF-7 names no mailbox. The command
/// fails with a tagged NO (not BAD: its syntax is fine), and the connection stays usable.
#[tokio::test]
async fn invalid_modified_utf7_names_get_no_and_the_session_goes_on() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    // More refusals than the server tolerates BADs in a row.
    for (i, cmd) in [
        "CREATE &Jjo",
        "CREATE \"&AGE-\"",
        "CREATE \"bad&AOk\"",
        "RENAME INBOX \"x&-&ZZZ-\"",
        "SELECT \"&Jjo\"",
        "EXAMINE \"&Jjo\"",
        "STATUS \"&Jjo\" (MESSAGES)",
        "SUBSCRIBE \"&Jjo\"",
        "DELETE \"&Jjo\"",
        "LIST \"\" \"&Jjo\"",
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("t{i}");
        let r = c.cmd(&tag, cmd).await;
        assert!(last(&r).starts_with(&format!("{tag} NO ")), "{cmd}: {r:?}");
    }
    let r = c.cmd("n", "NOOP").await;
    assert_eq!(last(&r), "n OK NOOP completed");
    // Valid modified UTF-7 still works.
    let r = c.cmd("o", "CREATE \"R&AOk-sultats\"").await;
    assert_eq!(last(&r), "o OK CREATE completed");
}

fn envelope_of(r: &[String]) -> String {
    let l = &r[0];
    let i = l.find("ENVELOPE ").unwrap() + 9;
    l[i..l.len() - 1].to_string()
}

/// RFC 3501 §7.4.2 / RFC 9051 §7.5.2: group syntax shows as `(NIL NIL name NIL)` …
/// `(NIL NIL NIL NIL)`; odd address lists still give well-formed addresses (a NIL host only
/// in group markers), strings as written.
#[tokio::test]
async fn envelope_shows_groups_and_odd_addresses() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    // (header lines, the ENVELOPE from From to Bcc)
    let cases: [(&str, &str); 6] = [
        (
            "From: Labo <labo@x.test>\r\nTo: undisclosed-recipients:;",
            r#"(("Labo" NIL "labo" "x.test")) (("Labo" NIL "labo" "x.test")) (("Labo" NIL "labo" "x.test")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL"#,
        ),
        (
            "From: a@x.test\r\nTo: Team: a@x.test, Bob <b@y.test>;, c@z.test",
            r#"((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ((NIL NIL "Team" NIL)(NIL NIL "a" "x.test")("Bob" NIL "b" "y.test")(NIL NIL NIL NIL)(NIL NIL "c" "z.test")) NIL NIL"#,
        ),
        (
            "From: =?UTF-8?Q?H=C3=A9l=C3=A8ne?= <h@x.test>\r\nTo: \"john doe\"@x.test, nodomain\r\nCc:\r\nReply-To:",
            r#"(("=?UTF-8?Q?H=C3=A9l=C3=A8ne?=" NIL "h" "x.test")) (("=?UTF-8?Q?H=C3=A9l=C3=A8ne?=" NIL "h" "x.test")) (("=?UTF-8?Q?H=C3=A9l=C3=A8ne?=" NIL "h" "x.test")) ((NIL NIL "john doe" "x.test")(NIL NIL "nodomain" "MISSING_DOMAIN")) NIL NIL"#,
        ),
        (
            "From: \"Martin, Jean (Dr)\" <jm@x.test> (cardiologie)\r\nSender: <@relay.test:jm@x.test>\r\nTo: ,,\r\nBcc: Foo <foo@>, <>",
            r#"(("Martin, Jean (Dr)" NIL "jm" "x.test")) ((NIL "@relay.test" "jm" "x.test")) (("Martin, Jean (Dr)" NIL "jm" "x.test")) NIL NIL (("Foo" NIL "foo" "MISSING_DOMAIN"))"#,
        ),
        (
            "From: Team:;\r\nTo: Unterminated: a@x.test",
            r#"((NIL NIL "Team" NIL)(NIL NIL NIL NIL)) ((NIL NIL "Team" NIL)(NIL NIL NIL NIL)) ((NIL NIL "Team" NIL)(NIL NIL NIL NIL)) ((NIL NIL "Unterminated" NIL)(NIL NIL "a" "x.test")(NIL NIL NIL NIL)) NIL NIL"#,
        ),
        (
            "From: \r\nTo: \"unterminated <a@x.test>",
            r#"NIL NIL NIL ((NIL NIL "unterminated <a@x.test>" "MISSING_DOMAIN")) NIL NIL"#,
        ),
    ];
    for (headers, _) in &cases {
        c.append("INBOX", "()", &message(headers)).await;
    }
    c.cmd("s", "SELECT INBOX").await;
    for (i, (headers, want)) in cases.iter().enumerate() {
        let r = c.cmd("f", &format!("FETCH {} ENVELOPE", i + 1)).await;
        assert_eq!(last(&r), "f OK FETCH completed", "{headers}");
        let env = envelope_of(&r);
        let want = format!("(NIL \"test\" {want} NIL NIL)");
        assert_eq!(env, want, "{headers}");
    }
}

/// RFC 3501 §6.4.4: SENTBEFORE, SENTON and SENTSINCE compare the date of the Date: header as
/// written, its time and zone ignored.
#[tokio::test]
async fn sent_dates_are_the_header_dates_as_written() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    for date in [
        // 3 June in UTC, but written 2 June.
        "Mon, 2 Jun 2025 23:30:00 -0500",
        // 2 June in UTC, but written 3 June.
        "Tue, 3 Jun 2025 00:30:00 +0200",
        // Obsolete forms: no day name, no seconds, a comment, a two-digit year.
        "4 Jun 25 10:00 GMT (UT)",
    ] {
        let h = format!("From: a@x.test\r\nDate: {date}");
        c.append("INBOX", "()", &message(&h)).await;
    }
    c.cmd("s", "SELECT INBOX").await;
    for (q, want) in [
        ("SENTON 2-Jun-2025", "* SEARCH 1"),
        ("SENTON 3-Jun-2025", "* SEARCH 2"),
        ("SENTON 4-Jun-2025", "* SEARCH 3"),
        ("SENTBEFORE 3-Jun-2025", "* SEARCH 1"),
        ("SENTSINCE 3-Jun-2025", "* SEARCH 2 3"),
        ("SENTSINCE 5-Jun-2025", "* SEARCH"),
    ] {
        let r = c.cmd("q", &format!("SEARCH {q}")).await;
        assert_eq!(r[0], want, "{q}");
    }
}

/// RFC 3501 §6.4.4: FROM, TO, CC and BCC match display names and addresses,
/// case-insensitively, RFC 2047 encoded words decoded.
#[tokio::test]
async fn address_searches_match_names_and_addresses_decoded() {
    let hub = hub();
    let mut c = Client::login(&hub).await;
    for h in [
        "From: =?UTF-8?Q?H=C3=A9l=C3=A8ne_Dupr=C3=A9?= <helene@x.test>\r\nTo: Team: a@x.test, Bob\r\n  Marley <b@y.test>;",
        "From: \"Martin, Jean\" <JM@Hopital.test>\r\nCc: =?ISO-8859-1?Q?Jos=E9?= <jose@x.test>\r\nBcc: secret@x.test",
    ] {
        c.append("INBOX", "()", &message(h)).await;
    }
    c.cmd("s", "SELECT INBOX").await;
    for (q, want) in [
        ("FROM \"hélène dupré\"", "* SEARCH 1"),
        ("FROM HELENE@X.TEST", "* SEARCH 1"),
        ("FROM \"martin, jean\"", "* SEARCH 2"),
        ("FROM jm@hopital.test", "* SEARCH 2"),
        ("TO \"bob marley\"", "* SEARCH 1"),
        ("TO team", "* SEARCH 1"),
        ("CC \"JOSÉ\"", "* SEARCH 2"),
        ("CC jose@x", "* SEARCH 2"),
        ("BCC SECRET", "* SEARCH 2"),
        ("TO secret", "* SEARCH"),
    ] {
        let r = c.cmd("q", &format!("SEARCH CHARSET UTF-8 {q}")).await;
        assert_eq!(r[0], want, "{q}");
    }
}
