#!/usr/bin/env python3
"""Server-side helper of the neomutt and offlineimap tests: fills any mailbox and reads back
the state of any mailbox, over IMAP4_SSL with Python's imaplib (an independent client).

Usage: imap_mailboxes.py --port P --cafile F --user U --password W ACTION [args]

Actions:
  fill MAILBOX N PREFIX  APPENDs N small messages (Subject: PREFIX-i, i from 0) to MAILBOX
                         in one session; prints `APPENDED n`
  state MAILBOX          prints `COUNT n`, then `MSG <uid> <subject> <flags>` per message,
                         flags separated by commas, `-` when none (read-only SELECT: EXAMINE)
  flag MAILBOX SUBJECT FLAG...
                         adds FLAGs (e.g. \\Seen) to the messages of MAILBOX with that
                         subject; prints `FLAGGED n`
  list                   prints `MAILBOX <name>` per mailbox LIST "" "*" returns

Ends with `DONE` when everything went well. The certificate is verified against --cafile for
the name localhost.
"""

import argparse
import imaplib
import re
import ssl
import sys


def connect(args):
    ctx = ssl.create_default_context(cafile=args.cafile)
    m = imaplib.IMAP4_SSL("localhost", args.port, ssl_context=ctx, timeout=60)
    typ, data = m.login(args.user, args.password)
    assert typ == "OK", data
    return m


def quoted(mailbox):
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def message(user, subject):
    return (
        "From: Laboratoire <labo@hopital.mshub.test>\r\n"
        f"To: {user}\r\n"
        f"Subject: {subject}\r\n"
        "Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
        f"Message-ID: <{subject}@hopital.mshub.test>\r\n"
        "\r\n"
        f"Resultat {subject}: normal.\r\n"
    ).encode()


def fill(m, user, mailbox, n, prefix):
    for i in range(n):
        typ, data = m.append(quoted(mailbox), None, None, message(user, f"{prefix}-{i}"))
        assert typ == "OK", (i, data)
    print(f"APPENDED {n}")


def state(m, mailbox):
    typ, data = m.select(quoted(mailbox), readonly=True)
    assert typ == "OK", data
    count = int(data[0])
    print(f"COUNT {count}")
    if count == 0:
        return
    typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    # Each message is a (meta, literal) tuple, then a bytes item with what follows the literal
    # (`)` or, when the server sends FLAGS after the literal, ` FLAGS (...))`).
    items = list(data)
    for i, part in enumerate(items):
        if not isinstance(part, tuple):
            continue
        meta = part[0].decode()
        tail = items[i + 1].decode() if i + 1 < len(items) and isinstance(items[i + 1], bytes) else ""
        uid = re.search(r"UID (\d+)", meta + tail).group(1)
        flags = re.search(r"FLAGS \(([^)]*)\)", meta + tail)
        flags = flags.group(1) if flags else "?"
        header = part[1].decode()
        subject = header.split(":", 1)[1].strip() if ":" in header else ""
        print(f"MSG {uid} {subject} {flags.replace(' ', ',') or '-'}")


def flag(m, mailbox, subject, flags):
    typ, data = m.select(quoted(mailbox))
    assert typ == "OK", data
    typ, data = m.uid("SEARCH", "HEADER", "SUBJECT", quoted(subject))
    assert typ == "OK", data
    uids = data[0].decode().split()
    if uids:
        typ, data = m.uid("STORE", ",".join(uids), "+FLAGS.SILENT", f"({' '.join(flags)})")
        assert typ == "OK", data
    print(f"FLAGGED {len(uids)}")


def list_mailboxes(m):
    typ, data = m.list('""', "*")
    assert typ == "OK", data
    for line in data:
        name = re.search(r'"([^"]*)"$|(\S+)$', line.decode())
        print(f"MAILBOX {name.group(1) if name.group(1) is not None else name.group(2)}")


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
        fill(m, args.user, args.rest[0], int(args.rest[1]), args.rest[2])
    elif args.action == "state":
        state(m, args.rest[0])
    elif args.action == "flag":
        flag(m, args.rest[0], args.rest[1], args.rest[2:])
    elif args.action == "list":
        list_mailboxes(m)
    else:
        sys.exit(f"unknown action {args.action}")
    m.logout()
    print("DONE")


if __name__ == "__main__":
    main()
