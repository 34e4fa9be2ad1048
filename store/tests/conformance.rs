//! One suite for the key-value [`Backend`] trait, run on sled and on a real PostgreSQL, plus
//! store-level checks on both: UID and MODSEQ allocation under concurrent appends from two
//! nodes, and change events crossing nodes.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mshub_store::{
    AccountId, Backend, Batch, BlobStore, Change, ChangeKind, Commit, FsBlobStore, MasterKey,
    PgBackend, SledBackend, SpecialUse, Store, Tree,
};
use support::pg::PgCluster;

const A: Tree = Tree("alpha");
const B: Tree = Tree("beta");

fn put(kv: &dyn Backend, tree: Tree, key: &[u8], value: &[u8]) {
    let mut b = Batch::new();
    b.put(tree, key.to_vec(), value.to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Done);
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// The suite. `nodes` are two handles on one store: two PostgreSQL backends (two nodes), or the
// same sled backend twice (sled is one process).

fn get_put_remove(kv: &dyn Backend) {
    assert_eq!(kv.get(A, b"k").unwrap(), None);
    put(kv, A, b"k", b"one");
    assert_eq!(kv.get(A, b"k").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(kv.get(B, b"k").unwrap(), None, "trees are separate");
    put(kv, A, b"k", b"two");
    assert_eq!(kv.get(A, b"k").unwrap().as_deref(), Some(&b"two"[..]));
    // Empty values and binary keys are values like any other.
    put(kv, A, &[0, 0xff, 0], b"");
    assert_eq!(kv.get(A, &[0, 0xff, 0]).unwrap().as_deref(), Some(&b""[..]));
    let mut b = Batch::new();
    b.remove(A, b"k".to_vec());
    b.remove(A, b"never-there".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Done);
    assert_eq!(kv.get(A, b"k").unwrap(), None);
    // Several keys at once, answered in the order asked, absent ones included.
    put(kv, A, b"m1", b"x");
    put(kv, A, b"m3", b"z");
    put(kv, B, b"m2", b"other tree");
    let keys: Vec<Vec<u8>> = [&b"m3"[..], b"m2", b"m1", b"m3", &[0, 0xff, 0]]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    assert_eq!(
        kv.get_many(A, &keys).unwrap(),
        [
            Some(b"z".to_vec()),
            None,
            Some(b"x".to_vec()),
            Some(b"z".to_vec()),
            Some(Vec::new())
        ]
    );
    assert!(kv.get_many(A, &[]).unwrap().is_empty());
}

fn scan_order_prefix_after_limit(kv: &dyn Backend) {
    let all: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x01],
        vec![0x01, 0x00],
        vec![0x01, 0x02],
        vec![0x01, 0xff],
        vec![0x01, 0xff, 0xff],
        vec![0x02],
        vec![0x7f, 0x80],
        vec![0x80],
        vec![0xff],
        vec![0xff, 0xff],
    ];
    // Written in reverse and in two trees: order comes from the backend, not the writes.
    for k in all.iter().rev() {
        put(kv, B, k, &[k.len() as u8]);
        put(kv, A, k, b"other tree");
    }
    let whole = kv.scan(B, &[], None, None).unwrap();
    assert_eq!(keys(&whole), all, "byte-wise order, shorter first");
    assert_eq!(whole[4].1, vec![2]);
    assert_eq!(
        keys(&kv.scan(B, &[0x01], None, None).unwrap()),
        vec![
            vec![0x01],
            vec![0x01, 0x00],
            vec![0x01, 0x02],
            vec![0x01, 0xff],
            vec![0x01, 0xff, 0xff]
        ]
    );
    assert_eq!(
        keys(&kv.scan(B, &[0x01, 0xff], None, None).unwrap()),
        vec![vec![0x01, 0xff], vec![0x01, 0xff, 0xff]],
        "a prefix ending in 0xff"
    );
    assert_eq!(
        keys(&kv.scan(B, &[0xff], None, None).unwrap()),
        vec![vec![0xff], vec![0xff, 0xff]],
        "a prefix with no upper bound"
    );
    assert_eq!(
        keys(&kv.scan(B, &[0x01], Some(&[0x01, 0x00]), None).unwrap()),
        vec![vec![0x01, 0x02], vec![0x01, 0xff], vec![0x01, 0xff, 0xff]],
        "strictly after"
    );
    assert_eq!(
        keys(&kv.scan(B, &[0x01], Some(&[0x01, 0x01]), Some(2)).unwrap()),
        vec![vec![0x01, 0x02], vec![0x01, 0xff]],
        "after a key that is absent, with a limit"
    );
    assert_eq!(
        kv.scan(B, &[0x01], Some(&[0x01, 0xff, 0xff]), None)
            .unwrap(),
        vec![],
        "after the last key of the prefix"
    );
    assert_eq!(kv.scan(B, &[0x03], None, None).unwrap(), vec![]);
    assert_eq!(kv.scan(B, &[], None, Some(0)).unwrap(), vec![]);
    assert_eq!(
        keys(&kv.scan(B, &[], None, Some(3)).unwrap()),
        all[..3].to_vec()
    );
    // Paging through with after + limit visits every key once, in order.
    let mut seen = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = kv.scan(B, &[], after.as_deref(), Some(5)).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
        seen.extend(keys(&page));
    }
    assert_eq!(seen, all);
}

