//! What every [`BlobStore`] must do, run unchanged on the directory store and on the S3 store
//! against a real Garage: the contract of `put` / `get` / `delete`, missing blobs, a large blob,
//! concurrent writers, callers on tokio's blocking threads, and a whole [`Store`] on top of it
//! keeping messages larger than [`INLINE_BLOB_MAX`] there, sealed.
//!
//! Garage starts once for this test binary ([`garage::shared`]); each test writes under a
//! prefix of its own. If Garage cannot start, the S3 tests fail with the reason.

#[path = "../../tests/e2e/garage.rs"]
mod garage;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mshub_store::{
    AccountId, BlobId, BlobStore, FsBlobStore, MasterKey, S3BlobStore, S3Options, SledBackend,
    SpecialUse, Store, StoreError, INLINE_BLOB_MAX,
};

/// A blob store under test, with a way to see every object it holds, raw.
struct Fixture {
    blobs: Arc<dyn BlobStore>,
    raw: Box<dyn Fn() -> Vec<(String, Vec<u8>)>>,
    /// Keeps the directory store's files (and the `Store`'s key-value files) alive.
    dir: tempfile::TempDir,
}

fn fs_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    let blobs = Arc::new(FsBlobStore::open(&root).unwrap());
    let raw = Box::new(move || {
        files_under(&root)
            .into_iter()
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect()
    });
    Fixture { blobs, raw, dir }
}

fn s3_fixture() -> Fixture {
    let garage = garage::shared();
    let options = S3Options {
        endpoint: garage.endpoint.clone(),
        bucket: garage.bucket.clone(),
        region: garage.region.clone(),
        // Tests share the bucket; each keeps to its own prefix.
        prefix: format!("test-{}", BlobId::random()),
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: garage.secret_access_key.clone(),
    };
    let store = Arc::new(S3BlobStore::open(&options).unwrap_or_else(|e| panic!("{e}")));
    let lister = store.clone();
    let raw = Box::new(move || {
        lister
            .list_object_names()
            .unwrap()
            .into_iter()
            .map(|name| {
                let id = name.rsplit('/').next().unwrap();
                let bytes = lister.get(BlobId::try_from(id).unwrap()).unwrap();
                (name, bytes)
            })
            .collect()
    });
    Fixture {
        blobs: store,
        raw,
        dir: tempfile::tempdir().unwrap(),
    }
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

/// Bytes that differ from one blob to the next and do not repeat within one (a store that
/// mixed up or truncated blobs would be caught), cheap to make in any size.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn put_get_delete(f: &Fixture) {
    let id = BlobId::random();
    f.blobs.put(id, b"sealed bytes").unwrap();
    assert_eq!(f.blobs.get(id).unwrap(), b"sealed bytes");
    let other = BlobId::random();
    f.blobs.put(other, &pattern(1, 1000)).unwrap();
    assert_eq!(f.blobs.get(other).unwrap(), pattern(1, 1000));
    f.blobs.delete(id).unwrap();
    match f.blobs.get(id) {
        Err(StoreError::NoSuchBlob(missing)) => assert_eq!(missing, id),
        other => panic!("a deleted blob must be NoSuchBlob, got {other:?}"),
    }
    // Deleting one leaves the other.
    assert_eq!(f.blobs.get(other).unwrap(), pattern(1, 1000));
}

fn empty_blob_round_trips(f: &Fixture) {
    let id = BlobId::random();
    f.blobs.put(id, b"").unwrap();
    assert_eq!(f.blobs.get(id).unwrap(), b"");
}

fn missing_blob_is_no_such_blob(f: &Fixture) {
    let id = BlobId::random();
    match f.blobs.get(id) {
        Err(StoreError::NoSuchBlob(missing)) => assert_eq!(missing, id),
        other => panic!("a blob never written must be NoSuchBlob, got {other:?}"),
    }
}

fn deleting_a_missing_blob_is_not_an_error(f: &Fixture) {
    let id = BlobId::random();
    f.blobs.delete(id).unwrap();
    f.blobs.put(id, b"x").unwrap();
    f.blobs.delete(id).unwrap();
    f.blobs.delete(id).unwrap();
    assert!(matches!(f.blobs.get(id), Err(StoreError::NoSuchBlob(_))));
}

