//! Running the Chromium scenarios of `tests/e2e/browser/` (node + playwright-core + axe-core)
//! from the tests: the tools' check, where screenshots go, and the run itself.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::text;

const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "run `scripts/install-deps --tests` (installs chromium, node and the npm \
packages of tests/e2e/browser with npm ci)";

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/browser")
}

/// Fails (never skips) when a tool the browser tests need is missing.
pub fn require_browser_tools() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: {INSTALL}"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node does not run ({node:?}): {INSTALL}"
    );
    // playwright-core needs Node.js 20 or later.
    let version = text(&node.unwrap().stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "node {version} is too old for playwright-core (20 or later): {INSTALL}"
    );
    for package in ["playwright-core", "axe-core"] {
        let dir = browser_dir().join("node_modules").join(package);
        assert!(
            dir.join("package.json").exists(),
            "the npm package {package} is not installed in tests/e2e/browser: {INSTALL}"
        );
    }
}

/// Where a test's screenshots go, kept after it: `$MSHUB_E2E_ARTIFACTS/<name>` if set, else
/// `e2e-artifacts/<name>/` in the cargo target directory (the parent of the
/// `CARGO_TARGET_TMPDIR` cargo gives integration tests). Emptied first, so that what is there
/// is this run's.
pub fn artifacts_dir(name: &str) -> PathBuf {
    let dir = match std::env::var_os("MSHUB_E2E_ARTIFACTS") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .join("e2e-artifacts")
            .join(name),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `node <script> args…` in `tests/e2e/browser`, killed after `limit`; returns (success,
/// stdout, stderr). Both pipes are drained while it runs, so a talkative script never blocks.
pub fn run_script(script: &str, args: &[&str], limit: Duration) -> (bool, String, String) {
    let mut child = Command::new("node")
        .current_dir(browser_dir())
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stdout, mut stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    if status.is_none() {
        stderr.push_str(&format!("\nkilled: still running after {limit:?}\n"));
    }
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

/// Camille adds a physician to the professionals who follow her, in Chromium
/// (tests/e2e/browser/care.mjs): the physician, refused before, reads her documents after.
#[test]
fn care_a_patient_adds_a_physician_who_then_reads_her_documents() {
    use crate::support::*;

    const LEGRAND: (&str, &str) = ("sophie.legrand@hopital.mshub.test", "legrand-e2e-pw");
    require_browser_tools();
    let shots = artifacts_dir("care");
    let mut hub = Instance::demo();
    hub.stop();
    add_professional(
        &hub,
        LEGRAND,
        [
            "Sophie",
            "Legrand",
            "physician",
            "médecine générale",
            "Lyon",
            "10000010016",
        ],
    );
    hub.start();
    let port = hub.https_port();
    let path = "/api/v1/patients/284057511204339/documents";
    relay_xdm(
        &hub,
        "bilan.zip",
        "11502-2",
        "Bilan sanguin",
        "BIO-MARKER-b08",
    );
    let before = curl(&hub.ca, port, path, Some(LEGRAND));
    assert_eq!(before.status, 403, "{before:?}");
    assert_eq!(before.json()["error"], "no-care-relationship");

    let base = format!("https://127.0.0.1:{port}");
    println!("browser screenshots: {}", shots.display());
    let (ok, stdout, stderr) = run_script(
        "care.mjs",
        &[&base, shots.to_str().unwrap(), "Legrand", "Sophie Legrand"],
        Duration::from_secs(300),
    );
    println!("--- care.mjs stdout ---\n{stdout}--- care.mjs stderr ---\n{stderr}");
    assert!(
        ok,
        "the browser scenario failed (screenshots in {}):\n{stderr}",
        shots.display()
    );

    // Named by Camille: she reads the lab result (filed by now, or shortly).
    let mut last = None;
    let reads = poll(Duration::from_secs(30), Duration::from_millis(300), || {
        let reply = curl(&hub.ca, port, path, Some(LEGRAND));
        let ok = reply.status == 200 && text(&reply.body).contains("Bilan sanguin");
        last = Some(reply);
        ok
    });
    assert!(
        reads,
        "the physician Camille added does not read her documents: {last:?}"
    );
    let id = last.unwrap().json()[0]["id"].as_str().unwrap().to_string();
    let read = curl(
        &hub.ca,
        port,
        &format!("/api/v1/documents/{id}"),
        Some(LEGRAND),
    );
    assert_eq!(read.status, 200, "{read:?}");
    assert!(contains(&read.body, "BIO-MARKER-b08"));
    hub.stop();
}
