//! Care relationships (DESIGN §4 "Vault visibility"), end to end over HTTPS with curl and real
//! SMTP clients: a professional reads a patient's documents only for what it (or its
//! organisation) sent, or within a care relationship — named by the patient on her page
//! "Accès des professionnels", wrote to her, granted access, or emergency access with a reason
//! she is told at once — and then only the categories its profession and specialty see. The
//! patient blocks, unblocks, ends, forbids emergency access; a delegate's live event stream
//! ends when she revokes the delegation.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mshub_store::AuditRecord;

use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";

/// A general practitioner in Lyon with no tie to Camille.
const LEGRAND: (&str, &str) = ("sophie.legrand@hopital.mshub.test", "legrand-e2e-pw");
const LEGRAND_PERSON: [&str; 6] = [
    "Sophie",
    "Legrand",
    "physician",
    "médecine générale",
    "Lyon",
    "10000010016",
];
/// A radiologist: specialty "radiologie" (Radio-diagnostic, SM44), no certificates.
const ROUX: (&str, &str) = ("paul.roux@hopital.mshub.test", "roux-e2e-pw-long");
const ROUX_PERSON: [&str; 6] = [
    "Paul",
    "Roux",
    "physician",
    "radiologie",
    "Bordeaux",
    "10000010024",
];
/// An emergency physician who asks for emergency access.
const URGENTISTE: (&str, &str) = ("marc.urgentiste@hopital.mshub.test", "urgences-e2e-pw");
const URGENTISTE_PERSON: [&str; 6] = [
    "Marc",
    "Urgentiste",
    "physician",
    "médecine d'urgence",
    "Lille",
    "10000010032",
];
/// A laboratory's member: a lab technician.
const TECH: (&str, &str) = ("hugo.petit@hopital.mshub.test", "tech-e2e-pw-long");
const TECH_PERSON: [&str; 6] = [
    "Hugo",
    "Petit",
    "lab-technician",
    "",
    "Nantes",
    "10000010040",
];
/// A laboratory's system whose mailbox has a member (the demo's labo has none, and the CLI
/// names an organisation's members only when creating it).
const BIOLAB: (&str, &str) = ("biolab@hopital.mshub.test", "biolab-e2e-pw");
/// Camille's mother, a patient, to whom Camille delegates her space.
const HELENE: (&str, &str) = ("255081416802538@patient.mshub.test", "helene-e2e-pw");

/// The demo with these professionals added (`account add`, hub stopped then restarted);
/// returns the HTTPS port.
fn hub_with(hub: &mut Instance, professionals: &[((&str, &str), [&str; 6])]) -> u16 {
    hub.stop();
    for (who, person) in professionals {
        add_professional(hub, *who, *person);
    }
    hub.start();
    hub.https_port()
}

fn list_path() -> String {
    format!("/api/v1/patients/{CAMILLE_INS}/documents")
}

/// Camille's documents as the API lists them to `who`: the reply, whatever its status.
fn list(hub: &Instance, port: u16, who: (&str, &str)) -> HttpReply {
    curl(&hub.ca, port, &list_path(), Some(who))
}

