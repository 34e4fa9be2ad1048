//! Broken and hostile SMTP input, sent over raw TLS sockets: each gets its reply, and the
//! server keeps serving everyone else.

use crate::support::*;

/// The opening of an authenticated submission session, as dialogue steps.
fn logged_in() -> String {
    format!(
        "send EHLO client.test\nstarttls\nsend EHLO client.test\nauth-plain {} {}\n",
        MARTIN.0, MARTIN.1
    )
}

/// A fresh, well-formed session still gets its message accepted.
fn still_serving(hub: &Instance, n: usize, after: &str) {
    let msg = message(
        MARTIN.0,
        CAMILLE.0,
        &format!("Valid {n}"),
        &[],
        &format!("VALID-MARKER-{n}"),
    );
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &submit_steps(MARTIN, MARTIN.0, &[CAMILLE.0], &msg),
    );
    assert!(
        t.reply("data.").starts_with("250 2.0.0"),
        "after {after}, a valid message was not accepted:\n{t}"
    );
}

#[test]
fn malformed_input_gets_its_reply_and_the_server_keeps_serving() {
    let mut hub = Instance::demo();
    let envelope = format!(
        "send MAIL FROM:<{}>\nsend RCPT TO:<{}>\n",
        MARTIN.0, CAMILLE.0
    );
    let mut served = 0;

    // A bare LF in the message: refused (SMTP smuggling), nothing stored.
    let bare_lf = format!(
        "From: {}\r\nTo: {}\r\nSubject: smuggling\n\r\nBARE-LF-MARKER\r\n",
        MARTIN.0, CAMILLE.0
    );
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "{}{envelope}data {}\nsend NOOP\n",
            logged_in(),
            hex(bare_lf.as_bytes())
        ),
    );
    t.expect("data.", "550 5.6.11");
    t.expect("send NOOP", "250");
    served += 1;
    still_serving(&hub, served, "a bare LF");

    // A NUL byte in a command verb.
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "{}raw {}\nread\nsend NOOP\n",
            logged_in(),
            hex(b"NO\0OP\r\n")
        ),
    );
    t.expect("read", "500 5.5.1");
    t.expect("send NOOP", "250 2.0.0 OK");
    served += 1;
    still_serving(&hub, served, "a NUL byte in a command");

    // A NUL byte in MAIL's address: refused at once, and the next command is answered.
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "{}timeout 10\nraw {}\nread\nsend NOOP\n",
            logged_in(),
            hex(b"MAIL FROM:<dr.martin\0@hopital.mshub.test>\r\n")
        ),
    );
    t.expect("read", "501 5.1.7");
    t.expect("send NOOP", "250 2.0.0 OK");
    served += 1;
    still_serving(&hub, served, "a NUL byte in an address");

    // A 1 MB command line: 500 5.5.6, and the connection is still usable afterwards.
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "{}fill 41 1000000\nraw 0d0a\npipe NOOP\nreaduntil 250 1000\n",
            logged_in()
        ),
    );
    t.expect("readuntil", "500 5.5.6");
    let last = t.replies().last().copied().unwrap_or_default();
    assert!(
        last.starts_with("250 2.0.0 OK"),
        "NOOP after a 1 MB line: {t}"
    );
    served += 1;
    still_serving(&hub, served, "a 1 MB line");

    // 1000 recipients: the first 100 accepted, then 452 4.5.3 for each of the others.
    let mut steps = format!("{}send MAIL FROM:<{}>\n", logged_in(), MARTIN.0);
    for _ in 0..1000 {
        steps.push_str(&format!("pipe RCPT TO:<{}>\n", CAMILLE.0));
    }
    steps.push_str("read 1000\nsend RSET\n");
    let t = dialogue(hub.ports.submission, "plain", &hub.ca, &steps);
    let rcpt: Vec<&str> =
        t.0.iter()
            .filter(|(s, _)| s == "read")
            .map(|(_, r)| r.as_str())
            .collect();
    assert_eq!(rcpt.len(), 1000, "{t}");
    assert!(
        rcpt[..100].iter().all(|r| r.starts_with("250 2.1.5")),
        "the first 100 recipients were not all accepted"
    );
    assert!(
        rcpt[100..].iter().all(|r| r.starts_with("452 4.5.3")),
        "recipients past 100 were not all answered 452 4.5.3"
    );
    t.expect("send RSET", "250");
    served += 1;
    still_serving(&hub, served, "1000 recipients");

    // The client disconnects in the middle of DATA: nothing is delivered.
    let partial = format!(
        "From: {}\r\nTo: {}\r\nSubject: cut\r\n\r\nTRUNCATED-MARKER and then",
        MARTIN.0, CAMILLE.0
    );
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "{}{envelope}send DATA\nraw {}\nsleep 0.3\nclose\n",
            logged_in(),
            hex(partial.as_bytes())
        ),
    );
    t.expect("send DATA", "354");
    served += 1;
    still_serving(&hub, served, "a truncated DATA");

    // Invalid base64 in AUTH PLAIN.
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        "send EHLO client.test\nstarttls\nsend EHLO client.test\nsend AUTH PLAIN %%%not-base64%%%\nsend NOOP\n",
    );
    t.expect("send AUTH PLAIN", "501 5.5.2");
    t.expect("send NOOP", "250");
    served += 1;
    still_serving(&hub, served, "bad base64 in AUTH PLAIN");

    // An unknown command.
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        "send EHLO client.test\nstarttls\nsend EHLO client.test\nsend FROBNICATE now\nsend NOOP\n",
    );
    t.expect("send FROBNICATE", "500 5.5.1");
    t.expect("send NOOP", "250");
    served += 1;
    still_serving(&hub, served, "an unknown command");

    // BDAT without MAIL: 503, and its chunk (two RSET lines) is swallowed, not run: the next
    // reply is the NOOP's "OK", not RSET's "Reset".
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "{}raw {}\nread\nsend NOOP\n",
            logged_in(),
            hex(b"BDAT 12\r\nRSET\r\nRSET\r\n")
        ),
    );
    t.expect("read", "503 5.5.1");
    t.expect("send NOOP", "250 2.0.0 OK");
    served += 1;
    still_serving(&hub, served, "BDAT without MAIL");

    hub.stop();
    let inbox = hub.inbox(CAMILLE.0);
    assert_eq!(
        inbox.len(),
        served,
        "exactly the valid messages were delivered"
    );
    for (i, m) in inbox.iter().enumerate() {
        assert!(
            contains(m, &format!("VALID-MARKER-{}", i + 1)),
            "message {i}"
        );
        assert!(!contains(m, "TRUNCATED-MARKER") && !contains(m, "BARE-LF-MARKER"));
    }
}

