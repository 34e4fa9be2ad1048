#!/usr/bin/env python3
"""Submits messages to the hub over SMTP submission (STARTTLS, AUTH PLAIN) from several
threads until stdin is closed (or --seconds pass), each with its own Message-ID, and reports
what became of each one. It does not retry a message: the test checks each outcome.

Usage: load.py --port P --cafile F --user U --password W --to ADDR --prefix ID
               [--threads N] [--seconds S] [--sizes 400,66000]

Output, one line per message, flushed:
  ack MID            250 after the data: the hub took responsibility for it
  refused MID CODE   a 4xx or 5xx reply to the data (or to MAIL/RCPT): nothing was accepted
  unknown MID WHY    the connection failed before the reply: either outcome is allowed
The certificate is verified against --cafile for the name localhost.
"""

import argparse
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


def message(args, mid, size):
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
        try:
            smtp = smtplib.SMTP("127.0.0.1", args.port, timeout=20)
            smtp.starttls(context=ctx)
            smtp.login(args.user, args.password)
        except (OSError, smtplib.SMTPException):
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
