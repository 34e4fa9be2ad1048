//! Conformance gaps closed (each test names its RFC section): NUL octets in a non-BINARY
//! FETCH (RFC 9051 §4.3), an attached message/rfc822 in base64 (RFC 2046 §5.2.1), and MOVE /
//! COPY onto the selected mailbox (RFC 6851 §3.3, RFC 9051 §6.4.7-8). Sessions are driven in
//! memory, as in `session.rs`.

mod common;

use common::bytes::{crlf, Client};

/// A message whose text/plain part holds raw NUL octets (Content-Transfer-Encoding: binary).
fn nul_message() -> Vec<u8> {
    let mut m = crlf(
        "From: Labo <labo@hopital.mshub.test>\n\
         To: dr.martin@hopital.mshub.test\n\
         Subject: nul\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\n\
         \n\
         --XX\n\
         Content-Type: text/plain\n\
         \n\
         plain\n\
         --XX\n\
         Content-Type: application/octet-stream\n\
         Content-Transfer-Encoding: binary\n\
         \n",
    );
    m.extend_from_slice(b"a\x00b\x00\x00c");
    m.extend_from_slice(&crlf("\n--XX--\n"));
    m
}

/// RFC 9051 §4.3 (RFC 3501 §4.3): a literal holds no NUL octet; only a literal8, allowed in a
/// BINARY answer (RFC 3516 §4.2), does. BODY[2], BODY[] and RFC822 of a message holding NUL
/// octets come as plain literals with each NUL replaced by one 0x80 octet (sizes and partial
/// offsets unchanged); BINARY[2] still gives the exact bytes in a literal8.
#[tokio::test]
async fn nul_octets_never_travel_in_a_literal() {
    let (_hub, mut c) = Client::login().await;
    let msg = nul_message();
    assert!(c.append(&msg, true).await.starts_with("ap OK "));
    c.cmd("s", "SELECT INBOX").await;
    let r = c
        .cmd(
            "f",
            "FETCH 1 (BODY.PEEK[2] BODY.PEEK[2]<1.3> BODY.PEEK[] RFC822.SIZE)",
        )
        .await;
    assert_eq!(r.tagged, "f OK FETCH completed");
    assert!(!r.raw.contains(&0), "{}", r.text());
    assert!(r.after("BODY[2]").starts_with('{'), "{}", r.text());
    assert_eq!(r.item("BODY[2]").unwrap(), b"a\x80b\x80\x80c");
    assert_eq!(r.item("BODY[2]<1>").unwrap(), b"\x80b\x80");
    let whole = r.item("BODY[]").unwrap();
    assert_eq!(whole.len(), msg.len());
    assert_eq!(r.after("RFC822.SIZE"), msg.len().to_string());
    let r = c.cmd("g", "FETCH 1 (RFC822)").await;
    assert!(!r.raw.contains(&0), "{}", r.text());
    assert_eq!(r.item("RFC822").unwrap(), whole);
    let r = c.cmd("h", "FETCH 1 (BINARY.PEEK[2])").await;
    assert!(r.after("BINARY[2]").starts_with("~{"), "{}", r.text());
    assert_eq!(r.item("BINARY[2]").unwrap(), b"a\x00b\x00\x00c");
}

const INNER: &str = "From: Inner <inner@x.test>\r\nSubject: inner\r\n\r\nHello inner\r\n";

