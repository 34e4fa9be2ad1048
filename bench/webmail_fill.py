#!/usr/bin/env python3
"""Fills the demo patient's INBOX through the real submission path: the demo professional
(dr.martin) logs in on the submission port (STARTTLS, AUTH PLAIN) and sends N small messages,
each with its own subject and Message-ID, over a few parallel sessions.

    bench/webmail_fill.py HOST PORT CAFILE N [SESSIONS]

Submission rather than smtp-source on the relay port: the web inbox shows the sender's
directory identity (name, profession, organisation) when the From: header is a known account,
and only an authenticated professional may put a local address there. Costs about one
argon2 verification per session, then one message per round trip.
"""
import smtplib
import ssl
import sys
from multiprocessing import Process

FROM = "dr.martin@hopital.mshub.test"
PASSWORD = "demo-martin"
TO = "284057511204339@patient.mshub.test"
BODY = (
    "Bonjour,\r\n\r\n"
    "Vos résultats d'analyse sont disponibles dans votre espace. Ils sont normaux ; nous\r\n"
    "en parlerons lors de votre prochaine consultation.\r\n\r\n"
    "Bien cordialement,\r\nDr Martin\r\n"
)


def send(host, port, cafile, first, count, run):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False  # the demo certificate names localhost; the CA pin is enough
    with smtplib.SMTP(host, port, timeout=60) as s:
        s.starttls(context=ctx)
        s.login(FROM, PASSWORD)
        for i in range(first, first + count):
            msg = (
                f"From: Dr Martin <{FROM}>\r\n"
                f"To: <{TO}>\r\n"
                f"Subject: Résultats d'analyse n° {i:05d}\r\n"
                f"Message-ID: <bench-{run}-{i}@hopital.mshub.test>\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n" + BODY
            ).encode()
            s.sendmail(FROM, [TO], msg)


def main():
    host, port, cafile, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    sessions = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    run = ssl.RAND_bytes(4).hex()
    per, extra = divmod(n, sessions)
    procs, first = [], 0
    for k in range(sessions):
        count = per + (1 if k < extra else 0)
        p = Process(target=send, args=(host, port, cafile, first, count, run))
        p.start()
        procs.append(p)
        first += count
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        sys.exit("a sending session failed")


if __name__ == "__main__":
    main()
