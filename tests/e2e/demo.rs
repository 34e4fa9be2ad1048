use crate::support::*;

#[test]
fn demo_starts_on_a_fresh_dir_and_again_on_the_same_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let config = write_test_demo_config(&dir);
    let dir_s = dir.to_str().unwrap();
    let config_s = config.to_str().unwrap();

    let mut first = Running::start(&["demo", "--data", dir_s]);
    first.wait_for("mshub ready");
    let banner = first.stdout.join("\n");
    for expected in [
        "dr.martin@hopital.mshub.test",
        "labo@hopital.mshub.test",
        "284057511204339@patient.mshub.test",
    ] {
        assert!(
            banner.contains(expected),
            "{expected} missing from:\n{banner}"
        );
    }
    // While it runs the hub holds the store: operator commands go through its control socket.
    let live = run(&["--config", config_s, "account", "list"], "");
    assert!(live.status.success(), "{}", text(&live.stderr));
    assert_eq!(
        text(&live.stdout).lines().count(),
        3,
        "{}",
        text(&live.stdout)
    );
    let added = add_nurse(config_s);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let refused = run(
        &[
            "--config",
            config_s,
            "account",
            "disable",
            "nobody@hopital.mshub.test",
        ],
        "",
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("no account"),
        "{}",
        text(&refused.stderr)
    );
    first.terminate();
    assert!(
        !dir.join("store/control.sock").exists(),
        "control socket left behind"
    );

    let key = std::fs::read(dir.join("master.key")).unwrap();
    let cert = std::fs::read(dir.join("tls/cert.pem")).unwrap();

    let mut second = Running::start(&["demo", "--data", dir_s]);
    second.wait_for("mshub ready");
    second.terminate();

    assert_eq!(
        std::fs::read(dir.join("master.key")).unwrap(),
        key,
        "master key replaced"
    );
    assert_eq!(
        std::fs::read(dir.join("tls/cert.pem")).unwrap(),
        cert,
        "certificate replaced"
    );
    let list = run(&["--config", config_s, "account", "list"], "");
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert_eq!(
        listed.lines().count(),
        4,
        "accounts duplicated or lost:\n{listed}"
    );
    assert!(listed.contains("ines.leroy@hopital.mshub.test"), "{listed}");
    let verify = run(&["--config", config_s, "audit", "verify"], "");
    assert!(
        verify.status.success() && text(&verify.stdout).starts_with("audit chain intact"),
        "{}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
}

#[test]
fn demo_keeps_its_data_encrypted_with_a_key_outside_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    write_test_demo_config(&dir);
    let mut hub = Running::start(&["demo", "--data", dir.to_str().unwrap()]);
    hub.wait_for("mshub ready");
    hub.terminate();
    let key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    assert_eq!(key.len(), 64);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("master.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "master key readable by others");
    let mut stack = vec![dir.join("store")];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                "the master key is inside the data directory: {}",
                p.display()
            );
        }
    }
}
