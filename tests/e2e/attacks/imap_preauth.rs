//! Finding 6, IMAP before login: a connection that has not logged in could hold a 64 KiB line
//! plus 1 MiB of literals for 30 minutes, 500 at a time from one address. Replayed with raw
//! sockets (Python's `socket` and `ssl`, the hub's certificate verified for localhost): a long
//! line and a big literal before login end the connection at once, an idle one is closed
//! after the short pre-login timeout, and one address cannot hold more than a few connections
//! that have not logged in, while another address and logged-in sessions are unaffected.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::*;

/// The raw client: `python3 -c CLIENT <scenario> <json arguments>` prints one JSON object.
const CLIENT: &str = r#"
import json, socket, ssl, sys, time

A = json.loads(sys.argv[2])


def connect(port, tls, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    if tls:
        ctx = ssl.create_default_context(cafile=A["ca"])
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s


def line(s, limit=10.0):
    """One line from the server, b"" if it closed or said nothing for `limit` seconds."""
    s.settimeout(limit)
    out = b""
    while not out.endswith(b"\n"):
        try:
            c = s.recv(1)
        except OSError:
            return out
        if not c:
            return out
        out += c
    return out


def until_close(s, limit):
    """What the server sends until it closes, whether it did within `limit` s, and when."""
    start = time.monotonic()
    data = b""
    while True:
        left = limit - (time.monotonic() - start)
        if left <= 0:
            return data, False, time.monotonic() - start
        s.settimeout(left)
        try:
            c = s.recv(4096)
        except (socket.timeout, TimeoutError):
            return data, False, time.monotonic() - start
        except OSError:
            return data, True, time.monotonic() - start
        if not c:
            return data, True, time.monotonic() - start
        data += c


def login(s, tag=b"l"):
    s.sendall(tag + b" LOGIN " + A["user"].encode() + b" " + A["password"].encode() + b"\r\n")
    while True:
        l = line(s)
        if not l or l.startswith(tag + b" "):
            return l.decode(errors="replace").strip()


def long_line():
    """64 KiB of one command line, no line end, 1 KiB at a time: how much was taken."""
    s = connect(A["port"], A["tls"])
    greeting = line(s)
    s.sendall(b"a LOGIN ")
    sent, reply, closed = 0, b"", False
    while sent < 65536 and not closed:
        try:
            s.sendall(b"A" * 1024)
        except OSError:
            break
        sent += 1024
        s.settimeout(0.05)
        try:
            c = s.recv(4096)
            if not c:
                closed = True
            reply += c
        except (socket.timeout, TimeoutError):
            pass
        except OSError:
            closed = True
        if reply.endswith(b"\n"):
            break
    rest, closed_after, _ = until_close(s, 10)
    return {"greeting": greeting.decode(), "sent": sent, "reply": (reply + rest).decode(errors="replace"),
            "closed": closed or closed_after}


def literals():
    out = {}
    for case in ["{100000}", "{100000+}", "{5000}"]:
        s = connect(A["port"], True)
        line(s)
        s.sendall(b"a LOGIN " + case.encode() + b"\r\n")
        data, closed, _ = until_close(s, 5)
        out[case] = {"reply": data.decode(errors="replace"), "closed": closed}
    # A user name and a password sent as small literals are still fine.
    s = connect(A["port"], True)
    line(s)
    user, password = A["user"].encode(), A["password"].encode()
    s.sendall(b"b LOGIN {%d}\r\n" % len(user))
    cont1 = line(s)
    s.sendall(user + b" {%d}\r\n" % len(password))
    cont2 = line(s)
    s.sendall(password + b"\r\n")
    out["small"] = {"continuations": (cont1 + cont2).decode(errors="replace"),
                    "reply": line(s).decode(errors="replace")}
    return out


def idle():
    """An unauthenticated connection on each port, and a logged-in one, all left silent."""
    tls = connect(A["imaps"], True)
    line(tls)
    since = {"tls": time.monotonic()}
    plain = connect(A["imap"], False)
    line(plain)
    since["plain"] = time.monotonic()
    authed = connect(A["imaps"], True)
    line(authed)
    out = {"login": login(authed)}
    for name, s in [("tls", tls), ("plain", plain)]:
        data, closed, _ = until_close(s, A["wait"])
        out[name] = {"reply": data.decode(errors="replace"), "closed": closed,
                     "after": time.monotonic() - since[name]}
    time.sleep(A["quiet"])
    authed.sendall(b"n NOOP\r\n")
    out["noop"] = line(authed).decode(errors="replace").strip()
    return out


def cap():
    """`n` half-line TLS connections from 127.0.0.1, then one more on each port; then 127.0.0.2."""
    held = []
    for _ in range(A["n"]):
        s = connect(A["imaps"], True)
        line(s)
        s.sendall(b"a LOGIN half-a-line")
        held.append(s)
    out = {"held": len(held)}
    try:
        s = connect(A["imaps"], True)
        out["extra_tls"] = line(s, 5).decode(errors="replace")
    except OSError as e:
        out["extra_tls"] = "refused: " + type(e).__name__
    s = connect(A["imap"], False)
    data, closed, _ = until_close(s, 5)
    out["extra_plain"] = {"reply": data.decode(errors="replace"), "closed": closed}
    other = connect(A["imaps"], True, source="127.0.0.2")
    out["other_greeting"] = line(other).decode(errors="replace")
    out["other_login"] = login(other)
    # One held connection goes away: its place is free again, and a login gives it back.
    held.pop().close()
    again = None
    deadline = time.monotonic() + 10
    while again is None and time.monotonic() < deadline:
        try:
            s = connect(A["imaps"], True)
            if line(s, 5).startswith(b"* OK"):
                again = s
        except OSError:
            time.sleep(0.2)
    out["again"] = again is not None
    if again is not None:
        out["again_login"] = login(again)
        try:
            s = connect(A["imaps"], True)
            out["after_login"] = line(s, 5).decode(errors="replace")
        except OSError as e:
            out["after_login"] = "refused: " + type(e).__name__
    return out


print(json.dumps({"long_line": long_line, "literals": literals, "idle": idle, "cap": cap}[sys.argv[1]]()))
"#;

fn client(scenario: &str, args: Value) -> Value {
    let out = Command::new("python3")
        .args(["-c", CLIENT, scenario, &args.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the {scenario} client failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)));
    println!("{scenario}: {got:#}");
    got
}

