#!/usr/bin/env python3
"""Reads a mailbox over IMAP (STARTTLS) as a client would, and reports every UID it sees
with its Message-ID, so that the test can tell whether a UID was ever given to two messages.

Usage: reader.py --port P --cafile F --user U --password W [--every S] [--once]

Without --once it reads again every --every seconds until stdin is closed, reconnecting
when the hub is down. Output, flushed:
  seen UIDVALIDITY UID MID   each (UID, Message-ID) pair, once
  pass N                     after each complete read, N messages in the mailbox
"""

import argparse
import imaplib
import re
import ssl
import sys
import threading
import time

STOP = threading.Event()


def read_once(args, ctx, seen):
    imap = imaplib.IMAP4("127.0.0.1", args.port, timeout=20)
    try:
        imap.starttls(ssl_context=ctx)
        imap.login(args.user, args.password)
        typ, data = imap.select("INBOX", readonly=True)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"select: {data}")
        validity = imap.untagged_responses.get("UIDVALIDITY", [b"0"])[-1].decode()
        exists = int(data[0])
        if exists > 0:
            typ, items = imap.uid(
                "FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            )
            for item in items:
                if not isinstance(item, tuple):
                    continue
                uid = re.search(rb"UID (\d+)", item[0])
                mid = re.search(rb"(?i)message-id:\s*(<[^>]*>)", item[1])
                if uid and mid:
                    pair = (validity, uid.group(1).decode(), mid.group(1).decode())
                    if pair not in seen:
                        seen.add(pair)
                        print(f"seen {pair[0]} {pair[1]} {pair[2]}", flush=True)
        print(f"pass {exists}", flush=True)
        imap.logout()
    finally:
        try:
            imap.shutdown()
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--every", type=float, default=0.05)
    p.add_argument("--once", action="store_true")
    args = p.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)
    seen = set()
    if args.once:
        read_once(args, ctx, seen)
        return
    threading.Thread(target=lambda: (sys.stdin.read(), STOP.set()), daemon=True).start()
    while not STOP.is_set():
        try:
            read_once(args, ctx, seen)
        except (OSError, imaplib.IMAP4.error, EOFError):
            pass
        STOP.wait(args.every)


if __name__ == "__main__":
    main()
