#!/usr/bin/env python3
"""Two hub nodes on one PostgreSQL: IDLE on node B, a message submitted to node A.

Usage: scaleout.py --imaps-port B --smtp-port A --cafile CA --user U --password P --marker M
                   [--padding BYTES]

IDLE on B's INBOX (imaplib over implicit TLS), then smtplib submits a message on A
(STARTTLS, AUTH); the time from A's 250 after DATA to B's untagged EXISTS is printed as
`WOKE <seconds>`. Then the message is fetched from B (its body comes from the blob written by
A). Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1.
"""

import argparse
import base64
import imaplib
import os
import smtplib
import ssl
import sys
import time


def check(name, cond, why=""):
    if cond:
        print(f"PASS {name}", flush=True)
    else:
        print(f"FAIL {name}: {why!r}", flush=True)
        sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    for a in ("--imaps-port", "--smtp-port"):
        p.add_argument(a, type=int, required=True)
    for a in ("--cafile", "--user", "--password", "--marker"):
        p.add_argument(a, required=True)
    p.add_argument("--padding", type=int, default=0, help="random bytes added to the body")
    args = p.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)

    m = imaplib.IMAP4_SSL("localhost", args.imaps_port, ssl_context=ctx, timeout=30)
    m.login(args.user, args.password)
    typ, data = m.select("INBOX")
    check("select-on-b", typ == "OK", data)
    before = int(data[0])
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    check("idle-continuation", line.startswith(b"+"), line)

    message = (
        f"From: <{args.user}>\r\nTo: <{args.user}>\r\nSubject: scale-out\r\n"
        f"Message-ID: <{args.marker}@hopital.mshub.test>\r\n"
        f"Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n\r\n"
        f"Delivered on node A, read on node B: {args.marker}\r\n"
    ).encode() + base64.encodebytes(os.urandom(args.padding)).replace(b"\n", b"\r\n")
    smtp = smtplib.SMTP("localhost", args.smtp_port, timeout=30)
    smtp.starttls(context=ctx)
    smtp.login(args.user, args.password)
    smtp.sendmail(args.user, [args.user], message)
    accepted = time.monotonic()
    smtp.quit()

    m.sock.settimeout(10)
    line = m.readline()
    woke = time.monotonic() - accepted
    check("idle-exists-on-b", line.startswith(b"* ") and line.rstrip().endswith(b"EXISTS"), line)
    print(f"WOKE {woke:.3f}", flush=True)
    check("exists-counts-the-new-message", int(line.split()[1]) == before + 1, line)
    m.sock.settimeout(30)
    m.send(b"DONE\r\n")
    line = m.readline()
    # An IMAP4rev1 session is told `* n RECENT` with the new size (RFC 3501 §7.3.2).
    while line.startswith(b"* ") and line.rstrip().endswith(b"RECENT"):
        line = m.readline()
    check("idle-done", line.startswith(tag + b" OK"), line)
    typ, data = m.fetch(str(before + 1), "(BODY.PEEK[])")
    body = b"".join(part[1] for part in data if isinstance(part, tuple))
    check("body-read-on-b", args.marker.encode() in body, data)
    m.logout()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