fn batch_is_atomic(kv: &dyn Backend) {
    put(kv, A, b"guard", b"v1");
    let mut b = Batch::new();
    b.check(A, b"guard".to_vec(), Some(b"stale".to_vec()));
    b.put(A, b"x".to_vec(), b"1".to_vec());
    b.put(B, b"y".to_vec(), b"2".to_vec());
    b.remove(A, b"guard".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Conflict);
    assert_eq!(
        kv.get(A, b"x").unwrap(),
        None,
        "nothing of a refused batch is written"
    );
    assert_eq!(kv.get(B, b"y").unwrap(), None);
    assert_eq!(kv.get(A, b"guard").unwrap().as_deref(), Some(&b"v1"[..]));

    let mut b = Batch::new();
    b.check(A, b"guard".to_vec(), Some(b"v1".to_vec()));
    b.put(A, b"x".to_vec(), b"1".to_vec());
    b.put(B, b"y".to_vec(), b"2".to_vec());
    b.put(A, b"guard".to_vec(), b"v2".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Done);
    assert_eq!(kv.get(A, b"x").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(kv.get(B, b"y").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(kv.get(A, b"guard").unwrap().as_deref(), Some(&b"v2"[..]));

    // Within a batch the last write of a key wins.
    let mut b = Batch::new();
    b.put(A, b"twice".to_vec(), b"first".to_vec());
    b.put(A, b"twice".to_vec(), b"second".to_vec());
    b.put(A, b"gone".to_vec(), b"v".to_vec());
    b.remove(A, b"gone".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Done);
    assert_eq!(
        kv.get(A, b"twice").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(kv.get(A, b"gone").unwrap(), None);
    // An empty batch is a no-op that succeeds.
    assert_eq!(kv.commit(&Batch::new()).unwrap(), Commit::Done);
}

fn cas_and_absent_checks(kv: &dyn Backend) {
    let mut b = Batch::new();
    b.check(A, b"c".to_vec(), None);
    b.put(A, b"c".to_vec(), b"0".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Done, "absent, as expected");
    assert_eq!(kv.commit(&b).unwrap(), Commit::Conflict, "no longer absent");

    let mut b = Batch::new();
    b.check(A, b"c".to_vec(), Some(b"1".to_vec()));
    b.put(A, b"c".to_vec(), b"2".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Conflict, "wrong value");
    let mut b = Batch::new();
    b.check(A, b"missing".to_vec(), Some(b"1".to_vec()));
    assert_eq!(
        kv.commit(&b).unwrap(),
        Commit::Conflict,
        "present expected, absent found"
    );

    // A check of an absent key that writes nothing to it leaves nothing behind.
    let mut b = Batch::new();
    b.check(A, b"probe".to_vec(), None);
    b.put(A, b"other".to_vec(), b"v".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Done);
    assert_eq!(kv.get(A, b"probe").unwrap(), None);
    assert!(kv.scan(A, b"probe", None, None).unwrap().is_empty());
    // Nor does a refused one.
    let mut b = Batch::new();
    b.check(A, b"probe2".to_vec(), None);
    b.check(A, b"c".to_vec(), Some(b"wrong".to_vec()));
    b.put(A, b"probe2".to_vec(), b"v".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Conflict);
    assert_eq!(kv.scan(A, b"probe", None, None).unwrap(), vec![]);

    // apply + sync: visible at once, and sync of its ticket succeeds.
    let mut b = Batch::new();
    b.put(A, b"applied".to_vec(), b"v".to_vec());
    let mshub_store::Applied::Done(ticket) = kv.apply(&b).unwrap() else {
        panic!("an unchecked batch applies");
    };
    assert_eq!(kv.get(A, b"applied").unwrap().as_deref(), Some(&b"v"[..]));
    kv.sync(ticket).unwrap();
}

/// Many threads on two nodes race to create one key: exactly one wins.
fn only_one_creator_wins(nodes: &[Arc<dyn Backend>; 2]) {
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let kv = nodes[i % 2].clone();
                s.spawn(move || {
                    let mut b = Batch::new();
                    b.check(B, b"owner".to_vec(), None);
                    b.put(B, b"owner".to_vec(), vec![i as u8]);
                    usize::from(kv.commit(&b).unwrap() == Commit::Done)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
    let owner = nodes[1].get(B, b"owner").unwrap().unwrap();
    assert_eq!(owner.len(), 1);
}

/// Read-increment-CAS from many threads on two nodes: no increment is lost.
fn concurrent_cas_increments(nodes: &[Arc<dyn Backend>; 2]) {
    const THREADS: usize = 8;
    const EACH: u64 = 25;
    std::thread::scope(|s| {
        for i in 0..THREADS {
            let kv = nodes[i % 2].clone();
            s.spawn(move || {
                for _ in 0..EACH {
                    loop {
                        let raw = kv.get(A, b"counter").unwrap();
                        let n = raw
                            .as_deref()
                            .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                        let mut b = Batch::new();
                        b.check(A, b"counter".to_vec(), raw);
                        b.put(A, b"counter".to_vec(), (n + 1).to_be_bytes().to_vec());
                        // A second key written under the same check: both or neither.
                        b.put(A, format!("seen-{:04}", n + 1).into_bytes(), vec![]);
                        if kv.commit(&b).unwrap() == Commit::Done {
                            break;
                        }
                    }
                }
            });
        }
    });
    let total = THREADS as u64 * EACH;
    let n = u64::from_be_bytes(
        nodes[0]
            .get(A, b"counter")
            .unwrap()
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert_eq!(n, total, "every increment counted once");
    assert_eq!(
        nodes[1].scan(A, b"seen-", None, None).unwrap().len() as u64,
        total,
        "each value taken exactly once"
    );
}

fn tree_names_lists_non_empty_trees(kv: &dyn Backend) {
    assert_eq!(kv.tree_names().unwrap(), Vec::<String>::new());
    put(kv, B, b"k", b"v");
    put(kv, A, &[0xff], b"v");
    put(kv, Tree("a"), b"", b"v");
    let mut b = Batch::new();
    b.check(Tree("absent-only"), b"k".to_vec(), None);
    b.put(Tree("gamma"), b"k".to_vec(), b"v".to_vec());
    b.remove(Tree("gamma"), b"k".to_vec());
    assert_eq!(kv.commit(&b).unwrap(), Commit::Done);
    assert_eq!(kv.tree_names().unwrap(), ["a", "alpha", "beta"]);
}

/// Batches with many checks (a roster import checks thousands of absent addresses at once):
/// all hold → all written; one fails → nothing written; two nodes creating overlapping sets
/// concurrently → for each key exactly one creator.
fn many_checks_in_one_batch(nodes: &[Arc<dyn Backend>; 2]) {
    let kv = &*nodes[0];
    put(kv, A, b"present-1", b"v1");
    put(kv, A, b"present-2", b"v2");
    let create = |from: usize, to: usize, tag: &str| {
        let mut b = Batch::new();
        for i in from..to {
            let k = format!("many-{i:04}");
            b.check(A, k.clone(), None);
            b.put(A, k, tag.to_string());
        }
        b
    };
    let mut b = create(0, 20, "first");
    b.check(A, b"present-1".to_vec(), Some(b"v1".to_vec()));
    b.check(A, b"present-2".to_vec(), Some(b"v2".to_vec()));
    assert_eq!(kv.commit(&b).unwrap(), Commit::Done);
    assert_eq!(kv.scan(A, b"many-", None, None).unwrap().len(), 20);
    // One check among many fails: nothing of the batch is written, no placeholder left.
    let mut b = create(20, 40, "second");
    b.check(A, b"present-2".to_vec(), Some(b"stale".to_vec()));
    assert_eq!(kv.commit(&b).unwrap(), Commit::Conflict);
    assert_eq!(kv.scan(A, b"many-", None, None).unwrap().len(), 20);
    assert_eq!(
        kv.commit(&create(10, 30, "again")).unwrap(),
        Commit::Conflict
    );
    // Two nodes race with overlapping sets, many times: every key has one creator.
    for round in 0..10 {
        let base = 100 + round * 100;
        let handles: Vec<_> = (0..2)
            .map(|n| {
                let kv = nodes[n].clone();
                std::thread::spawn(move || {
                    let mut b = Batch::new();
                    for i in base + n * 10..base + n * 10 + 30 {
                        let k = format!("race-{i:05}");
                        b.check(A, k.clone(), None);
                        b.put(A, k, format!("node{n}"));
                    }
                    kv.commit(&b).unwrap()
                })
            })
            .collect();
        let outcomes: Vec<Commit> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            outcomes.iter().filter(|c| **c == Commit::Done).count(),
            1,
            "overlapping creations: exactly one wins ({outcomes:?})"
        );
    }
    assert_eq!(kv.scan(A, b"race-", None, None).unwrap().len(), 10 * 30);
}

fn conformance(fresh: &dyn Fn() -> [Arc<dyn Backend>; 2]) {
    tree_names_lists_non_empty_trees(&*fresh()[0]);
    get_put_remove(&*fresh()[0]);
    scan_order_prefix_after_limit(&*fresh()[0]);
    batch_is_atomic(&*fresh()[0]);
    cas_and_absent_checks(&*fresh()[0]);
    only_one_creator_wins(&fresh());
    concurrent_cas_increments(&fresh());
    many_checks_in_one_batch(&fresh());
}

#[test]
fn sled_backend_conforms() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance(&|| {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn Backend> = Arc::new(SledBackend::open(dir.path()).unwrap());
        dirs.lock().unwrap().push(dir);
        [kv.clone(), kv]
    });
}

#[test]
fn postgres_backend_conforms() {
    let pg = PgCluster::start();
    let n = std::sync::atomic::AtomicUsize::new(0);
    conformance(&|| {
        let db = format!(
            "suite{}",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let url = pg.create_db(&db);
        let a: Arc<dyn Backend> = Arc::new(PgBackend::open(&url, None, 8).unwrap());
        let b: Arc<dyn Backend> = Arc::new(PgBackend::open(&url, None, 8).unwrap());
        [a, b]
    });
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL specifics: migrations, errors, use from async code.

/// The outbound queue's leases: a node claiming a row that another node's transaction holds
/// gives up at once (`SELECT … FOR UPDATE SKIP LOCKED`) instead of waiting for it.
#[test]
fn a_skip_locked_batch_gives_up_on_a_row_another_transaction_holds() {
    let pg = PgCluster::start();
    let url = pg.create_db("skiplocked");
    let kv = PgBackend::open(&url, None, 4).unwrap();
    put(&kv, A, b"lease", b"free");
    let claim = || {
        let mut b = Batch::new().skipping_locked();
        b.check(A, b"lease".to_vec(), Some(b"free".to_vec()));
        b.put(A, b"lease".to_vec(), b"taken".to_vec());
        b
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let other_node = client.transaction().await.unwrap();
        let held = other_node
            .query(
                "SELECT value FROM kv WHERE tree = $1 AND key = $2 FOR UPDATE",
                &[&A.0, &b"lease".as_slice()],
            )
            .await
            .unwrap();
        assert_eq!(held.len(), 1);
        // The value matches, but the row is another transaction's right now: skipped.
        assert_eq!(kv.commit(&claim()).unwrap(), Commit::Conflict);
        assert_eq!(kv.get(A, b"lease").unwrap().as_deref(), Some(&b"free"[..]));
        other_node.rollback().await.unwrap();
    });
    assert_eq!(kv.commit(&claim()).unwrap(), Commit::Done);
    assert_eq!(kv.get(A, b"lease").unwrap().as_deref(), Some(&b"taken"[..]));
    // A key expected absent that another transaction is creating is skipped the same way once
    // it exists; an absent one is simply taken.
    let mut fresh = Batch::new().skipping_locked();
    fresh.check(A, b"new".to_vec(), None);
    fresh.put(A, b"new".to_vec(), b"mine".to_vec());
    assert_eq!(kv.commit(&fresh).unwrap(), Commit::Done);
    assert_eq!(
        kv.commit(&fresh).unwrap(),
        Commit::Conflict,
        "it exists now"
    );
}

#[test]
fn nodes_starting_together_apply_each_migration_once() {
    let pg = PgCluster::start();
    let url = pg.create_db("fresh");
    let opened: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PgBackend::open(&url, None, 2)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &opened {
        assert!(o.is_ok(), "{:?}", o.as_ref().err());
    }
    assert_eq!(
        pg.psql("fresh", "SELECT count(*), min(version) FROM schema_version"),
        "1|1"
    );
    drop(opened);
    // Reopening finds the schema current and changes nothing.
    let kv = PgBackend::open(&url, None, 2).unwrap();
    put(&kv, A, b"k", b"v");
    drop(kv);
    let kv = PgBackend::open(&url, None, 2).unwrap();
    assert_eq!(kv.get(A, b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(pg.psql("fresh", "SELECT count(*) FROM schema_version"), "1");

    // A schema newer than this build is refused with a reason, not used.
    pg.psql("fresh", "INSERT INTO schema_version (version) VALUES (999)");
    let err = PgBackend::open(&url, None, 2)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("version 999"), "{err}");
}

#[test]
fn unreachable_or_refused_postgres_is_a_clear_error() {
    // Nothing listens on this port once the probe socket is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = PgBackend::open(&format!("postgres://mshub@127.0.0.1:{port}/x"), None, 2)
        .err()
        .expect("no server")
        .to_string();
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    let err = PgBackend::open("mysql://nope", None, 2)
        .err()
        .expect("not a PostgreSQL URL")
        .to_string();
    assert!(err.contains("invalid PostgreSQL URL"), "{err}");

    let pg = PgCluster::start();
    let err = PgBackend::open(&pg.url("no_such_db"), None, 2)
        .err()
        .expect("no database")
        .to_string();
    assert!(
        err.contains("no_such_db") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn usable_and_droppable_inside_async_code() {
    let pg = PgCluster::start();
    let url = pg.create_db("asyncdb");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // Straight from a runtime worker (as a careless async caller would), then from a
        // blocking thread: neither may panic with "runtime within a runtime".
        let kv = Arc::new(PgBackend::open(&url, None, 2).unwrap());
        put(&*kv, A, b"k", b"v");
        assert_eq!(kv.get(A, b"k").unwrap().as_deref(), Some(&b"v"[..]));
        let kv2 = kv.clone();
        let got = tokio::task::spawn_blocking(move || kv2.get(A, b"k").unwrap())
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
        drop(kv); // the last handle, dropped on a runtime worker
    });
}

// ---------------------------------------------------------------------------------------------
// Store level: two nodes.

const ACCOUNT: AccountId = AccountId(42);

fn message(n: usize) -> Vec<u8> {
    format!("From: lab@example.org\r\nSubject: result {n}\r\n\r\nvalue {n}\r\n").into_bytes()
}

fn store_on(dir: &Path, kv: Arc<dyn Backend>, key: &str) -> Arc<Store> {
    let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(&dir.join("blobs")).unwrap());
    Arc::new(Store::with_backends(dir, kv, blobs, MasterKey::new(key).unwrap()).unwrap())
}

/// Appends from both nodes at once: UIDs 1..=N with no gap or repeat, MODSEQs strictly
/// increasing with the UID, and the mailbox's counters agree.
fn concurrent_appends_allocate_uids_and_modseqs(nodes: [Arc<Store>; 2]) {
    nodes[0].provision_account(ACCOUNT).unwrap();
    nodes[1].provision_account(ACCOUNT).unwrap();
    let inbox = nodes[1]
        .special_mailbox(ACCOUNT, SpecialUse::Inbox)
        .unwrap();
    const THREADS: usize = 4;
    const EACH: usize = 10;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let store = nodes[t % 2].clone();
            s.spawn(move || {
                for i in 0..EACH {
                    store
                        .append(
                            inbox.id,
                            &message(t * 100 + i),
                            BTreeSet::new(),
                            1_700_000_000,
                        )
                        .unwrap();
                }
            });
        }
    });
    let total = THREADS * EACH;
    let messages = nodes[0].messages(inbox.id).unwrap();
    let uids: Vec<u32> = messages.iter().map(|m| m.uid.get()).collect();
    assert_eq!(uids, (1..=total as u32).collect::<Vec<_>>());
    let modseqs: Vec<u64> = messages.iter().map(|m| m.modseq.0).collect();
    assert!(modseqs.windows(2).all(|w| w[0] < w[1]), "{modseqs:?}");
    let mailbox = nodes[1].mailbox_by_id(inbox.id).unwrap().unwrap();
    assert_eq!(mailbox.exists as usize, total);
    assert_eq!(mailbox.uid_next.get() as usize, total + 1);
    assert_eq!(mailbox.highest_modseq.0, *modseqs.last().unwrap());
    // Every message reads back, from either node, with its own content.
    let bodies: BTreeSet<Vec<u8>> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| nodes[i % 2].read_message(inbox.id, m.uid).unwrap())
        .collect();
    assert_eq!(bodies.len(), total);
}

#[test]
fn sled_store_allocates_uids_and_modseqs_under_concurrent_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    concurrent_appends_allocate_uids_and_modseqs([store.clone(), store]);
}

