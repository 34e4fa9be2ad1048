//! SAML single sign-on of the web inbox end to end: the real hub with `[webmail.saml]`
//! pointing at a pysaml2 identity provider (webmail/tests/saml/idp.py, signing with xmlsec1),
//! driven with curl as a browser would: /saml/login redirects to the IdP, the IdP's signed
//! response is posted to /saml/acs, the inbox opens. A tampered response, a replayed one and
//! one posted from another browser are refused.
//!
//! Needs python3 with pysaml2 and xmlsec1 (`scripts/install-deps --tests`); missing ones fail
//! the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";
/// Another valid INS: what a forger would put in a signed response.
const OTHER_INS: &str = "284057511205329";
const IDP_ENTITY_ID: &str = "https://idp.sante.test/idp";
const IDP_SSO_URL: &str = "https://idp.sante.test/sso";

fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import saml2"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("no python3 with pysaml2: run `scripts/install-deps --tests`")
}

fn idp(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/webmail/tests/saml/idp.py"
        ))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "idp.py {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// A browser: curl with a cookie jar, never following redirects.
struct Browser {
    jar: PathBuf,
    ca: PathBuf,
    port: u16,
}

struct Answer {
    status: u16,
    location: String,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn request(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let dir = tempfile::tempdir().unwrap();
        let headers = dir.path().join("h");
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
            .arg(&self.ca)
            .arg("--cookie")
            .arg(&self.jar)
            .arg("--cookie-jar")
            .arg(&self.jar)
            .arg("--dump-header")
            .arg(&headers)
            .args(["--write-out", "\n%{http_code}"]);
        for (k, v) in form {
            cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = cmd
            .arg(format!("https://localhost:{}{path}", self.port))
            .args(["--resolve", &format!("localhost:{}:127.0.0.1", self.port)])
            .stdin(Stdio::null())
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl: {}", text(&out.stderr));
        let all = text(&out.stdout);
        let (body, status) = all.rsplit_once('\n').unwrap();
        let headers = std::fs::read_to_string(&headers).unwrap();
        let header = |name: &str| -> Vec<String> {
            headers
                .lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .collect()
        };
        Answer {
            status: status.trim().parse().unwrap(),
            location: header("location").into_iter().next().unwrap_or_default(),
            set_cookies: header("set-cookie"),
            body: body.to_string(),
        }
    }
}

/// Starts a login in `browser` and has the IdP answer it for `ins`.
fn idp_response(browser: &Browser, idp_dir: &Path, sp_metadata: &Path, ins: &str) -> String {
    let start = browser.request("/saml/login", &[]);
    assert_eq!(start.status, 303, "{}", start.body);
    assert!(
        start.location.starts_with(IDP_SSO_URL),
        "{}",
        start.location
    );
    assert!(start
        .set_cookies
        .iter()
        .any(|c| c.starts_with("__Host-mshub-saml=")
            && c.contains("Secure")
            && c.contains("HttpOnly")));
    idp(&[
        "respond",
        idp_dir.to_str().unwrap(),
        sp_metadata.to_str().unwrap(),
        &start.location,
        ins,
    ])
}

#[test]
fn a_patient_logs_in_through_the_identity_provider_and_forgeries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let idp_dir = tmp.path().join("idp");
    std::fs::create_dir_all(&idp_dir).unwrap();
    idp(&[
        "init",
        idp_dir.to_str().unwrap(),
        IDP_ENTITY_ID,
        IDP_SSO_URL,
    ]);

    let mut hub = Instance::demo();
    hub.stop();
    let mut config = std::fs::read_to_string(&hub.config).unwrap();
    config.push_str(&format!(
        "\n[webmail.saml]\nidp_metadata = \"{}\"\n\
         sp_entity_id = \"https://localhost:8443/saml/metadata\"\n\
         acs_url = \"https://localhost:8443/saml/acs\"\n",
        idp_dir.join("metadata.xml").display()
    ));
    std::fs::write(&hub.config, config).unwrap();
    hub.start();
    let port = hub.https_port();
    let browser = |name: &str| Browser {
        jar: tmp.path().join(name),
        ca: hub.ca.clone(),
        port,
    };

    // The SP metadata, at its stable URL, for the IdP.
    let alice = browser("alice");
    let metadata = alice.request("/saml/metadata", &[]);
    assert_eq!(metadata.status, 200);
    assert!(metadata.body.contains("https://localhost:8443/saml/acs"));
    let sp_metadata = tmp.path().join("sp.xml");
    std::fs::write(&sp_metadata, &metadata.body).unwrap();
    // The login page offers single sign-on.
    assert!(alice.request("/login", &[]).body.contains("/saml/login"));

    // Tampered after signing: the INS swapped for another valid one.
    let genuine = idp_response(&alice, &idp_dir, &sp_metadata, CAMILLE_INS);
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&genuine)
            .unwrap(),
    )
    .unwrap();
    assert!(xml.contains(CAMILLE_INS));
    let forged =
        base64::engine::general_purpose::STANDARD.encode(xml.replace(CAMILLE_INS, OTHER_INS));
    let refused = alice.request("/saml/acs", &[("SAMLResponse", &forged)]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("Connexion refusée"));
    assert!(!refused
        .set_cookies
        .iter()
        .any(|c| c.starts_with("__Host-mshub=")));

    // A genuine response, but posted from another browser (login CSRF): refused.
    let genuine = idp_response(&alice, &idp_dir, &sp_metadata, CAMILLE_INS);
    let mallory = browser("mallory");
    assert_eq!(
        mallory
            .request("/saml/acs", &[("SAMLResponse", &genuine)])
            .status,
        403
    );

    // From the browser that asked: signed in, with a strict session cookie.
    let genuine = idp_response(&alice, &idp_dir, &sp_metadata, CAMILLE_INS);
    let ok = alice.request("/saml/acs", &[("SAMLResponse", &genuine)]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let session = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-mshub="))
        .expect("a session cookie");
    assert!(session.contains("SameSite=Strict") && session.contains("Secure"));
    let inbox = alice.request("/", &[]);
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains("Messages reçus"));

    // The same response again (replay), even with a fresh login started: refused.
    let bob = browser("bob");
    let _ = idp_response(&bob, &idp_dir, &sp_metadata, CAMILLE_INS);
    assert_eq!(
        bob.request("/saml/acs", &[("SAMLResponse", &genuine)])
            .status,
        403
    );
    hub.stop();
}
