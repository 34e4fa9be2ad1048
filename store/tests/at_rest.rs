//! Encryption at rest: what the data directory holds, and who may open it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mshub_store::{AccountId, MasterKey, SpecialUse, Store, StoreError};

const ALICE: AccountId = AccountId(1);

fn key() -> String {
    MasterKey::generate()
}

fn open(dir: &Path, secret: &str) -> Result<Store, StoreError> {
    Store::open(dir, MasterKey::new(secret).unwrap())
}

/// Every regular file under `root`, recursively.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

/// The files under `root` that contain any of `needles`, with the needle found.
fn files_containing(root: &Path, needles: &[&[u8]]) -> Vec<(PathBuf, String)> {
    let mut hits = Vec::new();
    for path in files_under(root) {
        let bytes = std::fs::read(&path).unwrap();
        for needle in needles {
            if bytes.windows(needle.len()).any(|w| w == *needle) {
                hits.push((path.clone(), String::from_utf8_lossy(needle).into_owned()));
            }
        }
    }
    hits
}

#[test]
fn data_directory_holds_no_plaintext_of_messages() {
    let dir = tempfile::tempdir().unwrap();
    let secret = key();
    // Unique per run, so nothing but this test's writes can contain it.
    let marker = format!("PATIENT-MARKER-{}", &MasterKey::generate()[..24]);
    let subject = format!(
        "Compte rendu operatoire de Mme Lefebvre {}",
        &marker[15..27]
    );

    let long_body: String = (0..4000)
        .map(|i| {
            format!(
                "ligne {i}: tension {} / {}, {marker}\r\n",
                100 + i % 40,
                60 + i % 25
            )
        })
        .collect();
    let first = format!(
        "From: dr.martin@example.org\r\nTo: patient@example.org\r\nSubject: {subject}\r\n\r\n{long_body}"
    );
    // Highly repetitive: compresses to almost nothing, so only encryption can hide it.
    let second = format!("Subject: {subject}\r\n\r\n{}", marker.repeat(2000));
    let document = format!("%PDF-1.4 resultat de biopsie {marker} {subject}");
    // Incompressible and large: sealed, it exceeds the inline limit and goes to a blob file.
    let noise: String = (0..4000).map(|_| MasterKey::generate()).collect();
    let third = format!("Subject: {subject}\r\n\r\n{marker}\r\n{noise}\r\n");

    let (inbox_id, uids, blob) = {
        let store = open(dir.path(), &secret).unwrap();
        store.provision_account(ALICE).unwrap();
        let inbox = store.special_mailbox(ALICE, SpecialUse::Inbox).unwrap();
        let a = store
            .append(inbox.id, first.as_bytes(), BTreeSet::new(), 1_700_000_000)
            .unwrap();
        let b = store
            .append(inbox.id, second.as_bytes(), BTreeSet::new(), 1_700_000_000)
            .unwrap();
        let c = store
            .append(inbox.id, third.as_bytes(), BTreeSet::new(), 1_700_000_000)
            .unwrap();
        let blob = store.put_blob(ALICE, document.as_bytes()).unwrap();
        (inbox.id, [a.uid, b.uid, c.uid], blob)
    };

    let needles: [&[u8]; 3] = [
        marker.as_bytes(),
        subject.as_bytes(),
        b"resultat de biopsie",
    ];
    let files = files_under(dir.path());
    let blob_files: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with(dir.path().join("blobs")))
        .collect();
    // Small sealed blobs live in the key-value store, the large one in a file.
    assert_eq!(
        blob_files.len(),
        1,
        "the walk did not find the large blob: {files:?}"
    );
    for f in blob_files
        .iter()
        .copied()
        .chain([&dir.path().join("kv/db")])
    {
        assert!(std::fs::metadata(f).unwrap().len() > 0, "{f:?} is empty");
    }
    let hits = files_containing(dir.path(), &needles);
    assert!(
        hits.is_empty(),
        "plaintext found in the data directory: {hits:?}"
    );

    // The search itself finds plaintext where there is some.
    let control = tempfile::tempdir().unwrap();
    std::fs::create_dir(control.path().join("sub")).unwrap();
    std::fs::write(control.path().join("sub/leak"), second.as_bytes()).unwrap();
    assert_eq!(files_containing(control.path(), &needles).len(), 2);

    let store = open(dir.path(), &secret).unwrap();
    assert_eq!(
        store.read_message(inbox_id, uids[0]).unwrap(),
        first.as_bytes()
    );
    assert_eq!(
        store.read_message(inbox_id, uids[1]).unwrap(),
        second.as_bytes()
    );
    assert_eq!(
        store.read_message(inbox_id, uids[2]).unwrap(),
        third.as_bytes()
    );
    assert_eq!(store.read_blob(ALICE, blob).unwrap(), document.as_bytes());
}

#[test]
fn wrong_master_key_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let right = key();
    let blob = {
        let store = open(dir.path(), &right).unwrap();
        store.provision_account(ALICE).unwrap();
        store
            .put_blob(ALICE, b"sealed under the right key")
            .unwrap()
    };

    match open(dir.path(), &key()) {
        Err(StoreError::WrongMasterKey) => {}
        Err(other) => panic!("expected WrongMasterKey, got {other}"),
        Ok(_) => panic!("a wrong master key opened the store"),
    }

    // The refusal changed nothing: the right key still opens everything.
    let store = open(dir.path(), &right).unwrap();
    assert_eq!(
        store.read_blob(ALICE, blob).unwrap(),
        b"sealed under the right key"
    );
}

#[test]
fn master_key_shorter_than_32_characters_is_refused() {
    assert!(matches!(
        MasterKey::new("  0123456789abcdef0123456789abcde  "),
        Err(StoreError::WeakMasterKey(31))
    ));
    assert!(MasterKey::new(&"k".repeat(32)).is_ok());
    assert_eq!(MasterKey::generate().len(), 64);
    assert_ne!(MasterKey::generate(), MasterKey::generate());
}

#[test]
fn second_open_of_same_dir_reports_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let secret = key();
    let first = open(dir.path(), &secret).unwrap();
    first.provision_account(ALICE).unwrap();

    match open(dir.path(), &secret) {
        Err(StoreError::InUse(path)) => assert!(path.starts_with(dir.path()), "{path:?}"),
        Err(other) => panic!("expected InUse, got {other}"),
        Ok(_) => panic!("two stores opened the same data directory"),
    }

    // Closing the first releases the directory.
    drop(first);
    let again = open(dir.path(), &secret).unwrap();
    assert_eq!(again.mailboxes(ALICE).unwrap().len(), 5);
}

#[test]
fn a_store_closed_by_this_process_reopens_at_once() {
    // Sled lets go of its lock from a background thread a moment after the last handle drops;
    // reopening right away (the CLI after a check, a restart, a test) must not see it in use.
    let dir = tempfile::tempdir().unwrap();
    let secret = key();
    for round in 0..20u64 {
        let store = open(dir.path(), &secret)
            .unwrap_or_else(|e| panic!("round {round}: the closed store did not reopen: {e}"));
        // Many small writes leave sled's background writer busy when the handle drops.
        for n in 0..5 {
            store
                .provision_account(AccountId(round * 100 + n + 1))
                .unwrap();
        }
        drop(store);
    }
}
