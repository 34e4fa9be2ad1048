#!/usr/bin/env python3
"""Drives the hub's IMAP service with Python's imaplib, as a real mail client would.

Usage: imap_client.py --port P --mode ssl|starttls --cafile F --user U --password W
                      --scenario NAME [--smtp-port P]

Scenarios:
  mailbox     LIST, SELECT, APPEND then FETCH of each item, SEARCH, STORE, COPY, MOVE, EXPUNGE
  idle        IDLE on the INBOX, then a message sent with smtplib (submission, STARTTLS,
              --smtp-port) must be announced within a few seconds
  two         two sessions on one mailbox see each other's flag changes and expunges
  garbage     unknown command, 1000 nested parentheses, invalid UTF-8 mailbox name and an
              oversized literal get BAD/NO; the session and the server stay up

Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1.
The certificate is verified against --cafile for the name localhost.
"""

import argparse
import imaplib
import re
import smtplib
import socket
import ssl
import sys
import time

ARGS = None
MESSAGE = (
    b"From: Dr Jean Martin <dr.martin@hopital.mshub.test>\r\n"
    b"To: dr.martin@hopital.mshub.test\r\n"
    b"Subject: Compte rendu IMAP-E2E\r\n"
    b"Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
    b"Message-ID: <imap-e2e-1@hopital.mshub.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
    b"\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Bonjour, voici le compte rendu. BODY-MARKER-42\r\n"
    b"--XYZ\r\n"
    b"Content-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename=\"cr.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--XYZ--\r\n"
)


def check(name, cond, why=""):
    if cond:
        print(f"PASS {name}", flush=True)
    else:
        print(f"FAIL {name}: {why}", flush=True)
        sys.exit(1)


def ok(name, result):
    typ, data = result
    check(name, typ == "OK", f"{typ} {data!r}")
    return data


def logout(m):
    typ, data = m.logout()
    check("logout", typ == "BYE" and data == [b"mshub logging out"], f"{typ} {data!r}")


def context():
    return ssl.create_default_context(cafile=ARGS.cafile)


def connect(login=True):
    if ARGS.mode == "ssl":
        m = imaplib.IMAP4_SSL("localhost", ARGS.port, ssl_context=context(), timeout=30)
    else:
        m = imaplib.IMAP4("localhost", ARGS.port, timeout=30)
        check("logindisabled-before-tls", "LOGINDISABLED" in m.capabilities, m.capabilities)
        ok("starttls", m.starttls(ssl_context=context()))
        check("auth-plain-after-tls", "AUTH=PLAIN" in m.capabilities, m.capabilities)
    if login:
        ok("login", m.login(ARGS.user, ARGS.password))
    return m


def flat(data):
    """The bytes of an imaplib FETCH answer, literals included."""
    out = b""
    for part in data:
        if isinstance(part, tuple):
            out += part[0] + part[1]
        elif part is not None:
            out += part
    return out


