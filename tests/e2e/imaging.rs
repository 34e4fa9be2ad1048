//! Imaging end to end: the lab system relays a DICOM study by SMTP (swaks) to the demo
//! patient, once inside an IHE XDM archive and once as plain attachments (with a truncated
//! file among them); the real hub files them; the professionals' API lists both studies; then
//! the patient opens the study in headless Chromium (tests/e2e/browser/imaging.mjs), steps
//! through the images, changes the window, downloads the study, and axe-core checks the study
//! and viewer pages. Screenshots go to `e2e-artifacts/imaging/` in the target directory.
//!
//! Needs pydicom (the DICOM writer), Debian's chromium, node and the npm packages of
//! tests/e2e/browser: all installed by `scripts/install-deps --tests`. Missing ones fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::browser_run::{artifacts_dir, require_browser_tools, run_script};
use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";

/// The fixtures of tests/fixtures/dicom, written by pydicom into `dir`.
fn make_dicom(dir: &Path) {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/dicom/make_dicom.py"
        ))
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "make_dicom.py failed (pydicom comes from scripts/install-deps --tests): {}",
        text(&out.stderr)
    );
}

/// The lab relays `attachments` (path, content type, name) to Camille with swaks.
fn relay(hub: &Instance, subject: &str, attachments: &[(PathBuf, &str, &str)]) {
    let relay = hub.ports.relay.to_string();
    let mut args: Vec<String> = [
        "--server",
        "127.0.0.1",
        "--port",
        &relay,
        "--tls",
        "--ehlo",
        "pacs.hopital.test",
        "--auth",
        "PLAIN",
        "--auth-user",
        LABO.0,
        "--auth-password",
        LABO.1,
        "--from",
        LABO.0,
        "--to",
        CAMILLE.0,
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        "Veuillez trouver ci-joint les images de votre examen.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (path, ctype, name) in attachments {
        args.extend([
            "--attach-type".to_string(),
            ctype.to_string(),
            "--attach-name".to_string(),
            name.to_string(),
            "--attach".to_string(),
            format!("@{}", path.display()),
        ]);
    }
    let out = Command::new("swaks")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs");
    let transcript = text(&out.stdout);
    assert!(
        transcript.contains("250 2.0.0 OK: queued as"),
        "{transcript}{}",
        text(&out.stderr)
    );
}

/// Camille's documents as dr.martin (her médecin traitant, a general practitioner: every
/// category) sees them.
fn titles(hub: &Instance, port: u16) -> Vec<(String, String, String)> {
    let reply = curl(
        &hub.ca,
        port,
        &format!("/api/v1/patients/{CAMILLE_INS}/documents"),
        Some(MARTIN),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["title"].as_str().unwrap_or_default().to_string(),
                d["id"].as_str().unwrap().to_string(),
                d.to_string(),
            )
        })
        .collect()
}

#[test]
fn a_lab_sends_a_dicom_study_and_the_patient_views_it_in_a_browser() {
    require_browser_tools();
    let shots = artifacts_dir("imaging");
    let mut hub = Instance::demo();
    let port = hub.https_port();
    // dr.martin reads Camille's space: she named him her médecin traitant on her page.
    name_professional(&signed_in(&hub, port, CAMILLE), MARTIN.0, "referring", &[]);
    let dicom = hub.dir.join("dicom");
    make_dicom(&dicom);

    // The CT series inside an XDM archive.
    let zip = hub.dir.join("IHE_XDM.ZIP");
    let made = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/py/make_dicom_xdm.py"
        ))
        .arg(&zip)
        .args([CAMILLE_INS, LABO.0])
        .args(["ct-1.dcm", "ct-2.dcm", "ct-3.dcm"].map(|f| dicom.join(f)))
        .status()
        .unwrap();
    assert!(made.success());
    relay(
        &hub,
        "Scanner thoracique",
        &[(zip, "application/zip", "IHE_XDM.ZIP")],
    );
    // Another study as plain attachments, with a truncated file the hub must refuse.
    relay(
        &hub,
        "Radio du poignet",
        &[
            (
                dicom.join("other-study.dcm"),
                "application/dicom",
                "poignet.dcm",
            ),
            (
                dicom.join("truncated.dcm"),
                "application/dicom",
                "abime.dcm",
            ),
        ],
    );

    let mut docs = Vec::new();
    let filed = poll(Duration::from_secs(60), Duration::from_millis(500), || {
        docs = titles(&hub, port);
        ["Scanner thoracique", "Radio de contrôle"]
            .iter()
            .all(|t| docs.iter().any(|(title, _, _)| title == t))
    });
    assert!(filed, "both studies filed within 60 s: {docs:?}");
    let (_, scanner, json) = docs
        .iter()
        .find(|(t, _, _)| t == "Scanner thoracique")
        .unwrap();
    assert!(json.contains("imagerie"), "{json}");
    // The professionals' API gives the study as the zip of its original files.
    let original = curl(
        &hub.ca,
        port,
        &format!("/api/v1/documents/{scanner}"),
        Some(MARTIN),
    );
    assert_eq!(original.status, 200);
    assert!(original.body.starts_with(b"PK\x03\x04"));
    let ct1 = std::fs::read(dicom.join("ct-1.dcm")).unwrap();
    assert!(original
        .body
        .windows(ct1.len())
        .any(|w| w == ct1.as_slice()));
    let base = format!("https://127.0.0.1:{port}");
    println!("browser screenshots: {}", shots.display());
    let (ok, stdout, stderr) = run_script(
        "imaging.mjs",
        &[&base, shots.to_str().unwrap()],
        Duration::from_secs(300),
    );
    println!("--- imaging.mjs stdout ---\n{stdout}--- imaging.mjs stderr ---\n{stderr}");
    assert!(
        ok,
        "the browser scenario failed (screenshots in {}):\n{stderr}",
        shots.display()
    );
    hub.stop();

    // The truncated file was refused, and the patient's notice says which and why.
    let notices: Vec<String> = hub.inbox(CAMILLE.0).iter().map(|m| text(m)).collect();
    assert!(
        notices
            .iter()
            .any(|m| m.contains("abime.dcm") && m.contains("tronqué")),
        "no notice names the refused file: {notices:#?}"
    );
}
