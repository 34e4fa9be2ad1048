//! The patient's web inbox used as a person would: headless Chromium driven by Playwright
//! (tests/e2e/browser/patient.mjs) signs in, answers the doctor, masks a lab result and signs
//! out, with axe-core checking each page; then the doctor's mailbox (imaplib) and the
//! professionals' API (curl) must show what the patient did. A second test checks the forms'
//! CSRF tokens, cookies and Content-Security-Policy with curl alone.
//!
//! Needs Debian's chromium, node and the npm packages of tests/e2e/browser: all installed by
//! `scripts/install-deps --tests`. Missing ones fail the test (never a skip).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::browser_run::{artifacts_dir, require_browser_tools, run_script};
use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";
const SUBJECT: &str = "Résultats de votre bilan";
const ORIGINAL_ID: &str = "<bilan-e2e-1@hopital.mshub.test>";
/// In the original's body: the script checks the message page shows it.
const BODY_MARKER: &str = "BODY-MARKER-b17";
/// What the script types as the reply.
const REPLY_MARKER: &str = "REPLY-MARKER-5e1";
const DOCUMENT: &str = "Bilan sanguin du 20 novembre";
/// Added by [`add_nurse`]: nurses see lab results (once Camille names her among those who follow
/// her), and she neither wrote this one nor is Camille's referring doctor, so masking hides it
/// from her.
const NURSE: (&str, &str) = ("ines.leroy@hopital.mshub.test", "a-long-password");

