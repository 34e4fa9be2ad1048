//! Finding 3: memory per login. Each argon2id verification holds 19 MiB, and every LOGIN ran
//! its own on the blocking pool (up to 512 threads): 200 wrong-password IMAP LOGINs at once
//! took the hub to 706 MiB, a few thousand exhaust the machine. Now at most a few hashes run at
//! once, the rest wait in a bounded queue and are answered with a temporary failure.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// One client per attempt, each from its source address: they connect over TLS (verifying the
/// hub's certificate), wait for one another, then all send their LOGIN at once. Prints one
/// answer per attempt, in order: `OK`, `NO <text>`, `BYE <text>` or `error: <what>`.
const FLOOD_PY: &str = r#"
import imaplib, json, socket, ssl, sys, threading

job = json.load(sys.stdin)
port, attempts = job["port"], job["attempts"]
context = ssl.create_default_context(cafile=job["ca"])

class Client(imaplib.IMAP4_SSL):
    def __init__(self, source):
        self.source = source
        super().__init__("127.0.0.1", port, ssl_context=context, timeout=120)

    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", port), timeout,
                                        source_address=(self.source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname="127.0.0.1")

ready = threading.Barrier(len(attempts), timeout=120)
answers = ["error: no answer"] * len(attempts)

def one(i, source, user, password):
    client = None
    try:
        client = Client(source)
    except Exception as e:
        answers[i] = f"error: connect {type(e).__name__} {e}"
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    if client is None:
        return
    try:
        client.login(user, password)
        answers[i] = "OK"
    except imaplib.IMAP4.abort as e:
        answers[i] = f"BYE {e}"
    except imaplib.IMAP4.error as e:
        answers[i] = f"NO {e}"
    except Exception as e:
        answers[i] = f"error: {type(e).__name__} {e}"
    finally:
        try:
            client.shutdown()
        except Exception:
            pass

threads = [threading.Thread(target=one, args=(i, *a), daemon=True)
           for i, a in enumerate(attempts)]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=180)
print(json.dumps(answers))
"#;

/// IMAP LOGINs over TLS on `port`, all at once: `(source address, login, password)` each.
pub(super) fn imap_logins_at_once(
    port: u16,
    ca: &Path,
    attempts: &[(String, String, String)],
) -> Vec<String> {
    let job = serde_json::json!({
        "port": port,
        "ca": ca,
        "attempts": attempts
            .iter()
            .map(|(s, u, p)| [s, u, p])
            .collect::<Vec<_>>(),
    });
    let mut child = Command::new("python3")
        .args(["-c", FLOOD_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(job.to_string().as_bytes())
        .expect("job written");
    let out = child.wait_with_output().expect("python3 exits");
    assert!(
        out.status.success(),
        "the clients failed: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no answers ({e}): {}", text(&out.stdout)))
}

/// A field of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the hub runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in:\n{status}"))
}

#[test]
fn a_flood_of_wrong_logins_keeps_the_hub_small_and_answering() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let pid = hub.pid();
    let before = status_kib(pid, "VmHWM");

    // 200 wrong passwords from 20 addresses, each for another (unknown) address of the hub:
    // an unknown account costs a whole verification too, and per-account throttling cannot
    // spare it.
    let attempts: Vec<(String, String, String)> = (0..200)
        .map(|i| {
            (
                format!("127.0.0.{}", 11 + i % 20),
                format!("flood-{i}@hopital.mshub.test"),
                "not-the-password".to_string(),
            )
        })
        .collect();
    let answers = imap_logins_at_once(imaps, &hub.ca, &attempts);
    let peak = status_kib(pid, "VmHWM");

    let failed = answers
        .iter()
        .filter(|a| a.contains("[AUTHENTICATIONFAILED]"))
        .count();
    let temporary = answers
        .iter()
        .filter(|a| a.starts_with("NO") && a.contains("[UNAVAILABLE]"))
        .count();
    eprintln!(
        "peak RSS {} MiB (after start {} MiB); {failed} refused, {temporary} temporary failures",
        peak / 1024,
        before / 1024
    );
    let odd: Vec<&String> = answers
        .iter()
        .filter(|a| {
            !(a.starts_with("NO")
                && (a.contains("[AUTHENTICATIONFAILED]") || a.contains("[UNAVAILABLE]")))
        })
        .collect();
    assert!(
        odd.is_empty(),
        "every client gets a NO (refused or temporary failure); {} did not: {:?}",
        odd.len(),
        &odd[..odd.len().min(10)]
    );
    assert!(
        peak < 150 * 1024,
        "peak RSS {} MiB under 200 concurrent LOGINs (after start: {} MiB)",
        peak / 1024,
        before / 1024
    );

    // The hub still lets a real user in (an account and an address that were not hammered;
    // a temporary failure may still be in the way for a moment).
    let one = vec![(
        "127.0.0.1".to_string(),
        LABO.0.to_string(),
        LABO.1.to_string(),
    )];
    let mut last = String::new();
    let logged_in = poll(Duration::from_secs(60), Duration::from_secs(2), || {
        last = imap_logins_at_once(imaps, &hub.ca, &one).remove(0);
        last == "OK"
    });
    assert!(
        logged_in,
        "the right password is refused after the flood: {last}"
    );
    hub.stop();
}
