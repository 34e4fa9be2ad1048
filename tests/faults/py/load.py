#!/usr/bin/env python3
"""Submits messages to the hub over SMTP submission (STARTTLS, AUTH PLAIN) from several
threads until stdin is closed (or --seconds pass), each with its own Message-ID, and reports
what became of each one. It does not retry a message: the test checks each outcome.

Usage: load.py --port P --cafile F --user U --password W --to ADDR --prefix ID
               [--threads N] [--seconds S] [--sizes 400,66000] [--attachments]

With --attachments each message is a short text and an attachment of random bytes (base64),
the whole of about the size given: random content stays large once compressed and sealed, so
that it is kept in the blob store, not inline.

Output, one line per message, flushed:
  ack MID            250 after the data: the hub took responsibility for it
  refused MID CODE   a 4xx or 5xx reply to the data (or to MAIL/RCPT): nothing was accepted
  unknown MID WHY    the connection failed before the reply: either outcome is allowed
The certificate is verified against --cafile for the name localhost.
"""

import argparse
import base64
import os
import smtplib
import ssl
import sys
import threading
import time

OUT = threading.Lock()
STOP = threading.Event()


def out(line):
    with OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def with_attachment(args, mid, size):
    boundary = "fault-" + os.urandom(8).hex()
    head = (
        f"From: {args.user}\r\nTo: {args.to}\r\nSubject: fault test {mid}\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Compte rendu en pièce jointe.\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf; name=\"cr.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="cr.pdf"\r\n\r\n'
    )
    encoded = base64.encodebytes(os.urandom(max(1, size * 3 // 4))).replace(b"\n", b"\r\n")
    tail = f"--{boundary}--\r\n".encode()
    return head.encode("utf-8") + encoded + tail


def message(args, mid, size):
    if args.attachments:
        return with_attachment(args, mid, size)
    head = (
        f"From: {args.user}\r\nTo: {args.to}\r\nSubject: fault test {mid}\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
    )
    line = "Résultat de laboratoire, ligne de contenu pour le test de pannes.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode("utf-8")


def worker(args, index, ctx, sizes):
    n = 0
    while not STOP.is_set():
        smtp = None
        try:
            smtp = smtplib.SMTP("127.0.0.1", args.port, timeout=20)
            smtp.starttls(context=ctx)
            smtp.login(args.user, args.password)
        except (OSError, smtplib.SMTPException):
            # Hang up as a mail client does: a connection left open would hold one of the
            # hub's places for this source address until it times out.
            if smtp is not None:
                try:
                    smtp.close()
                except OSError:
                    pass
            time.sleep(0.2)
            continue
        try:
            for _ in range(20):
                if STOP.is_set():
                    break
                n += 1
                mid = f"<{args.prefix}-{index}-{n}@faults.test>"
                size = sizes[n % len(sizes)]
                try:
                    smtp.sendmail(args.user, [args.to], message(args, mid, size))
                    out(f"ack {mid}")
                except smtplib.SMTPResponseException as e:
                    out(f"refused {mid} {e.smtp_code}")
                    if e.smtp_code == 421:
                        break
                except smtplib.SMTPRecipientsRefused as e:
                    code = next(iter(e.recipients.values()))[0]
                    out(f"refused {mid} {code}")
                except (OSError, smtplib.SMTPException) as e:
                    out(f"unknown {mid} {type(e).__name__}")
                    break
        finally:
            try:
                smtp.close()
            except OSError:
                pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--sizes", default="400,66000")
    p.add_argument("--attachments", action="store_true")
    args = p.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)
    sizes = [int(s) for s in args.sizes.split(",")]
    threads = [
        threading.Thread(target=worker, args=(args, i, ctx, sizes), daemon=True)
        for i in range(args.threads)
    ]
    for t in threads:
        t.start()
    # Stops when the test closes stdin, or after --seconds.
    closer = threading.Thread(target=lambda: (sys.stdin.read(), STOP.set()), daemon=True)
    closer.start()
    STOP.wait(args.seconds)
    STOP.set()
    for t in threads:
        t.join(30)
    out("done")


if __name__ == "__main__":
    main()
