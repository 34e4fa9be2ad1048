use crate::support::*;

/// A prepared demo directory (keys, certificate, demo accounts) with no hub running.
fn prepared() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let config = write_test_demo_config(&dir);
    let mut hub = Running::start(&["demo", "--data", dir.to_str().unwrap()]);
    hub.wait_for("mshub ready");
    hub.terminate();
    (tmp, config.to_str().unwrap().to_string())
}

#[test]
fn invalid_ins_is_refused_with_the_expected_key() {
    let (_tmp, config) = prepared();
    let out = run(
        &[
            "--config",
            &config,
            "account",
            "add",
            "284057511204338@patient.mshub.test",
            "patient",
            "--ins",
            "284057511204338",
            "--given-name",
            "Camille",
            "--family-name",
            "Durand",
            "--birth-date",
            "1984-05-12",
            "--sex",
            "F",
        ],
        "",
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("wrong key 38") && err.contains("gives 39"),
        "{err}"
    );
}

#[test]
fn operator_creates_disables_and_lists_accounts_and_the_audit_chain_holds() {
    let (_tmp, config) = prepared();
    let add = add_nurse(&config);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let bad_rpps = run(
        &[
            "--config",
            &config,
            "account",
            "add",
            "x.y@hopital.mshub.test",
            "professional",
            "--rpps",
            "10000000008",
            "--given-name",
            "X",
            "--family-name",
            "Y",
            "--profession",
            "nurse",
        ],
        "",
    );
    assert!(
        text(&bad_rpps.stderr).contains("check digit"),
        "{}",
        text(&bad_rpps.stderr)
    );
    let disable = run(
        &[
            "--config",
            &config,
            "account",
            "disable",
            "ines.leroy@hopital.mshub.test",
        ],
        "",
    );
    assert!(disable.status.success(), "{}", text(&disable.stderr));
    let list = text(&run(&["--config", &config, "account", "list"], "").stdout);
    let line = list
        .lines()
        .find(|l| l.starts_with("ines.leroy@"))
        .unwrap_or_else(|| panic!("new account not listed:\n{list}"));
    assert!(
        line.contains("professional") && line.contains("[disabled]"),
        "{line}"
    );
    let verify = run(&["--config", &config, "audit", "verify"], "");
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    assert!(text(&verify.stdout).starts_with("audit chain intact"));
}

#[test]
fn trusted_domains_are_listed_with_route_and_policy() {
    let (_tmp, config) = prepared();
    let trust = run(
        &[
            "--config",
            &config,
            "domain",
            "trust",
            "autre-operateur.test",
            "--route",
            "127.0.0.1:3525",
            "--tls",
            "mutual-tls",
        ],
        "",
    );
    assert!(trust.status.success(), "{}", text(&trust.stderr));
    let local = run(
        &["--config", &config, "domain", "trust", "patient.mshub.test"],
        "",
    );
    assert!(
        text(&local.stderr).contains("local domain"),
        "{}",
        text(&local.stderr)
    );
    let list = text(&run(&["--config", &config, "domain", "list"], "").stdout);
    assert!(
        list.lines().any(|l| l.starts_with("autre-operateur.test")
            && l.contains("127.0.0.1:3525")
            && l.contains("mutual-tls")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("hopital.mshub.test") && l.contains("local")),
        "{list}"
    );
}

#[test]
fn a_wrong_or_missing_master_key_is_explained() {
    let (_tmp, config) = prepared();
    let wrong = mshub()
        .args(["--config", &config, "account", "list"])
        .env("MSHUB_MASTER_KEY", "f".repeat(64))
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("master key does not open"),
        "{}",
        text(&wrong.stderr)
    );
    let short = mshub()
        .args(["--config", &config, "account", "list"])
        .env("MSHUB_MASTER_KEY", "short")
        .output()
        .unwrap();
    assert!(
        text(&short.stderr).contains("too short"),
        "{}",
        text(&short.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("mshub.toml");
    std::fs::write(&bare, "data_dir = \"d\"\n").unwrap();
    let none = run(&["--config", bare.to_str().unwrap(), "serve"], "");
    assert!(!none.status.success());
    assert!(
        text(&none.stderr).contains("MSHUB_MASTER_KEY"),
        "{}",
        text(&none.stderr)
    );
}

#[test]
fn config_example_is_complete_and_a_typo_is_named() {
    let out = run(&["config", "example"], "");
    let example = text(&out.stdout);
    for section in [
        "hub_domain",
        "data_dir",
        "master_key_file",
        "[tls]",
        "[listen]",
        "[log]",
        "[blobs]",
    ] {
        assert!(example.contains(section), "{section} missing");
    }
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("mshub.toml");
    std::fs::write(&typo, "hub_domian = \"x.test\"\n").unwrap();
    let out = run(&["--config", typo.to_str().unwrap(), "serve"], "");
    assert!(
        text(&out.stderr).contains("hub_domian"),
        "{}",
        text(&out.stderr)
    );
}

/// `mshub check-config`: a prepared configuration passes; each problem the hub would meet at
/// start is named on its own line and the status is 1; an invalid log filter is an error, not
/// a silent fallback to `info`.
#[test]
fn check_config_names_what_would_stop_the_start() {
    let (_tmp, config) = prepared();
    let out = run(&["--config", &config, "check-config"], "");
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(said.contains("ok    [tls] certificate and key"), "{said}");
    assert!(
        said.contains("ok    master key (from master_key_file)"),
        "{said}"
    );
    assert!(said.ends_with("configuration OK\n"), "{said}");

    let good = std::fs::read_to_string(&config).unwrap();
    let broken = std::path::Path::new(&config).with_file_name("broken.toml");
    let write = |extra: &str| {
        std::fs::write(&broken, format!("{good}{extra}")).unwrap();
        run(&["--config", broken.to_str().unwrap(), "check-config"], "")
    };
    let out = write("[tls]\ncert = \"missing.pem\"\nkey = \"tls/key.pem\"\n");
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL  [tls] certificate and key: cannot read the certificate")
            && said.contains("missing.pem"),
        "{said}"
    );
    assert!(said.contains("1 problem(s)"), "{said}");

    let two_on_one_port = good
        .replace("imap = \"127.0.0.1:0\"", "imap = \"127.0.0.1:14300\"")
        .replace("imaps = \"127.0.0.1:0\"", "imaps = \"127.0.0.1:14300\"");
    std::fs::write(&broken, two_on_one_port).unwrap();
    let out = run(&["--config", broken.to_str().unwrap(), "check-config"], "");
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL  [listen] addresses: imap and imaps both on 127.0.0.1:14300"),
        "{said}"
    );

    let out = write("[log]\nfilter = \"info,,mshub_mta=loud\"\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("[log] filter \"info,,mshub_mta=loud\" is not a tracing filter"),
        "{}",
        text(&out.stderr)
    );
}

