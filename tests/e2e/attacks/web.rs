//! The HTTPS service under attack: an open redirect through the login's `next`, and the
//! exhaustion of the web inbox by slow or many clients (review findings 4 and 5).
//!
//! Clients: curl with the demo CA for what a browser would send, and raw TLS sockets
//! (Python's `ssl`) for what no browser sends: headers or a body trickled byte by byte,
//! connections opened and left idle.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

use crate::support::*;

const CAMILLE_INS: &str = "284057511204339";

/// Camille's login form posted with `next` as raw urlencoded text (`%09`, or a raw tab).
fn log_in_to(browser: &CurlSession, raw_next: &str) -> HttpReply {
    let page = browser.request("/login", None);
    assert_eq!(page.status, 200, "{page:?}");
    let token = csrf_field(&page);
    let body = format!(
        "_csrf={token}&login={CAMILLE_INS}&password={}&next={raw_next}",
        CAMILLE.1
    );
    browser.request_with("/login", Post::Raw(&body), &[])
}

/// Where a browser goes from a `Location`: WHATWG URL parsing strips tabs and newlines, then
/// a `//` start (or `/\`) names another host.
fn leaves_the_site(location: &str) -> bool {
    let cleaned: String = location
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let cleaned = cleaned.trim_start_matches(|c: char| c <= ' ');
    !cleaned.starts_with('/') || cleaned.starts_with("//") || cleaned.starts_with("/\\")
}

#[test]
fn the_login_never_sends_the_browser_to_another_site() {
    let mut hub = Instance::demo();
    let port = hub.https_port();

    // The finding: a tab between the slashes, percent-encoded in the form and raw.
    for raw_next in ["/%09/evil.example", "/\t/evil.example"] {
        let browser = CurlSession::new(&hub, port);
        let signed_in = log_in_to(&browser, raw_next);
        assert_eq!(signed_in.status, 303, "{raw_next:?}: {signed_in:?}");
        let location = signed_in.header("location").unwrap_or_default();
        assert_eq!(location, "/", "next={raw_next:?} went to {location:?}");
    }

    // Signed in, the login page sends straight on to `next`: the same check, every trick.
    let browser = CurlSession::new(&hub, port);
    let signed_in = log_in_to(&browser, "");
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let hostile = [
        "/%09/evil.example",
        "/%0D%0A/evil.example",
        "/%0A/evil.example",
        "/%2509/evil.example",
        "%2F%2Fevil.example",
        "/%252F%252Fevil.example",
        "/%2F/evil.example",
        "/%5Cevil.example",
        "/%5C%5Cevil.example",
        "/%255Cevil.example",
        "/%C2%A0/evil.example",
        "/%EF%BC%8F/evil.example",
        "https%3A%2F%2Fevil.example",
        "javascript%3Aalert(1)",
        "%20//evil.example",
    ];
    for raw_next in hostile {
        let r = browser.request(&format!("/login?next={raw_next}"), None);
        assert_eq!(r.status, 303, "{raw_next}: {r:?}");
        let location = r.header("location").unwrap_or_default();
        assert!(
            !leaves_the_site(location),
            "next={raw_next} went to {location:?}"
        );
        assert_eq!(location, "/", "next={raw_next} went to {location:?}");
    }
    // The app's own uses still go through.
    for wanted in [
        "/oauth/authorize?response_type=code&client_id=app&redirect_uri=https://app.example/cb&scope=documents&state=x-1",
        "/ordonnance/0123456789ABCDEF?h=aGFzaA-_&s=c2ln",
        "/m/INBOX/3",
    ] {
        let query = format!("next={}", wanted.replace('&', "%26").replace('?', "%3F"));
        let r = browser.request(&format!("/login?{query}"), None);
        assert_eq!(r.status, 303, "{wanted}: {r:?}");
        assert_eq!(r.header("location"), Some(wanted));
    }
    hub.stop();
}

/// Python over raw TLS sockets, certificates not checked (an attacker does not care).
const SOCKETS: &str = r#"
import json, socket, ssl, sys, time

