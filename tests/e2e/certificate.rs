//! Certificate renewal without a restart: after SIGHUP the hub reads its certificate and key
//! again and presents the new pair on every TLS port to new connections; a pair that does not
//! belong together is refused and the current one kept.

use std::process::Command;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::support::*;

/// The SHA-256 of the certificate a TLS port presents (Python's ssl, no verification).
fn presented(port: u16) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib, ssl, sys\n\
             pem = ssl.get_server_certificate(('127.0.0.1', int(sys.argv[1])))\n\
             print(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest())",
            &port.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn sha256_of_pem(path: &std::path::Path) -> String {
    let der = CertificateDer::from_pem_file(path).unwrap();
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(der.as_ref())?;
            c.wait_with_output()
        })
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A new self-signed pair for the demo's names.
fn new_pair() -> (String, String) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let c = rcgen::generate_simple_self_signed(names).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// Replaces a file as a renewal tool does: written aside, then renamed over it.
fn replace(path: &std::path::Path, content: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, content).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

#[test]
fn sighup_presents_a_renewed_certificate_without_a_restart() {
    let mut hub = Instance::demo();
    let https = hub.https_port();
    let (_, imaps) = hub.imap_ports();
    let submissions = hub.ports.submissions;
    let cert = hub.dir.join("tls/cert.pem");
    let key = hub.dir.join("tls/key.pem");
    let old = sha256_of_pem(&cert);
    for port in [imaps, submissions, https] {
        assert_eq!(
            presented(port),
            old,
            "port {port} presents the configured certificate"
        );
    }
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", &hub.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };

    // A key that is not the certificate's: refused, the current pair stays.
    let (_, stray_key) = new_pair();
    let kept_key = std::fs::read_to_string(&key).unwrap();
    replace(&key, &stray_key);
    hup();
    std::thread::sleep(Duration::from_millis(500));
    for port in [imaps, submissions, https] {
        assert_eq!(presented(port), old, "a mismatched pair is not presented");
    }
    replace(&key, &kept_key);

    // A renewed pair: presented on every TLS port, the hub never restarted.
    let pid = hub.pid();
    let (new_cert, new_key) = new_pair();
    replace(&key, &new_key);
    replace(&cert, &new_cert);
    hup();
    let new = sha256_of_pem(&cert);
    assert_ne!(new, old);
    assert!(
        poll(Duration::from_secs(5), Duration::from_millis(100), || {
            [imaps, submissions, https]
                .iter()
                .all(|p| presented(*p) == new)
        }),
        "the renewed certificate is presented on every port"
    );
    assert_eq!(hub.pid(), pid);
    // Clients that check it against the new certificate log in.
    let page = curl(&cert, https, "/login", None);
    assert_eq!(page.status, 200);
}