/// A message attaching another one as message/rfc822 in base64, which RFC 2046 §5.2.1 forbids
/// and some senders still do.
fn base64_rfc822() -> Vec<u8> {
    use std::fmt::Write;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in INNER.as_bytes().chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= n {
                b64.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut body = String::new();
    for line in b64.as_bytes().chunks(40) {
        writeln!(body, "{}", std::str::from_utf8(line).unwrap()).unwrap();
    }
    crlf(&format!(
        "From: Labo <labo@hopital.mshub.test>\n\
         To: dr.martin@hopital.mshub.test\n\
         Subject: forwarded\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\n\
         \n\
         --XX\n\
         Content-Type: text/plain\n\
         \n\
         see attached\n\
         --XX\n\
         Content-Type: message/rfc822\n\
         Content-Transfer-Encoding: base64\n\
         \n\
         {body}--XX--\n"
    ))
}

/// RFC 2046 §5.2.1: message/rfc822 takes no encoding but 7bit, 8bit or binary. One in base64
/// is an opaque part: BODYSTRUCTURE shows a well-formed basic part (application/octet-stream,
/// "base64", its encoded size), BODY[2] its encoded bytes, BODY[2.HEADER] and BODY[2.TEXT]
/// NIL (RFC 9051 §6.4.5: they apply to message/rfc822 parts), BODY[2.1] the part itself (a
/// non-multipart part's part 1), and BINARY[2] the attached message decoded.
#[tokio::test]
async fn a_base64_attached_message_is_an_opaque_part() {
    let (_hub, mut c) = Client::login().await;
    assert!(c
        .append(&base64_rfc822(), false)
        .await
        .starts_with("ap OK "));
    c.cmd("s", "SELECT INBOX").await;
    let r = c.cmd("f", "FETCH 1 (BODYSTRUCTURE BODY)").await;
    assert_eq!(r.tagged, "f OK FETCH completed");
    let text = r.text();
    assert!(
        text.contains("(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" "),
        "{text}"
    );
    assert!(
        !text.contains("\"inner\"") && !text.contains("\"rfc822\""),
        "{text}"
    );
    let r = c
        .cmd(
            "g",
            "FETCH 1 (BODY.PEEK[2] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] BINARY.PEEK[2])",
        )
        .await;
    assert_eq!(r.tagged, "g OK FETCH completed");
    let encoded = r.item("BODY[2]").unwrap();
    assert!(encoded.starts_with(b"RnJvbTog"), "{}", r.text());
    assert_eq!(r.item("BODY[2.HEADER]"), None);
    assert_eq!(r.item("BODY[2.TEXT]"), None);
    assert_eq!(r.item("BODY[2.1]").unwrap(), encoded);
    assert_eq!(r.item("BINARY[2]").unwrap(), INNER.as_bytes());
}

fn plain(n: u32) -> Vec<u8> {
    crlf(&format!(
        "From: Labo <labo@hopital.mshub.test>\nSubject: m{n}\n\nBody {n}.\n"
    ))
}

/// RFC 6851 §3.3 and RFC 9051 §6.4.8: MOVE onto the selected mailbox makes new messages with
/// new UIDs and expunges the originals: COPYUID maps the old UIDs to new ones, the client is
/// told of the new messages (EXISTS) and of the old ones' removal (EXPUNGE), and FETCH then
/// shows the new UIDs only.
#[tokio::test]
async fn move_onto_the_selected_mailbox_gives_new_uids() {
    let (_hub, mut c) = Client::login().await;
    for n in 1..=3 {
        c.append(&plain(n), false).await;
    }
    c.cmd("s", "SELECT INBOX").await;
    let r = c.cmd("m", "UID MOVE 1:2 INBOX").await;
    let text = r.text();
    assert_eq!(r.tagged, "m OK MOVE completed", "{text}");
    assert!(text.contains(" 1:2 4:5] "), "{text}");
    // The originals' EXPUNGEs (highest first), then the size with the new messages.
    assert!(
        text.contains("* 2 EXPUNGE\r\n* 1 EXPUNGE\r\n* 3 EXISTS\r\n"),
        "{text}"
    );
    let r = c
        .cmd("f", "FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .await;
    let text = r.text();
    assert!(text.contains("* 1 FETCH (UID 3 "), "{text}");
    assert!(text.contains("* 2 FETCH (UID 4 "), "{text}");
    assert!(text.contains("* 3 FETCH (UID 5 "), "{text}");
    assert!(!text.contains("* 4 FETCH"), "{text}");
}

/// RFC 9051 §6.4.7 and RFC 4315 §3: COPY onto the selected mailbox adds copies with new UIDs
/// (announced by EXISTS), the originals stay.
#[tokio::test]
async fn copy_onto_the_selected_mailbox_adds_new_uids() {
    let (_hub, mut c) = Client::login().await;
    for n in 1..=2 {
        c.append(&plain(n), false).await;
    }
    c.cmd("s", "SELECT INBOX").await;
    let r = c.cmd("c", "UID COPY 1:2 INBOX").await;
    let text = r.text();
    assert!(r.tagged.contains(" 1:2 3:4] COPY completed"), "{text}");
    let r = c.cmd("n", "NOOP").await;
    let text = format!("{text}{}", r.text());
    assert!(text.contains("* 4 EXISTS"), "{text}");
    let r = c.cmd("f", "FETCH 1:* (UID)").await;
    assert_eq!(r.text().matches(" FETCH (UID ").count(), 4, "{}", r.text());
}
