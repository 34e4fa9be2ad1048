//! Two hubs as two operators of one trust space: A (mshub.test, hosting hopital.mshub.test)
//! and B (autre.test, hosting clinique.autre.test), each with a certificate from the trust
//! space's test CA. A relays to B over TLS; B requires A's client certificate.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::support::*;

pub(crate) const BERNARD: &str = "dr.bernard@clinique.autre.test";

/// A test CA and, for each directory, a leaf certificate it signed (localhost, 127.0.0.1 and
/// the operator's mail domain: a client certificate speaks only for the domains it names),
/// written as `tls/cert.pem`, `tls/key.pem`, with the CA as `ca.pem`.
pub(crate) fn write_pki(dirs: &[(&Path, &str)]) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mshub e2e trust space CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    for (dir, domain) in dirs {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            domain.to_string(),
        ])
        .unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            dir.file_name().unwrap().to_str().unwrap(),
        );
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::create_dir_all(dir.join("tls")).unwrap();
        std::fs::write(dir.join("tls/cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("tls/key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    }
}

pub(crate) fn write_config(
    dir: &Path,
    hub: &str,
    local: &str,
    relay: u16,
    give_up_secs: u64,
    delay_notice_secs: u64,
) {
    std::fs::write(
        dir.join("mshub.toml"),
        format!(
            r#"hub_domain = "{hub}"
data_dir = "store"
master_key_file = "master.key"
local_domains = ["{local}"]
[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
[listen]
smtp_relay = "127.0.0.1:{relay}"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
https = "127.0.0.1:0"
admin = "127.0.0.1:0"
[mta]
peer_ca = "ca.pem"
[mta.queue]
retry_initial_secs = 1
retry_max_secs = 2
give_up_secs = {give_up_secs}
delay_notice_secs = {delay_notice_secs}
"#
        ),
    )
    .unwrap();
}

struct Operators {
    a: Instance,
    b: Instance,
    _tmp: tempfile::TempDir,
}

/// Both operators configured, trusting each other, neither started.
fn operators(a_give_up_secs: u64, a_delay_notice_secs: u64) -> Operators {
    let tmp = tempfile::tempdir().unwrap();
    let a_dir = tmp.path().join("operator-a");
    let b_dir = tmp.path().join("operator-b");
    write_pki(&[
        (a_dir.as_path(), "hopital.mshub.test"),
        (b_dir.as_path(), "clinique.autre.test"),
    ]);
    let (a_relay, b_relay) = (free_port(), free_port());
    write_config(
        &a_dir,
        "mshub.test",
        "hopital.mshub.test",
        a_relay,
        a_give_up_secs,
        a_delay_notice_secs,
    );
    write_config(
        &b_dir,
        "autre.test",
        "clinique.autre.test",
        b_relay,
        172_800,
        14_400,
    );
    std::fs::write(a_dir.join("master.key"), "a1".repeat(32)).unwrap();
    std::fs::write(b_dir.join("master.key"), "b2".repeat(32)).unwrap();

    // A: the demo accounts (`mshub demo` keeps this configuration, key and certificate).
    let a = Instance::new(
        &a_dir,
        a_dir.join("mshub.toml"),
        "mshub.test",
        a_dir.join("ca.pem"),
        vec![
            "demo".into(),
            "--data".into(),
            a_dir.to_str().unwrap().into(),
        ],
    );
    a.cli(
        &[
            "domain",
            "trust",
            "clinique.autre.test",
            "--route",
            &format!("127.0.0.1:{b_relay}"),
            "--tls",
            "required",
        ],
        "",
    );
    // B: not a demo (its accounts would be on A's domains), one account made by the operator.
    let b_config = b_dir.join("mshub.toml");
    let b = Instance::new(
        &b_dir,
        b_config.clone(),
        "autre.test",
        b_dir.join("ca.pem"),
        vec![
            "--config".into(),
            b_config.to_str().unwrap().into(),
            "serve".into(),
        ],
    );
    b.cli(
        &[
            "account",
            "add",
            BERNARD,
            "professional",
            "--rpps",
            "10000000009",
            "--given-name",
            "Luc",
            "--family-name",
            "Bernard",
            "--profession",
            "physician",
            "--password-stdin",
        ],
        "bernard-password\n",
    );
    b.cli(
        &[
            "domain",
            "trust",
            "hopital.mshub.test",
            "--route",
            &format!("127.0.0.1:{a_relay}"),
            "--tls",
            "mutual-tls",
        ],
        "",
    );
    Operators { a, b, _tmp: tmp }
}

/// Dr Martin on A writes to Dr Bernard on B through A's submission port.
pub(crate) fn send_from_a(a: &Instance, marker: &str) {
    let msg = message(
        MARTIN.0,
        BERNARD,
        "Adressage d'un patient",
        &[&format!("Message-ID: <{marker}@hopital.mshub.test>")],
        &format!("Cher confrère, je vous adresse un patient. {marker}"),
    );
    let t = dialogue(
        a.ports.submission,
        "plain",
        &a.ca,
        &submit_steps(MARTIN, MARTIN.0, &[BERNARD], &msg),
    );
    t.expect("send RCPT TO", "250 2.1.5");
    t.expect("data.", "250 2.0.0 OK: queued as");
}

/// Stops `instance` and reads `address`'s INBOX every `every`, restarting it in between,
/// until `found` holds or `limit` passes. Leaves the instance stopped.
pub(crate) fn stop_and_poll_inbox(
    instance: &mut Instance,
    address: &str,
    limit: Duration,
    every: Duration,
    found: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let mut inbox = Vec::new();
    poll(limit, Duration::ZERO, || {
        std::thread::sleep(every);
        instance.stop();
        inbox = instance.inbox(address);
        if found(&inbox) {
            return true;
        }
        instance.start();
        false
    });
    instance.stop();
    inbox
}

pub(crate) fn has(marker: &str) -> impl Fn(&[Vec<u8>]) -> bool + '_ {
    move |inbox: &[Vec<u8>]| inbox.iter().any(|m| contains(m, marker))
}

