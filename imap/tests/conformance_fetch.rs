//! Conformance points an independent IMAP test suite checked on FETCH (each test names its RFC
//! section): BINARY decoding of quoted-printable and base64 (RFC 3516, RFC 2045 §6.7-8),
//! UNKNOWN-CTE, APPEND of a literal8, and the sections of attached messages one and two levels
//! deep (RFC 3501 §6.4.5, RFC 9051 §6.4.5). Sessions are driven in memory, as in `session.rs`.

mod common;

use common::bytes::{crlf, Client};

/// Quoted-printable with soft line breaks (one followed by white space), trailing white space
/// before hard line breaks, lower-case hex; base64 over several lines with padding; an encoding
/// the server cannot know.
fn encoded_message() -> Vec<u8> {
    let mut m = crlf(
        "From: Labo <labo@hopital.mshub.test>\n\
         To: dr.martin@hopital.mshub.test\n\
         Subject: encodings\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\n\
         \n\
         --XX\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: quoted-printable\n\
         \n",
    );
    // Written by hand: the white space at line ends matters.
    m.extend_from_slice(
        b"R=C3=A9sultat   \r\nligne coup=\r\n=C3=A9e sans blanc=  \r\nfin =3d=c3=a9 \t\r\nTab=09\r\nderni=E8re",
    );
    m.extend_from_slice(&crlf(
        "\n--XX\n\
         Content-Type: application/octet-stream\n\
         Content-Transfer-Encoding: BASE64\n\
         \n\
         AAEC/wBo\n\
         ZWxs\n\
         bw==\n\
         --XX\n\
         Content-Type: application/octet-stream\n\
         Content-Transfer-Encoding: x-uuencode\n\
         \n\
         begin 644 f\n\
         #86)C\n\
         `\n\
         end\n\
         --XX--\n",
    ));
    m
}

/// RFC 2045 §6.7 rules 1-5 as RFC 3516 §4.2 requires them decoded: `=XX` in either case, white
/// space at the end of an encoded line removed (rule 3), `=` at a line end (even followed by
/// white space) a soft line break, hard line breaks kept as CRLF.
const QP_DECODED: &[u8] =
    b"R\xc3\xa9sultat\r\nligne coup\xc3\xa9e sans blancfin =\xc3\xa9\r\nTab\t\r\nderni\xe8re";

const B64_DECODED: &[u8] = b"\x00\x01\x02\xff\x00hello";

/// RFC 3516 §4.2 (BINARY), §4.2.2 (BINARY.SIZE): the content-transfer-encoding undone exactly,
/// quoted-printable and base64.
#[tokio::test]
async fn binary_decodes_quoted_printable_and_base64_exactly() {
    let (_hub, mut c) = Client::login().await;
    assert!(c
        .append(&encoded_message(), false)
        .await
        .starts_with("ap OK "));
    c.cmd("s", "SELECT INBOX").await;
    let r = c.cmd("f", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])").await;
    assert_eq!(r.tagged, "f OK FETCH completed");
    assert_eq!(
        String::from_utf8_lossy(&r.item("BINARY[1]").unwrap()),
        String::from_utf8_lossy(QP_DECODED)
    );
    assert_eq!(r.item("BINARY[1]").unwrap(), QP_DECODED);
    assert_eq!(r.after("BINARY.SIZE[1]"), QP_DECODED.len().to_string());

    let r = c.cmd("g", "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])").await;
    assert_eq!(r.tagged, "g OK FETCH completed");
    // NUL bytes: a literal8 (RFC 3516 §4.2).
    assert!(r.after("BINARY[2]").starts_with("~{"), "{}", r.text());
    assert_eq!(r.item("BINARY[2]").unwrap(), B64_DECODED);
    assert_eq!(r.after("BINARY.SIZE[2]"), B64_DECODED.len().to_string());
}

