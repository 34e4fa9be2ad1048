//! The IMAP service driven by real clients (Python's imaplib over implicit TLS and STARTTLS,
//! curl) against the real binary, the hub's certificate verified for the name localhost.

use std::process::{Command, Stdio};

use crate::support::*;

/// Runs one scenario of tests/e2e/py/imap_client.py and checks every check passed.
fn scenario(hub: &mut Instance, mode: &str, name: &str) -> String {
    let (imap, imaps) = hub.imap_ports();
    let port = if mode == "ssl" { imaps } else { imap };
    let smtp = hub.ports.submission.to_string();
    let out = imap_py(&[
        "--port",
        &port.to_string(),
        "--mode",
        mode,
        "--cafile",
        hub.ca.to_str().unwrap(),
        "--user",
        MARTIN.0,
        "--password",
        MARTIN.1,
        "--scenario",
        name,
        "--smtp-port",
        &smtp,
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.ends_with("DONE\n"),
        "imap_client.py {name} ({mode}) failed:\n{stdout}{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    println!("{stdout}");
    stdout
}

#[test]
fn imaplib_over_implicit_tls_lists_appends_fetches_searches_and_moves() {
    let mut hub = Instance::demo();
    let out = scenario(&mut hub, "ssl", "mailbox");
    for check in [
        "PASS fetch-bodystructure",
        "PASS body-sets-seen",
        "PASS search-finds",
        "PASS copyuid",
        "PASS expunge-reported",
        "PASS select-nonexistent",
    ] {
        assert!(out.contains(check), "{check} missing:\n{out}");
    }
    hub.stop();
}

#[test]
fn imaplib_over_starttls_lists_appends_fetches_searches_and_moves() {
    let mut hub = Instance::demo();
    let out = scenario(&mut hub, "starttls", "mailbox");
    assert!(out.contains("PASS logindisabled-before-tls"), "{out}");
    assert!(out.contains("PASS moved-keeps-flags"), "{out}");
    hub.stop();
}

#[test]
fn idle_sees_a_message_delivered_through_smtp_within_seconds() {
    let mut hub = Instance::demo();
    let out = scenario(&mut hub, "ssl", "idle");
    assert!(out.contains("PASS idle-exists"), "{out}");
    assert!(out.contains("PASS delivered-message"), "{out}");
    hub.stop();
}

#[test]
fn two_sessions_on_one_mailbox_see_each_others_flags_and_expunges() {
    let mut hub = Instance::demo();
    let out = scenario(&mut hub, "ssl", "two");
    assert!(out.contains("PASS b-sees-flags"), "{out}");
    assert!(out.contains("PASS a-sees-expunge"), "{out}");
    hub.stop();
}

#[test]
fn garbage_gets_bad_or_no_and_the_server_stays_up() {
    let mut hub = Instance::demo();
    let out = scenario(&mut hub, "starttls", "garbage");
    for check in [
        "PASS unknown-command",
        "PASS nested-parens",
        "PASS invalid-utf8-mailbox",
        "PASS oversized-literal",
        "PASS server-still-up",
    ] {
        assert!(out.contains(check), "{check} missing:\n{out}");
    }
    hub.stop();
}

#[test]
fn curl_lists_and_fetches_over_imaps() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("SKIPPED curl_lists_and_fetches_over_imaps: curl is not installed");
        return;
    }
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let msg = message(MARTIN.0, MARTIN.0, "curl", &[], "CURL-MARKER-77");
    let file = hub.dir.join("curl.eml");
    std::fs::write(&file, &msg).unwrap();
    let sent = send_py(&[
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
        MARTIN.0,
        "--message",
        file.to_str().unwrap(),
    ]);
    assert!(sent.status.success(), "{}", text(&sent.stdout));
    let user = format!("{}:{}", MARTIN.0, MARTIN.1);
    let curl = |url: String| {
        Command::new("curl")
            .args(["--silent", "--show-error", "--insecure", "--max-time", "30"])
            .args(["-u", &user, &url])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = curl(format!("imaps://127.0.0.1:{imaps}/"));
    let listing = text(&out.stdout);
    assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
    assert!(listing.contains("\"INBOX\""), "{listing}");
    assert!(listing.contains("\\Trash"), "{listing}");
    // The brief's command: curl lists the INBOX (LIST "INBOX" *).
    let out = curl(format!("imaps://127.0.0.1:{imaps}/INBOX"));
    assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("* LIST (\\HasNoChildren) \"/\" \"INBOX\""),
        "{}",
        text(&out.stdout)
    );
    let out = curl(format!("imaps://127.0.0.1:{imaps}/INBOX;UID=1"));
    assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
    assert!(
        contains(&out.stdout, "CURL-MARKER-77"),
        "{}",
        text(&out.stdout)
    );
    hub.stop();
}
