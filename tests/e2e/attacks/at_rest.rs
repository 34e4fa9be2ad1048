//! Finding 10: a copy of the data directory must not tell who the patients are or what was
//! written to them. One message from the doctor to the demo patient (with an attachment), a
//! lab's IHE XDM archive, the patient reading by IMAP and answering the doctor; then, with the
//! hub stopped, every file the hub writes is read byte by byte for the patient's INS, names and
//! birth date and for the texts sent.
//! Before the fix the INS stood in clear in the account record, the address index and the
//! audit chain.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::*;

const INS: &str = "284057511204339";
/// The demo patient's names (src/demo.rs) and birth date.
const NAMES: [&str; 2] = ["Camille", "Durand"];
const BIRTH_DATE: &str = "1984-05-12";
const BODY_MARKER: &str = "AT-REST-BODY-4c7e tension arterielle 13/8";
const ATTACHMENT_MARKER: &str = "AT-REST-ATTACHMENT-91d2 glycemie a jeun";
const SUBJECT_MARKER: &str = "AT-REST-SUBJECT-2b8f";
const XDM_MARKER: &str = "AT-REST-XDM-e05a";
const REPLY_MARKER: &str = "AT-REST-REPLY-6d13 merci docteur";
const MESSAGE_ID: &str = "<at-rest-1@hopital.mshub.test>";
/// The archive `relay_xdm` builds: written by the test, as the lab's system, into the data
/// directory; it is the sender's file, not something the hub keeps.
const XDM_FILE: &str = "at-rest-xdm.zip";

/// What the operator or the demo set-up puts in the data directory, not the hub's store:
/// the master key and configuration (they name no patient), the demo certificate and the
/// apps catalogue's signed files. Everything else — `store/` and whatever the hub writes
/// while it runs — is searched.
fn excluded(relative: &Path) -> bool {
    let name = relative.to_string_lossy();
    name == "master.key"
        || name == "mshub.toml"
        || name == XDM_FILE
        || relative.starts_with("tls")
        || name.ends_with(".asc")
        || name == "catalogue.toml"
        || name == "catalogue.toml.sig"
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else if !excluded(path.strip_prefix(root).unwrap()) {
            out.push(path);
        }
    }
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let lower: Vec<u8> = haystack.iter().map(u8::to_ascii_lowercase).collect();
    let needle: Vec<u8> = needle.iter().map(u8::to_ascii_lowercase).collect();
    lower
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i)
        .collect()
}

