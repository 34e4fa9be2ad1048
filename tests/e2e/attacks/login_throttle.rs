//! Finding 2: login throttle bypass. The throttle counted failures per login as typed, not per
//! account: once `dr.martin@hopital.mshub.test` was locked, `dr.martin@hopital.mshub.test.`
//! (trailing dot) with the right password got in from another address. And parallel attempts
//! all passed the check before the first failure was counted. Now the throttle counts per
//! account, and each attempt is counted before its password is checked.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

use super::login_memory::imap_logins_at_once;

/// One browser on the web login form, from `source` (a loopback address the client binds).
struct WebLogin<'a> {
    hub: &'a Instance,
    port: u16,
    source: &'a str,
    jar: tempfile::TempDir,
}

impl<'a> WebLogin<'a> {
    fn new(hub: &'a Instance, port: u16, source: &'a str) -> Self {
        WebLogin {
            hub,
            port,
            source,
            jar: tempfile::tempdir().unwrap(),
        }
    }

    /// GET, or POST of `form` when given; redirects are not followed.
    fn request(&self, path: &str, form: Option<&[(&str, &str)]>) -> HttpReply {
        let headers = self.jar.path().join("headers");
        let body = self.jar.path().join("body");
        let jar = self.jar.path().join("cookies");
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--max-time", "60"])
            .args(["--interface", self.source, "--cacert"])
            .arg(&self.hub.ca)
            .arg("--cookie")
            .arg(&jar)
            .arg("--cookie-jar")
            .arg(&jar)
            .arg("--dump-header")
            .arg(&headers)
            .arg("--output")
            .arg(&body)
            .args(["--write-out", "%{http_code}"]);
        if let Some(form) = form {
            for (name, value) in form {
                cmd.arg("--data-urlencode").arg(format!("{name}={value}"));
            }
        }
        let out = cmd
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .stdin(Stdio::null())
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl failed: {}", text(&out.stderr));
        HttpReply {
            status: text(&out.stdout).trim().parse().expect("an HTTP status"),
            headers: std::fs::read_to_string(&headers)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect(),
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    /// The login form, filled and posted.
    fn log_in(&self, login: &str, password: &str) -> HttpReply {
        let page = self.request("/login", None);
        assert_eq!(page.status, 200, "{page:?}");
        let html = text(&page.body);
        let marker = r#"name="_csrf" value=""#;
        let at = html
            .find(marker)
            .unwrap_or_else(|| panic!("no _csrf field in:\n{html}"));
        let rest = &html[at + marker.len()..];
        let csrf = &rest[..rest.find('"').expect("the field's end")];
        self.request(
            "/login",
            Some(&[("_csrf", csrf), ("login", login), ("password", password)]),
        )
    }
}

#[test]
fn a_locked_account_stays_locked_under_another_spelling_and_from_another_address() {
    let mut hub = Instance::demo();
    let port = hub.https_port();

    // Lock dr.martin from 127.0.0.1: wrong passwords, waiting out each delay, until 7
    // failures are counted (the next delay is 8 s).
    let attacker = WebLogin::new(&hub, port, "127.0.0.1");
    let mut failures = 0;
    for _ in 0..40 {
        if failures == 7 {
            break;
        }
        let r = attacker.log_in(MARTIN.0, "not-the-password");
        match r.status {
            401 => failures += 1,
            429 => {
                let wait: u64 = r
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .expect("a Retry-After header");
                std::thread::sleep(Duration::from_millis(wait * 1000 + 200));
            }
            other => panic!("wrong password answered {other}: {}", text(&r.body)),
        }
    }
    assert_eq!(failures, 7, "the wrong passwords were not all counted");

    // The same account, spelled otherwise, with the right password, from other addresses:
    // still locked.
    for (source, login) in [
        ("127.0.0.2", "dr.martin@hopital.mshub.test."),
        ("127.0.0.3", "DR.Martin@Hopital.MSHUB.test."),
        ("127.0.0.4", "  Dr.Martin@hopital.mshub.test  "),
        ("127.0.0.5", MARTIN.0),
    ] {
        let r = WebLogin::new(&hub, port, source).log_in(login, MARTIN.1);
        assert_eq!(
            r.status,
            429,
            "{login:?} from {source} with the right password while the account is locked: {}",
            text(&r.body)
        );
        assert!(r.header("retry-after").is_some(), "{r:?}");
    }
    hub.stop();
}

#[test]
fn parallel_wrong_logins_are_all_counted() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();

    // 20 wrong passwords for the lab's mailbox at the same moment, each from its own address
    // (so that only the account's count can stop them), over IMAP with TLS.
    let attempts: Vec<(String, String, String)> = (0..20)
        .map(|i| {
            (
                format!("127.0.0.{}", 20 + i),
                // Spellings of one account: each must count for it.
                if i % 2 == 0 {
                    LABO.0.to_string()
                } else {
                    format!("{}.", LABO.0.to_uppercase())
                },
                format!("wrong-password-{i}"),
            )
        })
        .collect();
    let answers = imap_logins_at_once(imaps, &hub.ca, &attempts);
    let checked = answers
        .iter()
        .filter(|a| a.contains("[AUTHENTICATIONFAILED]"))
        .count();
    let held = answers
        .iter()
        .filter(|a| a.starts_with("NO") && a.contains("[UNAVAILABLE]"))
        .count();
    assert_eq!(checked + held, 20, "every attempt gets a NO: {answers:?}");
    // 3 failures are free, the 4th starts the delays: no more passwords may be tried at once.
    assert!(
        checked <= 4,
        "{checked} of 20 simultaneous guesses were checked against the password: {answers:?}"
    );

    // The account is now throttled, for the right password and from a fresh address too.
    let right = vec![(
        "127.0.0.60".to_string(),
        LABO.0.to_string(),
        LABO.1.to_string(),
    )];
    let answer = imap_logins_at_once(imaps, &hub.ca, &right).remove(0);
    assert!(
        answer.starts_with("NO") && answer.contains("[UNAVAILABLE]"),
        "after 20 wrong passwords the account is not throttled: {answer}"
    );
    hub.stop();
}