/// RFC 3516 §4.2: `BINARY[n]<o.l>` is a range of the decoded bytes, labelled `BINARY[n]<o>`.
#[tokio::test]
async fn binary_partial_applies_to_the_decoded_bytes() {
    let (_hub, mut c) = Client::login().await;
    c.append(&encoded_message(), false).await;
    c.cmd("s", "SELECT INBOX").await;
    let r = c
        .cmd("f", "FETCH 1 (BINARY.PEEK[1]<1.10> BINARY.PEEK[2]<3.4>)")
        .await;
    assert_eq!(r.tagged, "f OK FETCH completed");
    assert_eq!(r.item("BINARY[1]<1>").unwrap(), &QP_DECODED[1..11]);
    assert_eq!(r.item("BINARY[2]<3>").unwrap(), &B64_DECODED[3..7]);
    // Past the end: empty.
    let r = c.cmd("g", "FETCH 1 (BINARY.PEEK[2]<100.4>)").await;
    assert_eq!(r.item("BINARY[2]<100>").unwrap(), b"");
}

/// RFC 3516 §4.3 (and RFC 9051 §7.1 UNKNOWN-CTE): a part whose encoding the server does not
/// know fails the FETCH with `NO [UNKNOWN-CTE]`, BINARY and BINARY.SIZE alike.
#[tokio::test]
async fn unknown_transfer_encoding_is_no_unknown_cte() {
    let (_hub, mut c) = Client::login().await;
    c.append(&encoded_message(), false).await;
    c.cmd("s", "SELECT INBOX").await;
    for (tag, item) in [("f", "BINARY.PEEK[3]"), ("g", "BINARY.SIZE[3]")] {
        let r = c.cmd(tag, &format!("FETCH 1 ({item})")).await;
        assert!(
            r.tagged.starts_with(&format!("{tag} NO [UNKNOWN-CTE]")),
            "{item}: {}",
            r.text()
        );
        // No FETCH response with nothing in it (RFC 9051 §9 msg-att has one item at least).
        assert!(!r.text().contains("FETCH ()"), "{item}: {}", r.text());
    }
    // The BODY section is still served, as stored.
    let r = c.cmd("h", "FETCH 1 (BODY.PEEK[3])").await;
    assert_eq!(
        r.item("BODY[3]").unwrap(),
        crlf("begin 644 f\n#86)C\n`\nend")
    );
}

/// RFC 3516 §4.4: with BINARY advertised, APPEND takes a literal8, NUL bytes and all, and the
/// message is stored as sent.
#[tokio::test]
async fn append_takes_a_literal8_with_nul_bytes() {
    let (_hub, mut c) = Client::login().await;
    let mut msg = crlf(
        "From: Labo <labo@hopital.mshub.test>\n\
         Subject: binary\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"B\"\n\
         \n\
         --B\n\
         Content-Type: application/octet-stream\n\
         Content-Transfer-Encoding: binary\n\
         \n",
    );
    let content = b"\x00\x01bin\x00\xff\r\nary";
    msg.extend_from_slice(content);
    msg.extend_from_slice(b"\r\n--B--\r\n");
    let r = c.append(&msg, true).await;
    assert!(r.starts_with("ap OK [APPENDUID "), "{r}");
    c.cmd("s", "SELECT INBOX").await;
    let r = c
        .cmd("f", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] RFC822.SIZE)")
        .await;
    assert_eq!(r.tagged, "f OK FETCH completed");
    assert_eq!(r.item("BINARY[1]").unwrap(), content);
    assert_eq!(r.after("BINARY.SIZE[1]"), content.len().to_string());
    assert_eq!(r.after("RFC822.SIZE"), msg.len().to_string());
    let r = c.cmd("g", "FETCH 1 (BINARY.PEEK[])").await;
    assert_eq!(r.item("BINARY[]").unwrap(), msg);
    // A non-synchronising literal8 (RFC 7888 with RFC 3516) too.
    c.send(format!("n APPEND INBOX ~{{{}+}}\r\n", msg.len()).as_bytes())
        .await;
    c.send(&msg).await;
    c.send(b"\r\n").await;
    let r = c.until("n").await;
    assert!(r.tagged.starts_with("n OK "), "{}", r.text());
}

