//! E-prescriptions end to end: a doctor sends an `ordonnance.json` by SMTP (Python smtplib,
//! AUTH); the patient fetches the PDF copy from the web inbox (curl); poppler's `pdftoppm`
//! renders it and zxing-cpp decodes its QR code; a pharmacist opens the decoded URL with curl
//! (cookies, CSRF token from the form) and dispenses partially, then fully; a further scan, a
//! tampered URL and a nurse are refused; the patient's page shows the dispensing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::browser_run::{artifacts_dir, require_browser_tools, run_script};
use crate::support::*;

const PHARMACIST: (&str, &str) = ("pharmacie.centrale@hopital.mshub.test", "officine-2026!");
const NURSE: (&str, &str) = ("ines.leroy@hopital.mshub.test", "a-long-password");

/// A hub from `mshub demo` whose HTTPS port is known before it starts: the QR code's URL
/// (`[prescription] public_url`) must name it.
fn hub_with_known_https_port() -> (Instance, u16, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    std::fs::create_dir_all(&dir).unwrap();
    let https = free_port();
    let config = dir.join("mshub.toml");
    std::fs::write(
        &config,
        format!(
            r#"hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "master.key"
local_domains = ["hopital.mshub.test"]
[listen]
smtp_relay = "127.0.0.1:0"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
https = "127.0.0.1:{https}"
admin = "127.0.0.1:0"
[prescription]
public_url = "https://127.0.0.1:{https}"
"#
        ),
    )
    .unwrap();
    let mut hub = Instance::new(
        &dir,
        config,
        "mshub.test",
        dir.join("tls/cert.pem"),
        vec!["demo".into(), "--data".into(), dir.to_str().unwrap().into()],
    );
    hub.start();
    (hub, https, tmp)
}

