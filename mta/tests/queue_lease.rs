//! The outbound queue's delivery lease: with several nodes on one store (here two queue
//! handles, each its own node), one node at a time may deliver an entry; a node that died
//! holding a lease gives it up when it expires.

use std::sync::Arc;

use mshub_directory::Address;
use mshub_mta::queue::Queue;
use mshub_store::{MasterKey, Store};

fn queue_with_one_entry() -> (tempfile::TempDir, Arc<Store>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path(), MasterKey::new(&MasterKey::generate()).unwrap()).unwrap());
    let q = Queue::open(store.clone()).unwrap();
    let id = q
        .enqueue(
            Some(&Address::try_from("dr.martin@hopital.mshub.test").unwrap()),
            None,
            false,
            vec![(
                Address::try_from("dr.bernard@clinique.autre.test").unwrap(),
                Default::default(),
            )],
            b"Subject: x\r\n\r\nbody\r\n",
        )
        .unwrap();
    (dir, store, id)
}

#[test]
fn one_node_at_a_time_holds_an_entry() {
    let (_dir, store, id) = queue_with_one_entry();
    let a = Queue::open(store.clone()).unwrap();
    let b = Queue::open(store.clone()).unwrap();
    let now = 1_000;
    assert!(a.lease(id, now, 600).unwrap(), "a free entry is taken");
    assert!(!b.lease(id, now + 1, 600).unwrap(), "held by A");
    assert!(
        a.lease(id, now + 2, 600).unwrap(),
        "the holder may extend it"
    );
    a.release(id).unwrap();
    assert!(b.lease(id, now + 3, 600).unwrap(), "released: B takes it");
    // A cannot release B's lease.
    a.release(id).unwrap();
    assert!(!a.lease(id, now + 4, 600).unwrap());
}

#[test]
fn a_dead_nodes_lease_expires() {
    let (_dir, store, id) = queue_with_one_entry();
    let dead = Queue::open(store.clone()).unwrap();
    let alive = Queue::open(store.clone()).unwrap();
    assert!(dead.lease(id, 1_000, 60).unwrap());
    assert!(!alive.lease(id, 1_059, 60).unwrap(), "not expired yet");
    assert!(alive.lease(id, 1_060, 60).unwrap(), "expired: taken over");
    assert!(
        !dead.lease(id, 1_061, 60).unwrap(),
        "and the old holder is out"
    );
}

#[test]
fn racing_nodes_take_an_entry_once() {
    let (_dir, store, id) = queue_with_one_entry();
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let q = Queue::open(store.clone()).unwrap();
                s.spawn(move || usize::from(q.lease(id, 5_000, 600).unwrap()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
}

#[test]
fn removing_a_delivered_entry_frees_its_lease_and_get_sees_it_gone() {
    let (_dir, store, id) = queue_with_one_entry();
    let a = Queue::open(store.clone()).unwrap();
    assert!(a.lease(id, 1_000, 600).unwrap());
    let entry = a.get(id).unwrap().expect("queued");
    a.remove(&entry).unwrap();
    assert!(a.get(id).unwrap().is_none());
    let b = Queue::open(store).unwrap();
    assert!(b.lease(id, 1_001, 600).unwrap(), "no lease left behind");
}