/// A message with a message/rfc822 part, which itself holds a text part and another
/// message/rfc822 part (a multipart/alternative), and a quoted-printable part after.
const OUTER_HEADER: &str = "From: A <a@hopital.mshub.test>\nTo: dr.martin@hopital.mshub.test\nSubject: outer\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"O\"\n\n";
const PART1_MIME: &str = "Content-Type: message/rfc822\nContent-Description: forwarded\n\n";
const MIDDLE_HEADER: &str = "From: C <c@hopital.mshub.test>\nSubject: middle\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"M\"\n\n";
const MIDDLE_TEXT: &str = "--M\nContent-Type: text/plain\nX-Part: m1\n\nmiddle text\n--M\nContent-Type: message/rfc822\n\nFrom: D <d@hopital.mshub.test>\nSubject: inner\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"I\"\n\n--I\nContent-Type: text/plain\n\ninner plain\n--I\nContent-Type: text/html\n\n<p>inner</p>\n--I--\n--M--";
const INNER_HEADER: &str = "From: D <d@hopital.mshub.test>\nSubject: inner\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"I\"\n\n";
const INNER_TEXT: &str = "--I\nContent-Type: text/plain\n\ninner plain\n--I\nContent-Type: text/html\n\n<p>inner</p>\n--I--";

fn nested_message() -> Vec<u8> {
    crlf(&format!(
        "{OUTER_HEADER}--O\n{PART1_MIME}{MIDDLE_HEADER}{MIDDLE_TEXT}\n--O\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: quoted-printable\n\
         \n\
         caf=C3=A9 cr=C3=A8me\n\
         --O--\n"
    ))
}

/// RFC 3501 §6.4.5 / RFC 9051 §6.4.5: in a message/rfc822 part, `n` is the whole attached
/// message, `n.HEADER`/`n.TEXT`/`n.HEADER.FIELDS` its header and body, `n.MIME` the part's own
/// MIME header, and `n.m` the parts of the attached message's body, one and two levels deep.
#[tokio::test]
async fn sections_of_attached_messages_one_and_two_levels_deep() {
    let (_hub, mut c) = Client::login().await;
    c.append(&nested_message(), false).await;
    c.cmd("s", "SELECT INBOX").await;
    let middle = format!("{MIDDLE_HEADER}{MIDDLE_TEXT}");
    let inner = format!("{INNER_HEADER}{INNER_TEXT}");
    let expected: &[(&str, String)] = &[
        ("1", middle),
        ("1.HEADER", MIDDLE_HEADER.into()),
        ("1.TEXT", MIDDLE_TEXT.into()),
        ("1.MIME", PART1_MIME.into()),
        ("1.HEADER.FIELDS (SUBJECT)", "Subject: middle\n\n".into()),
        ("1.1", "middle text".into()),
        (
            "1.1.MIME",
            "Content-Type: text/plain\nX-Part: m1\n\n".into(),
        ),
        ("1.2", inner),
        ("1.2.MIME", "Content-Type: message/rfc822\n\n".into()),
        ("1.2.HEADER", INNER_HEADER.into()),
        ("1.2.TEXT", INNER_TEXT.into()),
        ("1.2.1", "inner plain".into()),
        ("1.2.2", "<p>inner</p>".into()),
        ("1.2.2.MIME", "Content-Type: text/html\n\n".into()),
        ("2", "caf=C3=A9 cr=C3=A8me".into()),
    ];
    for (i, (section, want)) in expected.iter().enumerate() {
        let tag = format!("t{i}");
        let r = c
            .cmd(&tag, &format!("FETCH 1 (BODY.PEEK[{section}])"))
            .await;
        assert_eq!(r.tagged, format!("{tag} OK FETCH completed"));
        let label = format!("BODY[{}]", section.replace("(SUBJECT)", "(\"SUBJECT\")"));
        let got = r.item(&label).unwrap_or_else(|| panic!("{section}: NIL"));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&crlf(want)),
            "BODY[{section}]"
        );
    }
    // BINARY goes inside attached messages too.
    let r = c
        .cmd("b", "FETCH 1 (BINARY.PEEK[2] BINARY.PEEK[1.2.1])")
        .await;
    assert_eq!(r.item("BINARY[2]").unwrap(), "café crème".as_bytes());
    assert_eq!(r.item("BINARY[1.2.1]").unwrap(), b"inner plain");
    // Parts that do not exist.
    let r = c
        .cmd("n", "FETCH 1 (BODY.PEEK[1.3] BODY.PEEK[1.2.3])")
        .await;
    assert_eq!(r.item("BODY[1.3]"), None, "{}", r.text());
    assert_eq!(r.item("BODY[1.2.3]"), None, "{}", r.text());
}

