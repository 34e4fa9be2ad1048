#!/usr/bin/env python3
"""Two IMAP4rev1 sessions (Python's imaplib over implicit TLS) on one mailbox: keywords are
announced in `* FLAGS` before any FETCH shows them (RFC 3501 §7.2.6), and each message is
`\\Recent` for exactly one session (RFC 3501 §2.3.2, §6.3.1, §7.3.2).

Usage: imap_flags.py --port P --cafile F --user U --password W

Every raw line each session reads is recorded in order, so the checks see untagged responses
as they came (imaplib's own `untagged_responses` is a dictionary: the order is lost there).

Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1; `DONE` at
the end. The certificate is verified against --cafile for the name localhost.
"""

import argparse
import imaplib
import ssl
import sys

ARGS = None
MAILBOX = "Flags-E2E"
SYSTEM = b"\\Answered \\Flagged \\Deleted \\Seen \\Draft"
MESSAGE = (
    b"From: Labo <labo@hopital.mshub.test>\r\n"
    b"To: dr.martin@hopital.mshub.test\r\n"
    b"Subject: Resultats flags E2E\r\n"
    b"Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
    b"Message-ID: <flags-e2e@hopital.mshub.test>\r\n"
    b"\r\n"
    b"Hemoglobine normale.\r\n"
)


def check(name, cond, why=""):
    if cond:
        print(f"PASS {name}", flush=True)
    else:
        print(f"FAIL {name}: {why}", flush=True)
        sys.exit(1)


class Recording(imaplib.IMAP4_SSL):
    """imaplib's client, keeping every line it reads, in order."""

    def __init__(self, *args, **kwargs):
        self.lines = []
        super().__init__(*args, **kwargs)

    def readline(self):
        line = super().readline()
        self.lines.append(line.rstrip(b"\r\n"))
        return line

    def run(self, name, *command):
        """Runs an imaplib command; returns the raw untagged lines it got, in order."""
        start = len(self.lines)
        typ, data = getattr(self, command[0])(*command[1:])
        check(name, typ == "OK", f"{typ} {data!r}")
        return [line for line in self.lines[start:] if line.startswith(b"* ")]


def connect():
    context = ssl.create_default_context(cafile=ARGS.cafile)
    m = Recording("localhost", ARGS.port, ssl_context=context, timeout=30)
    m.run("login", "login", ARGS.user, ARGS.password)
    return m


def index(lines, prefix):
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            return i
    return -1


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    ARGS = p.parse_args()

    a = connect()
    b = connect()
    a.run("create", "create", MAILBOX)
    for _ in range(2):
        a.run("append", "append", MAILBOX, None, None, MESSAGE)

    # \Recent: EXAMINE shows the two new messages without claiming them.
    r = b.run("examine-b", "select", MAILBOX, True)
    check("examine-shows-recent", b"* 2 RECENT" in r, r)
    # The first SELECT claims them.
    r = a.run("select-a", "select", MAILBOX)
    check("select-a-recent", b"* 2 RECENT" in r, r)
    check("select-a-flags", (b"* FLAGS (" + SYSTEM + b")") in r, r)
    r = a.run("fetch-a", "fetch", "1:*", "(FLAGS)")
    check("fetch-a-recent", r == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"], r)
    r = a.run("search-a-recent", "search", None, "RECENT")
    check("search-a-recent", r == [b"* SEARCH 1 2"], r)
    r = a.run("search-a-new", "search", None, "NEW")
    check("search-a-new", r == [b"* SEARCH 1 2"], r)
    # Claimed: the second SELECT gets none.
    r = b.run("select-b", "select", MAILBOX)
    check("select-b-not-recent", b"* 0 RECENT" in r, r)
    r = b.run("fetch-b", "fetch", "1:*", "(FLAGS)")
    check("fetch-b-not-recent", not any(b"\\Recent" in line for line in r), r)
    r = b.run("search-b-old", "search", None, "OLD")
    check("search-b-old", r == [b"* SEARCH 1 2"], r)

    # Keywords: a's STORE introduces $Label1; a is told first, then b before its FETCH.
    r = a.run("store-a", "store", "1", "+FLAGS", "($Label1)")
    flags, fetch = index(r, b"* FLAGS ("), index(r, b"* 1 FETCH")
    check("store-a-announces", 0 <= flags < fetch and b"$Label1" in r[flags], r)
    r = b.run("noop-b", "noop")
    check(
        "noop-b-flags-before-fetch",
        r
        == [
            b"* FLAGS (" + SYSTEM + b" $Label1)",
            b"* OK [PERMANENTFLAGS (" + SYSTEM + b" $Label1 \\*)] Flags permitted",
            b"* 1 FETCH (FLAGS ($Label1) UID 1)",
        ],
        r,
    )
    # Told once.
    r = b.run("fetch-b-label", "fetch", "1", "(FLAGS)")
    check("fetch-b-label", r == [b"* 1 FETCH (FLAGS ($Label1))"], r)

    # A message appended while both have the mailbox selected is recent for one session only,
    # and its new keyword is announced to both before anything shows it.
    r = a.run("append-a", "append", MAILBOX, "(Important)", None, MESSAGE)
    check("append-a-announces", index(r, b"* FLAGS (") >= 0 and b"Important" in r[index(r, b"* FLAGS (")], r)
    check("append-a-recent", b"* 3 EXISTS" in r and b"* 3 RECENT" in r, r)
    r = b.run("noop-b2", "noop")
    check("noop-b2-flags", index(r, b"* FLAGS (") >= 0 and b"Important" in r[index(r, b"* FLAGS (")], r)
    check("noop-b2-exists-not-recent", b"* 3 EXISTS" in r and not any(b"RECENT" in x for x in r), r)
    r = b.run("fetch-b3", "fetch", "3", "(FLAGS)")
    check("fetch-b3-not-recent", r == [b"* 3 FETCH (FLAGS (Important))"], r)
    r = a.run("fetch-a3", "fetch", "3", "(FLAGS)")
    check("fetch-a3-recent", r == [b"* 3 FETCH (FLAGS (\\Recent Important))"], r)

    for m in (a, b):
        typ, _ = m.logout()
        check("logout", typ == "BYE")
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