fn add_professional(
    hub: &Instance,
    who: (&str, &str),
    rpps: &str,
    given: &str,
    family: &str,
    profession: &str,
) {
    let config = hub.config.to_str().unwrap();
    let out = run(
        &[
            "--config",
            config,
            "account",
            "add",
            who.0,
            "professional",
            "--rpps",
            rpps,
            "--given-name",
            given,
            "--family-name",
            family,
            "--profession",
            profession,
            "--password-stdin",
        ],
        &format!("{}\n", who.1),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A browser made of curl and a cookie jar: no redirect followed, every status seen.
struct Web {
    ca: PathBuf,
    port: u16,
    jar: tempfile::TempDir,
}

impl Web {
    fn new(ca: &Path, port: u16) -> Self {
        Self {
            ca: ca.to_path_buf(),
            port,
            jar: tempfile::tempdir().unwrap(),
        }
    }

    /// GET (`form` None) or form POST of `path_or_url` on the hub.
    fn request(&self, path_or_url: &str, form: Option<&[(&str, &str)]>) -> HttpReply {
        let out_dir = tempfile::tempdir().unwrap();
        let headers = out_dir.path().join("headers");
        let body = out_dir.path().join("body");
        let url = if path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("https://127.0.0.1:{}{path_or_url}", self.port)
        };
        let jar = self.jar.path().join("cookies");
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
            .arg(&self.ca)
            .arg("--cookie")
            .arg(&jar)
            .arg("--cookie-jar")
            .arg(&jar)
            .arg("--dump-header")
            .arg(&headers)
            .arg("--output")
            .arg(&body)
            .args(["--write-out", "%{http_code}"]);
        for (name, value) in form.unwrap_or_default() {
            cmd.arg("--data-urlencode").arg(format!("{name}={value}"));
        }
        let out = cmd
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
        HttpReply {
            status: text(&out.stdout).trim().parse().expect("an HTTP status"),
            headers: std::fs::read_to_string(&headers)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect(),
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    fn get(&self, path: &str) -> HttpReply {
        self.request(path, None)
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> HttpReply {
        self.request(path, Some(form))
    }

    /// Logs in through the login page (its cookie and CSRF token), then goes to `next`.
    fn login(&self, who: (&str, &str), next: &str) -> HttpReply {
        let query = if next.is_empty() {
            String::new()
        } else {
            format!("?{}", serde_urlencoded_pair("next", next))
        };
        let form = self.get(&format!("/login{query}"));
        assert_eq!(form.status, 200, "{}", text(&form.body));
        let done = self.post(
            "/login",
            &[
                ("_csrf", &field(&form, "_csrf")),
                ("next", next),
                ("login", who.0),
                ("password", who.1),
            ],
        );
        assert_eq!(done.status, 303, "{}", text(&done.body));
        done
    }
}

fn serde_urlencoded_pair(name: &str, value: &str) -> String {
    let enc: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{name}={enc}")
}

/// The `value` of the first field named `name` in a page.
fn field(reply: &HttpReply, name: &str) -> String {
    let page = text(&reply.body);
    let needle = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&needle)
        .unwrap_or_else(|| panic!("no field {name} in {page}"));
    let rest = &page[at + needle.len()..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
}

fn order_message(today: &str, rpps: &str, subject: &str) -> Vec<u8> {
    let order = format!(
        r#"{{"version":1,"prescriber":{{"rpps":"{rpps}"}},"patient":{{"ins":"284057511204339"}},
"date":"{today}","validity_days":90,"lines":[
 {{"drug":"Amoxicilline 1 g, comprimé pelliculé","dose":"1 comprimé matin et soir","duration":"7 jours","quantity":2,"renewals":0}},
 {{"drug":"Paracétamol 500 mg, gélule","dose":"1 à 2 gélules si douleur, 6 par jour au plus","duration":"1 mois","quantity":1,"renewals":1}}
]}}"#
    );
    format!(
        "From: Dr Jean Martin <{martin}>\r\nTo: <{camille}>\r\nSubject: {subject}\r\n\
         Date: Thu, 26 Nov 2026 09:00:00 +0000\r\nMessage-ID: <{rpps}-e2e@hopital.mshub.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
         --sep\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Bonjour, voici votre ordonnance.\r\n\
         --sep\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Disposition: attachment; filename=\"ordonnance.json\"\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{order}\r\n--sep--\r\n",
        martin = MARTIN.0,
        camille = CAMILLE.0,
        order = order.replace('\n', "\r\n"),
    )
    .into_bytes()
}

/// Today in UTC, as the prescriber's software dates a prescription.
fn today() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

/// Dr Martin sends an `ordonnance.json` naming `rpps` to Camille with smtplib (TLS, AUTH).
fn send_order(hub: &Instance, rpps: &str, subject: &str) {
    submit(
        hub,
        MARTIN,
        CAMILLE.0,
        &order_message(&today(), rpps, subject),
    );
}

/// The path of the message of Camille's inbox with this subject, once it is there.
fn message_path(patient: &Web, subject: &str) -> String {
    let mut path = String::new();
    assert!(
        poll(Duration::from_secs(30), Duration::from_millis(300), || {
            let inbox = text(&patient.get("/").body);
            let Some(at) = inbox.find(&format!(">{subject}<")) else {
                return false;
            };
            let Some(href) = inbox[..at].rfind("href=\"/m/") else {
                return false;
            };
            let rest = &inbox[href + 6..];
            path = rest[..rest.find('"').unwrap()].to_string();
            true
        }),
        "no message {subject:?} in the inbox"
    );
    path
}

/// Dr Martin sends the prescription; the patient signs in, finds it, and fetches its PDF copy,
/// whose QR code poppler renders and zxing-cpp decodes. The patient's browser, the id, the URL.
fn issue_and_decode(hub: &Instance, https: u16) -> (Web, String, String) {
    // The doctor sends the prescription with smtplib, over TLS, with AUTH.
    send_order(hub, "10003456786", "Votre ordonnance");

    // The patient finds it in the web inbox and downloads the PDF copy.
    let patient = Web::new(&hub.ca, https);
    patient.login(CAMILLE, "");
    let mut id = String::new();
    assert!(
        poll(Duration::from_secs(30), Duration::from_millis(300), || {
            let list = text(&patient.get("/ordonnances").body);
            match list.find("href=\"/ordonnances/") {
                Some(at) => {
                    id = list[at + 19..at + 35].to_string();
                    true
                }
                None => false,
            }
        }),
        "the prescription never appeared on the patient's page"
    );
    let pdf = patient.get(&format!("/ordonnances/{id}/pdf"));
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    // The message says what was filed.
    let message = text(
        &patient
            .get(&message_path(&patient, "Votre ordonnance"))
            .body,
    );
    assert!(
        message.contains(&format!("Ordonnance : ordonnance sécurisée n° {id} émise")),
        "{message}"
    );
    // The same copy is in the vault, category prescriptions.
    let documents = text(&patient.get("/documents").body);
    assert!(documents.contains("Ordonnance du"), "{documents}");

    // poppler renders it; zxing-cpp decodes the QR code.
    let work = tempfile::tempdir().unwrap();
    let pdf_path = work.path().join("ordonnance.pdf");
    std::fs::write(&pdf_path, &pdf.body).unwrap();
    let rendered = Command::new("pdftoppm")
        .args(["-r", "150", "-gray", "-f", "1", "-l", "1"])
        .arg(&pdf_path)
        .arg(work.path().join("page"))
        .status()
        .expect("pdftoppm (poppler-utils) runs");
    assert!(rendered.success());
    let page = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pgm"))
        .expect("a rendered page");
    let decoded = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/py/decode_qr.py"
        ))
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        decoded.status.success(),
        "no QR code found: {}",
        text(&decoded.stderr)
    );
    let url = text(&decoded.stdout).trim().to_string();
    let prefix = format!("https://127.0.0.1:{https}/ordonnance/{id}?h=");
    assert!(url.starts_with(&prefix), "{url}");
    assert!(url.len() <= 300, "{} characters", url.len());
    (patient, id, url)
}

