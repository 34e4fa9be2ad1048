//! The signed catalogue of referenced apps from the operator's side: the demo signs and
//! imports its example catalogue; `mshub catalogue import` refuses a modified file, through the
//! running hub's control socket and with the hub stopped.

use std::process::Stdio;

use crate::support::*;

/// `mshub args…` run from `dir` (relative file arguments are relative to it).
fn run_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    mshub()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("mshub runs")
}

#[test]
fn demo_imports_its_signed_catalogue_and_a_tampered_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let config = write_test_demo_config(&dir);
    let config_s = config.to_str().unwrap();

    let mut hub = Running::start(&["demo", "--data", dir.to_str().unwrap()]);
    hub.wait_for("mshub ready");
    let banner = hub.stdout.join("\n");
    assert!(
        banner.contains("apps catalogue: 5 referenced apps, signed by the DEMO authority"),
        "{banner}"
    );
    for file in [
        "catalogue-authority.asc",
        "catalogue-authority-DEMO-ONLY-secret-key.asc",
        "catalogue.toml",
        "catalogue.toml.sig",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    let signed = std::fs::read_to_string(dir.join("catalogue.toml")).unwrap();
    let tampered = signed.replace(
        "scopes = [\"measurements:write\"]",
        "scopes = [\"measurements:write\", \"documents:read:all\"]",
    );
    assert_ne!(tampered, signed);
    std::fs::write(dir.join("tampered.toml"), tampered).unwrap();

    // While the hub runs the command goes through its control socket; the hub runs elsewhere,
    // so relative paths must reach it as absolute ones.
    let refused = run_in(
        &dir,
        &[
            "--config",
            config_s,
            "catalogue",
            "import",
            "tampered.toml",
            "catalogue.toml.sig",
        ],
    );
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("refused") && err.contains("modified after signing"),
        "{err}"
    );
    let accepted = run_in(
        &dir,
        &[
            "--config",
            config_s,
            "catalogue",
            "import",
            "catalogue.toml",
            "catalogue.toml.sig",
        ],
    );
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    assert!(
        text(&accepted.stdout).starts_with("imported 5 apps from"),
        "{}",
        text(&accepted.stdout)
    );
    hub.terminate();

    // Stopped: the command opens the store itself, and reads the authorities from the
    // configuration (the test's demo configuration predates them, as an old demo's would).
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    text_config.push_str("[catalogue]\nauthorities = [\"catalogue-authority.asc\"]\n");
    std::fs::write(&config, text_config).unwrap();
    let unsigned = run_in(
        &dir,
        &[
            "--config",
            config_s,
            "catalogue",
            "import",
            "catalogue.toml",
            "tampered.toml",
        ],
    );
    assert!(!unsigned.status.success());
    assert!(
        text(&unsigned.stderr).contains("not signed"),
        "{}",
        text(&unsigned.stderr)
    );
    let list = run(&["--config", config_s, "catalogue", "list"], "");
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert_eq!(listed.lines().count(), 5, "{listed}");
    assert!(listed.contains("balance-gluco") && listed.contains("measurements:write"));
    assert!(!listed.contains("documents:read:all"), "{listed}");

    // A second start keeps the catalogue (and its authority key).
    let key = std::fs::read(dir.join("catalogue-authority.asc")).unwrap();
    let mut again = Running::start(&["demo", "--data", dir.to_str().unwrap()]);
    again.wait_for("mshub ready");
    assert!(again
        .stdout
        .iter()
        .any(|l| l.contains("apps catalogue: 5 referenced apps")));
    again.terminate();
    assert_eq!(
        std::fs::read(dir.join("catalogue-authority.asc")).unwrap(),
        key
    );
}

#[test]
fn import_without_a_configured_authority_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    let config = write_test_demo_config(&dir);
    std::fs::write(dir.join("master.key"), "0123456789abcdef0123456789abcdef01").unwrap();
    std::fs::write(dir.join("c.toml"), "x").unwrap();
    let out = run_in(
        &dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "catalogue",
            "import",
            "c.toml",
            "c.toml",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no referencing authority is configured"),
        "{}",
        text(&out.stderr)
    );
}
