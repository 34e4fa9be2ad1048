//! Online backups: taken while messages keep arriving, the copy is of one moment (every
//! message it holds opens, counters agree), checked by its SHA-256, and restored only whole.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mshub_store::backup::{self, BackupReport};
use mshub_store::{AccountId, MasterKey, SpecialUse, Store};

const ALICE: AccountId = AccountId(7);

fn master() -> MasterKey {
    MasterKey::new("backup-test-master-key-0123456789abcdef").unwrap()
}

fn message(n: usize, large: bool) -> Vec<u8> {
    let mut m = format!("Subject: message {n}\r\n\r\n").into_bytes();
    // Large ones go to blob files, small ones stay inline in the records: letters that do
    // not compress (the store seals compressed).
    let mut x = n as u64 * 2_654_435_761 + 1;
    m.extend((0..if large { 300_000 } else { 200 }).map(|_| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        b'a' + (x >> 59) as u8
    }));
    m
}

#[test]
fn a_backup_taken_under_writes_restores_to_one_consistent_moment() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("store"), master()).unwrap());
    store.provision_account(ALICE).unwrap();
    let inbox = store.special_mailbox(ALICE, SpecialUse::Inbox).unwrap().id;
    for n in 0..20 {
        store
            .append(inbox, &message(n, n % 4 == 0), BTreeSet::new(), 1)
            .unwrap();
    }
    // Deliveries go on while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 20;
            while !stop.load(Ordering::Relaxed) {
                store
                    .append(inbox, &message(n, n % 4 == 0), BTreeSet::new(), 1)
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let mut file = Vec::new();
    let report = store.backup(&mut file).unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(report.records > 0 && report.blob_files >= 5, "{report:?}");
    assert_eq!(report.bytes, file.len() as u64);
    assert_eq!(backup::verify(&mut file.as_slice()).unwrap(), report);

    let target = dir.path().join("restored");
    let restored: BackupReport = backup::restore(&mut file.as_slice(), &target).unwrap();
    assert_eq!(restored, report);
    let copy = Store::open(&target, master()).unwrap();
    let mailbox = copy.mailbox_by_id(inbox).unwrap().unwrap();
    let messages = copy.messages(inbox).unwrap();
    assert_eq!(
        mailbox.exists as usize,
        messages.len(),
        "counters of the same moment"
    );
    assert!(
        messages.len() >= 20 && messages.len() <= written,
        "{}",
        messages.len()
    );
    assert_eq!(mailbox.uid_next.get() as usize, messages.len() + 1);
    for m in &messages {
        let text = copy.read_message(inbox, m.uid).unwrap();
        let n = m.uid.get() as usize - 1;
        assert_eq!(text, message(n, n % 4 == 0), "message {n} opens");
    }
}

#[test]
fn a_damaged_backup_is_refused_and_restores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), master()).unwrap();
    store.provision_account(ALICE).unwrap();
    let inbox = store.special_mailbox(ALICE, SpecialUse::Inbox).unwrap().id;
    store
        .append(inbox, &message(0, true), BTreeSet::new(), 1)
        .unwrap();
    let mut file = Vec::new();
    store.backup(&mut file).unwrap();

    let mut damaged = file.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    let e = backup::verify(&mut damaged.as_slice())
        .unwrap_err()
        .to_string();
    assert!(e.contains("SHA-256") || e.contains("backup"), "{e}");
    let target = dir.path().join("restored");
    assert!(backup::restore(&mut damaged.as_slice(), &target).is_err());
    assert!(!target.exists(), "nothing restored from a damaged backup");
    assert!(!target.with_extension("restoring").exists());
    let cut = &file[..file.len() - 10];
    assert!(backup::verify(&mut &cut[..])
        .unwrap_err()
        .to_string()
        .contains("cut short"));

    // Never over an existing store.
    let e = backup::restore(&mut file.as_slice(), &dir.path().join("store")).unwrap_err();
    assert!(e.to_string().contains("already holds a store"), "{e}");
}
