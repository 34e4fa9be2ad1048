//! The PostgreSQL backend says it is unhealthy while the database cannot be reached (so that
//! `/readyz` says so), and healthy again by itself as soon as a call goes through.

mod support;

use std::time::{Duration, Instant};

use mshub_store::{Backend, Batch, Commit, Health, PgBackend, Tree};
use support::pg::PgCluster;

const T: Tree = Tree("health");

#[test]
fn unhealthy_while_postgres_is_down_and_healthy_again_when_it_is_back() {
    let pg = PgCluster::start();
    let backend = PgBackend::open(&pg.create_db("health"), None, 2).unwrap();
    let mut batch = Batch::new();
    batch.put(T, b"k".to_vec(), b"v".to_vec());
    assert!(matches!(backend.commit(&batch).unwrap(), Commit::Done));
    assert!(matches!(backend.health(), Health::Healthy));

    pg.crash();
    assert!(
        backend.commit(&batch).is_err(),
        "a write with the server down"
    );
    match backend.health() {
        Health::WritesFailing { reason, .. } => {
            assert!(reason.contains("PostgreSQL"), "{reason}")
        }
        Health::Healthy => panic!("healthy while PostgreSQL is down"),
    }
    assert!(backend.get(T, b"k").is_err(), "a read with the server down");
    assert!(matches!(backend.health(), Health::WritesFailing { .. }));

    pg.start_again();
    let start = Instant::now();
    while backend.get(T, b"k").is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never reads again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        matches!(backend.health(), Health::Healthy),
        "healthy again once a call went through"
    );
    assert!(matches!(backend.commit(&batch).unwrap(), Commit::Done));
    assert!(matches!(backend.health(), Health::Healthy));
}
