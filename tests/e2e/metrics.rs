//! The admin listener: `/metrics` in Prometheus's text format — accepted by `promtool check
//! metrics` and counting what real clients (smtplib, imaplib, curl) just did, with no patient
//! data in it — and the `/healthz` and `/readyz` probes.

use std::process::Command;

use crate::support::*;

const MARTIN: (&str, &str) = ("dr.martin@hopital.mshub.test", "demo-martin");

/// `curl` of a plain HTTP path on the admin port: (status, body).
fn admin_get(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl runs");
    let text = text(&out.stdout);
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (status.trim().parse().expect("a status"), body.to_string())
}

/// The value of the sample `series` (name and labels exactly as written), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// An IMAP login with imaplib over implicit TLS: whether it went through.
fn imap_login(hub: &Instance, port: u16, password: &str) -> bool {
    let script = "import imaplib, ssl, sys\n\
        ctx = ssl.create_default_context(cafile=sys.argv[2])\n\
        c = imaplib.IMAP4_SSL('localhost', int(sys.argv[1]), ssl_context=ctx)\n\
        try:\n    c.login(sys.argv[3], sys.argv[4]); print('LOGGED IN'); c.logout()\n\
        except imaplib.IMAP4.error as e:\n    print('REFUSED', e)\n";
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .arg(&hub.ca)
        .args([MARTIN.0, password])
        .output()
        .expect("python3 runs");
    let said = text(&out.stdout);
    assert!(
        said.contains("LOGGED IN") || said.contains("REFUSED"),
        "{said}{}",
        text(&out.stderr)
    );
    said.contains("LOGGED IN")
}

#[test]
fn metrics_count_what_clients_did_and_promtool_accepts_them() {
    let mut hub = Instance::demo();
    let admin = hub.admin_port();
    let https = hub.https_port();
    let (_, imaps) = hub.imap_ports();

    let (status, body) = admin_get(admin, "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = admin_get(admin, "/readyz");
    assert_eq!((status, body.trim()), (200, "ready"), "{body}");
    let (_, before) = admin_get(admin, "/metrics");

    // What clients do: a message submitted, two IMAP logins (one wrong), a web page.
    submit(
        &hub,
        MARTIN,
        "labo@hopital.mshub.test",
        &message(
            MARTIN.0,
            "labo@hopital.mshub.test",
            "Compte rendu METRICS-E2E",
            &[],
            "Bonjour,\r\n",
        ),
    );
    assert!(imap_login(&hub, imaps, MARTIN.1));
    assert!(!imap_login(&hub, imaps, "not-the-password"));
    let page = curl(&hub.ca, https, "/login", None);
    assert_eq!(page.status, 200);

    let (status, metrics) = admin_get(admin, "/metrics");
    assert_eq!(status, 200);
    // Prometheus's own checker reads it as a valid exposition (lint problems are reported
    // too, and fail the check).
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus)");
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{metrics}",
        text(&checked.stdout),
        text(&checked.stderr)
    );

    let grew = |series: &str| {
        let was = sample(&before, series).unwrap_or(0.0);
        let now = sample(&metrics, series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"));
        assert!(now > was, "{series}: {was} then {now}");
    };
    grew("mshub_smtp_messages_total{door=\"submission\"}");
    grew("mshub_smtp_delivered_total{door=\"submission\",to=\"local\"}");
    grew("mshub_logins_total{door=\"mail\",result=\"ok\"}");
    grew("mshub_logins_total{door=\"mail\",result=\"bad_credentials\"}");
    grew("mshub_connections_total{protocol=\"imap\",result=\"accepted\"}");
    grew("mshub_connections_total{protocol=\"smtp\",result=\"accepted\"}");
    grew("mshub_connections_total{protocol=\"https\",result=\"accepted\"}");
    grew("mshub_store_commit_seconds_count{result=\"ok\"}");
    grew(
        "mshub_http_request_duration_seconds_count{route=\"/login\",method=\"GET\",status=\"2xx\"}",
    );
    assert_eq!(
        sample(&metrics, "mshub_queue_messages"),
        Some(0.0),
        "{metrics}"
    );
    assert!(sample(&metrics, "mshub_connections_open{protocol=\"imap\"}").is_some());
    // Counts only: no address, domain, name or INS of anyone.
    for secret in [
        "dr.martin",
        "hopital",
        "labo@",
        "284057511204339",
        "METRICS-E2E",
    ] {
        assert!(
            !metrics.contains(secret),
            "{secret} in the metrics:\n{metrics}"
        );
    }
}