/// A few printable bytes around a hit, to say what holds it.
fn around(bytes: &[u8], at: usize) -> String {
    let from = at.saturating_sub(60);
    let to = (at + 80).min(bytes.len());
    bytes[from..to]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

fn swaks_with_attachment(hub: &Instance, attachment: &Path) {
    let port = hub.ports.submission.to_string();
    let attach = format!("@{}", attachment.display());
    let body = format!("Bonjour,\n{BODY_MARKER}\nDr Jean Martin\n");
    let out = Command::new("swaks")
        .args([
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
            &format!("Subject: Compte rendu {SUBJECT_MARKER}"),
            "--header",
            &format!("Message-Id: {MESSAGE_ID}"),
            "--body",
            &body,
            "--attach-type",
            "text/plain",
            "--attach-name",
            "compte-rendu.txt",
            "--attach",
            &attach,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs");
    let transcript = text(&out.stdout);
    assert!(
        transcript.contains("250 2.0.0 OK: queued as"),
        "{transcript}"
    );
}

/// The patient answers the doctor (a patient writes only in reply): her address is then the
/// sender of a message the hub files and records.
fn patient_replies(hub: &Instance) {
    let port = hub.ports.submission.to_string();
    let out = Command::new("swaks")
        .args([
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
            CAMILLE.0,
            "--auth-password",
            CAMILLE.1,
            "--from",
            CAMILLE.0,
            "--to",
            MARTIN.0,
            "--header",
            &format!("Subject: Re: Compte rendu {SUBJECT_MARKER}"),
            "--header",
            &format!("In-Reply-To: {MESSAGE_ID}"),
            "--body",
            REPLY_MARKER,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs");
    let transcript = text(&out.stdout);
    assert!(
        transcript.contains("250 2.0.0 OK: queued as"),
        "{transcript}"
    );
}

/// The patient reads her INBOX with imaplib (flags change, the message is opened).
fn patient_reads_by_imap(hub: &mut Instance) {
    let (_, imaps) = hub.imap_ports();
    let script = r#"
import imaplib, ssl, sys
port, cafile, user, password, marker = sys.argv[1:6]
context = ssl.create_default_context(cafile=cafile)
context.check_hostname = False
imap = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=context)
imap.login(user, password)
imap.select("INBOX")
typ, data = imap.search(None, "ALL")
found = False
for num in data[0].split():
    typ, parts = imap.fetch(num, "(RFC822)")
    found = found or marker.encode() in parts[0][1]
imap.logout()
sys.exit(0 if found else 3)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(imaps.to_string())
        .arg(&hub.ca)
        .args([CAMILLE.0, CAMILLE.1, BODY_MARKER])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the patient did not read the message by IMAP: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_data_directory_names_no_patient_and_holds_no_message_text() {
    let mut hub = Instance::demo();
    let outside = tempfile::tempdir().unwrap();
    let attachment = outside.path().join("compte-rendu.txt");
    std::fs::write(&attachment, format!("{ATTACHMENT_MARKER}\n")).unwrap();
    swaks_with_attachment(&hub, &attachment);
    relay_xdm(&hub, XDM_FILE, "11502-2", "Bilan biologique", XDM_MARKER);
    // Delivery and filing are asynchronous: wait for the message to be readable.
    std::thread::sleep(std::time::Duration::from_secs(2));
    patient_reads_by_imap(&mut hub);
    patient_replies(&hub);
    std::thread::sleep(std::time::Duration::from_secs(1));
    hub.stop();

    // The hub must still find the patient and verify its audit chain after the fix.
    let inbox = hub.inbox(CAMILLE.0);
    assert!(
        inbox.iter().any(|m| contains(m, BODY_MARKER)),
        "the patient's message is in her INBOX"
    );
    assert!(
        hub.inbox(MARTIN.0)
            .iter()
            .any(|m| contains(m, REPLY_MARKER)),
        "the patient's reply reached the doctor"
    );
    hub.cli(&["audit", "verify"], "");

    let mut files = Vec::new();
    files_under(&hub.dir, &hub.dir, &mut files);
    assert!(
        files.iter().any(|f| f.starts_with(hub.dir.join("store"))),
        "the store was searched"
    );
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("the INS".into(), INS.as_bytes().to_vec()),
        ("the INS in hex".into(), hex(INS.as_bytes()).into_bytes()),
        ("the birth date".into(), BIRTH_DATE.as_bytes().to_vec()),
        ("the body".into(), BODY_MARKER.as_bytes().to_vec()),
        ("the subject".into(), SUBJECT_MARKER.as_bytes().to_vec()),
        (
            "the attachment".into(),
            ATTACHMENT_MARKER.as_bytes().to_vec(),
        ),
        ("the XDM document".into(), XDM_MARKER.as_bytes().to_vec()),
        ("the reply".into(), REPLY_MARKER.as_bytes().to_vec()),
    ];
    for name in NAMES {
        needles.push((format!("the name {name}"), name.as_bytes().to_vec()));
        needles.push((
            format!("the name {name} in hex"),
            hex(name.as_bytes()).into_bytes(),
        ));
    }
    let mut found = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for (what, needle) in &needles {
            let hits = find_all(&bytes, needle);
            // Every hit (a few at most) with what surrounds it: the record that holds it.
            for &at in hits.iter().take(12) {
                found.push(format!(
                    "{what} ({} in all) in {}: …{}…",
                    hits.len(),
                    file.strip_prefix(&hub.dir).unwrap().display(),
                    around(&bytes, at)
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "in clear in the data directory:\n{}",
        found.join("\n")
    );
}
