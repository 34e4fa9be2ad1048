//! The patient space's lifecycle with the real binary: a roster imported with bad lines (the
//! report), imported again (nothing changes), a patient's opposition by the operator (mail to
//! the address then refused 550 5.1.1, seen by smtplib), activation through the web with curl
//! (the mail filed while pending is there), the automatic opening at the deadline, and close →
//! reopen → close → destroyed after the retention delay. Time is driven with the operator
//! commands' hidden `--now`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mshub_directory::{Address, Lifecycle};
use mshub_store::Tree;

use crate::support::*;

const DAY: i64 = 86_400;

/// A valid INS numbered `n` for a woman born in May 1984.
fn ins(n: u32) -> String {
    let body = format!("28405751{:05}", 20_000 + n);
    let key = 97 - body.parse::<u64>().unwrap() % 97;
    format!("{body}{key:02}")
}

fn address(n: u32) -> String {
    format!("{}@patient.mshub.test", ins(n))
}

/// The activation code printed in a letter: WinAnsi text in the page's content stream.
fn code_in_letter(pdf: &[u8]) -> String {
    let marker = b"unique\\) : ";
    let at = pdf
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the letter shows the code")
        + marker.len();
    String::from_utf8(pdf[at..at + 14].to_vec()).unwrap()
}

/// One curl request keeping cookies in `jar`; POSTs `fields` url-encoded when given.
fn curl_form(
    ca: &Path,
    port: u16,
    jar: &Path,
    path: &str,
    fields: Option<&[(&str, &str)]>,
) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (headers, body) = (dir.path().join("h"), dir.path().join("b"));
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
        .arg(ca)
        .arg("--cookie")
        .arg(jar)
        .arg("--cookie-jar")
        .arg(jar)
        .arg("--dump-header")
        .arg(&headers)
        .arg("--output")
        .arg(&body)
        .args(["--write-out", "%{http_code}"]);
    for (k, v) in fields.unwrap_or_default() {
        cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
    }
    let out = cmd
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
    (
        text(&out.stdout).trim().parse().unwrap(),
        std::fs::read_to_string(headers).unwrap(),
        String::from_utf8_lossy(&std::fs::read(body).unwrap_or_default()).into_owned(),
    )
}

fn csrf(page: &str) -> String {
    let at = page.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

fn send(hub: &Instance, to: &str, subject: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(
        &file,
        message(
            MARTIN.0,
            to,
            subject,
            &["Message-ID: <lifecycle-1@hopital.mshub.test>"],
            "Bonjour,\nvos resultats.\n",
        ),
    )
    .unwrap();
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
        to,
        "--message",
        file.to_str().unwrap(),
    ]);
    text(&out.stdout)
}

