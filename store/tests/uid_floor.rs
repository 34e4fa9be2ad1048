//! UIDs and MODSEQs never go backwards (RFC 9051 §2.3.1.1, RFC 7162 §3.1.1), even for
//! changes a reader may have seen before their write to disk failed, or before a crash.

use std::collections::BTreeSet;
use std::sync::Arc;

use mshub_store::{
    AccountId, Backend, BlobStore, FsBlobStore, MasterKey, SledBackend, SpecialUse, Store, Uid,
};

const ALICE: AccountId = AccountId(1);

fn raw(n: u32) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: message {n}\r\n\r\nbody of message {n}\r\n")
        .into_bytes()
}

fn open(dir: &std::path::Path, secret: &str) -> (Arc<SledBackend>, Store) {
    let kv = Arc::new(SledBackend::open(&dir.join("kv")).unwrap());
    let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(&dir.join("blobs")).unwrap());
    let store = Store::with_backends(
        dir,
        kv.clone() as Arc<dyn Backend>,
        blobs,
        MasterKey::new(secret).unwrap(),
    )
    .unwrap();
    store.provision_account(ALICE).unwrap();
    (kv, store)
}

#[test]
fn a_uid_seen_before_its_write_failed_is_not_given_to_another_message() {
    let dir = tempfile::tempdir().unwrap();
    let secret = MasterKey::generate();
    let (kv, store) = open(dir.path(), &secret);
    let inbox = store.special_mailbox(ALICE, SpecialUse::Inbox).unwrap();
    let first = store
        .append(inbox.id, &raw(1), BTreeSet::new(), 1_700_000_000)
        .unwrap();
    assert_eq!(first.uid, Uid::MIN);
    // While the disk is full, an append is refused; readers may have seen its UID and MODSEQ
    // in memory before the flush failed: at most the UIDNEXT and HIGHESTMODSEQ seen now.
    kv.inject_write_faults(true);
    let before = store.mailbox_by_id(inbox.id).unwrap().unwrap();
    assert!(store
        .append(inbox.id, &raw(2), BTreeSet::new(), 1_700_000_000)
        .is_err());
    let phantom_uid = before.uid_next;
    let phantom_modseq = before.highest_modseq.0 + 1;
    let after_failure = store.mailbox_by_id(inbox.id).unwrap().unwrap();
    assert_eq!(after_failure.exists, 1, "the refused message is not there");
    kv.inject_write_faults(false);
    let next = store
        .append(inbox.id, &raw(3), BTreeSet::new(), 1_700_000_000)
        .unwrap();
    assert!(
        next.uid > phantom_uid,
        "UID {} was perhaps seen for the refused message, {} was given",
        phantom_uid,
        next.uid
    );
    assert!(next.modseq.0 > phantom_modseq);
    // The same after a restart: the process may have died with UIDs shown but not written.
    let shown = store.mailbox_by_id(inbox.id).unwrap().unwrap();
    drop(store);
    drop(kv);
    let (_kv, store) = open(dir.path(), &secret);
    let after_restart = store
        .append(inbox.id, &raw(4), BTreeSet::new(), 1_700_000_000)
        .unwrap();
    assert!(after_restart.uid >= shown.uid_next);
    let uids: Vec<Uid> = store
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [first.uid, next.uid, after_restart.uid]);
}