/// RFC 9051 §6.4.5: in an attached message that is not multipart, part 1 is its body, and
/// `1.1.MIME` the attached message's own header (its MIME header, as Dovecot answers).
#[tokio::test]
async fn sections_of_a_single_part_attached_message() {
    let (_hub, mut c) = Client::login().await;
    let inner_header =
        "From: C <c@hopital.mshub.test>\nSubject: single\nContent-Type: text/plain\n\n";
    c.append(
        &crlf(&format!(
            "{OUTER_HEADER}--O\nContent-Type: message/rfc822\n\n{inner_header}seul corps\n--O--\n"
        )),
        false,
    )
    .await;
    c.cmd("s", "SELECT INBOX").await;
    let r = c
        .cmd(
            "f",
            "FETCH 1 (BODY.PEEK[1.1] BODY.PEEK[1.TEXT] BODY.PEEK[1.HEADER])",
        )
        .await;
    assert_eq!(r.item("BODY[1.1]").unwrap(), b"seul corps");
    assert_eq!(r.item("BODY[1.TEXT]").unwrap(), b"seul corps");
    assert_eq!(r.item("BODY[1.HEADER]").unwrap(), crlf(inner_header));
}

/// RFC 9051 §6.4.5: a message whose own body is message/rfc822 (not multipart) has one part,
/// 1, the attached message: `1.HEADER`, `1.TEXT` are the attached message's, `1.MIME` the
/// top-level header, and `1.1`, `1.2` the parts of the attached message, which holds another
/// message two levels down.
#[tokio::test]
async fn sections_when_the_message_itself_is_message_rfc822() {
    let (_hub, mut c) = Client::login().await;
    let top = "From: A <a@hopital.mshub.test>\nSubject: fwd\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n";
    c.append(
        &crlf(&format!("{top}{MIDDLE_HEADER}{MIDDLE_TEXT}\n")),
        false,
    )
    .await;
    c.cmd("s", "SELECT INBOX").await;
    let middle = format!("{MIDDLE_HEADER}{MIDDLE_TEXT}\n");
    let expected: &[(&str, String)] = &[
        ("1", middle.clone()),
        ("TEXT", middle),
        ("1.MIME", top.into()),
        ("1.HEADER", MIDDLE_HEADER.into()),
        ("1.TEXT", format!("{MIDDLE_TEXT}\n")),
        ("1.1", "middle text".into()),
        (
            "1.1.MIME",
            "Content-Type: text/plain\nX-Part: m1\n\n".into(),
        ),
        ("1.2.HEADER", INNER_HEADER.into()),
        ("1.2.TEXT", INNER_TEXT.into()),
        ("1.2.2", "<p>inner</p>".into()),
    ];
    for (i, (section, want)) in expected.iter().enumerate() {
        let tag = format!("t{i}");
        let r = c
            .cmd(&tag, &format!("FETCH 1 (BODY.PEEK[{section}])"))
            .await;
        assert_eq!(r.tagged, format!("{tag} OK FETCH completed"));
        let got = r
            .item(&format!("BODY[{section}]"))
            .unwrap_or_else(|| panic!("{section}: NIL"));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&crlf(want)),
            "BODY[{section}]"
        );
    }
    let r = c.cmd("b", "FETCH 1 (BODYSTRUCTURE)").await;
    assert!(r.text().contains("(\"message\" \"rfc822\""), "{}", r.text());
}
