//! Finding 2: login throttle bypass. The throttle counted failures per login as typed, not per
//! account: once `dr.martin@hopital.mshub.test` was locked, `dr.martin@hopital.mshub.test.`
//! (trailing dot) with the right password got in from another address. And parallel attempts
//! all passed the check before the first failure was counted. Now the throttle counts per
//! account, and each attempt is counted before its password is checked.

use std::time::Duration;

use crate::support::*;

use super::login_memory::imap_logins_at_once;

#[test]
fn a_locked_account_stays_locked_under_another_spelling_and_from_another_address() {
    let mut hub = Instance::demo();
    let port = hub.https_port();

    // Lock dr.martin from 127.0.0.1: wrong passwords, waiting out each delay, until 7
    // failures are counted (the next delay is 8 s).
    let attacker = CurlSession::from_source(&hub, port, "127.0.0.1");
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
        let r = CurlSession::from_source(&hub, port, source).log_in(login, MARTIN.1);
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
