//! The record format version: recorded at first open, kept, and a store of a newer release
//! refused before anything is written.

use mshub_store::{Batch, MasterKey, Store, StoreError, Tree, FORMAT_VERSION};

fn master() -> MasterKey {
    MasterKey::new("format-test-master-key-0123456789abcdef").unwrap()
}

#[test]
fn a_new_store_records_this_releases_format() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), master()).unwrap();
    assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
    drop(store);
    let store = Store::open(dir.path(), master()).unwrap();
    assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
}

#[test]
fn a_store_without_a_version_is_upgraded_and_one_from_a_newer_release_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), master()).unwrap();
    // As a store written before versions were kept.
    let mut batch = Batch::new();
    batch.remove(Tree("meta"), b"format".to_vec());
    assert_eq!(
        store.kv().commit(&batch).unwrap(),
        mshub_store::Commit::Done
    );
    assert_eq!(store.format_version().unwrap(), 0);
    drop(store);
    let store = Store::open(dir.path(), master()).unwrap();
    assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);

    // As if a newer mshub had written it.
    let mut batch = Batch::new();
    batch.put(
        Tree("meta"),
        b"format".to_vec(),
        (FORMAT_VERSION + 1).to_be_bytes(),
    );
    assert_eq!(
        store.kv().commit(&batch).unwrap(),
        mshub_store::Commit::Done
    );
    drop(store);
    match Store::open(dir.path(), master()) {
        Err(StoreError::FormatTooNew { found, known }) => {
            assert_eq!((found, known), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer store was opened"),
    }
    let text = StoreError::FormatTooNew {
        found: FORMAT_VERSION + 1,
        known: FORMAT_VERSION,
    }
    .to_string();
    assert!(text.contains("upgrade mshub"), "{text}");
}