#[test]
fn a_professional_on_a_writes_to_one_on_b() {
    let Operators { mut a, mut b, _tmp } = operators(172_800, 14_400);
    b.start();
    a.start();
    send_from_a(&a, "FED-MARKER-1a2b");
    let inbox = stop_and_poll_inbox(
        &mut b,
        BERNARD,
        Duration::from_secs(30),
        Duration::from_millis(1500),
        has("FED-MARKER-1a2b"),
    );
    assert_eq!(
        inbox.len(),
        1,
        "Dr Bernard's INBOX on B: {} messages",
        inbox.len()
    );
    let stored = &inbox[0];
    let trace = text(&stored[..stored.len() - without_received(stored).len()]);
    // Received by B's relay, from A (its EHLO name), over TLS, without authentication: B
    // accepted hopital.mshub.test under its mutual-tls policy, which needs A's client
    // certificate verified against the trust space's CA.
    assert!(trace.starts_with("Received: from mx.mshub.test"), "{trace}");
    assert!(
        trace.contains("by mx.autre.test (mshub relay) with ESMTPS "),
        "{trace}"
    );
    // Below it, A's own trace from the submission.
    let rest = text(without_received(stored));
    assert!(
        rest.starts_with("Received: from client.test")
            && rest.contains("(mshub submission) with ESMTPSA"),
        "{}",
        &rest[..rest.len().min(400)]
    );
    a.stop();
    assert!(a.inbox(MARTIN.0).is_empty(), "A sent Dr Martin a DSN");
}

#[test]
fn b_refuses_an_untrusted_domain() {
    let Operators { mut b, _tmp, .. } = operators(172_800, 14_400);
    b.start();
    let t = dialogue(
        b.ports.relay,
        "plain",
        &b.ca,
        &format!(
            "send EHLO mx.ailleurs.example\nstarttls\nsend EHLO mx.ailleurs.example\n\
             send MAIL FROM:<secretariat@ailleurs.example>\nsend RSET\n\
             send MAIL FROM:<{}>\nsend QUIT\n",
            MARTIN.0
        ),
    );
    t.expect("starttls", "220");
    t.expect("send MAIL FROM:<secretariat@", "550 5.7.1");
    assert!(
        t.reply("send MAIL FROM:<secretariat@")
            .contains("ailleurs.example is not in"),
        "{t}"
    );
    // hopital.mshub.test is trusted, but only with A's client certificate, which this client
    // does not present.
    t.expect(&format!("send MAIL FROM:<{}>", MARTIN.0), "550 5.7.1");
    assert!(
        t.reply(&format!("send MAIL FROM:<{}>", MARTIN.0))
            .contains("client certificate"),
        "{t}"
    );
    b.stop();
}

