//! The hub with `[blobs] backend = "s3"` against a real Garage: mail goes in over SMTP, comes
//! out over IMAP, and what lands in the bucket is sealed; a bucket that refuses the hub's key
//! stops the hub at start with the reason.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mshub_directory::{Address, Directory, Domain};
use mshub_store::{BlobId, BlobStore, MasterKey, S3BlobStore, S3Options, SpecialUse, Store};

use crate::garage::{self, Garage};
use crate::support::*;

fn s3_options(garage: &Garage, prefix: &str) -> S3Options {
    S3Options {
        endpoint: garage.endpoint.clone(),
        bucket: garage.bucket.clone(),
        region: garage.region.clone(),
        prefix: prefix.into(),
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: garage.secret_access_key.clone(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn large_mail_travels_through_the_bucket_sealed() {
    let garage = garage::shared();
    let prefix = format!("hub-{}", BlobId::random());
    let mut hub = Instance::demo_with(&garage.blobs_config(&prefix), &garage.credentials_env());
    let (_, imaps) = hub.imap_ports();

    // Unique per run. Hex compresses to about half before sealing: 6000 lines keep the sealed
    // message well above what is kept inline.
    let marker = format!("S3-MARKER-{}", BlobId::random());
    let noise: String = (0..6000)
        .map(|_| format!("{}\n", BlobId::random()))
        .collect();
    let subject = format!("Resultats {marker}");
    let body = format!("Hemoglobine 13,2 g/dL {marker}\n{noise}");
    let msg = message(MARTIN.0, CAMILLE.0, &subject, &[], &body);
    let file = hub.dir.join("large.eml");
    std::fs::write(&file, &msg).unwrap();
    let sent = send_py(&[
        "--port",
        &hub.ports.submission.to_string(),
        "--mode",
        "starttls",
        "--cafile",
        hub.ca.to_str().unwrap(),
        "--user",
        MARTIN.0,
        "--password",
        MARTIN.1,
        "--sender",
        MARTIN.0,
        "--to",
        CAMILLE.0,
        "--message",
        file.to_str().unwrap(),
    ]);
    assert!(
        sent.status.success(),
        "{}{}",
        text(&sent.stdout),
        text(&sent.stderr)
    );

    // The running hub serves it back over IMAP (curl), reading the blob from the bucket.
    let user = format!("{}:{}", CAMILLE.0, CAMILLE.1);
    let curl = |url: String| {
        let out = Command::new("curl")
            .args(["--silent", "--show-error", "--insecure", "--max-time", "60"])
            .args(["-u", &user, &url])
            .stdin(Stdio::null())
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl {url}: {}", text(&out.stderr));
        out.stdout
    };
    let search = text(&curl(format!(
        "imaps://127.0.0.1:{imaps}/INBOX?SUBJECT%20{marker}"
    )));
    let seq = search
        .split_whitespace()
        .last()
        .filter(|n| n.parse::<u32>().is_ok())
        .unwrap_or_else(|| panic!("the message is not in the INBOX: {search:?}"))
        .to_string();
    let fetched = curl(format!("imaps://127.0.0.1:{imaps}/INBOX;MAILINDEX={seq}"));
    assert!(
        contains(&fetched, &msg),
        "IMAP gave back something else ({} bytes for {} sent)",
        fetched.len(),
        msg.len()
    );
    hub.stop();

    // In the bucket: this hub's objects, none of them readable.
    let bucket = S3BlobStore::open(&s3_options(garage, &prefix)).unwrap();
    let names = bucket.list_object_names().unwrap();
    assert!(!names.is_empty(), "nothing was written to the bucket");
    for name in &names {
        let id = BlobId::try_from(name.rsplit('/').next().unwrap()).unwrap();
        let object = bucket.get(id).unwrap();
        for needle in [
            marker.as_bytes(),
            b"Hemoglobine".as_slice(),
            &noise.as_bytes()[..40],
        ] {
            assert!(
                !contains(&object, needle),
                "{name} holds plaintext {:?}",
                text(needle)
            );
        }
    }
    // …and nothing in the data directory's blob folder.
    let local = hub.dir.join("store/blobs");
    let local_files = std::fs::read_dir(&local)
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(local_files, 0, "blobs were written to {}", local.display());

    // The stopped hub's store, opened on the same bucket, reads the message too.
    let key = std::fs::read_to_string(hub.dir.join("master.key")).unwrap();
    let store = Arc::new(
        Store::open_with_blobs(
            &hub.dir.join("store"),
            Arc::new(bucket),
            MasterKey::new(&key).unwrap(),
        )
        .unwrap(),
    );
    let directory =
        Directory::open(store.clone(), Domain::try_from("mshub.test").unwrap()).unwrap();
    let camille = directory
        .account_by_address(&Address::try_from(CAMILLE.0).unwrap())
        .unwrap()
        .expect("the demo patient exists");
    let inbox = store
        .special_mailbox(camille.id, SpecialUse::Inbox)
        .unwrap();
    let stored: Vec<Vec<u8>> = store
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| store.read_message(inbox.id, m.uid).unwrap())
        .filter(|m| contains(m, marker.as_bytes()))
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(without_received(&stored[0]), msg.as_slice());
}

/// Runs `mshub demo` with this environment; it must exit (not serve) within a minute.
fn demo_exits(config: &str, env: &[(&str, String)]) -> (bool, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let path = write_test_demo_config(&dir);
    let mut text_config = std::fs::read_to_string(&path).unwrap();
    text_config.push_str(config);
    std::fs::write(&path, text_config).unwrap();
    let mut child = mshub()
        .args(["demo", "--data", dir.to_str().unwrap()])
        .env_remove("MSHUB_S3_ACCESS_KEY_ID")
        .env_remove("MSHUB_S3_SECRET_ACCESS_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mshub starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "mshub kept running with a bad [blobs] setting:\n{}",
                text(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

#[test]
fn a_bucket_that_refuses_the_key_stops_the_hub_at_start_with_the_reason() {
    let garage = garage::shared();
    let config = garage.blobs_config("refused");

    let wrong = [
        ("MSHUB_S3_ACCESS_KEY_ID", garage.access_key_id.clone()),
        ("MSHUB_S3_SECRET_ACCESS_KEY", "0".repeat(64)),
    ];
    let (ok, out) = demo_exits(&config, &wrong);
    assert!(!ok, "{out}");
    assert!(out.contains("[blobs] backend = \"s3\""), "{out}");
    assert!(out.contains("403") || out.contains("Forbidden"), "{out}");
    assert!(
        !out.contains(&"0".repeat(64)),
        "the secret was printed: {out}"
    );

    let (ok, out) = demo_exits(&config, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("MSHUB_S3_ACCESS_KEY_ID"), "{out}");
}