fn ca(hub: &Instance) -> String {
    hub.ca.to_str().unwrap().to_string()
}

#[test]
fn a_long_line_before_login_is_cut_short_on_both_ports() {
    let mut hub = Instance::demo();
    let (imap, imaps) = hub.imap_ports();
    for (port, tls) in [(imap, false), (imaps, true)] {
        let got = client(
            "long_line",
            serde_json::json!({"port": port, "tls": tls, "ca": ca(&hub)}),
        );
        assert!(
            got["greeting"].as_str().unwrap().starts_with("* OK"),
            "{got}"
        );
        let reply = got["reply"].as_str().unwrap();
        assert!(reply.starts_with("* BYE "), "no BYE (tls {tls}): {got}");
        assert!(
            got["closed"].as_bool().unwrap(),
            "still open (tls {tls}): {got}"
        );
        // The limit is 8 KiB: the server stops reading soon after, far from 64 KiB.
        let sent = got["sent"].as_u64().unwrap();
        assert!(sent <= 16 * 1024, "{sent} bytes taken (tls {tls}): {got}");
    }
    hub.stop();
}

#[test]
fn a_big_literal_before_login_is_refused_and_the_connection_closed() {
    let mut hub = Instance::demo();
    let (_, imaps) = hub.imap_ports();
    let got = client(
        "literals",
        serde_json::json!({"port": imaps, "ca": ca(&hub), "user": MARTIN.0, "password": MARTIN.1}),
    );
    for case in ["{100000}", "{100000+}", "{5000}"] {
        let reply = got[case]["reply"].as_str().unwrap();
        assert!(reply.starts_with("* BYE "), "{case}: {got}");
        assert!(!reply.contains("+ "), "{case} got a continuation: {got}");
        assert!(got[case]["closed"].as_bool().unwrap(), "{case}: {got}");
    }
    let small = &got["small"];
    assert!(
        small["continuations"].as_str().unwrap().starts_with("+ "),
        "{got}"
    );
    assert!(
        small["reply"].as_str().unwrap().starts_with("b OK "),
        "{got}"
    );
    hub.stop();
}

#[test]
fn an_idle_connection_before_login_is_closed_but_a_logged_in_one_is_not() {
    let mut hub = Instance::demo_with("[imap]\npre_auth_idle_timeout_secs = 2\n", &[]);
    let (imap, imaps) = hub.imap_ports();
    let got = client(
        "idle",
        serde_json::json!({
            "imap": imap, "imaps": imaps, "ca": ca(&hub),
            "user": MARTIN.0, "password": MARTIN.1, "wait": 20, "quiet": 3,
        }),
    );
    assert!(got["login"].as_str().unwrap().starts_with("l OK "), "{got}");
    for port in ["tls", "plain"] {
        let c = &got[port];
        assert_eq!(
            c["reply"].as_str().unwrap(),
            "* BYE Autologout; idle for too long\r\n",
            "{port}: {got}"
        );
        assert!(c["closed"].as_bool().unwrap(), "{port}: {got}");
        // Silent since the greeting: closed after the 2 s, not 30 minutes.
        let after = c["after"].as_f64().unwrap();
        assert!((1.5..10.0).contains(&after), "{port}: {got}");
    }
    // Silent for longer than the pre-login timeout (2 s, and 3 s more): still there.
    assert!(got["noop"].as_str().unwrap().starts_with("n OK"), "{got}");
    hub.stop();
}

#[test]
fn one_address_cannot_hold_many_connections_before_login() {
    // The default cap (20): the same configuration as a hub in production.
    let mut hub = Instance::demo();
    let (imap, imaps) = hub.imap_ports();
    let got = client(
        "cap",
        serde_json::json!({
            "imap": imap, "imaps": imaps, "ca": ca(&hub), "n": 20,
            "user": MARTIN.0, "password": MARTIN.1,
        }),
    );
    assert_eq!(got["held"], 20, "{got}");
    let extra_tls = got["extra_tls"].as_str().unwrap();
    assert!(!extra_tls.starts_with("* OK"), "a 21st was greeted: {got}");
    let extra_plain = &got["extra_plain"];
    assert!(
        extra_plain["reply"].as_str().unwrap().starts_with("* BYE "),
        "{got}"
    );
    assert!(extra_plain["closed"].as_bool().unwrap(), "{got}");
    // Another address is not affected.
    assert!(
        got["other_greeting"].as_str().unwrap().starts_with("* OK"),
        "{got}"
    );
    assert!(
        got["other_login"].as_str().unwrap().starts_with("l OK "),
        "{got}"
    );
    // A closed connection frees its place; a login frees it too.
    assert_eq!(got["again"], true, "{got}");
    assert!(
        got["again_login"].as_str().unwrap().starts_with("l OK "),
        "{got}"
    );
    assert!(
        got["after_login"].as_str().unwrap().starts_with("* OK"),
        "{got}"
    );
    hub.stop();
}
