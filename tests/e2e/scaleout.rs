//! Two hub nodes on one PostgreSQL (`[store] backend = "postgres"`): mail submitted to node A is
//! read over IMAP on node B, and a client idling on B is woken within a second; operator
//! commands work beside the running nodes. In the first test the sealed blobs are in a Garage
//! bucket both nodes use (`[blobs] backend = "s3"`); the queue tests share a blob directory.

#[path = "../../store/tests/support/pg.rs"]
mod pg;

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn write_config(dir: &Path, url: &str, shared: Option<&Path>, blobs: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    // Node A is a demo directory; node B serves with A's master key and certificate.
    let (key, tls) = match shared {
        Some(a) => (
            a.join("master.key").display().to_string(),
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                a.join("tls/cert.pem").display(),
                a.join("tls/key.pem").display()
            ),
        ),
        None => ("master.key".to_string(), String::new()),
    };
    let path = dir.join("mshub.toml");
    std::fs::write(
        &path,
        format!(
            r#"hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "{key}"
local_domains = ["hopital.mshub.test"]
[store]
backend = "postgres"
url = "{url}"
pool_size = 4
{tls}[listen]
smtp_relay = "127.0.0.1:0"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
https = "127.0.0.1:0"
admin = "127.0.0.1:0"
{blobs}"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn mail_delivered_on_node_a_wakes_idle_on_node_b_within_a_second() {
    let pg = pg::PgCluster::start();
    let url = pg.create_db("hub");
    let garage = crate::garage::shared();
    let blobs = garage.blobs_config("scaleout-two-nodes");
    let s3_env: Vec<(String, String)> = garage
        .credentials_env()
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir_a = tmp.path().join("node-a");
    let dir_b = tmp.path().join("node-b");

    let config_a = write_config(&dir_a, &url, None, &blobs);
    let mut a = Instance::new(
        &dir_a,
        config_a,
        "mshub.test",
        dir_a.join("tls/cert.pem"),
        vec![
            "demo".into(),
            "--data".into(),
            dir_a.to_str().unwrap().into(),
        ],
    );
    a.env = s3_env.clone();
    a.start();

    // Node B: its own data directory (control socket), the same database and bucket.
    let config_b = write_config(&dir_b, &url, Some(&dir_a), &blobs);
    std::fs::create_dir_all(dir_b.join("store")).unwrap();
    let mut b = Instance::new(
        &dir_b,
        config_b.clone(),
        "mshub.test",
        dir_a.join("tls/cert.pem"),
        vec![
            "--config".into(),
            config_b.to_str().unwrap().into(),
            "serve".into(),
        ],
    );
    b.env = s3_env.clone();
    b.start();
    let (_, imaps_b) = b.imap_ports();

    // A small message rides inline in PostgreSQL; a large one (random, so it stays large once
    // compressed) goes to the bucket, where node B reads it: both paths.
    for (marker, padding) in [("scaleout-small", 0), ("scaleout-large", 150_000)] {
        let out = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/scaleout.py"))
            .args(["--imaps-port", &imaps_b.to_string()])
            .args(["--smtp-port", &a.ports.submission.to_string()])
            .args(["--cafile", a.ca.to_str().unwrap()])
            .args([
                "--user",
                MARTIN.0,
                "--password",
                MARTIN.1,
                "--marker",
                marker,
            ])
            .args(["--padding", &padding.to_string()])
            .output()
            .expect("python3 runs");
        let stdout = text(&out.stdout);
        assert!(
            out.status.success() && stdout.ends_with("DONE\n"),
            "scaleout.py failed:\n{stdout}{}",
            text(&out.stderr)
        );
        println!("{stdout}");
        let woke: f64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("WOKE "))
            .and_then(|s| s.parse().ok())
            .expect("a WOKE line");
        assert!(
            woke < 1.0,
            "IDLE on B woke {woke:.3} s after A accepted the message"
        );
    }

    // Nothing went to a local blob directory: the large message crossed through the bucket.
    for dir in [&dir_a, &dir_b] {
        let local = dir.join("store/blobs");
        let files = std::fs::read_dir(&local).map(|d| d.count()).unwrap_or(0);
        assert_eq!(files, 0, "blob files under {}", local.display());
    }

    // An operator command beside the running nodes works on the shared store directly.
    let out = mshub()
        .args(["--config", config_b.to_str().unwrap(), "account", "list"])
        .envs(s3_env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("mshub runs");
    assert!(
        out.status.success() && text(&out.stdout).contains(MARTIN.0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    b.stop();
    a.stop();
    assert_eq!(
        pg.psql("hub", "SELECT count(*) FROM schema_version"),
        "1",
        "the two nodes applied the schema once"
    );
}

/// The configuration of node `dir` of operator A on PostgreSQL, trusting the peer operator
/// of the federation tests; `first` holds the key, certificate and CA both nodes use.
fn write_relaying_node(dir: &Path, first: &Path, url: &str, relay: u16) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("store")).unwrap();
    let path = dir.join("mshub.toml");
    let f = |p: &str| first.join(p).display().to_string();
    std::fs::write(
        &path,
        format!(
            r#"hub_domain = "mshub.test"
data_dir = "store"
master_key_file = "{key}"
local_domains = ["hopital.mshub.test"]
[store]
backend = "postgres"
url = "{url}"
pool_size = 4
[tls]
cert = "{cert}"
key = "{tlskey}"
[listen]
smtp_relay = "127.0.0.1:{relay}"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
https = "127.0.0.1:0"
admin = "127.0.0.1:0"
[mta]
peer_ca = "{ca}"
[mta.queue]
retry_initial_secs = 1
retry_max_secs = 1
lease_secs = 3
"#,
            key = f("master.key"),
            cert = f("tls/cert.pem"),
            tlskey = f("tls/key.pem"),
            ca = f("ca.pem"),
        ),
    )
    .unwrap();
    path
}

fn copies(inbox: &[Vec<u8>], marker: &str) -> usize {
    inbox.iter().filter(|m| contains(m, marker)).count()
}

#[test]
fn queued_mail_is_relayed_once_by_two_nodes_and_after_one_is_killed() {
    use crate::federation::{has, send_from_a, stop_and_poll_inbox, write_pki, BERNARD};
    use std::time::Duration;

    let pg = pg::PgCluster::start();
    let url = pg.create_db("relay");
    let tmp = tempfile::tempdir().unwrap();
    let a1_dir = tmp.path().join("node-a1");
    let a2_dir = tmp.path().join("node-a2");
    let p_dir = tmp.path().join("peer");
    write_pki(&[
        (a1_dir.as_path(), "hopital.mshub.test"),
        (p_dir.as_path(), "clinique.autre.test"),
    ]);
    let (a_relay, a2_relay, p_relay) = (free_port(), free_port(), free_port());
    std::fs::write(a1_dir.join("master.key"), "a1".repeat(32)).unwrap();
    std::fs::write(p_dir.join("master.key"), "b2".repeat(32)).unwrap();
    let a1_config = write_relaying_node(&a1_dir, &a1_dir, &url, a_relay);
    let a2_config = write_relaying_node(&a2_dir, &a1_dir, &url, a2_relay);
    std::fs::create_dir_all(a1_dir.join("store/blobs")).unwrap();
    std::os::unix::fs::symlink(a1_dir.join("store/blobs"), a2_dir.join("store/blobs")).unwrap();
    crate::federation::write_config(
        &p_dir,
        "autre.test",
        "clinique.autre.test",
        p_relay,
        172_800,
        14_400,
    );

    let mut a1 = Instance::new(
        &a1_dir,
        a1_config,
        "mshub.test",
        a1_dir.join("ca.pem"),
        vec![
            "demo".into(),
            "--data".into(),
            a1_dir.to_str().unwrap().into(),
        ],
    );
    a1.cli(
        &[
            "domain",
            "trust",
            "clinique.autre.test",
            "--route",
            &format!("127.0.0.1:{p_relay}"),
            "--tls",
            "required",
        ],
        "",
    );
    let mut a2 = Instance::new(
        &a2_dir,
        a2_config.clone(),
        "mshub.test",
        a1_dir.join("ca.pem"),
        vec![
            "--config".into(),
            a2_config.to_str().unwrap().into(),
            "serve".into(),
        ],
    );
    let p_config = p_dir.join("mshub.toml");
    let mut p = Instance::new(
        &p_dir,
        p_config.clone(),
        "autre.test",
        p_dir.join("ca.pem"),
        vec![
            "--config".into(),
            p_config.to_str().unwrap().into(),
            "serve".into(),
        ],
    );
    p.cli(
        &[
            "account",
            "add",
            BERNARD,
            "professional",
            "--rpps",
            "10000000009",
            "--given-name",
            "Luc",
            "--family-name",
            "Bernard",
            "--profession",
            "physician",
            "--password-stdin",
        ],
        "bernard-password\n",
    );
    p.cli(
        &[
            "domain",
            "trust",
            "hopital.mshub.test",
            "--route",
            &format!("127.0.0.1:{a_relay}"),
            "--tls",
            "mutual-tls",
        ],
        "",
    );
    a1.start();
    a2.start();

    // The peer is down while both nodes retry every second: when it comes back, the two
    // nodes' runners find the entry due together, and only the lease holder relays it.
    send_from_a(&a1, "TWO-NODES-7a1c");
    std::thread::sleep(Duration::from_secs(3));
    p.start();
    std::thread::sleep(Duration::from_secs(4));
    let inbox = stop_and_poll_inbox(
        &mut p,
        BERNARD,
        Duration::from_secs(20),
        Duration::from_secs(2),
        has("TWO-NODES-7a1c"),
    );
    assert_eq!(
        copies(&inbox, "TWO-NODES-7a1c"),
        1,
        "relayed once by two nodes"
    );

    // Queued on A1, which is killed (SIGKILL) while retrying: A2 relays it, once.
    send_from_a(&a1, "KILLED-NODE-3f9d");
    std::thread::sleep(Duration::from_millis(1500));
    a1.kill();
    p.start();
    let inbox = stop_and_poll_inbox(
        &mut p,
        BERNARD,
        Duration::from_secs(30),
        Duration::from_secs(3),
        has("KILLED-NODE-3f9d"),
    );
    assert_eq!(
        copies(&inbox, "KILLED-NODE-3f9d"),
        1,
        "relayed once by the surviving node"
    );
    assert_eq!(copies(&inbox, "TWO-NODES-7a1c"), 1);
    a2.stop();
}

#[test]
fn a_sled_hub_migrated_to_postgres_keeps_its_accounts_mail_and_audit_chain() {
    use mshub_directory::{Address, Directory, Domain};
    use mshub_store::{BlobStore, FsBlobStore, MasterKey, PgBackend, SpecialUse, Store};
    use std::sync::Arc;

    let pg = pg::PgCluster::start();
    let url = pg.create_db("migrated");
    let mut hub = Instance::demo();
    let msg = message(
        MARTIN.0,
        MARTIN.0,
        "Avant la migration",
        &["Message-ID: <migration-1@hopital.mshub.test>"],
        "MIGRATION-MARKER-91b2",
    );
    let t = dialogue(
        hub.ports.submission,
        "plain",
        &hub.ca,
        &submit_steps(MARTIN, MARTIN.0, &[MARTIN.0], &msg),
    );
    t.expect("data.", "250 2.0.0 OK: queued as");
    hub.stop();
    let before = hub.inbox(MARTIN.0);
    assert!(before.iter().any(|m| contains(m, "MIGRATION-MARKER-91b2")));

    let from = format!("sled:{}", hub.dir.join("store").display());
    let out = run(&["migrate", "--from", &from, "--to", &url], "");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("copied and verified"), "{stdout}");
    assert!(stdout.contains("account-key"), "per-tree counts: {stdout}");

    // A second run would mix two stores: refused.
    let again = run(&["migrate", "--from", &from, "--to", &url], "");
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already holds records"),
        "{}",
        text(&again.stderr)
    );

    // The hub on PostgreSQL (blobs still in the data directory): same chain, same mail.
    let mut config = std::fs::read_to_string(&hub.config).unwrap();
    config.push_str(&format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n"
    ));
    std::fs::write(&hub.config, config).unwrap();
    let verified = hub.cli(&["audit", "verify"], "");
    assert!(!text(&verified.stdout).is_empty());
    let listed = text(&hub.cli(&["account", "list"], "").stdout);
    assert!(
        listed.contains(MARTIN.0) && listed.contains(CAMILLE.0),
        "{listed}"
    );

    let key = std::fs::read_to_string(hub.dir.join("master.key")).unwrap();
    let blobs: Arc<dyn BlobStore> =
        Arc::new(FsBlobStore::open(&hub.dir.join("store/blobs")).unwrap());
    let store = Arc::new(
        Store::with_backends(
            &hub.dir.join("store"),
            Arc::new(PgBackend::open(&url, None, 2).unwrap()),
            blobs,
            MasterKey::new(&key).unwrap(),
        )
        .unwrap(),
    );
    let directory =
        Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap();
    let martin = directory
        .account_by_address(&Address::try_from(MARTIN.0).unwrap())
        .unwrap()
        .unwrap();
    let inbox = store.special_mailbox(martin.id, SpecialUse::Inbox).unwrap();
    let after: Vec<Vec<u8>> = store
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| store.read_message(inbox.id, m.uid).unwrap())
        .collect();
    assert_eq!(
        after, before,
        "the same messages, readable, in the same order"
    );
}