def mailbox():
    m = connect()
    data = ok("list", m.list())
    listing = b"\n".join(data)
    check("list-inbox", b'"INBOX"' in listing, listing)
    check("list-special-use", b'(\\HasNoChildren \\Sent) "/" "Sent"' in listing, listing)
    ok("create", m.create("Projets/IMAP"))
    listing = b"\n".join(ok("list-children", m.list()))
    check("has-children", b'(\\HasChildren) "/" "Projets"' in listing, listing)
    data = ok("append", m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), MESSAGE))
    check("appenduid", b"APPENDUID" in data[0], data)
    uid = data[0].split(b"APPENDUID ")[1].split(b" ")[1].rstrip(b"]")
    data = ok("select", m.select("INBOX"))
    n = data[0].decode()
    check("select-exists", int(n) >= 1, data)
    st = ok("status", m.status("Archive", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)"))
    check("status-items", b"HIGHESTMODSEQ" in st[0] and b"SIZE" in st[0], st)

    def fetch(item):
        return flat(ok(f"fetch {item}", m.uid("FETCH", uid, item)))

    r = fetch("(FLAGS)")
    check("fetch-flags", b"\\Flagged" in r and b"\\Seen" not in r, r)
    check("fetch-uid", f"UID {uid.decode()}".encode() in fetch("(UID)"), "")
    r = fetch("(INTERNALDATE)")
    check("fetch-internaldate", re.search(rb'INTERNALDATE "\d\d-\w\w\w-\d{4} \d\d:\d\d:\d\d \+0000"', r), r)
    r = fetch("(RFC822.SIZE)")
    check("fetch-size", f"RFC822.SIZE {len(MESSAGE)}".encode() in r, r)
    r = fetch("(ENVELOPE)")
    check("fetch-envelope", b'"Compte rendu IMAP-E2E"' in r and b'"<imap-e2e-1@hopital.mshub.test>"' in r, r)
    r = fetch("(BODYSTRUCTURE)")
    check("fetch-bodystructure", b'"mixed"' in r and b'("attachment" ("filename" "cr.pdf"))' in r, r)
    r = fetch("(BODY)")
    check("fetch-body", b'"mixed")' in r, r)
    r = fetch("(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    check("fetch-header-fields", b"Subject: Compte rendu IMAP-E2E\r\n\r\n" in r, r)
    r = fetch("(BODY.PEEK[1])")
    check("fetch-part", b"BODY-MARKER-42" in r and b"JVBER" not in r, r)
    r = fetch("(BODY.PEEK[2.MIME])")
    check("fetch-mime", b"Content-Type: application/pdf" in r, r)
    r = fetch("(BODY.PEEK[]<0.4>)")
    check("fetch-partial", b"BODY[]<0> {4}" in r and b"From" in r, r)
    r = fetch("(RFC822.HEADER)")
    check("fetch-rfc822-header", b"Message-ID: <imap-e2e-1@" in r and b"BODY-MARKER" not in r, r)
    r = fetch("(MODSEQ)")
    check("fetch-modseq", re.search(rb"MODSEQ \(\d+\)", r), r)
    r = fetch("(FLAGS)")
    check("peek-keeps-unseen", b"\\Seen" not in r, r)
    r = fetch("(BODY[TEXT])")
    check("fetch-text", b"BODY-MARKER-42" in r, r)
    r = fetch("(FLAGS)")
    check("body-sets-seen", b"\\Seen" in r, r)
    r = fetch("(RFC822)")
    check("fetch-rfc822", MESSAGE in r, r)

    data = ok("search", m.uid("SEARCH", None, "FLAGGED", "SUBJECT", "IMAP-E2E", "BODY", "marker-42"))
    check("search-finds", uid in data[0].split(), data)
    data = ok("search-not", m.uid("SEARCH", None, "NOT", "SEEN"))
    check("search-not-seen", uid not in data[0].split(), data)
    data = ok("search-or", m.uid("SEARCH", None, "OR", "LARGER", "100000", "FROM", "martin"))
    check("search-or-from", uid in data[0].split(), data)
    data = ok("search-since", m.uid("SEARCH", None, "SINCE", "1-Jan-2020", "SENTON", "2-Jun-2025"))
    check("search-dates", uid in data[0].split(), data)

    data = ok("store", m.uid("STORE", uid, "+FLAGS", "(\\Answered $Label1)"))
    check("store-reply", b"\\Answered" in flat(data) and b"$Label1" in flat(data), data)
    ok("copy", m.uid("COPY", uid, "Archive"))
    copyuid = m.untagged_responses.pop("COPYUID", None)
    check("copyuid", copyuid and re.match(rb"\d+ \d+ 1$", copyuid[0]), copyuid)
    typ, data = m.uid("MOVE", uid, "Projets/IMAP")
    check("move", typ == "OK", data)
    data = ok("select-archive", m.select("Archive"))
    ok("store-deleted", m.store("1:*", "+FLAGS.SILENT", "\\Deleted"))
    data = ok("expunge", m.expunge())
    check("expunge-reported", data and data[0] is not None and data[0] != b"", data)
    data = ok("select-projets", m.select("Projets/IMAP"))
    check("moved-message-there", data[0] == b"1", data)
    r = flat(ok("moved-flags", m.fetch("1", "(FLAGS)")))
    check("moved-keeps-flags", b"$Label1" in r, r)
    ok("close", m.close())
    typ, data = m.select("Nope")
    check("select-nonexistent", typ == "NO" and b"[NONEXISTENT]" in data[0], data)
    logout(m)


def idle():
    m = connect()
    ok("select", m.select("INBOX"))
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    check("idle-continuation", line.startswith(b"+"), line)
    ctx = context()
    start = time.time()
    smtp = smtplib.SMTP("localhost", ARGS.smtp_port, timeout=30)
    smtp.starttls(context=ctx)
    smtp.login(ARGS.user, ARGS.password)
    msg = MESSAGE.replace(b"imap-e2e-1@", b"imap-e2e-idle@")
    smtp.sendmail(ARGS.user, [ARGS.user], msg)
    smtp.quit()
    m.sock.settimeout(5)
    line = m.readline()
    check("idle-exists", line.startswith(b"* ") and line.rstrip().endswith(b"EXISTS"), line)
    print(f"INFO EXISTS read {time.time() - start:.2f}s after the SMTP connection", flush=True)
    m.sock.settimeout(30)
    m.send(b"DONE\r\n")
    line = m.readline()
    # An IMAP4rev1 session is told `* n RECENT` with the new size (RFC 3501 §7.3.2).
    while line.startswith(b"* ") and line.rstrip().endswith(b"RECENT"):
        line = m.readline()
    check("idle-done", line.startswith(tag + b" OK"), line)
    r = flat(ok("fetch-delivered", m.fetch("*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")))
    check("delivered-message", b"imap-e2e-idle@" in r, r)
    logout(m)


def two():
    a = connect()
    b = connect()
    ok("append", a.append("INBOX", None, None, MESSAGE))
    ok("append", a.append("INBOX", None, None, MESSAGE))
    n = int(ok("select-a", a.select("INBOX"))[0])
    check("select-b", int(ok("select-b", b.select("INBOX"))[0]) == n, "")
    ok("store-a", a.store(str(n), "+FLAGS.SILENT", "\\Flagged"))
    ok("noop-b", b.noop())
    fetches = b.untagged_responses.get("FETCH", [])
    check("b-sees-flags", any(b"\\Flagged" in f for f in fetches if isinstance(f, bytes)), b.untagged_responses)
    ok("store-b", b.store(str(n), "+FLAGS.SILENT", "\\Deleted"))
    ok("expunge-b", b.expunge())
    typ, data = a.noop()
    exp = a.untagged_responses.get("EXPUNGE", [])
    check("a-sees-expunge", str(n).encode() in exp, a.untagged_responses)
    logout(a)
    logout(b)


def garbage():
    m = connect()
    ok("select", m.select("INBOX"))

    def raw(name, line, expect):
        tag = m._new_tag()
        m.send(tag + b" " + line + b"\r\n")
        while True:
            reply = m.readline()
            if reply.startswith(tag + b" "):
                break
        check(name, reply.startswith(tag + b" " + expect), reply)

    raw("unknown-command", b"FROBNICATE now", b"BAD")
    raw("nested-parens", b"SEARCH " + b"(" * 1000 + b"ALL" + b")" * 1000, b"BAD")
    raw("invalid-utf8-mailbox", b'SELECT "\xff\xfeboite"', b"BAD")
    tag = m._new_tag()
    m.send(tag + b" APPEND INBOX {999999999}\r\n")
    reply = m.readline()
    check("oversized-literal", reply.startswith(tag + b" NO [TOOBIG]"), reply)
    m.send(b"\x00\x01\x02 \xff\r\n")
    reply = m.readline()
    check("binary-garbage", b"BAD" in reply, reply)
    ok("session-still-up", m.noop())
    logout(m)
    m2 = connect()
    ok("server-still-up", m2.noop())
    logout(m2)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=["ssl", "starttls"], required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--smtp-port", type=int)
    ARGS = p.parse_args()
    try:
        {"mailbox": mailbox, "idle": idle, "two": two, "garbage": garbage}[ARGS.scenario]()
    except (imaplib.IMAP4.error, OSError, socket.timeout, smtplib.SMTPException) as e:
        print(f"FAIL exception: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
