//! The SMTP service driven by real clients (swaks, Python's smtplib, raw sockets) against the
//! real binary; what was delivered is read back from the stopped instance's store.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::*;

const PATIENT_2: &str = "185037505612356@patient.mshub.test";
const ELODIE: &str = "élodie.rousseau@hopital.mshub.test";

fn swaks(args: &[&str]) -> std::process::Output {
    Command::new("swaks")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs")
}

#[test]
fn submission_with_starttls_and_auth_delivers_to_the_patient() {
    let mut hub = Instance::demo();
    let port = hub.ports.submission.to_string();
    let out = swaks(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "--ehlo",
        "client.test",
        "--auth",
        "PLAIN",
        "--auth-user",
        MARTIN.0,
        "--auth-password",
        MARTIN.1,
        "--from",
        MARTIN.0,
        "--to",
        CAMILLE.0,
        "--header",
        "Subject: Vos résultats",
        "--body",
        "Bonjour, vos résultats sont normaux. SWAKS-MARKER-51c2",
    ]);
    let transcript = text(&out.stdout);
    assert!(out.status.success(), "swaks failed:\n{transcript}");
    assert!(
        transcript.contains("250 2.0.0 OK: queued as"),
        "{transcript}"
    );
    hub.stop();

    let inbox = hub.inbox(CAMILLE.0);
    assert_eq!(inbox.len(), 1, "the patient's INBOX holds one message");
    let stored = &inbox[0];
    let received = text(&stored[..stored.len() - without_received(stored).len()]);
    assert!(
        received.contains("(mshub submission) with ESMTPSA"),
        "{received}"
    );
    assert!(contains(stored, "SWAKS-MARKER-51c2"));
    assert!(contains(stored, &format!("From: {}", MARTIN.0)));
}

