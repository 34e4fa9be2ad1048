//! Connected health apps with real peers: a referenced app (tests/e2e/py/oauth_app.py, a
//! public OAuth client on a loopback port, RFC 8252) asks for access; Camille consents in
//! headless Chromium (tests/e2e/browser/consent.mjs, axe-core on each page); the app trades
//! the code for a token, pushes measurements that her profile then shows, and dies with its
//! tokens when she withdraws its access. A second test, without a browser, checks what the
//! authorization server must refuse: a foreign redirect URI, a tampered consent form, a wrong
//! PKCE verifier, a code used twice.
//!
//! The browser test needs Debian's chromium, node and the npm packages of tests/e2e/browser:
//! all installed by `scripts/install-deps --tests`. Missing ones fail the test (never a skip).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::browser_run::{artifacts_dir, require_browser_tools, run_script};
use crate::support::*;

/// What balance-gluco may ask for, and all it asks for.
const SCOPE: &str = "measurements:write";

fn oauth_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/oauth_app.py")
}

/// A browser phase that must pass; its output is printed either way.
fn browser_phase(args: &[&str], shots: &Path) {
    let (ok, stdout, stderr) = run_script("consent.mjs", args, Duration::from_secs(300));
    println!(
        "--- consent.mjs {} stdout ---\n{stdout}--- stderr ---\n{stderr}",
        args[0]
    );
    assert!(
        ok,
        "the browser phase {:?} failed (screenshots in {}):\n{stderr}",
        args[0],
        shots.display()
    );
}

/// The app: its secrets (state, PKCE verifier) live in `dir`, between subcommands.
struct OauthApp {
    base: String,
    ca: String,
    dir: tempfile::TempDir,
}

impl OauthApp {
    fn new(hub: &mut Instance) -> OauthApp {
        OauthApp {
            base: format!("https://127.0.0.1:{}", hub.https_port()),
            ca: hub.ca.to_str().unwrap().to_string(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// `oauth_app.py subcommand args…`, which prints one JSON object.
    fn run(&self, subcommand: &str, args: &[&str]) -> serde_json::Value {
        let out = Command::new("python3")
            .arg(oauth_app())
            .arg(subcommand)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "oauth_app.py {subcommand} {args:?} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "oauth_app.py {subcommand}: not JSON ({e}):\n{}",
                text(&out.stdout)
            )
        })
    }

    /// The token request for the code the callback got (or `code`), with the app's verifier
    /// (or `verifier`).
    fn exchange(&self, code: Option<&str>, verifier: Option<&str>) -> serde_json::Value {
        let mut args = vec![self.base.as_str(), &self.ca, self.dir()];
        if let Some(code) = code {
            args.extend(["--code", code]);
        }
        if let Some(verifier) = verifier {
            args.extend(["--verifier", verifier]);
        }
        self.run("exchange", &args)
    }

    /// One call with `token`: a measurement, or the documents list.
    fn call(&self, token: &str, documents: bool) -> serde_json::Value {
        let mut args = vec![self.base.as_str(), &self.ca, token];
        if documents {
            args.push("--documents");
        }
        self.run("call", &args)
    }

    /// Without a browser: Camille signs in, opens the authorize page for `redirect_uri` and,
    /// with `post`, answers it "Autoriser" (`extra`: tampered fields of the posted form).
    fn consent(&self, redirect_uri: &str, post: bool, extra: &[&str]) -> serde_json::Value {
        let mut args = vec![self.base.as_str(), &self.ca, self.dir(), redirect_uri];
        if post {
            args.push("--post");
        }
        args.extend_from_slice(extra);
        self.run("consent", &args)
    }

    /// `state` the app sent, from its secrets.
    fn sent_state(&self) -> String {
        let pkce: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.path().join("pkce.json")).unwrap())
                .unwrap();
        pkce["state"].as_str().unwrap().to_string()
    }
}

/// `oauth_app.py start`: prints the authorize URL, then waits for one callback; killed when
/// dropped.
struct Callback {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Callback {
    fn start(app: &OauthApp, port: u16) -> (Callback, String) {
        let mut child = Command::new("python3")
            .arg(oauth_app())
            .args(["start", &app.base, app.dir(), &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut callback = Callback { child, lines };
        let url = callback.line("the authorize URL");
        (callback, url)
    }

    fn line(&mut self, what: &str) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("oauth_app.py start printed no {what} ({e})"))
    }