#[test]
fn roster_import_opposition_activation_opening_closing_and_destruction() {
    let mut hub = Instance::demo();
    let t0 = mshub_store::now();
    let now = |days: i64| (t0 + days * DAY).to_string();
    let work = tempfile::tempdir().unwrap();
    let roster = work.path().join("roster.csv");
    let letters = work.path().join("letters");
    let bad_key = format!("{}00", &ins(9)[..13]);
    std::fs::write(
        &roster,
        format!(
            "ins;nom;prenom;date_naissance;sexe;email\n\
             {a};Durand;Alice;12/05/1984;F;alice@ailleurs.example\n\
             {b};Durand;Béatrice;1984-05-13;F;beatrice@operateur.example\n\
             {c};Durand;Céline;1984-05-14;F;\n\
             {bad_key};Durand;Mauvaise;1984-05-15;F;\n\
             {a};Durand;Alice;1984-05-12;F;\n\
             {d};Durand;Denise;1990-05-16;F;\n\
             {e};Durand;Emma;1984-13-40;F;\n",
            a = ins(1),
            b = ins(2),
            c = ins(3),
            d = ins(4),
            e = ins(5),
        ),
    )
    .unwrap();
    // A peer operator's domain: the notice to a contact there is queued for it.
    hub.cli(
        &[
            "domain",
            "trust",
            "operateur.example",
            "--route",
            "127.0.0.1:9",
        ],
        "",
    );
    let out = hub.cli(
        &[
            "account",
            "import",
            roster.to_str().unwrap(),
            "--letters",
            letters.to_str().unwrap(),
            "--now",
            &now(0),
        ],
        "",
    );
    let report = text(&out.stdout);
    assert!(
        report.contains(
            "7 lines: 3 created (pending), 0 unchanged, 4 refused; 3 letters, 1 e-mails queued"
        ),
        "{report}"
    );
    assert!(
        report.contains("1 contact addresses outside the trust space"),
        "{report}"
    );
    assert!(
        report.contains("line 5: refused: invalid INS") && report.contains("wrong key 00"),
        "{report}"
    );
    assert!(
        report.contains("line 6: refused:") && report.contains("duplicate"),
        "{report}"
    );
    assert!(
        report.contains("line 7: refused:") && report.contains("birth year"),
        "{report}"
    );
    assert!(
        report.contains("line 8: refused: bad birth date"),
        "{report}"
    );
    // One letter per created space, a real PDF with the code.
    let letter = std::fs::read(letters.join("75").join(format!("{}.pdf", ins(3)))).unwrap();
    assert!(letter.starts_with(b"%PDF-1.4") && letter.ends_with(b"%%EOF\n"));
    let code_c = code_in_letter(&letter);
    assert_eq!(code_c.len(), 14, "{code_c}");
    assert!(letters.join("75").join(format!("{}.pdf", ins(1))).exists());
    assert!(letters.join("75").join(format!("{}.pdf", ins(2))).exists());
    // An independent reader (poppler) finds the French text, accents included.
    let txt = work.path().join("c.txt");
    let ok = Command::new("pdftotext")
        .arg(letters.join("75").join(format!("{}.pdf", ins(3))))
        .arg(&txt)
        .status()
        .expect("pdftotext (poppler-utils, scripts/install-deps --tests) runs");
    assert!(ok.success());
    let t = std::fs::read_to_string(&txt).unwrap();
    assert!(
        t.contains("Votre code d'activation (à usage unique)"),
        "{t}"
    );
    assert!(t.contains(&code_c), "{t}");
    assert!(
        t.contains("/opposition") && t.contains("Céline Durand"),
        "{t}"
    );

    let queue = text(&hub.cli(&["queue", "list"], "").stdout);
    assert!(queue.contains("<beatrice@operateur.example>"), "{queue}");

    // Re-import: nothing changes.
    let again = text(
        &hub.cli(
            &[
                "account",
                "import",
                roster.to_str().unwrap(),
                "--now",
                &now(1),
            ],
            "",
        )
        .stdout,
    );
    assert!(
        again.contains("7 lines: 0 created (pending), 3 unchanged, 4 refused; 0 letters"),
        "{again}"
    );

    // The operator records B's opposition; mail to B is then refused with a clear reply.
    let opposed = text(
        &hub.cli(&["account", "oppose", &ins(2), "--now", &now(2)], "")
            .stdout,
    );
    assert!(opposed.contains("opposed"), "{opposed}");
    let refused = send(&hub, &address(2), "Pour B");
    assert!(refused.starts_with("REFUSED 550"), "{refused}");
    assert!(
        refused.contains("5.1.1") && refused.contains("opposed"),
        "{refused}"
    );
    // Mail to C, pending, is accepted and waits.
    let sent = send(&hub, &address(3), "Resultats pour Celine");
    assert!(sent.contains("SENT"), "{sent}");
    let pdf_mail = work.path().join("pdf.eml");
    let sent = text(
        &send_py(&[
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
            &address(3),
            "--build-pdf",
            pdf_mail.to_str().unwrap(),
        ])
        .stdout,
    );
    assert!(sent.contains("SENT"), "{sent}");

    // C activates through the web.
    let port = hub.https_port();
    let jar = work.path().join("cookies");
    let (status, _, form) = curl_form(&hub.ca, port, &jar, "/activation", None);
    assert_eq!(status, 200);
    let birth = "1984-05-14";
    let (status, headers, body) = curl_form(
        &hub.ca,
        port,
        &jar,
        "/activation",
        Some(&[
            ("_csrf", &csrf(&form)),
            ("ins", &ins(3)),
            ("birth_date", birth),
            ("code", &code_c),
            ("password", "un mot de passe assez long"),
            ("password_again", "un mot de passe assez long"),
        ]),
    );
    assert_eq!(status, 303, "{headers}{body}");
    let (status, _, inbox) = curl_form(&hub.ca, port, &jar, "/", None);
    assert_eq!(status, 200);
    assert!(inbox.contains("Resultats pour Celine"), "{inbox}");
    // The document filed while pending is in the vault.
    let filed = poll(Duration::from_secs(10), Duration::from_millis(200), || {
        curl_form(&hub.ca, port, &jar, "/documents", None)
            .2
            .contains("compte-rendu")
    });
    assert!(
        filed,
        "the PDF sent while pending is not in the Documents page"
    );

    // The deadline passes: A (no answer) opens, B stays opposed.
    let ticked = text(&hub.cli(&["account", "tick", "--now", &now(30)], "").stdout);
    assert!(ticked.contains("1 spaces opened, 0 destroyed"), "{ticked}");

    // C closes, reopens within the delay, closes again; destroyed after 90 days.
    hub.cli(&["account", "close", &ins(3), "--now", &now(32)], "");
    let refused = send(&hub, &address(3), "Apres fermeture");
    assert!(
        refused.starts_with("REFUSED 550") && refused.contains("closed"),
        "{refused}"
    );
    hub.cli(&["account", "reopen", &ins(3), "--now", &now(40)], "");
    hub.cli(&["account", "close", &address(3), "--now", &now(41)], "");
    let early = text(
        &hub.cli(&["account", "tick", "--now", &now(41 + 89)], "")
            .stdout,
    );
    assert!(early.contains("0 destroyed"), "{early}");
    let late = text(
        &hub.cli(&["account", "tick", "--now", &now(41 + 90)], "")
            .stdout,
    );
    assert!(late.contains("1 destroyed"), "{late}");
    let list = text(&hub.cli(&["account", "list"], "").stdout);
    let line_of = |n: u32| {
        list.lines()
            .find(|l| l.starts_with(&address(n)))
            .unwrap_or_else(|| panic!("{} not listed:\n{list}", address(n)))
            .to_string()
    };
    assert!(line_of(3).ends_with("[destroyed]"), "{list}");
    assert!(line_of(2).ends_with("[opposed]"), "{list}");

    hub.stop();
    let verified = text(&hub.cli(&["audit", "verify"], "").stdout);
    assert!(verified.contains("audit chain intact"), "{verified}");
    let (store, directory) = hub.open_store();
    let c = directory
        .account_by_address(&Address::try_from(address(3).as_str()).unwrap())
        .unwrap()
        .unwrap();
    assert!(matches!(c.lifecycle, Lifecycle::Destroyed { .. }));
    assert!(store.mailboxes(c.id).unwrap().is_empty());
    assert!(!store.has_account_key(c.id).unwrap());
    // No vault record of C is left, by index or by owner.
    let vault_index = store
        .kv()
        .scan(Tree("vault-patient-document"), &c.id.to_key(), None, None)
        .unwrap();
    assert!(vault_index.is_empty());
    let documents = store
        .kv()
        .scan(Tree("vault-document"), &[], None, None)
        .unwrap();
    assert!(documents
        .iter()
        .all(|(_, v)| !v.starts_with(&c.id.to_key())));
    let actions: Vec<String> = store
        .audit_records(0, 100_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.subject == address(3))
        .map(|r| r.event.action)
        .collect();
    assert_eq!(
        actions,
        [
            "account.create",
            "space.activate",
            "space.close",
            "space.reopen",
            "space.close",
            "space.destroy"
        ]
    );
    let a = directory
        .account_by_address(&Address::try_from(address(1).as_str()).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(a.lifecycle, Lifecycle::Active);
}