port = int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def connect(source="127.0.0.1"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return ctx.wrap_socket(raw, server_hostname="mshub.test")

def closed_or_answered(s, got):
    """Waits half a second for the server: (closed or answered, what it sent so far). A TLS
    record without data (a session ticket) makes a socket readable with nothing to read,
    hence a read with a timeout rather than select."""
    s.settimeout(0.5)
    try:
        chunk = s.recv(4096)
    except TimeoutError:
        return False, got
    got += chunk
    return not chunk or b"\r\n" in got, got

def trickle(head, drip, limit):
    """Sends head, then one byte every half second: (seconds until the server closed or
    answered, its answer's first line)."""
    s = connect()
    start = time.monotonic()
    got = b""
    try:
        s.sendall(head)
        while time.monotonic() - start < limit:
            done, got = closed_or_answered(s, got)
            if done:
                break
            s.sendall(drip)
        else:
            return None, ""
    except (OSError, ssl.SSLError):
        pass
    return time.monotonic() - start, got.split(b"\r\n")[0].decode("latin-1")

def idle(limit):
    """One request, then silence: seconds until the server closes the connection."""
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = b""
    while not got.endswith(b"ok"):
        chunk = s.recv(4096)
        if not chunk:
            return 0.0
        got += chunk
    start = time.monotonic()
    try:
        while time.monotonic() - start < limit:
            done, _ = closed_or_answered(s, b"")
            if done:
                break
        else:
            return None
    except (OSError, ssl.SSLError):
        pass
    return time.monotonic() - start

def admitted(source="127.0.0.1"):
    try:
        s = connect(source)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = s.recv(4096)
        s.close()
        return answer.startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        return False

mode = sys.argv[1]
if mode == "header":
    t, line = trickle(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", b"a", 60)
    print(json.dumps({"closed_after": t, "answer": line}))
elif mode == "body":
    head = (b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100000\r\n\r\nlogin=")
    t, line = trickle(head, b"a", 60)
    print(json.dumps({"closed_after": t, "answer": line}))
elif mode == "idle":
    print(json.dumps({"closed_after": idle(60)}))
elif mode == "hold":
    count = int(sys.argv[3])
    held, refused = [], 0
    for _ in range(count):
        try:
            held.append(connect())
        except (OSError, ssl.SSLError):
            refused += 1
    print(json.dumps({"held": len(held), "refused": refused, "one_more": admitted()}), flush=True)
    sys.stdin.readline()
    held.pop().close()
    time.sleep(0.5)
    print(json.dumps({"after_one_closed": admitted()}), flush=True)
"#;

fn sockets(args: &[&str]) -> serde_json::Value {
    let out: Output = Command::new("python3")
        .arg("-c")
        .arg(SOCKETS)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "python failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn one_address_cannot_take_every_connection() {
    // The default per-source limit: 64 connections at once.
    const PER_SOURCE: usize = 64;
    let mut hub = Instance::demo();
    let port = hub.https_port();
    let mut holder = Command::new("python3")
        .arg("-c")
        .arg(SOCKETS)
        .args(["hold", &port.to_string(), &(PER_SOURCE + 8).to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let held: serde_json::Value =
        serde_json::from_str(&lines.next().expect("a line").unwrap()).unwrap();
    // While 127.0.0.1 holds its connections, another address still gets the login page.
    let other = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--cacert"])
        .arg(&hub.ca)
        .args(["--interface", "127.0.0.2", "--output", "/dev/null"])
        .args(["--write-out", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}/login"))
        .output()
        .expect("curl runs");
    holder.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let after: serde_json::Value =
        serde_json::from_str(&lines.next().expect("a line").unwrap()).unwrap();
    let _ = holder.wait();

    assert_eq!(held["held"], PER_SOURCE, "{held}");
    assert_eq!(held["refused"], 8, "{held}");
    assert_eq!(held["one_more"], false, "{held}");
    assert_eq!(text(&other.stdout), "200", "{}", text(&other.stderr));
    assert_eq!(
        after["after_one_closed"], true,
        "a freed slot is given back"
    );
    hub.stop();
}

#[test]
fn slow_headers_slow_bodies_and_idle_connections_are_cut_off() {
    let mut hub = Instance::demo_with(
        "[webmail]\nheader_timeout_secs = 3\nbody_timeout_secs = 3\n",
        &[],
    );
    let port = hub.https_port().to_string();
    let seconds = |v: &serde_json::Value| {
        v["closed_after"]
            .as_f64()
            .unwrap_or_else(|| panic!("never cut off: {v}"))
    };

    // Headers trickled a byte every half second: dropped once the header timeout is over.
    let header = sockets(&["header", &port]);
    let t = seconds(&header);
    assert!((2.5..8.0).contains(&t), "{header}");

    // Headers whole, then a body announced at 100 kB and trickled: 408 at the body timeout.
    let body = sockets(&["body", &port]);
    let t = seconds(&body);
    assert!((2.5..8.0).contains(&t), "{body}");
    assert!(
        body["answer"]
            .as_str()
            .unwrap_or("")
            .starts_with("HTTP/1.1 408"),
        "{body}"
    );

    // A keep-alive connection left idle after its request.
    let idle = sockets(&["idle", &port]);
    let t = seconds(&idle);
    assert!((2.5..8.0).contains(&t), "{idle}");

    // The service is still there for others.
    let r = curl(&hub.ca, port.parse().unwrap(), "/healthz", None);
    assert_eq!(r.status, 200);
    hub.stop();
}

#[test]
fn fake_session_cookies_do_not_escape_the_post_limit() {
    let mut hub = Instance::demo_with("[webmail]\nposts_per_minute = 5\n", &[]);
    let port = hub.https_port();

    // Camille signs in: one post of this address.
    let camille = CurlSession::new(&hub, port);
    let signed_in = log_in_to(&camille, "");
    assert_eq!(signed_in.status, 303, "{signed_in:?}");

    // Posts from the same address, each with a session cookie of its own making.
    let statuses: Vec<u16> = (0..12)
        .map(|i| {
            let forged = CurlSession::new(&hub, port);
            let cookie = format!("__Host-mshub=forged-{i}-{}", std::process::id());
            let r = forged.request_with(
                "/login",
                Post::Raw("login=nobody&password=guess"),
                &["--header", &format!("Cookie: {cookie}")],
            );
            if r.status == 429 {
                assert!(text(&r.body).contains("Trop d'envois"), "{r:?}");
                assert!(r.header("retry-after").is_some(), "{r:?}");
            }
            r.status
        })
        .collect();
    let passed = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        passed <= 5,
        "forged cookies got fresh buckets: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // A real session has its own bucket: Camille still signs out.
    let inbox = camille.request("/", None);
    assert_eq!(inbox.status, 200, "{inbox:?}");
    let token = csrf_field(&inbox);
    let out = camille.request_with("/logout", Post::Raw(&format!("_csrf={token}")), &[]);
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.header("location"), Some("/login"));
    hub.stop();
}