/// The (title, id) pairs of a 200 list.
fn titles(reply: &HttpReply) -> Vec<(String, String)> {
    assert_eq!(reply.status, 200, "{reply:?}\n{}", text(&reply.body));
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

fn fetch(hub: &Instance, port: u16, who: (&str, &str), id: &str) -> HttpReply {
    curl(&hub.ca, port, &format!("/api/v1/documents/{id}"), Some(who))
}

/// A 403 of the API with this error code, its reason in French then English.
fn assert_refused(reply: &HttpReply, error: &str) {
    assert_eq!(reply.status, 403, "{reply:?}\n{}", text(&reply.body));
    let json = reply.json();
    assert_eq!(json["error"], error, "{json}");
    let reason = json["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(" — "), "not French — English: {json}");
}

/// Waits until `who` (who reads Camille's space) lists every title of `wanted`; returns the
/// ids by title.
fn filed(hub: &Instance, port: u16, who: (&str, &str), wanted: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    let all = poll(Duration::from_secs(30), Duration::from_millis(300), || {
        seen = titles(&list(hub, port, who));
        wanted.iter().all(|w| seen.iter().any(|(t, _)| t == w))
    });
    assert!(all, "not all of {wanted:?} filed within 30 s: {seen:?}");
    wanted
        .iter()
        .map(|w| seen.iter().find(|(t, _)| t == w).unwrap().1.clone())
        .collect()
}

/// The audit chain of the stopped hub.
fn audit(hub: &Instance) -> Vec<AuditRecord> {
    let (store, _) = hub.open_store();
    store.verify_audit().unwrap();
    store.audit_records(0, 100_000).unwrap()
}

/// The audit chain's subject for a document named by its API id (the hub is stopped).
fn subject_of(hub: &Instance, id: &str) -> String {
    let (store, directory) = hub.open_store();
    let vault = mshub_vault::Vault::new(store, std::sync::Arc::new(directory));
    let number = vault
        .resolve(&mshub_vault::DocumentRef::try_from(id).unwrap())
        .unwrap()
        .expect("the API's id names a document");
    format!("document:{number}")
}

fn has_record(
    records: &[AuditRecord],
    action: &str,
    actor: &str,
    check: impl Fn(&AuditRecord) -> bool,
) -> bool {
    records
        .iter()
        .any(|r| r.event.action == action && r.event.actor == actor && check(r))
}

/// `POST` of a JSON body to the professionals' API with HTTP Basic.
fn api_post(hub: &Instance, port: u16, path: &str, who: (&str, &str), body: &str) -> HttpReply {
    let out_dir = tempfile::tempdir().unwrap();
    let (headers, out) = (out_dir.path().join("h"), out_dir.path().join("b"));
    let run = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
        .arg(&hub.ca)
        .args(["--user", &format!("{}:{}", who.0, who.1)])
        .args(["--header", "Content-Type: application/json"])
        .args(["--data-raw", body])
        .arg("--dump-header")
        .arg(&headers)
        .arg("--output")
        .arg(&out)
        .args(["--write-out", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    assert!(run.status.success(), "curl failed: {}", text(&run.stderr));
    HttpReply {
        status: text(&run.stdout).trim().parse().expect("an HTTP status"),
        headers: std::fs::read_to_string(&headers)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body: std::fs::read(&out).unwrap_or_default(),
    }
}

fn emergency(hub: &Instance, port: u16, who: (&str, &str), reason: &str) -> HttpReply {
    let body = serde_json::json!({ "reason": reason }).to_string();
    api_post(
        hub,
        port,
        &format!("/api/v1/patients/{CAMILLE_INS}/emergency-access"),
        who,
        &body,
    )
}

/// The message of `who`'s INBOX whose decoded Subject is `subject`, read with imaplib over
/// implicit TLS (read-only): `{"subject", "body"}`.
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
                print(json.dumps({"subject": str(msg["Subject"]), "body": body.get_content()}))
                sys.exit(0)
    if time.monotonic() > deadline:
        print(f"no message with the subject {subject!r} in the INBOX of {user}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
"#;

fn find_in_inbox(hub: &mut Instance, who: (&str, &str), subject: &str) -> serde_json::Value {
    let (_, imaps) = hub.imap_ports();
    let out = Command::new("python3")
        .args(["-c", FIND_PY])
        .args([
            &imaps.to_string(),
            hub.ca.to_str().unwrap(),
            who.0,
            who.1,
            subject,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "imaplib in {}'s INBOX:\n{}{}",
        who.0,
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

// ----- Scenarios -----

#[test]
fn an_unrelated_physician_is_refused_the_list_and_a_document_and_it_is_audited() {
    let mut hub = Instance::demo();
    let port = hub_with(&mut hub, &[(LEGRAND, LEGRAND_PERSON)]);
    relay_xdm(
        &hub,
        "bilan.zip",
        "11502-2",
        "Bilan sanguin",
        "BIO-MARKER-c01",
    );
    // dr.martin wrote to Camille: he reads her space, and gives the document's id.
    writes_to_camille(&hub, port, MARTIN);
    let [id] = filed(&hub, port, MARTIN, &["Bilan sanguin"])
        .try_into()
        .unwrap();
    assert_eq!(fetch(&hub, port, MARTIN, &id).status, 200);

    // The same profession, the same specialty, no relationship: refused both.
    assert_refused(&list(&hub, port, LEGRAND), "no-care-relationship");
    let refused = fetch(&hub, port, LEGRAND, &id);
    assert_refused(&refused, "no-care-relationship");
    assert!(!contains(&refused.body, "BIO-MARKER-c01"));

    hub.stop();
    let subject = subject_of(&hub, &id);
    let records = audit(&hub);
    assert!(
        has_record(&records, "document.list.denied", LEGRAND.0, |r| r
            .event
            .detail
            .contains("ground:no-relationship")),
        "no document.list.denied record for the refused list"
    );
    assert!(
        has_record(&records, "document.read.denied", LEGRAND.0, |r| r
            .event
            .subject
            == subject
            && r.event.detail.contains("ground:no-relationship")),
        "no document.read.denied record for the refused fetch"
    );
    assert!(
        !has_record(&records, "document.read", LEGRAND.0, |_| true),
        "a read by the unrelated physician is in the audit chain"
    );
}

#[test]
fn a_labs_member_reads_the_labs_result_and_nothing_else() {
    let mut hub = Instance::demo();
    hub.stop();
    add_professional(&hub, TECH, TECH_PERSON);
    hub.cli(
        &[
            "account",
            "add",
            BIOLAB.0,
            "organisation",
            "--name",
            "Laboratoire Biolab",
            "--member",
            TECH.0,
            "--password-stdin",
        ],
        &format!("{}\n", BIOLAB.1),
    );
    hub.start();
    let port = hub.https_port();

    // The lab's system sends a result (AUTH as the lab's mailbox); dr.martin sends another
    // one, of the same category (a technician's profession sees lab results: only the ground
    // can refuse it).
    relay_xdm_as(
        &hub,
        BIOLAB,
        "biolab.zip",
        "11502-2",
        "Bilan du laboratoire",
        "LAB-MARKER-d02",
    );
    relay_xdm_as(
        &hub,
        MARTIN,
        "martin.zip",
        "11502-2",
        "Bilan prescrit en cabinet",
        "GP-MARKER-d03",
    );
    let [lab, martins] = filed(
        &hub,
        port,
        MARTIN,
        &["Bilan du laboratoire", "Bilan prescrit en cabinet"],
    )
    .try_into()
    .unwrap();

    // The member lists and reads what its organisation sent, nothing else: the lab's mailbox
    // wrote to Camille, which gives its members no more than the author ground.
    let seen = titles(&list(&hub, port, TECH));
    assert_eq!(
        seen.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["Bilan du laboratoire"],
        "{seen:?}"
    );
    let read = fetch(&hub, port, TECH, &lab);
    assert_eq!(read.status, 200, "{read:?}");
    assert!(contains(&read.body, "LAB-MARKER-d02"));
    let refused = fetch(&hub, port, TECH, &martins);
    assert_refused(&refused, "no-care-relationship");
    assert!(!contains(&refused.body, "GP-MARKER-d03"));

    hub.stop();
    let subject = subject_of(&hub, &lab);
    let records = audit(&hub);
    assert!(
        has_record(&records, "document.read", TECH.0, |r| r.event.subject
            == subject
            && r.event.detail.contains("ground:author")),
        "the member's read is not audited on the author ground"
    );
}

#[test]
fn a_physician_the_patient_names_reads_until_blocked_and_again_once_unblocked() {
    let mut hub = Instance::demo();
    let port = hub_with(&mut hub, &[(LEGRAND, LEGRAND_PERSON)]);
    relay_xdm(
        &hub,
        "bilan.zip",
        "11502-2",
        "Bilan sanguin",
        "BIO-MARKER-e04",
    );
    let camille = signed_in(&hub, port, CAMILLE);
    // Filed: Camille sees it on her page.
    let shown = poll(Duration::from_secs(30), Duration::from_millis(300), || {
        text(&camille.request("/documents", None).body).contains("Bilan sanguin")
    });
    assert!(shown, "the lab result was not filed");
    assert_refused(&list(&hub, port, LEGRAND), "no-care-relationship");

    // Camille finds her by name on "Accès des professionnels" and names her.
    name_professional(&camille, "legrand", "follow", &[]);
    let page = text(&camille.request("/documents/acces", None).body);
    let readers =
        &page[page.find(r#"id="h-readers""#).unwrap()..page.find(r#"id="h-add""#).unwrap()];
    assert!(
        readers.contains("Sophie Legrand") && readers.contains("professionnel qui vous suit"),
        "not listed among those who read:\n{readers}"
    );
    let [id] = filed(&hub, port, LEGRAND, &["Bilan sanguin"])
        .try_into()
        .unwrap();
    let read = fetch(&hub, port, LEGRAND, &id);
    assert_eq!(read.status, 200, "{read:?}");
    assert!(contains(&read.body, "BIO-MARKER-e04"));

    // Blocked: refused at once, the list and the document.
    assert_care_done(
        &care_entry_action(&camille, "Sophie Legrand", "block"),
        "block",
    );
    assert_refused(&list(&hub, port, LEGRAND), "blocked-by-patient");
    assert_refused(&fetch(&hub, port, LEGRAND, &id), "blocked-by-patient");

    // Unblocked: she reads again.
    assert_care_done(
        &care_entry_action(&camille, "Sophie Legrand", "unblock"),
        "unblock",
    );
    assert_eq!(titles(&list(&hub, port, LEGRAND)).len(), 1);
    assert_eq!(fetch(&hub, port, LEGRAND, &id).status, 200);

    // Removed from those who follow Camille: no relationship left.
    assert_care_done(&care_entry_action(&camille, "Sophie Legrand", "end"), "end");
    assert_refused(&list(&hub, port, LEGRAND), "no-care-relationship");
    assert_refused(&fetch(&hub, port, LEGRAND, &id), "no-care-relationship");
    hub.stop();
}

#[test]
fn emergency_access_needs_a_reason_is_told_to_the_patient_and_can_be_forbidden() {
    const REASON: &str = "Patiente inconsciente aux urgences, recherche de traitements en cours";
    let mut hub = Instance::demo();
    let port = hub_with(
        &mut hub,
        &[(URGENTISTE, URGENTISTE_PERSON), (LEGRAND, LEGRAND_PERSON)],
    );
    relay_xdm(
        &hub,
        "bilan.zip",
        "11502-2",
        "Bilan sanguin",
        "BIO-MARKER-f05",
    );
    let camille = signed_in(&hub, port, CAMILLE);
    let shown = poll(Duration::from_secs(30), Duration::from_millis(300), || {
        text(&camille.request("/documents", None).body).contains("Bilan sanguin")
    });
    assert!(shown, "the lab result was not filed");
    assert_refused(&list(&hub, port, URGENTISTE), "no-care-relationship");

    // Too short a reason: 400, and nothing opened.
    let short = emergency(&hub, port, URGENTISTE, "Chute");
    assert_eq!(short.status, 400, "{short:?}");
    assert_eq!(
        short.json()["error"],
        "invalid-reason",
        "{}",
        text(&short.body)
    );
    assert_refused(&list(&hub, port, URGENTISTE), "no-care-relationship");

    let opened = emergency(&hub, port, URGENTISTE, REASON);
    assert_eq!(opened.status, 201, "{opened:?}\n{}", text(&opened.body));
    let granted = opened.json();
    assert_eq!(granted["reason"], REASON, "{granted}");
    let (since, until) = (
        granted["since"].as_i64().unwrap(),
        granted["until"].as_i64().unwrap(),
    );
    assert_eq!(until - since, 24 * 3600, "{granted}");
    assert!(
        granted["until_utc"]
            .as_str()
            .is_some_and(|u| u.ends_with('Z')),
        "{granted}"
    );

    let [id] = filed(&hub, port, URGENTISTE, &["Bilan sanguin"])
        .try_into()
        .unwrap();
    let read = fetch(&hub, port, URGENTISTE, &id);
    assert_eq!(read.status, 200, "{read:?}");
    assert!(contains(&read.body, "BIO-MARKER-f05"));

    // Camille is told at once, in her INBOX (imaplib), who and why.
    let notice = find_in_inbox(&mut hub, CAMILLE, "Accès d'urgence à votre espace santé");
    let body = notice["body"].as_str().unwrap();
    assert!(
        body.contains("Marc Urgentiste") && body.contains(URGENTISTE.0),
        "the notice does not name the professional:\n{body}"
    );
    assert!(
        body.contains(REASON),
        "the notice lacks the reason:\n{body}"
    );

    // Her access history shows the emergency apart, with the reason.
    let history = text(&camille.request("/documents/history", None).body);
    let apart = history
        .find(r#"id="h-emergency""#)
        .map(|at| {
            &history[at..history[at..]
                .find("</section>")
                .map_or(history.len(), |e| at + e)]
        })
        .unwrap_or_else(|| panic!("no section \"Accès d'urgence\":\n{history}"));
    assert!(
        apart.starts_with(r#"id="h-emergency">Accès d'urgence</h2>"#),
        "{apart}"
    );
    assert!(apart.contains(REASON), "no reason in the section:\n{apart}");
    assert!(apart.contains("Marc Urgentiste"), "{apart}");
    assert!(
        apart.contains("Bilan sanguin"),
        "the read under emergency is not in the section:\n{apart}"
    );

    // Camille forbids emergency access: another professional is refused it.
    let page = camille.request("/documents/acces", None);
    assert_eq!(
        form_field(&text(&page.body), "/documents/acces/emergency", "allowed").as_deref(),
        Some("no")
    );
    assert_care_done(
        &care_post(&camille, "emergency", &[("allowed", "no")]),
        "emergency-forbidden",
    );
    let forbidden = emergency(&hub, port, LEGRAND, REASON);
    assert_refused(&forbidden, "emergency-access-forbidden");
    assert_refused(&list(&hub, port, LEGRAND), "no-care-relationship");

    hub.stop();
    let subject = subject_of(&hub, &id);
    let records = audit(&hub);
    assert!(
        has_record(&records, "document.read", URGENTISTE.0, |r| {
            r.event.subject == subject
                && r.event.detail.contains("ground:care:emergency")
                && r.event.detail.contains(&format!("reason:{REASON}"))
        }),
        "the read under emergency is not audited with its reason"
    );
    assert!(
        has_record(&records, "vault.emergency", URGENTISTE.0, |r| r
            .event
            .detail
            .contains(REASON)),
        "the opening is not audited with its reason"
    );
    assert!(
        has_record(&records, "vault.emergency.denied", LEGRAND.0, |r| r
            .event
            .detail
            .contains("ground:emergency-forbidden")),
        "the refused emergency access is not audited"
    );
}

#[test]
fn a_specialty_whose_row_excludes_a_category_is_refused_it_even_when_named() {
    let mut hub = Instance::demo();
    let port = hub_with(&mut hub, &[(ROUX, ROUX_PERSON), (LEGRAND, LEGRAND_PERSON)]);
    // dr.martin (who writes certificates) sends one; the lab sends a result.
    relay_xdm_as(
        &hub,
        MARTIN,
        "certificat.zip",
        "34895-3",
        "Certificat d'aptitude au sport",
        "CERT-MARKER-a06",
    );
    relay_xdm(
        &hub,
        "bilan.zip",
        "11502-2",
        "Bilan sanguin",
        "BIO-MARKER-a07",
    );
    let [certificate, result] = filed(
        &hub,
        port,
        MARTIN,
        &["Certificat d'aptitude au sport", "Bilan sanguin"],
    )
    .try_into()
    .unwrap();

    // Camille names both physicians among those who follow her.
    let camille = signed_in(&hub, port, CAMILLE);
    name_professional(&camille, "roux radiologie", "follow", &[]);
    name_professional(&camille, "legrand", "follow", &[]);

    // The general practitioner reads both; the radiologist's specialty row has no
    // certificates: not listed, and refused.
    let mut general: Vec<String> = titles(&list(&hub, port, LEGRAND))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    general.sort();
    assert_eq!(general, ["Bilan sanguin", "Certificat d'aptitude au sport"]);
    assert_eq!(fetch(&hub, port, LEGRAND, &certificate).status, 200);

    let radiologist = titles(&list(&hub, port, ROUX));
    assert_eq!(
        radiologist
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>(),
        ["Bilan sanguin"],
        "{radiologist:?}"
    );
    assert_eq!(fetch(&hub, port, ROUX, &result).status, 200);
    let refused = fetch(&hub, port, ROUX, &certificate);
    assert_refused(&refused, "access-denied");
    assert!(!contains(&refused.body, "CERT-MARKER-a06"));
    assert!(
        refused.json()["reason"]
            .as_str()
            .is_some_and(|r| r.contains("spécialité")),
        "{}",
        text(&refused.body)
    );

    hub.stop();
    let subject = subject_of(&hub, &certificate);
    let records = audit(&hub);
    assert!(
        has_record(&records, "document.read.denied", ROUX.0, |r| r
            .event
            .subject
            == subject
            && r.event.detail.contains("ground:matrix")),
        "the refusal by specialty is not audited"
    );
}

// ----- A delegate's live stream -----

/// The value of the hidden field `name` of the form posting to `action` on `path`, and the
/// page's CSRF token.
fn page_form(web: &CurlSession, path: &str, action: &str, name: &str) -> (String, String) {
    let page = web.request(path, None);
    assert_eq!(page.status, 200, "{page:?}");
    let html = text(&page.body);
    let value = form_field(&html, action, name)
        .unwrap_or_else(|| panic!("no form {action} with {name} on {path}:\n{html}"));
    (value, csrf_field(&page))
}

fn note(hub: &Instance, subject: &str) {
    submit(
        hub,
        MARTIN,
        CAMILLE.0,
        &message(
            MARTIN.0,
            CAMILLE.0,
            subject,
            &[],
            "Bonjour,\n\nA bientot.\n",
        ),
    );
}

#[test]
fn a_delegates_event_stream_ends_when_the_patient_revokes_the_delegation() {
    let mut hub = Instance::demo();
    hub.stop();
    hub.cli(
        &[
            "account",
            "add",
            HELENE.0,
            "patient",
            "--ins",
            HELENE.0.split('@').next().unwrap(),
            "--given-name",
            "Hélène",
            "--family-name",
            "Durand",
            "--birth-date",
            "1955-08-14",
            "--sex",
            "F",
            "--password-stdin",
        ],
        &format!("{}\n", HELENE.1),
    );
    hub.start();
    let port = hub.https_port();

    // Camille delegates reading to her mother, who opens Camille's space.
    let camille = signed_in(&hub, port, CAMILLE);
    let settings = camille.request("/settings", None);
    let delegated = camille.request(
        "/settings/delegations",
        Some(&[
            ("_csrf", &csrf_field(&settings)),
            ("address", HELENE.0),
            ("level", "read"),
        ]),
    );
    assert_eq!(
        delegated.header("location"),
        Some("/settings?done=delegated"),
        "{delegated:?}"
    );
    let helene = signed_in(&hub, port, HELENE);
    let (space, csrf) = page_form(&helene, "/settings", "/space", "space");
    let switched = helene.request("/space", Some(&[("_csrf", &csrf), ("space", &space)]));
    assert_eq!(switched.status, 303, "{switched:?}");
    assert!(
        text(&helene.request("/", None).body).contains("Vous consultez l'espace de"),
        "the delegate does not look at Camille's space"
    );

    // Her browser's live stream of Camille's INBOX.
    let mut stream = helene.stream("/events", Duration::from_secs(120));
    let (tx, lines) = mpsc::channel::<String>();
    let stdout = stream.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let wait_for = |what: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.trim_end().starts_with(what);
                    seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "the stream never said {what:?}; it said:\n{}",
            seen.join("\n")
        );
    };
    wait_for("HTTP/", &mut seen);
    assert!(seen[0].contains(" 200"), "{seen:?}");
    // The stream announces mail that arrives while the delegation holds.
    note(&hub, "Avant la revocation");
    wait_for("event: message", &mut seen);
    wait_for("data:", &mut seen);
    let announced_before = seen.len();

    // Camille revokes the delegation; mail keeps arriving.
    let (delegate, csrf) = page_form(
        &camille,
        "/settings",
        "/settings/delegations/revoke",
        "delegate",
    );
    let revoked = camille.request(
        "/settings/delegations/revoke",
        Some(&[("_csrf", &csrf), ("delegate", &delegate)]),
    );
    assert_eq!(
        revoked.header("location"),
        Some("/settings?done=revoked"),
        "{revoked:?}"
    );
    let revoked_at = Instant::now();
    note(&hub, "Apres la revocation");

    // The stream ends within the session check's period, having announced nothing more.
    let ended = poll(Duration::from_secs(10), Duration::from_millis(100), || {
        stream.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = stream.kill();
    }
    let status = stream.wait().unwrap();
    let after: Vec<String> = seen[announced_before..]
        .iter()
        .cloned()
        .chain(lines.try_iter())
        .collect();
    assert!(
        ended,
        "the delegate's stream still runs {:?} after the revocation; it said after the first \
         announcement:\n{}",
        revoked_at.elapsed(),
        after.join("\n")
    );
    assert!(status.success(), "curl: {status}");
    assert!(
        !after
            .iter()
            .any(|l| l.starts_with("event:") || l.starts_with("data:")),
        "the stream announced something after the revocation:\n{}",
        after.join("\n")
    );
    // And the delegate's session looks at Camille's space no more.
    let home = helene.request("/", None);
    assert!(
        !text(&home.body).contains("Vous consultez l'espace de"),
        "{home:?}"
    );
    hub.stop();
}