    /// What the app's redirect URI received (`code`, `state`, or `error`…).
    fn received(mut self) -> serde_json::Value {
        let line = self.line("CALLBACK line");
        let json = line
            .strip_prefix("CALLBACK ")
            .unwrap_or_else(|| panic!("not a CALLBACK line: {line}"));
        serde_json::from_str(json).unwrap()
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status(reply: &serde_json::Value) -> u64 {
    reply["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("no status: {reply}"))
}

#[test]
fn an_app_is_connected_in_the_browser_pushes_measurements_and_is_revoked() {
    require_browser_tools();
    let shots = artifacts_dir("apps");
    println!("browser screenshots: {}", shots.display());
    let mut hub = Instance::demo();
    let app = OauthApp::new(&mut hub);
    let shots_s = shots.to_str().unwrap();

    // The app listens on a loopback port of its choosing (RFC 8252 §7.3); the catalogue's
    // http://127.0.0.1/callback accepts any port.
    let (callback, authorize_url) = Callback::start(&app, free_port());
    assert!(
        authorize_url.starts_with(&format!("{}/oauth/authorize?", app.base)),
        "{authorize_url}"
    );
    browser_phase(&["connect", &app.base, &authorize_url, shots_s], &shots);

    // RFC 6749 §10.12: the app accepts only its own state back.
    let received = callback.received();
    assert_eq!(
        received["state"].as_str(),
        Some(app.sent_state().as_str()),
        "{received}"
    );
    let code = received["code"].as_str().expect("a code").to_string();

    let issued = app.exchange(Some(&code), None);
    assert_eq!(status(&issued), 200, "{issued}");
    assert_eq!(issued["cache_control"], "no-store", "{issued}");
    let body = &issued["body"];
    assert_eq!(body["token_type"], "Bearer", "{issued}");
    assert_eq!(body["scope"], SCOPE, "{issued}");
    let token = body["access_token"].as_str().expect("an access token");
    let refresh_token = body["refresh_token"].as_str().expect("a refresh token");

    let pushed = app.run("push", &[&app.base, &app.ca, token]);
    assert_eq!(
        pushed["statuses"],
        serde_json::json!([201, 201]),
        "{pushed}"
    );

    // measurements:write gives no documents.
    let documents = app.call(token, true);
    assert_eq!(status(&documents), 403, "{documents}");
    let challenge = documents["www_authenticate"].as_str().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"insufficient_scope\""),
        "{documents}"
    );

    browser_phase(&["revoke", &app.base, shots_s], &shots);

    // RFC 6750 §3.1: the withdrawn token is now an invalid one, at once.
    let dead = app.call(token, false);
    assert_eq!(
        status(&dead),
        401,
        "the token outlived its revocation: {dead}"
    );
    let challenge = dead["www_authenticate"].as_str().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{dead}"
    );
    // And it cannot be renewed.
    let renewed = app.run("refresh", &[&app.base, &app.ca, refresh_token]);
    assert_eq!(
        status(&renewed),
        400,
        "the refresh token outlived its revocation: {renewed}"
    );
    assert_eq!(renewed["body"]["error"], "invalid_grant", "{renewed}");
    hub.stop();
}

/// PharmaClair, a referenced native app: its redirect URI has a private-use scheme (RFC 8252
/// §7.1), which the catalogue accepts. After "Autoriser", the browser must be let through to
/// it, or the app never receives the code the hub issued.
#[test]
fn a_native_app_gets_its_code_back_from_the_consent_page() {
    require_browser_tools();
    let shots = artifacts_dir("apps-native");
    let mut hub = Instance::demo();
    let app = OauthApp::new(&mut hub);
    let url = app.run(
        "url",
        &[
            &app.base,
            app.dir(),
            "pharmaclair",
            "fr.pharmaclair.app:/auth",
            "documents:read:prescriptions",
        ],
    );
    let url = url["url"].as_str().unwrap();
    browser_phase(&["native", &app.base, url, shots.to_str().unwrap()], &shots);
    hub.stop();
}

/// The redirect URI a test app uses, on a port nothing listens on: no redirect is followed.
fn loopback_callback() -> String {
    format!("http://127.0.0.1:{}/callback", free_port())
}

/// An authorize page (or consent answer) that must be refused to the patient's face: a 400
/// page, no redirect anywhere.
fn assert_refused_without_redirect(reply: &serde_json::Value, what: &str) {
    assert_eq!(status(reply), 400, "{what}: {reply}");
    assert!(reply["location"].is_null(), "{what} redirected: {reply}");
    assert_eq!(reply["h1"], "Demande d'accès invalide", "{what}: {reply}");
}

#[test]
fn a_tampered_consent_or_a_foreign_redirect_is_refused() {
    let mut hub = Instance::demo();

    // A redirect URI the catalogue does not list, on another host or another path: the
    // patient sees why, and nothing is sent anywhere (RFC 6749 §4.1.2.1).
    let app = OauthApp::new(&mut hub);
    for foreign in [
        "https://evil.example/callback",
        "http://127.0.0.2/callback",
        &format!("http://127.0.0.1:{}/elsewhere", free_port()),
    ] {
        let reply = app.consent(foreign, false, &[]);
        assert_refused_without_redirect(&reply["authorize"], foreign);
    }

    // The consent page, then a form whose redirect URI was changed on the way.
    let reply = app.consent(
        &loopback_callback(),
        true,
        &["--post-redirect-uri", "https://evil.example/callback"],
    );
    assert_eq!(status(&reply["authorize"]), 200, "{reply}");
    let boxes = reply["authorize"]["boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), 1, "{reply}");
    assert_eq!(boxes[0]["value"], SCOPE, "{reply}");
    assert_eq!(boxes[0]["checked"], false, "ticked in advance: {reply}");
    assert_refused_without_redirect(&reply["consent"], "a consent with a foreign redirect URI");

    // A form that ticks a scope the page never offered (nor the catalogue gives the app):
    // back to the app with an error, never a code.
    let redirect_uri = loopback_callback();
    let reply = app.consent(&redirect_uri, true, &["--post-scope", "documents:read:all"]);
    let consent = &reply["consent"];
    assert_eq!(status(consent), 303, "{reply}");
    let location = consent["location"].as_str().unwrap();
    assert!(location.starts_with(&format!("{redirect_uri}?")), "{reply}");
    assert_eq!(consent["query"]["error"], "invalid_scope", "{reply}");
    assert!(
        consent["query"]["code"].is_null(),
        "a code for a tampered scope: {reply}"
    );

    // A code with the wrong verifier (RFC 7636 §4.6): invalid_grant, and the code is burnt.
    let app = OauthApp::new(&mut hub);
    let reply = app.consent(&loopback_callback(), true, &[]);
    assert_eq!(status(&reply["consent"]), 303, "{reply}");
    assert_eq!(
        reply["consent"]["query"]["state"].as_str(),
        Some(app.sent_state().as_str()),
        "{reply}"
    );
    let code = reply["consent"]["query"]["code"].as_str().expect("a code");
    let wrong = "w".repeat(64);
    let refused = app.exchange(Some(code), Some(&wrong));
    assert_eq!(status(&refused), 400, "{refused}");
    assert_eq!(refused["body"]["error"], "invalid_grant", "{refused}");
    let after = app.exchange(Some(code), None);
    assert_eq!(
        status(&after),
        400,
        "a code survived a wrong verifier: {after}"
    );
    assert_eq!(after["body"]["error"], "invalid_grant", "{after}");

    // A code used twice: refused, and the token it gave dies (RFC 6749 §4.1.2).
    let app = OauthApp::new(&mut hub);
    let reply = app.consent(&loopback_callback(), true, &[]);
    let code = reply["consent"]["query"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {reply}"));
    let first = app.exchange(Some(code), None);
    assert_eq!(status(&first), 200, "{first}");
    let token = first["body"]["access_token"].as_str().unwrap();
    assert_eq!(status(&app.call(token, false)), 201);
    let again = app.exchange(Some(code), None);
    assert_eq!(status(&again), 400, "a code worked twice: {again}");
    assert_eq!(again["body"]["error"], "invalid_grant", "{again}");
    let revoked = app.call(token, false);
    assert_eq!(
        status(&revoked),
        401,
        "the token of a replayed code still works: {revoked}"
    );
    hub.stop();
}
