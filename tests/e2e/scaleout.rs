//! Two hub nodes on one PostgreSQL (`[store] backend = "postgres"`), the sealed blobs in one
//! directory both reach: mail submitted to node A is read over IMAP on node B, and a client
//! idling on B is woken within a second; operator commands work beside the running nodes.

#[path = "../../store/tests/support/pg.rs"]
mod pg;

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn write_config(dir: &Path, url: &str, shared: Option<&Path>) -> std::path::PathBuf {
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
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn mail_delivered_on_node_a_wakes_idle_on_node_b_within_a_second() {
    let pg = pg::PgCluster::start();
    let url = pg.create_db("hub");
    let tmp = tempfile::tempdir().unwrap();
    let dir_a = tmp.path().join("node-a");
    let dir_b = tmp.path().join("node-b");

    let config_a = write_config(&dir_a, &url, None);
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
    a.start();

    // Node B: its own data directory (control socket), the blobs shared with A.
    let config_b = write_config(&dir_b, &url, Some(&dir_a));
    std::fs::create_dir_all(dir_b.join("store")).unwrap();
    std::fs::create_dir_all(dir_a.join("store/blobs")).unwrap();
    std::os::unix::fs::symlink(dir_a.join("store/blobs"), dir_b.join("store/blobs")).unwrap();
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
    b.start();
    let (_, imaps_b) = b.imap_ports();

    // A small message rides inline in PostgreSQL; a large one (random, so it stays large once
    // compressed) goes to the shared blob directory: both paths.
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

    // An operator command beside the running nodes works on the shared store directly.
    let out = run(
        &["--config", config_b.to_str().unwrap(), "account", "list"],
        "",
    );
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
