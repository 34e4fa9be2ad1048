//! `kill -9` of the hub under concurrent SMTP submission, while an IMAP client reads the
//! INBOX: every acknowledged Message-ID is there exactly once after the restarts, and no UID a
//! reader saw is given to another message.

use std::time::Duration;

use crate::support::{one_at_a_time, read_inbox, seen_pairs, Client, Hub, Report};

const ROUNDS: usize = 3;

#[test]
fn kill_9_under_concurrent_submission_loses_and_doubles_nothing() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = Hub::new(&tmp.path().join("hub"), &tmp.path().join("hub.log"));
    hub.start();
    let reader = Client::reader(&hub);
    let load = Client::load(&hub, "kill9", 4, "400,66000,200000");
    let mut recovery = Duration::ZERO;
    for round in 0..ROUNDS {
        let before = load.lines("ack").len();
        assert!(
            load.wait_lines("ack", before + 20, Duration::from_secs(60)),
            "round {round}: no acknowledgement within a minute"
        );
        hub.kill9();
        std::thread::sleep(Duration::from_millis(200));
        let acks = load.lines("ack").len();
        hub.start();
        let restarted = std::time::Instant::now();
        assert!(
            load.wait_lines("ack", acks + 1, Duration::from_secs(60)),
            "round {round}: nothing acknowledged after the restart"
        );
        let first = load.lines("ack")[acks].0;
        recovery = recovery.max(first.saturating_duration_since(restarted));
    }
    let load = load.stop();
    let seen = seen_pairs(reader.stop().into_iter().map(|(_, l)| l));
    let last = read_inbox(&hub);
    let mut report = Report::new("kill9", &load, &seen, &last);
    report.recovery = Some(recovery);
    assert!(hub.terminate(), "a clean stop after the kills");
    report.check("kill -9 ×3 under 4 submission clients");
}

/// SIGTERM under the same load: a clean exit that closes the store (and says so), and every
/// acknowledged message there after the restart.
#[test]
fn sigterm_under_load_stops_cleanly_and_keeps_every_acknowledged_message() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = Hub::new(&tmp.path().join("hub"), &tmp.path().join("hub.log"));
    hub.start();
    let load = Client::load(&hub, "term", 4, "400,66000");
    assert!(load.wait_lines("ack", 20, Duration::from_secs(60)));
    assert!(hub.terminate(), "a clean exit on SIGTERM under load");
    let log = hub.log_text();
    assert!(
        log.contains("store closed: everything applied is on disk"),
        "the store was closed and said so"
    );
    assert!(!log.contains("failed to flush"));
    let acks = load.lines("ack").len();
    hub.start();
    assert!(load.wait_lines("ack", acks + 5, Duration::from_secs(60)));
    let load = load.stop();
    let last = read_inbox(&hub);
    let report = Report::new("term", &load, &[], &last);
    assert!(hub.terminate());
    report.check("SIGTERM under 4 submission clients");
}