fn two_pg_nodes(pg: &PgCluster, db: &str, dir: &Path) -> [Arc<Store>; 2] {
    let url = pg.create_db(db);
    let key = MasterKey::generate();
    let a = store_on(dir, Arc::new(PgBackend::open(&url, None, 4).unwrap()), &key);
    let b = store_on(dir, Arc::new(PgBackend::open(&url, None, 4).unwrap()), &key);
    [a, b]
}

#[test]
fn two_postgres_nodes_allocate_uids_and_modseqs_under_concurrent_appends() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    concurrent_appends_allocate_uids_and_modseqs(two_pg_nodes(&pg, "uids", dir.path()));
}

/// Waits for a change matching `want`, up to `within`.
fn wait_for(
    rx: &mut tokio::sync::broadcast::Receiver<Change>,
    within: Duration,
    want: impl Fn(&Change) -> bool,
) -> Option<(Change, Duration)> {
    let start = Instant::now();
    while start.elapsed() < within {
        match rx.try_recv() {
            Ok(c) if want(&c) => return Some((c, start.elapsed())),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    }
    None
}

#[test]
fn changes_on_one_postgres_node_reach_the_other_within_a_second() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let [a, b] = two_pg_nodes(&pg, "events", dir.path());
    a.provision_account(ACCOUNT).unwrap();
    let inbox = a.special_mailbox(ACCOUNT, SpecialUse::Inbox).unwrap();
    let mut on_a = a.events().subscribe();
    let mut on_b = b.events().subscribe();

    let meta = a.append(inbox.id, &message(1), BTreeSet::new(), 0).unwrap();
    let appended = |c: &Change| {
        c.mailbox == inbox.id
            && c.account == ACCOUNT
            && c.kind
                == ChangeKind::Appended {
                    uid: meta.uid,
                    modseq: meta.modseq,
                }
    };
    let (_, took) = wait_for(&mut on_b, Duration::from_secs(1), appended)
        .expect("node B hears of node A's append within 1 s");
    eprintln!("append on A reached B in {took:?}");
    // The woken reader finds what it was told about.
    assert!(b.message(inbox.id, meta.uid).unwrap().is_some());
    // Node A hears of its own change once, not again through PostgreSQL.
    assert!(wait_for(&mut on_a, Duration::from_millis(100), appended).is_some());
    assert!(
        wait_for(&mut on_a, Duration::from_millis(500), appended).is_none(),
        "a node's own change is not echoed back to it"
    );

    // The other kinds cross too, with their details.
    b.store_flags(
        inbox.id,
        &[meta.uid],
        mshub_store::FlagOp::Add,
        &[mshub_store::Flag::Seen].into_iter().collect(),
        None,
    )
    .unwrap();
    let (flags, _) = wait_for(&mut on_a, Duration::from_secs(1), |c| {
        matches!(c.kind, ChangeKind::FlagsChanged { .. })
    })
    .expect("flags changed on B reach A");
    assert_eq!(
        flags.kind,
        ChangeKind::FlagsChanged {
            uids: vec![meta.uid],
            modseq: b.mailbox_by_id(inbox.id).unwrap().unwrap().highest_modseq
        }
    );
}

