//! Every TLS port of the hub, as a TLS scanner nobody here wrote sees it (Debian's `sslscan`):
//! no protocol below TLS 1.2, no cipher under 128 bits or without forward secrecy, no
//! insecure renegotiation — with STARTTLS on the SMTP and IMAP ports and implicit TLS on the
//! others.

use std::process::{Command, Stdio};

use crate::support::*;

/// `sslscan` of one port; `starttls` is `--starttls-smtp`, `--starttls-imap` or empty.
fn scan(port: u16, starttls: &str) -> String {
    let target = format!("127.0.0.1:{port}");
    let mut args = vec!["--no-colour", "--no-fallback", "--no-heartbleed"];
    if !starttls.is_empty() {
        args.push(starttls);
    }
    args.push(&target);
    let out = Command::new("sslscan")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("sslscan runs (scripts/install-deps --tests installs it)");
    assert!(
        out.status.success(),
        "sslscan failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn check(name: &str, report: &str) {
    let accepted: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("Accepted") || l.starts_with("Preferred"))
        .collect();
    assert!(
        !accepted.is_empty(),
        "{name}: the scan saw no cipher:\n{report}"
    );
    for protocol in ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"] {
        let line = report
            .lines()
            .find(|l| l.trim_start().starts_with(protocol))
            .unwrap_or_else(|| panic!("{name}: no line for {protocol}:\n{report}"));
        assert!(line.contains("disabled"), "{name}: {line}");
        assert!(
            !accepted
                .iter()
                .any(|l| l.contains(&format!(" {protocol} "))),
            "{name}: a {protocol} cipher is accepted:\n{report}"
        );
    }
    for line in &accepted {
        let bits: u32 = line
            .split_whitespace()
            .skip_while(|w| !w.starts_with("TLSv"))
            .nth(1)
            .and_then(|b| b.parse().ok())
            .unwrap_or_else(|| panic!("{name}: unreadable line {line}"));
        assert!(bits >= 128, "{name}: weak cipher: {line}");
        for weak in ["RC4", "DES", "NULL", "EXP", "MD5", "anon", "CBC"] {
            assert!(!line.contains(weak), "{name}: weak cipher: {line}");
        }
        // TLS 1.2 suites without an ephemeral key exchange have no forward secrecy.
        assert!(
            line.contains("TLSv1.3") || line.contains("ECDHE") || line.contains("DHE"),
            "{name}: no forward secrecy: {line}"
        );
    }
    assert!(
        !report.contains("Insecure session renegotiation supported"),
        "{name}: insecure renegotiation:\n{report}"
    );
    assert!(
        !report.contains("Compression enabled"),
        "{name}: TLS compression (CRIME):\n{report}"
    );
}

#[test]
fn every_tls_port_offers_only_tls12_and_up_with_strong_ciphers() {
    let mut hub = Instance::demo();
    let (imap, imaps) = hub.imap_ports();
    let https = hub.https_port();
    let ports = [
        ("smtp relay (STARTTLS)", hub.ports.relay, "--starttls-smtp"),
        (
            "submission (STARTTLS)",
            hub.ports.submission,
            "--starttls-smtp",
        ),
        ("submissions (implicit TLS)", hub.ports.submissions, ""),
        ("imap (STARTTLS)", imap, "--starttls-imap"),
        ("imaps (implicit TLS)", imaps, ""),
        ("https", https, ""),
    ];
    for (name, port, starttls) in ports {
        check(name, &scan(port, starttls));
    }
}