/// dr.martin writes to Camille with Python's smtplib: submission over implicit TLS, AUTH.
fn martin_writes_to_camille(hub: &Instance) {
    let message = message(
        &format!("Dr Jean Martin <{}>", MARTIN.0),
        CAMILLE.0,
        // RFC 2047: "Résultats de votre bilan".
        "=?utf-8?q?R=C3=A9sultats_de_votre_bilan?=",
        &[
            &format!("Message-ID: {ORIGINAL_ID}"),
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ],
        &format!(
            "Bonjour Madame Durand,\n\nVos résultats sont normaux. Nous en reparlerons à la \
             prochaine consultation.\n\n{BODY_MARKER}\nDr Jean Martin\n"
        ),
    );
    let file = hub.dir.join("bilan.eml");
    std::fs::write(&file, message).unwrap();
    let out = send_py(&[
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
    ]);
    assert!(
        out.status.success() && text(&out.stdout).contains("SENT"),
        "send.py failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Finds, with imaplib over implicit TLS, the message of `user`'s INBOX whose decoded Subject
/// is `subject`, waiting up to 30 s for delivery. Read-only (EXAMINE, BODY.PEEK): the message
/// stays unread. Prints one JSON object: from, subject, in_reply_to, message_id, body.
const FIND_PY: &str = r#"
import email, email.policy, imaplib, json, ssl, sys, time
port, cafile, user, password, subject = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=cafile)
deadline = time.monotonic() + 30
while True:
    with imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx, timeout=30) as imap:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("SEARCH", None, "ALL")
        for uid in data[0].split():
            _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            msg = email.message_from_bytes(parts[0][1], policy=email.policy.default)
            if str(msg["Subject"]) == subject:
                body = msg.get_body(preferencelist=("plain",))
                print(json.dumps({
                    "from": str(msg["From"]),
                    "subject": str(msg["Subject"]),
                    "in_reply_to": str(msg["In-Reply-To"] or ""),
                    "message_id": str(msg["Message-ID"] or ""),
                    "body": body.get_content() if body is not None else "",
                }))
                sys.exit(0)
    if time.monotonic() > deadline:
        print(f"no message with the subject {subject!r} in the INBOX of {user}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
"#;

fn find_in_inbox(
    hub: &mut Instance,
    (user, password): (&str, &str),
    subject: &str,
) -> serde_json::Value {
    let (_, imaps) = hub.imap_ports();
    let out = Command::new("python3")
        .args(["-c", FIND_PY])
        .args([
            &imaps.to_string(),
            hub.ca.to_str().unwrap(),
            user,
            password,
            subject,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "imaplib in {user}'s INBOX:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The titles of Camille's documents that `login` may see, from the professionals' API.
fn api_titles(hub: &Instance, port: u16, login: (&str, &str)) -> Vec<(String, String)> {
    let reply = curl(
        &hub.ca,
        port,
        &format!("/api/v1/patients/{CAMILLE_INS}/documents"),
        Some(login),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["title"].as_str().unwrap().to_string(),
                d["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Whether the professionals' API lists `document` to `login`.
fn sees(hub: &Instance, port: u16, login: (&str, &str), document: &str) -> bool {
    api_titles(hub, port, login)
        .iter()
        .any(|(_, id)| id == document)
}

/// The lab relays an XDM archive with one result for Camille; returns the document's id once
/// it is filed (dr.martin, a physician who wrote to Camille, may see lab results: the API
/// shows it to him).
fn lab_files_a_result(hub: &Instance, port: u16) -> String {
    relay_xdm(hub, "IHE_XDM.ZIP", "11502-2", DOCUMENT, "XDM-MARKER-b17");
    let mut id = None;
    let filed = poll(Duration::from_secs(30), Duration::from_millis(500), || {
        id = api_titles(hub, port, MARTIN)
            .into_iter()
            .find(|(t, _)| t == DOCUMENT)
            .map(|(_, id)| id);
        id.is_some()
    });
    assert!(filed, "the lab result was not filed within 30 s");
    id.unwrap()
}

#[test]
fn patient_reads_replies_masks_and_logs_out_in_a_browser() {
    require_browser_tools();
    let shots = artifacts_dir("webmail");
    let mut hub = Instance::demo();
    hub.stop();
    let added = add_nurse(hub.config.to_str().unwrap());
    assert!(added.status.success(), "{}", text(&added.stderr));
    hub.start();
    let port = hub.https_port();

    martin_writes_to_camille(&hub);
    let document = lab_files_a_result(&hub, port);
    // The nurse reads Camille's space once Camille names her on "Accès des professionnels".
    name_professional(&signed_in(&hub, port, CAMILLE), NURSE.0, "follow", &[]);
    assert!(
        sees(&hub, port, NURSE, &document),
        "a nurse sees lab results that are not masked"
    );
    // Delivered before the browser looks (read-only: it stays unread).
    find_in_inbox(&mut hub, CAMILLE, SUBJECT);

    let base = format!("https://127.0.0.1:{port}");
    println!("browser screenshots: {}", shots.display());
    let (ok, stdout, stderr) = run_script(
        "patient.mjs",
        &[&base, shots.to_str().unwrap()],
        Duration::from_secs(300),
    );
    println!("--- patient.mjs stdout ---\n{stdout}--- patient.mjs stderr ---\n{stderr}");
    assert!(
        ok,
        "the browser scenario failed (screenshots in {}):\n{stderr}",
        shots.display()
    );

    // The reply reached dr.martin, threaded on his message.
    let reply = find_in_inbox(&mut hub, MARTIN, &format!("Re: {SUBJECT}"));
    let from = reply["from"].as_str().unwrap();
    assert!(from.contains(CAMILLE.0), "reply From: {from}");
    assert_eq!(reply["in_reply_to"], ORIGINAL_ID, "{reply}");
    assert!(
        reply["body"].as_str().unwrap().contains(REPLY_MARKER),
        "{reply}"
    );

    // Masked: hidden from the nurse. The archive (tests/e2e/py/make_xdm.py) names dr.martin's
    // RPPS as its author person, but the lab's mailbox filed it: that claim is only declared
    // (DESIGN §4), so it opens no masked document to dr.martin either.
    assert!(
        !sees(&hub, port, NURSE, &document),
        "the nurse still sees the masked document"
    );
    assert!(
        !sees(&hub, port, MARTIN, &document),
        "a masked document is opened by an author the document only declares"
    );
    hub.stop();
}

// ----- CSRF, cookies and CSP with curl -----

/// The `Set-Cookie` header setting `name`.
fn set_cookie<'a>(reply: &'a HttpReply, name: &str) -> &'a str {
    reply
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with(&format!("{name}=")))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {:?}", reply.headers))
}

fn assert_strict_cookie(cookie: &str) {
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for wanted in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(&wanted), "{wanted} missing: {cookie}");
    }
}

/// Same length as `token`, one character different: a forged token.
fn tampered(token: &str) -> String {
    let mut t: Vec<char> = token.chars().collect();
    t[0] = if t[0] == 'A' { 'B' } else { 'A' };
    t.into_iter().collect()
}

#[test]
fn a_tampered_or_missing_csrf_token_is_refused() {
    let mut hub = Instance::demo();
    let port = hub.https_port();
    // dr.martin writes to Camille first: he reads her space, and lists the lab's result.
    writes_to_camille(&hub, port, MARTIN);
    let document = lab_files_a_result(&hub, port);
    let web = CurlSession::new(&hub, port);

    // The login form: a double-submit token in a __Host- cookie and the form.
    let login = web.request("/login", None);
    assert_eq!(login.status, 200, "{login:?}");
    assert_strict_cookie(set_cookie(&login, "__Host-mshub-login"));
    let login_token = csrf_field(&login);
    let credentials = [("login", CAMILLE_INS), ("password", CAMILLE.1)];
    for token in [None, Some(tampered(&login_token))] {
        let mut form = credentials.to_vec();
        if let Some(t) = &token {
            form.push(("_csrf", t));
        }
        let refused = web.request("/login", Some(&form));
        assert_eq!(refused.status, 403, "login with token {token:?}");
        assert!(
            !refused
                .headers
                .iter()
                .any(|(n, v)| n == "set-cookie" && v.starts_with("__Host-mshub=")),
            "a session was opened without the login token"
        );
    }
    // Each refused form set a new login token: take the page's latest.
    let login = web.request("/login", None);
    let mut form = credentials.to_vec();
    let login_token = csrf_field(&login);
    form.push(("_csrf", &login_token));
    let signed_in = web.request("/login", Some(&form));
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    assert_eq!(signed_in.header("location"), Some("/"));
    let session = set_cookie(&signed_in, "__Host-mshub");
    assert_strict_cookie(session);
    let session = session.split(';').next().unwrap().to_string();

    // The pages' policy: scripts from the hub only, no inline code.
    let inbox = web.request("/", None);
    assert_eq!(inbox.status, 200, "{inbox:?}");
    let csp = inbox
        .header("content-security-policy")
        .expect("a Content-Security-Policy header");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");

    let path = format!("/documents/{document}");
    let page = web.request(&path, None);
    assert_eq!(page.status, 200, "{page:?}");
    let token = csrf_field(&page);
    assert_ne!(token, login_token, "the session token is the login token");
    let mask = format!("{path}/mask");
    for form in [vec![], vec![("_csrf", tampered(&token))]] {
        let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let refused = web.request(&mask, Some(&form));
        assert_eq!(refused.status, 403, "mask with {form:?}");
    }
    // Refused means not done.
    let still = text(&web.request(&path, None).body);
    assert!(
        still.contains("Visible par les professionnels"),
        "masked by a refused post:\n{still}"
    );
    let masked = web.request(&mask, Some(&[("_csrf", &token)]));
    assert_eq!(masked.status, 303, "{masked:?}");
    assert_eq!(masked.header("location"), Some(path.as_str()));
    assert!(text(&web.request(&path, None).body).contains("Masqué : seuls son auteur"));

    for form in [vec![], vec![("_csrf", tampered(&token))]] {
        let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let refused = web.request("/logout", Some(&form));
        assert_eq!(refused.status, 403, "logout with {form:?}");
    }
    assert_eq!(
        web.request("/", None).status,
        200,
        "signed out by a refused post"
    );
    let out = web.request("/logout", Some(&[("_csrf", &token)]));
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.header("location"), Some("/login"));
    let after = web.request("/", None);
    assert_eq!(after.status, 303, "{after:?}");
    assert_eq!(after.header("location"), Some("/login"));
    // The session ended on the server, not only in the browser's jar.
    let replayed = web.request_with(
        "/",
        Post::Nothing,
        &["--header", &format!("Cookie: {session}")],
    );
    assert_eq!(
        replayed.status, 303,
        "the old session still works: {replayed:?}"
    );
    hub.stop();
}