fn large_blob_round_trips(f: &Fixture) {
    // Above the 20 MiB message limit, as a sealed message near the limit can be.
    let big = pattern(25, 25 * 1024 * 1024);
    let id = BlobId::random();
    f.blobs.put(id, &big).unwrap();
    let back = f.blobs.get(id).unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "the 25 MiB blob came back different");
}

fn concurrent_puts_from_threads(f: &Fixture) {
    const THREADS: u64 = 8;
    const EACH: u64 = 6;
    let written: Vec<(BlobId, u64, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let blobs = f.blobs.clone();
                scope.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let seed = t * 100 + i;
                            // Small ones and some above the inline limit.
                            let len = if i % 3 == 0 {
                                INLINE_BLOB_MAX + 1000
                            } else {
                                100 + seed as usize
                            };
                            let id = BlobId::random();
                            blobs.put(id, &pattern(seed, len)).unwrap();
                            (id, seed, len)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(written.len(), (THREADS * EACH) as usize);
    for (id, seed, len) in written {
        assert_eq!(f.blobs.get(id).unwrap(), pattern(seed, len), "blob {id}");
    }
}

fn works_from_tokio_blocking_threads_and_async_tasks(f: &Fixture) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let blobs = f.blobs.clone();
    let id = BlobId::random();
    rt.block_on(async move {
        // Where the hub's services call the store from.
        let b = blobs.clone();
        tokio::task::spawn_blocking(move || b.put(id, b"from a blocking thread"))
            .await
            .unwrap()
            .unwrap();
        // A careless direct call from async code must still work, not panic.
        assert_eq!(blobs.get(id).unwrap(), b"from a blocking thread");
        // And the last handle may go away inside the runtime.
        drop(blobs);
    });
    assert_eq!(f.blobs.get(id).unwrap(), b"from a blocking thread");
}