#[test]
fn implicit_tls_submission_with_python_smtplib() {
    let mut hub = Instance::demo();
    let sent_file = hub.dir.join("sent.eml");
    let out = send_py(&[
        "--port",
        &hub.ports.submissions.to_string(),
        "--mode",
        "ssl",
        "--cafile",
        hub.ca.to_str().unwrap(),
        "--login",
        "--user",
        MARTIN.0,
        "--password",
        MARTIN.1,
        "--sender",
        MARTIN.0,
        "--to",
        CAMILLE.0,
        "--build-pdf",
        sent_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success() && text(&out.stdout).contains("SENT"),
        "smtplib failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    hub.stop();

    let sent = std::fs::read(&sent_file).unwrap();
    assert!(contains(&sent, "application/pdf") && contains(&sent, "PDF-MARKER-7f3a"));
    let inbox = hub.inbox(CAMILLE.0);
    // The message first; then, if the vault filed its PDF before the hub stopped, its notice.
    assert!(matches!(inbox.len(), 1 | 2), "{} messages", inbox.len());
    if let Some(notice) = inbox.get(1) {
        assert!(
            contains(notice, "<ne-pas-repondre@mshub.test>"),
            "{}",
            text(notice)
        );
    }
    let stored = &inbox[0];
    let received = text(&stored[..stored.len() - without_received(stored).len()]);
    assert!(
        received.contains("(mshub submission) with ESMTPSA"),
        "{received}"
    );
    assert!(
        without_received(stored) == sent.as_slice(),
        "the message was not stored byte for byte:\nsent {} bytes, stored {} bytes after Received:",
        sent.len(),
        without_received(stored).len()
    );
}

#[test]
fn smtputf8_recipient_and_utf8_headers() {
    let mut hub = Instance::demo();
    hub.stop();
    hub.cli(
        &[
            "account",
            "add",
            ELODIE,
            "professional",
            "--rpps",
            "10000000009",
            "--given-name",
            "Élodie",
            "--family-name",
            "Rousseau",
            "--profession",
            "nurse",
        ],
        "",
    );
    hub.start();

    // Without SMTPUTF8 a non-ASCII address is refused, as sender and as recipient.
    let steps = format!(
        "send EHLO client.test\nstarttls\nsend EHLO client.test\nauth-plain {} {}\n\
         send MAIL FROM:<{ELODIE}>\nsend MAIL FROM:<{}>\nsend RCPT TO:<{ELODIE}>\nsend QUIT\n",
        MARTIN.0, MARTIN.1, MARTIN.0
    );
    let t = dialogue(hub.ports.submission, "plain", &hub.ca, &steps);
    t.expect("send EHLO", "250");
    assert!(t.reply("send EHLO").contains("SMTPUTF8"), "{t}");
    t.expect("auth-plain", "235");
    t.expect(&format!("send MAIL FROM:<{ELODIE}>"), "553 5.6.7");
    t.expect(&format!("send MAIL FROM:<{}>", MARTIN.0), "250");
    t.expect("send RCPT TO:", "553 5.6.7");

    // With it, smtplib delivers a message whose headers are UTF-8 (RFC 6532).
    let msg = message(
        &format!("Dr Jean Martin <{}>", MARTIN.0),
        &format!("Élodie Rousseau <{ELODIE}>"),
        "Résultats d'analyse — hémoglobine",
        &["Message-ID: <utf8-1@hopital.mshub.test>"],
        "Chère Élodie, voici les résultats. UTF8-MARKER-90ab",
    );
    let file = hub.dir.join("utf8.eml");
    std::fs::write(&file, &msg).unwrap();
    let out = send_py(&[
        "--port",
        &hub.ports.submission.to_string(),
        "--mode",
        "starttls",
        "--cafile",
        hub.ca.to_str().unwrap(),
        "--user",
        MARTIN.0,
        "--password",
        MARTIN.1,
        "--sender",
        MARTIN.0,
        "--to",
        ELODIE,
        "--message",
        file.to_str().unwrap(),
        "--smtputf8",
    ]);
    assert!(
        out.status.success(),
        "smtplib with SMTPUTF8 failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    hub.stop();

    let inbox = hub.inbox(ELODIE);
    assert_eq!(inbox.len(), 1, "Élodie's INBOX holds the message");
    assert_eq!(without_received(&inbox[0]), msg.as_slice());
    assert!(contains(
        &inbox[0],
        "Subject: Résultats d'analyse — hémoglobine"
    ));
}

#[test]
fn auth_and_mail_before_starttls_are_refused() {
    let hub = Instance::demo();
    for port in [hub.ports.relay, hub.ports.submission] {
        let steps = format!(
            "send EHLO client.test\nauth-plain {} {}\nsend MAIL FROM:<{}>\nsend QUIT\n",
            MARTIN.0, MARTIN.1, MARTIN.0
        );
        let t = dialogue(port, "plain", &hub.ca, &steps);
        let ehlo = t.reply("send EHLO");
        assert!(
            ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
            "AUTH offered before TLS:\n{t}"
        );
        t.expect("auth-plain", "538 5.7.11");
        t.expect("send MAIL FROM", "530 5.7.0");
        assert!(t.reply("send MAIL FROM").contains("STARTTLS"), "{t}");
        t.expect("send QUIT", "221");
    }
}

#[test]
fn relay_refuses_senders_outside_the_trust_space_and_unauthenticated_local_senders() {
    let hub = Instance::demo();
    let steps = format!(
        "send EHLO relay.ailleurs.example\nstarttls\nsend EHLO relay.ailleurs.example\n\
         send MAIL FROM:<secretariat@ailleurs.example>\nsend MAIL FROM:<{}>\nsend QUIT\n",
        MARTIN.0
    );
    let t = dialogue(hub.ports.relay, "plain", &hub.ca, &steps);
    t.expect("starttls", "220");
    t.expect("send MAIL FROM:<secretariat@", "550 5.7.1");
    assert!(
        t.reply("send MAIL FROM:<secretariat@")
            .contains("ailleurs.example is not in the health messaging trust space"),
        "{t}"
    );
    // A local address on the relay port must log in on the submission port instead.
    t.expect(&format!("send MAIL FROM:<{}>", MARTIN.0), "530 5.7.0");
}

#[test]
fn submission_needs_auth_and_refuses_senders_that_are_not_yours() {
    let mut hub = Instance::demo();
    let spoofed = message(LABO.0, CAMILLE.0, "Résultats", &[], "SPOOFED-FROM-MARKER");
    let steps = format!(
        "send EHLO client.test\nstarttls\nsend EHLO client.test\nsend MAIL FROM:<{m}>\n\
         auth-plain {m} {p}\nsend MAIL FROM:<{l}>\nsend MAIL FROM:<{m}>\nsend RCPT TO:<{c}>\n\
         data {data}\nsend QUIT\n",
        m = MARTIN.0,
        p = MARTIN.1,
        l = LABO.0,
        c = CAMILLE.0,
        data = hex(&spoofed)
    );
    let t = dialogue(hub.ports.submission, "plain", &hub.ca, &steps);
    let replies = t.replies();
    // Before AUTH, MAIL is refused: authentication required.
    t.expect(&format!("send MAIL FROM:<{}>", MARTIN.0), "530 5.7.0");
    assert!(replies[4].contains("Authentication required"), "{t}");
    t.expect("auth-plain", "235");
    // The envelope sender must be one's own address (dr.martin is not a member of labo@).
    t.expect(&format!("send MAIL FROM:<{}>", LABO.0), "550 5.7.1");
    assert_eq!(
        replies[7].get(..3),
        Some("250"),
        "own address refused:\n{t}"
    );
    t.expect("send RCPT TO", "250");
    t.expect("data", "354");
    // The From: header too: refused after DATA.
    t.expect("data.", "550 5.7.1");
    assert!(t.reply("data.").contains("From: header"), "{t}");
    hub.stop();
    assert!(
        hub.inbox(CAMILLE.0).is_empty(),
        "the spoofed message was delivered"
    );
}

#[test]
fn unknown_recipients_and_invalid_patient_addresses_are_refused_at_rcpt() {
    let hub = Instance::demo();
    let steps = format!(
        "send EHLO client.test\nstarttls\nsend EHLO client.test\nauth-plain {m} {p}\n\
         send MAIL FROM:<{m}>\nsend RCPT TO:<personne@hopital.mshub.test>\n\
         send RCPT TO:<284057511204338@patient.mshub.test>\nsend RCPT TO:<{c}>\nsend QUIT\n",
        m = MARTIN.0,
        p = MARTIN.1,
        c = CAMILLE.0
    );
    let t = dialogue(hub.ports.submission, "plain", &hub.ca, &steps);
    t.expect("send MAIL FROM", "250");
    t.expect("send RCPT TO:<personne@", "550 5.1.1");
    // The INS key of 2840575112043 is 39, not 38.
    t.expect("send RCPT TO:<284057511204338@", "553 5.1.3");
    t.expect(&format!("send RCPT TO:<{}>", CAMILLE.0), "250");
}

#[test]
fn a_patient_answers_a_professional_but_never_writes_first() {
    let mut hub = Instance::demo();
    hub.stop();
    hub.cli(
        &[
            "account",
            "add",
            PATIENT_2,
            "patient",
            "--ins",
            "185037505612356",
            "--given-name",
            "Paul",
            "--family-name",
            "Lefèvre",
            "--birth-date",
            "1985-03-20",
            "--sex",
            "M",
        ],
        "",
    );
    hub.start();
    let (c, cp, m) = (CAMILLE.0, CAMILLE.1, MARTIN.0);

    // Nobody has written to Camille yet: she can start no conversation.
    let first = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &format!(
            "send EHLO client.test\nstarttls\nsend EHLO client.test\nauth-plain {c} {cp}\n\
             send MAIL FROM:<{c}>\nsend RCPT TO:<{m}>\nsend RCPT TO:<{PATIENT_2}>\nsend QUIT\n"
        ),
    );
    first.expect("auth-plain", "235");
    first.expect("send MAIL FROM", "250");
    first.expect(&format!("send RCPT TO:<{m}>"), "550 5.7.1");
    assert!(
        first
            .reply(&format!("send RCPT TO:<{m}>"))
            .contains("has not written to you"),
        "{first}"
    );
    first.expect(&format!("send RCPT TO:<{PATIENT_2}>"), "550 5.7.1");
    assert!(
        first
            .reply(&format!("send RCPT TO:<{PATIENT_2}>"))
            .contains("another patient"),
        "{first}"
    );

    // Dr Martin writes to her.
    let to_patient = message(
        m,
        c,
        "Votre rendez-vous",
        &["Message-ID: <consult-42@hopital.mshub.test>"],
        "Bonjour, votre rendez-vous est confirmé.",
    );
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &submit_steps(MARTIN, m, &[c], &to_patient),
    );
    t.expect("data.", "250");

    // She answers that message: accepted.
    let reply = message(
        c,
        m,
        "Re: Votre rendez-vous",
        &[
            "In-Reply-To: <consult-42@hopital.mshub.test>",
            "Message-ID: <reply-1@patient.mshub.test>",
        ],
        "Merci docteur. PATIENT-REPLY-MARKER",
    );
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &submit_steps(CAMILLE, c, &[m], &reply),
    );
    t.expect("send RCPT TO", "250");
    t.expect("data.", "250");

    // A message of hers that answers nothing is still refused, after DATA.
    let not_a_reply = message(
        c,
        m,
        "Question",
        &[],
        "Une autre question. NOT-A-REPLY-MARKER",
    );
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &submit_steps(CAMILLE, c, &[m], &not_a_reply),
    );
    t.expect("send RCPT TO", "250");
    t.expect("data.", "550 5.7.1");
    assert!(t.reply("data.").contains("can only answer"), "{t}");
    hub.stop();

    let inbox = hub.inbox(m);
    assert_eq!(inbox.len(), 1, "exactly the reply reached Dr Martin");
    assert!(contains(&inbox[0], "PATIENT-REPLY-MARKER"));
    assert!(hub.inbox(PATIENT_2).is_empty());
}