/// `[log] format = "json"`: one JSON object per line on stderr, for a SIEM.
#[test]
fn logs_can_be_json_lines() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let config = write_test_demo_config(&dir);
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    text_config.push_str("[log]\nformat = \"json\"\n");
    std::fs::write(&config, text_config).unwrap();
    let mut child = mshub()
        .args(["demo", "--data", dir.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let mut ready = None;
    for line in stderr.lines().map_while(Result::ok) {
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\nafter {seen:?}"));
        seen.push(line);
        if event["fields"]["message"] == "mshub ready" {
            ready = Some(event);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let ready = ready.unwrap_or_else(|| panic!("no ready event in {seen:?}"));
    assert_eq!(ready["level"], "INFO", "{ready}");
    assert!(ready["timestamp"].is_string(), "{ready}");
    assert!(
        ready["target"].as_str().unwrap().starts_with("mshub"),
        "{ready}"
    );
}

/// `mshub backup --to` while the hub runs (forwarded to it), `mshub backup verify`, and
/// `mshub restore` into an empty data directory: the restored hub has the accounts and the
/// mail of the moment of the backup; a damaged file is refused and restores nothing.
#[test]
fn backup_while_running_then_verify_and_restore() {
    let mut hub = Instance::demo();
    submit(
        &hub,
        ("dr.martin@hopital.mshub.test", "demo-martin"),
        "labo@hopital.mshub.test",
        &message(
            "dr.martin@hopital.mshub.test",
            "labo@hopital.mshub.test",
            "Avant la sauvegarde BACKUP-E2E",
            &[],
            "Bonjour\r\n",
        ),
    );
    let file = hub.dir.join("backup.mshub");
    let out = hub.cli(&["backup", "--to", file.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("backup written to"),
        "{}",
        text(&out.stdout)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = run(
        &[
            "--config",
            hub.config.to_str().unwrap(),
            "backup",
            "--to",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    hub.stop();

    let out = run(&["backup", "verify", file.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("SHA-256 matches"));

    // Damaged: refused, and restore keeps nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let damaged = hub.dir.join("damaged.mshub");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = run(&["backup", "verify", damaged.to_str().unwrap()], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("SHA-256"),
        "{}",
        text(&out.stderr)
    );

    // Restore into a new hub directory with the same master key.
    let config = std::fs::read_to_string(&hub.config).unwrap();
    let target = hub.dir.join("restored");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(hub.dir.join("master.key"), target.join("master.key")).unwrap();
    let restored_config = target.join("mshub.toml");
    std::fs::write(&restored_config, &config).unwrap();
    let rc = restored_config.to_str().unwrap();
    let out = run(
        &[
            "--config",
            rc,
            "restore",
            "--from",
            damaged.to_str().unwrap(),
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        !target.join("store").exists(),
        "nothing restored from a damaged file"
    );
    let out = run(
        &["--config", rc, "restore", "--from", file.to_str().unwrap()],
        "",
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("opens with this master key"));
    let out = run(
        &["--config", rc, "restore", "--from", file.to_str().unwrap()],
        "",
    );
    assert!(!out.status.success(), "never over a store");
    let out = run(&["--config", rc, "audit", "verify"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["--config", rc, "account", "list"], "");
    assert!(text(&out.stdout).contains("labo@hopital.mshub.test"));
    // The message of before the backup is in the restored store.
    let restored = Instance::new(
        &target,
        restored_config.clone(),
        "mshub.test",
        hub.ca.clone(),
        vec!["--config".into(), rc.into(), "serve".into()],
    );
    let inbox = restored.inbox("labo@hopital.mshub.test");
    assert!(
        inbox.iter().any(|m| contains(m, "BACKUP-E2E")),
        "{} messages",
        inbox.len()
    );
}