#[test]
fn acknowledged_appends_survive_a_postgres_crash_and_the_nodes_reconnect() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let [a, b] = two_pg_nodes(&pg, "crash", dir.path());
    a.provision_account(ACCOUNT).unwrap();
    let inbox = a.special_mailbox(ACCOUNT, SpecialUse::Inbox).unwrap();
    let acked: Vec<_> = (0..20)
        .map(|i| {
            a.append(inbox.id, &message(i), BTreeSet::new(), 0)
                .unwrap()
                .uid
        })
        .collect();

    pg.crash_and_restart();

    // A read is repeated on a fresh connection when its pooled one died with the server.
    assert_eq!(a.messages(inbox.id).unwrap().len(), acked.len());

    // Pooled connections died with the server: a call may fail (with a reason, no panic) until
    // fresh ones are opened.
    let mut appended = None;
    let start = Instant::now();
    while appended.is_none() && start.elapsed() < Duration::from_secs(20) {
        match b.append(inbox.id, &message(99), BTreeSet::new(), 0) {
            Ok(meta) => appended = Some(meta),
            Err(e) => {
                assert!(e.to_string().contains("PostgreSQL"), "{e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let after = appended.expect("node B writes again after PostgreSQL restarted");
    let uids: Vec<_> = a
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    for uid in &acked {
        assert!(
            uids.contains(uid),
            "acknowledged UID {uid} lost in the crash"
        );
    }
    assert_eq!(
        after.uid.get() as usize,
        acked.len() + 1,
        "no UID reused or skipped"
    );

    // The listeners reconnect: changes cross nodes again (a notice sent while a listener was
    // away is lost, hence several tries).
    let mut on_b = b.events().subscribe();
    let mut heard = false;
    for i in 0..20 {
        let meta = a
            .append(inbox.id, &message(200 + i), BTreeSet::new(), 0)
            .unwrap();
        if wait_for(&mut on_b, Duration::from_secs(1), |c| {
            c.kind
                == ChangeKind::Appended {
                    uid: meta.uid,
                    modseq: meta.modseq,
                }
        })
        .is_some()
        {
            heard = true;
            break;
        }
    }
    assert!(heard, "node B's listener never came back");
}