#[test]
fn a_refused_prescription_is_delivered_with_the_reason() {
    let (hub, https, _tmp) = hub_with_known_https_port();
    // Another doctor's RPPS than the authenticated sender's.
    send_order(&hub, "10000000017", "Ordonnance au mauvais RPPS");
    let patient = Web::new(&hub.ca, https);
    patient.login(CAMILLE, "");
    let path = message_path(&patient, "Ordonnance au mauvais RPPS");
    let mut page = String::new();
    assert!(
        poll(Duration::from_secs(20), Duration::from_millis(300), || {
            page = text(&patient.get(&path).body);
            page.contains("Ordonnance : non classé")
        }),
        "no filing outcome on the message: {page}"
    );
    assert!(
        page.contains("le RPPS de l&#39;ordonnance (10000000017) n&#39;est pas celui de l&#39;expéditeur authentifié")
            || page.contains("le RPPS de l'ordonnance (10000000017) n'est pas celui de l'expéditeur authentifié"),
        "{page}"
    );
    assert!(
        page.contains("Bonjour, voici votre ordonnance."),
        "the message itself is there"
    );
    let list = text(&patient.get("/ordonnances").body);
    assert!(
        list.contains("pas encore reçu d'ordonnance")
            || list.contains("pas encore reçu d&#39;ordonnance"),
        "{list}"
    );
}

