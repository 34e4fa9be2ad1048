//! Upgrades: a store written by an earlier release (`tests/fixtures/store-v1`) is opened by
//! this one and everything in it is found — accounts and their passwords, the message and its
//! filed document, the audit chain — and its record format version is this release's.

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_store_of_format_version_1_opens_with_all_it_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1"),
        &dir,
    );
    // A configuration of today (every listener on a free port), on yesterday's data.
    let config = write_test_demo_config(&dir);
    let config = config.to_str().unwrap();

    // Offline: the audit chain of the old store holds.
    let out = run(&["--config", config, "audit", "verify"], "");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let mut hub = Instance::new(
        &dir,
        dir.join("mshub.toml"),
        "mshub.test",
        dir.join("tls/cert.pem"),
        vec!["demo".into(), "--data".into(), dir.to_str().unwrap().into()],
    );
    hub.start();
    let https = hub.https_port();
    let (_, imaps) = hub.imap_ports();

    // The patient's password and message, over IMAP.
    let script = "import imaplib, ssl, sys\n\
        ctx = ssl.create_default_context(cafile=sys.argv[2])\n\
        c = imaplib.IMAP4_SSL('localhost', int(sys.argv[1]), ssl_context=ctx)\n\
        c.login('284057511204339@patient.mshub.test', 'demo-camille')\n\
        c.select('INBOX')\n\
        typ, data = c.search(None, 'SUBJECT', 'FIXTURE-V1')\n\
        n = data[0].split()[0]\n\
        typ, msg = c.fetch(n, '(BODY.PEEK[])')\n\
        print('FOUND' if b'compte-rendu.pdf' in msg[0][1] else 'NO ATTACHMENT')\n\
        c.logout()\n";
    let out = Command::new("python3")
        .args(["-c", script, &imaps.to_string()])
        .arg(&hub.ca)
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("FOUND"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // The filed document, through the professionals' API (Dr Martin wrote to the patient).
    let docs = curl(
        &hub.ca,
        https,
        "/api/v1/patients/284057511204339/documents",
        Some(("dr.martin@hopital.mshub.test", "demo-martin")),
    );
    assert_eq!(docs.status, 200, "{}", String::from_utf8_lossy(&docs.body));
    let list = docs.json();
    let doc = &list.as_array().unwrap()[0];
    assert_eq!(doc["title"], "compte-rendu.pdf");
    assert_eq!(doc["author"], "Jean Martin");
    let id = doc["id"].as_str().unwrap();
    let pdf = curl(
        &hub.ca,
        https,
        &format!("/api/v1/documents/{id}"),
        Some(("dr.martin@hopital.mshub.test", "demo-martin")),
    );
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF-1.4"));
    hub.stop();

    // The store now records this release's format.
    let (store, _) = hub.open_store();
    assert_eq!(store.format_version().unwrap(), mshub_store::FORMAT_VERSION);
}