fn store_keeps_large_messages_sealed_in_the_blob_store(f: &Fixture) {
    const PATIENT: AccountId = AccountId(7);
    let master = MasterKey::generate();
    // Unique per run: nothing but this test can have written it.
    let marker = format!("PATIENT-MARKER-{}", &MasterKey::generate()[..24]);
    // Incompressible: sealed (compressed, then encrypted) it stays above the inline limit.
    let noise: String = (0..3000).map(|_| MasterKey::generate()).collect();
    let message = format!(
        "From: labo@hopital.example\r\nTo: patient@example.org\r\n\
         Subject: Resultats {marker}\r\n\r\nHemoglobine 13,2 g/dL {marker}\r\n{noise}\r\n"
    );
    assert!(message.len() > INLINE_BLOB_MAX);
    let small = format!("Subject: petit {marker}\r\n\r\ncourt\r\n");

    let kv_dir = f.dir.path().join("store");
    let open = |dir: &Path| {
        let kv = Arc::new(SledBackend::open(&dir.join("kv")).unwrap());
        Store::with_backends(dir, kv, f.blobs.clone(), MasterKey::new(&master).unwrap()).unwrap()
    };
    let before: BTreeSet<String> = (f.raw)().into_iter().map(|(name, _)| name).collect();
    let (inbox, big_uid, small_uid, big_blob) = {
        let store = open(&kv_dir);
        store.provision_account(PATIENT).unwrap();
        let inbox = store.special_mailbox(PATIENT, SpecialUse::Inbox).unwrap();
        let big = store
            .append(inbox.id, message.as_bytes(), BTreeSet::new(), 1_700_000_000)
            .unwrap();
        let small = store
            .append(inbox.id, small.as_bytes(), BTreeSet::new(), 1_700_000_000)
            .unwrap();
        (inbox.id, big.uid, small.uid, big.blob)
    };
    // Reopened (no cache of plaintext left): read back through the blob store.
    let store = open(&kv_dir);
    assert_eq!(
        store.read_message(inbox, big_uid).unwrap(),
        message.as_bytes()
    );
    assert_eq!(
        store.read_message(inbox, small_uid).unwrap(),
        small.as_bytes()
    );

    // Exactly one new object, the large message's, and it is sealed.
    let after = (f.raw)();
    let new: Vec<&(String, Vec<u8>)> = after
        .iter()
        .filter(|(name, _)| !before.contains(name))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "expected only the large message in the blob store, found {:?}",
        new.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let (name, sealed) = new[0];
    assert!(
        name.ends_with(&big_blob.to_string()),
        "{name} is not blob {big_blob}"
    );
    assert!(sealed.len() > INLINE_BLOB_MAX);
    assert!(
        // RFC 9580 §4.2: every OpenPGP packet header has its top bit set.
        sealed[0] & 0x80 != 0,
        "the object does not start like an OpenPGP message"
    );
    for needle in [
        marker.as_bytes(),
        b"Hemoglobine".as_slice(),
        b"labo@hopital.example".as_slice(),
        &noise.as_bytes()[..64],
    ] {
        assert!(
            !contains(sealed, needle),
            "the blob store holds plaintext: {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    assert_eq!(f.blobs.get(big_blob).unwrap(), *sealed);
}

/// The same tests, once per backend.
macro_rules! conformance {
    ($backend:ident, $fixture:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn put_get_delete() {
                super::put_get_delete(&$fixture);
            }

            #[test]
            fn empty_blob_round_trips() {
                super::empty_blob_round_trips(&$fixture);
            }

            #[test]
            fn missing_blob_is_no_such_blob() {
                super::missing_blob_is_no_such_blob(&$fixture);
            }

            #[test]
            fn deleting_a_missing_blob_is_not_an_error() {
                super::deleting_a_missing_blob_is_not_an_error(&$fixture);
            }

            #[test]
            fn large_blob_round_trips() {
                super::large_blob_round_trips(&$fixture);
            }

            #[test]
            fn concurrent_puts_from_threads() {
                super::concurrent_puts_from_threads(&$fixture);
            }

            #[test]
            fn works_from_tokio_blocking_threads_and_async_tasks() {
                super::works_from_tokio_blocking_threads_and_async_tasks(&$fixture);
            }

            #[test]
            fn store_keeps_large_messages_sealed_in_the_blob_store() {
                super::store_keeps_large_messages_sealed_in_the_blob_store(&$fixture);
            }
        }
    };
}

conformance!(fs, fs_fixture());
conformance!(s3, s3_fixture());

/// S3 only: what a misconfigured hub reports when it starts.
mod s3_errors {
    use super::*;

    fn options(garage: &garage::Garage) -> S3Options {
        S3Options {
            endpoint: garage.endpoint.clone(),
            bucket: garage.bucket.clone(),
            region: garage.region.clone(),
            prefix: "blobs".into(),
            access_key_id: garage.access_key_id.clone(),
            secret_access_key: garage.secret_access_key.clone(),
        }
    }

    fn open_error(options: &S3Options) -> String {
        match S3BlobStore::open(options) {
            Ok(_) => panic!("opened with {options:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_wrong_secret_is_refused_at_open_with_the_reason() {
        let mut wrong = options(garage::shared());
        wrong.secret_access_key = "0".repeat(64);
        let err = open_error(&wrong);
        assert!(err.contains("listing the blobs"), "{err}");
        assert!(err.contains("403") || err.contains("Forbidden"), "{err}");
        assert!(!err.contains(&"0".repeat(64)), "the secret leaked: {err}");
    }

    #[test]
    fn a_missing_bucket_is_refused_at_open_with_its_name() {
        let mut wrong = options(garage::shared());
        wrong.bucket = "no-such-bucket".into();
        let err = open_error(&wrong);
        assert!(err.contains("no-such-bucket"), "{err}");
        assert!(
            err.contains("404") || err.contains("NoSuchBucket") || err.contains("403"),
            "{err}"
        );
    }

    #[test]
    fn objects_are_named_prefix_fan_out_id() {
        let garage = garage::shared();
        let mut opts = options(garage);
        opts.prefix = format!("naming-{}", BlobId::random());
        let store = S3BlobStore::open(&opts).unwrap();
        let id = BlobId::random();
        store.put(id, b"sealed").unwrap();
        let hex = id.to_string();
        assert_eq!(
            store.list_object_names().unwrap(),
            [format!("{}/{}/{hex}", opts.prefix, &hex[..2])]
        );
    }
}