#[test]
fn a_prescription_sent_by_smtp_is_scanned_from_its_pdf_and_dispensed_by_a_pharmacist() {
    let (mut hub, https, _tmp) = hub_with_known_https_port();
    add_professional(
        &hub,
        PHARMACIST,
        "10000000017",
        "Sophie",
        "Lambert",
        "pharmacist",
    );
    add_professional(&hub, NURSE, "10000000009", "Inès", "Leroy", "nurse");

    let (patient, id, url) = issue_and_decode(&hub, https);
    let prefix = format!("https://127.0.0.1:{https}/ordonnance/{id}?h=");
    let path = url[format!("https://127.0.0.1:{https}").len()..].to_string();

    // The pharmacist opens the decoded URL: login first, then back to it.
    let pharmacist = Web::new(&hub.ca, https);
    let first = pharmacist.get(&url);
    assert_eq!(first.status, 303);
    assert!(first
        .header("location")
        .unwrap()
        .starts_with("/login?next="));
    let done = pharmacist.login(PHARMACIST, &path);
    assert_eq!(done.header("location"), Some(path.as_str()));
    let form = pharmacist.get(&url);
    assert_eq!(form.status, 200, "{}", text(&form.body));
    assert!(text(&form.body).contains("Ordonnance authentique"));
    assert!(text(&form.body).contains("Amoxicilline 1 g, comprimé pelliculé"));
    let csrf = field(&form, "_csrf");
    let (h, s) = (field(&form, "h"), field(&form, "s"));
    let post = format!("/ordonnance/{id}");

    // Partial: one box of amoxicillin of two, and the paracetamol's first dispensing.
    let r = pharmacist.post(
        &post,
        &[
            ("_csrf", &csrf),
            ("h", &h),
            ("s", &s),
            ("version", "0"),
            ("q0", "1"),
            ("c1", "1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(text(&r.body).contains("Il reste à délivrer"));
    // Full: the second box and the paracetamol's renewal.
    let form = pharmacist.get(&url);
    assert_eq!(field(&form, "version"), "1");
    let r = pharmacist.post(
        &post,
        &[
            ("_csrf", &csrf),
            ("h", &h),
            ("s", &s),
            ("version", "1"),
            ("c0", "1"),
            ("c1", "1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(text(&r.body).contains("entièrement délivrée"));
    // A further scan is refused as fully dispensed.
    let again = pharmacist.get(&url);
    assert_eq!(again.status, 410);
    assert!(text(&again.body).contains("ordonnance entièrement délivrée"));

    // One character of the signature, or of the id, changed: refused as forged.
    let sig_at = url.len() - 3;
    let swap = |c: &str| if c == "A" { "B" } else { "A" };
    let tampered_sig = format!(
        "{}{}{}",
        &url[..sig_at],
        swap(&url[sig_at..sig_at + 1]),
        &url[sig_at + 1..]
    );
    let r = pharmacist.get(&tampered_sig);
    assert_eq!(r.status, 403);
    assert!(
        text(&r.body).contains("ordonnance falsifiée"),
        "{}",
        text(&r.body)
    );
    let id_at = prefix.len() - 4;
    let tampered_id = format!(
        "{}{}{}",
        &url[..id_at],
        swap(&url[id_at..id_at + 1]),
        &url[id_at + 1..]
    );
    let r = pharmacist.get(&tampered_id);
    assert_eq!(r.status, 403);
    assert!(text(&r.body).contains("falsifiée"));

    // A nurse who signs in through the link is refused.
    let nurse = Web::new(&hub.ca, https);
    nurse.login(NURSE, &path);
    let r = nurse.get(&url);
    assert_eq!(r.status, 403);
    assert!(text(&r.body).contains("réservé aux pharmaciens"));

    // The patient's page shows what was dispensed, when and by whom.
    let page = text(&patient.get(&format!("/ordonnances/{id}")).body);
    assert!(page.contains("Sophie Lambert"), "{page}");
    assert!(page.contains("renouvellement n° 1"), "{page}");
    assert!(page.contains("délivrance partielle"));
    assert!(page.contains("entièrement délivrée"));

    // Issue, every scan and every dispensing are in an intact audit chain.
    hub.stop();
    let (store, _) = hub.open_store();
    let audit = store.audit_records(0, 100_000).unwrap();
    let of = |action: &str| -> Vec<String> {
        audit
            .iter()
            .filter(|r| r.event.action == action)
            .map(|r| format!("{} {}", r.event.actor, r.event.detail))
            .collect()
    };
    assert_eq!(of("prescription.issue").len(), 1);
    assert!(of("prescription.issue")[0].starts_with(MARTIN.0));
    let scans = of("prescription.scan");
    for expected in [
        format!("{} outcome:ok", PHARMACIST.0),
        format!("{} outcome:fully-dispensed", PHARMACIST.0),
        format!("{} outcome:forged", PHARMACIST.0),
        format!("{} outcome:not-pharmacist", NURSE.0),
    ] {
        assert!(scans.contains(&expected), "{expected} not in {scans:?}");
    }
    assert_eq!(of("prescription.dispense").len(), 2);
    assert!(audit
        .iter()
        .all(|r| !r.event.detail.contains("Amoxicilline")));
    store.verify_audit().unwrap();
}

/// The same, with the pharmacist in headless Chromium (tests/e2e/browser/prescription.mjs:
/// sign-in from the QR code's URL, a typed quantity and a ticked box, axe-core, CSP). Needs
/// Debian's chromium, node and the npm packages of tests/e2e/browser (`scripts/install-deps
/// --tests`); missing ones fail the test, never skip it.
#[test]
fn a_pharmacist_records_a_dispensing_in_a_browser() {
    require_browser_tools();
    let (hub, https, _tmp) = hub_with_known_https_port();
    add_professional(
        &hub,
        PHARMACIST,
        "10000000017",
        "Sophie",
        "Lambert",
        "pharmacist",
    );
    let (patient, id, url) = issue_and_decode(&hub, https);
    let shots = artifacts_dir("prescription");
    let (ok, stdout, stderr) = run_script(
        "prescription.mjs",
        &[
            url.as_str(),
            PHARMACIST.0,
            PHARMACIST.1,
            shots.to_str().unwrap(),
        ],
        Duration::from_secs(180),
    );
    assert!(ok, "the browser run failed:\n{stdout}\n{stderr}");
    let page = text(&patient.get(&format!("/ordonnances/{id}")).body);
    assert!(page.contains("Sophie Lambert"), "{page}");
    assert!(page.contains("partiellement délivrée"), "{page}");
}

#[test]
fn a_prescription_under_another_name_is_read_and_every_problem_reported() {
    let (hub, https, _tmp) = hub_with_known_https_port();
    let raw = String::from_utf8(order_message(
        &today(),
        "10003456786",
        "Ordonnance à corriger",
    ))
    .unwrap()
    .replace(
        "filename=\"ordonnance.json\"",
        "filename=\"Ordonnance_Dupont (1).json\"",
    )
    .replace("\"quantity\":2", "\"quantity\":-1")
    .replace("\"ins\":\"284057511204339\"", "\"nir\":\"284057511204339\"");
    submit(&hub, MARTIN, CAMILLE.0, raw.as_bytes());
    let patient = Web::new(&hub.ca, https);
    patient.login(CAMILLE, "");
    let path = message_path(&patient, "Ordonnance à corriger");
    let mut page = String::new();
    assert!(
        poll(Duration::from_secs(20), Duration::from_millis(300), || {
            page = text(&patient.get(&path).body).replace("&#39;", "'");
            page.contains("Ordonnance : non classé")
        }),
        "no filing outcome on the message: {page}"
    );
    for expected in [
        "3 problèmes",
        "champ « patient.nir » inconnu",
        "champ « patient.ins » manquant",
        "« lines[0].quantity » (ligne 1) doit être un nombre entier de 1 à 99, trouvé « -1 »",
        "(lue dans « Ordonnance_Dupont (1).json »)",
    ] {
        assert!(page.contains(expected), "{expected:?} missing from {page}");
    }
}
