//! A message for several mailboxes (an SMTP message to several local recipients, answered
//! once) is stored in all of them or in none: a refusal must mean no recipient has it.

use std::sync::Arc;

use mshub_store::{
    AccountId, Backend, BlobStore, FsBlobStore, MasterKey, SledBackend, SpecialUse, Store,
};

#[test]
fn a_message_for_several_mailboxes_is_in_all_of_them_or_in_none() {
    let dir = tempfile::tempdir().unwrap();
    let kv = Arc::new(SledBackend::open(&dir.path().join("kv")).unwrap());
    let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(&dir.path().join("blobs")).unwrap());
    let store = Store::with_backends(
        dir.path(),
        kv.clone() as Arc<dyn Backend>,
        blobs,
        MasterKey::new(&MasterKey::generate()).unwrap(),
    )
    .unwrap();
    let inboxes: Vec<_> = [AccountId(1), AccountId(2), AccountId(3)]
        .into_iter()
        .map(|a| {
            store.provision_account(a).unwrap();
            store.special_mailbox(a, SpecialUse::Inbox).unwrap().id
        })
        .collect();
    let small = b"Subject: small\r\n\r\nfor three\r\n".to_vec();
    let large = [b"Subject: large\r\n\r\n".to_vec(), vec![b'x'; 100_000]].concat();
    for message in [&small, &large] {
        kv.inject_write_faults(true);
        assert!(store
            .append_each(&inboxes, message, 0, &|_, _, _| {})
            .is_err());
        for id in &inboxes {
            assert!(store.messages(*id).unwrap().is_empty(), "refused: nowhere");
        }
        kv.inject_write_faults(false);
        let metas = store
            .append_each(&inboxes, message, 0, &|_, _, _| {})
            .unwrap();
        assert_eq!(metas.len(), 3);
        for (id, meta) in inboxes.iter().zip(&metas) {
            assert_eq!(&store.read_message(*id, meta.uid).unwrap(), message);
        }
        for (id, meta) in inboxes.iter().zip(&metas) {
            store.expunge(*id, &[meta.uid]).unwrap();
        }
    }
    assert!(
        store
            .append_each(&[inboxes[0], inboxes[0]], &small, 0, &|_, _, _| {})
            .is_err(),
        "a mailbox named twice is an error, not a double copy"
    );
}