#[test]
fn the_organisation_mailbox_sends_as_itself() {
    let mut hub = Instance::demo();
    let port = hub.ports.submissions.to_string();
    let out = swaks(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--tlsc",
        "--ehlo",
        "labo-system.test",
        "--auth",
        "LOGIN",
        "--auth-user",
        LABO.0,
        "--auth-password",
        LABO.1,
        "--from",
        LABO.0,
        "--to",
        MARTIN.0,
        "--header",
        "Subject: Résultats disponibles",
        "--body",
        "Les résultats du patient sont disponibles. LABO-MARKER-3e1d",
    ]);
    let transcript = text(&out.stdout);
    assert!(out.status.success(), "swaks failed:\n{transcript}");
    assert!(transcript.contains("235 2.7.0"), "{transcript}");
    assert!(
        transcript.contains("250 2.0.0 OK: queued as"),
        "{transcript}"
    );
    hub.stop();
    let inbox = hub.inbox(MARTIN.0);
    assert_eq!(inbox.len(), 1);
    assert!(contains(&inbox[0], "LABO-MARKER-3e1d"));
    assert!(contains(&inbox[0], &format!("From: {}", LABO.0)));
}

#[test]
fn message_survives_kill_9_right_after_250() {
    let mut hub = Instance::demo();
    let msg = message(
        MARTIN.0,
        CAMILLE.0,
        "Durable",
        &["Message-ID: <durable-1@hopital.mshub.test>"],
        "This must survive a crash. KILL9-MARKER-c0de",
    );
    let file = hub.dir.join("durable.eml");
    std::fs::write(&file, &msg).unwrap();
    let mut client = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/py/send.py"))
        .args([
            "--port",
            &hub.ports.submissions.to_string(),
            "--mode",
            "ssl",
            "--cafile",
            hub.ca.to_str().unwrap(),
            "--user",
            MARTIN.0,
            "--password",
            MARTIN.1,
            "--sender",
            MARTIN.0,
            "--to",
            CAMILLE.0,
            "--message",
            file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    // The 250 is in: SIGKILL at once, before QUIT.
    hub.kill();
    assert_eq!(first, "SENT", "smtplib did not get its 250");
    let _ = client.wait();

    // Restarts after the crash, then the message is there, intact.
    hub.start();
    hub.stop();
    let inbox = hub.inbox(CAMILLE.0);
    assert_eq!(inbox.len(), 1, "the acknowledged message was lost");
    assert_eq!(without_received(&inbox[0]), msg.as_slice());
}
