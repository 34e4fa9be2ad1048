#!/usr/bin/env python3
"""Server-side helper of the interop tests (mbsync, fetchmail): fills a mailbox, reads back its
state, deletes messages, all over IMAP4_SSL with Python's imaplib.

Usage: imap_interop.py --port P --cafile F --user U --password W ACTION [args]

Actions:
  fill N PREFIX     APPEND N small messages (Subject: PREFIX-i) to INBOX in one session
  state             prints `COUNT n`, then `MSG <uid> <subject> <flags>` per INBOX message
  delete UID...     sets \\Deleted on these messages and EXPUNGEs; prints `DELETED n`
  hold N PID        opens N more sessions (LOGIN, SELECT INBOX, IDLE), holds them and prints
                    `RSS_BEFORE kib` and `RSS_AFTER kib` of process PID

The certificate is verified against --cafile for the name localhost.
"""

import argparse
import imaplib
import re
import ssl
import sys
import time


def connect(args):
    ctx = ssl.create_default_context(cafile=args.cafile)
    m = imaplib.IMAP4_SSL("localhost", args.port, ssl_context=ctx, timeout=60)
    typ, data = m.login(args.user, args.password)
    assert typ == "OK", data
    return m


def message(subject):
    return (
        "From: Laboratoire <labo@hopital.mshub.test>\r\n"
        "To: dr.martin@hopital.mshub.test\r\n"
        f"Subject: {subject}\r\n"
        "Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
        f"Message-ID: <{subject}@hopital.mshub.test>\r\n"
        "\r\n"
        f"Resultat {subject}: normal.\r\n"
    ).encode()


def fill(m, n, prefix):
    for i in range(n):
        typ, data = m.append("INBOX", None, None, message(f"{prefix}-{i}"))
        assert typ == "OK", (i, data)
    print(f"APPENDED {n}")


def state(m):
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK", data
    print(f"COUNT {int(data[0])}")
    if int(data[0]) == 0:
        return
    typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    for part in data:
        if not isinstance(part, tuple):
            continue
        meta = part[0].decode()
        uid = re.search(r"UID (\d+)", meta).group(1)
        flags = re.search(r"FLAGS \(([^)]*)\)", meta)
        subject = part[1].decode().split(":", 1)[1].strip() if b":" in part[1] else ""
        # FLAGS may come after the literal: look in the whole response then.
        if flags is None:
            tail = " ".join(p.decode() for p in data if isinstance(p, bytes))
            flags = re.search(r"FLAGS \(([^)]*)\)", tail)
        flags = flags.group(1) if flags else "?"
        print(f"MSG {uid} {subject} {flags.replace(' ', ',') or '-'}")


def delete(m, uids):
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    typ, data = m.uid("STORE", ",".join(uids), "+FLAGS.SILENT", "(\\Deleted)")
    assert typ == "OK", data
    typ, data = m.expunge()
    assert typ == "OK", data
    print(f"DELETED {len([d for d in data if d])}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hold(args, n, pid):
    print(f"RSS_BEFORE {rss_kib(pid)}")
    held = []
    for _ in range(n):
        m = connect(args)
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        line = m.readline()
        assert line.startswith(b"+"), line
        held.append(m)
    time.sleep(1)
    print(f"RSS_AFTER {rss_kib(pid)}")
    for m in held:
        m.shutdown()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("action")
    p.add_argument("rest", nargs="*")
    args = p.parse_args()
    m = connect(args)
    if args.action == "fill":
        fill(m, int(args.rest[0]), args.rest[1])
    elif args.action == "state":
        state(m)
    elif args.action == "hold":
        hold(args, int(args.rest[0]), int(args.rest[1]))
    elif args.action == "delete":
        delete(m, args.rest)
    else:
        sys.exit(f"unknown action {args.action}")
    m.logout()
    print("DONE")


if __name__ == "__main__":
    main()