#[test]
fn b_down_then_up_a_retries_and_delivers() {
    let Operators { mut a, mut b, _tmp } = operators(172_800, 14_400);
    a.start();
    send_from_a(&a, "RETRY-MARKER-5e6f");
    // A tries and fails (nothing listens on B's relay port) a few times.
    std::thread::sleep(Duration::from_secs(4));
    b.start();
    let inbox = stop_and_poll_inbox(
        &mut b,
        BERNARD,
        Duration::from_secs(20),
        Duration::from_secs(2),
        has("RETRY-MARKER-5e6f"),
    );
    assert!(
        has("RETRY-MARKER-5e6f")(&inbox),
        "not delivered to B within 20 s of its start ({} messages there)",
        inbox.len()
    );
    assert_eq!(inbox.len(), 1, "delivered more than once");
    a.stop();
    assert!(
        a.inbox(MARTIN.0).is_empty(),
        "A sent Dr Martin a DSN for a message it delivered"
    );
}

#[test]
fn b_unreachable_past_give_up_sends_a_dsn() {
    let Operators { mut a, _tmp, .. } = operators(3, 14_400);
    a.start();
    send_from_a(&a, "GIVEUP-MARKER-9a0b");
    let inbox = stop_and_poll_inbox(
        &mut a,
        MARTIN.0,
        Duration::from_secs(30),
        Duration::from_secs(3),
        |inbox| !inbox.is_empty(),
    );
    assert_eq!(inbox.len(), 1, "no DSN (or several) for Dr Martin");
    let dsn = text(&inbox[0]);
    for expected in [
        "From: Mail Delivery System <postmaster@mshub.test>",
        &format!("To: <{}>", MARTIN.0),
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Content-Type: message/delivery-status",
        &format!("Final-Recipient: rfc822;{BERNARD}"),
        "Action: failed",
        "Status: 4.4.7",
        // The returned headers identify the message.
        "Message-ID: <GIVEUP-MARKER-9a0b@hopital.mshub.test>",
    ] {
        assert!(
            dsn.contains(expected),
            "{expected:?} missing from the DSN:\n{dsn}"
        );
    }
}

#[test]
fn a_delay_notice_is_sent_once_and_the_message_still_arrives() {
    let Operators { mut a, mut b, _tmp } = operators(172_800, 2);
    a.start();
    send_from_a(&a, "DELAY-MARKER-3c4d");
    let inbox = stop_and_poll_inbox(
        &mut a,
        MARTIN.0,
        Duration::from_secs(30),
        Duration::from_secs(3),
        |inbox| !inbox.is_empty(),
    );
    assert_eq!(inbox.len(), 1, "no delay notice (or several) for Dr Martin");
    let dsn = text(&inbox[0]);
    for expected in [
        "Content-Type: multipart/report; report-type=delivery-status;",
        &format!("Final-Recipient: rfc822;{BERNARD}"),
        "Action: delayed",
        "Status: 4.4.1",
    ] {
        assert!(dsn.contains(expected), "{expected:?} missing:\n{dsn}");
    }
    // The message is still queued: once B is up it is delivered, and no second notice comes.
    // B stays up 5 s between checks: longer than A's 2 s retry interval, so that A's attempts
    // do not fall in step with B's restarts.
    b.start();
    a.start();
    let delivered = stop_and_poll_inbox(
        &mut b,
        BERNARD,
        Duration::from_secs(40),
        Duration::from_secs(5),
        has("DELAY-MARKER-3c4d"),
    );
    assert!(
        has("DELAY-MARKER-3c4d")(&delivered),
        "never delivered after B came up"
    );
    a.stop();
    assert_eq!(a.inbox(MARTIN.0).len(), 1, "a second notice was sent");
}