#[test]
fn an_overlong_command_line_gets_one_reply_and_its_tail_is_never_run() {
    let hub = Instance::demo();
    // 5000 bytes, then QUIT on the same line: one 500 5.5.6 for the whole line; the QUIT
    // inside it must not close the session.
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "{}fill 58 5000\nraw {}\npipe NOOP\nreaduntil 250 100\n",
            logged_in(),
            hex(b"QUIT\r\n")
        ),
    );
    assert_eq!(
        t.0.iter()
            .filter(|(s, _)| s == "readuntil")
            .map(|(_, r)| r.get(..9).unwrap_or(r))
            .collect::<Vec<_>>(),
        ["500 5.5.6", "250 2.0.0"],
        "{t}"
    );
    // A 1 MB line gets one reply, not one per buffer.
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "{}fill 41 1000000\nraw 0d0a\npipe NOOP\nreaduntil 250 1000\n",
            logged_in()
        ),
    );
    let replies: Vec<&str> = t.replies().into_iter().skip(5).collect();
    assert_eq!(
        replies.len(),
        2,
        "replies to one 1 MB line then NOOP: {} ({} then {})",
        replies.len(),
        replies[0],
        replies[replies.len() - 1]
    );
}

#[test]
fn a_nul_byte_in_the_ehlo_name_never_reaches_a_reply() {
    let hub = Instance::demo();
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "send EHLO client.test\nstarttls\nraw {}\nread\nsend NOOP\n",
            hex(b"EHLO a\0b\0c\r\n"),
        ),
    );
    let ehlo = t.reply("read");
    assert!(
        ehlo.starts_with('5') || ehlo.starts_with("250"),
        "EHLO with NUL bytes got no reply:\n{t}"
    );
    assert!(
        !ehlo.contains('\0'),
        "the reply carries the client's NUL bytes: {ehlo:?}"
    );
    t.expect("send NOOP", "250 2.0.0 OK");
}
