#!/usr/bin/env python3
"""MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) checked with Python's imaplib over implicit
TLS: capabilities, several messages in one APPEND with one APPENDUID set (RFC 4315 §3), all or
nothing, a message made of TEXT and URL parts (RFC 5092), BADURL with the URL.

The extended APPENDs are sent with imaplib's own command machinery: the first literals as
non-synchronising ones (RFC 7888, LITERAL+) inside the arguments, the last one as imaplib's
synchronising literal.

Usage: imap_append.py --port P --cafile F --user U --password W

Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1; `DONE` last.
"""

import re
import time

from imaplib_checks import check, ok, signed_in


def message(n):
    return (
        "From: Labo <labo@hopital.mshub.test>\r\n"
        "To: dr.martin@hopital.mshub.test\r\n"
        f"Subject: lot {n}\r\n"
        "Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
        "\r\n"
        f"Resultat {n}.\r\n"
    ).encode()


def lit(data):
    """A non-synchronising literal (RFC 7888) inside the arguments."""
    return b"{%d+}\r\n" % len(data) + data


def append(m, box, args, last=None):
    """`APPEND box args [last as a synchronising literal]`: (typ, APPENDUID text or reply)."""
    m.literal = last
    typ, data = m._simple_command("APPEND", box, args)
    _, codes = m.response("APPENDUID")
    uid = " ".join(c.decode() for c in codes if isinstance(c, bytes))
    return typ, uid, b" ".join(d for d in data if isinstance(d, bytes)).decode()


def main():
    m = signed_in()
    typ, caps = m.capability()
    caps = caps[0].decode().split()
    check("capability-multiappend", "MULTIAPPEND" in caps, caps)
    check("capability-catenate", "CATENATE" in caps, caps)
    box = f"Lots{int(time.time() * 1000)}"
    ok("create", m.create(box))

    # RFC 3502 §6.3.11 and RFC 4315 §3: three messages, one APPENDUID with the UID set.
    extra = b"(\\Seen) " + lit(message(1)) + b' ($Lot) "02-Jun-2025 10:00:00 +0200" ' + lit(
        message(2)
    )
    typ, uids, text = append(m, box, extra, message(3))
    check("multiappend-ok", typ == "OK", f"{typ} {text}")
    found = re.fullmatch(r"(\d+) (\S+)", uids)
    check("multiappend-appenduid-set", found is not None and found.group(2) == "1:3", uids)
    validity = found.group(1)

    # RFC 3502 §6.3.11: the second message fails (empty), so neither is stored.
    typ, _, text = append(m, box, lit(message(4)) + b" ()", b"")
    check("multiappend-all-or-nothing-no", typ == "NO", f"{typ} {text}")
    typ, data = m.status(box, "(MESSAGES UIDNEXT)")
    check("multiappend-all-or-nothing-none-kept", b"MESSAGES 3 UIDNEXT 4" in data[0], data)

    ok("select", m.select(box))
    typ, data = m.uid("FETCH", "1:3", "(FLAGS)")
    flags = b" ".join(d for d in data if isinstance(d, bytes)).decode()
    check("multiappend-flags", "\\Seen" in flags and "$Lot" in flags, flags)

    # RFC 4469 §3 with RFC 5092: a new message from a TEXT header and the body of UID 2.
    header = b"From: dr.martin@hopital.mshub.test\r\nSubject: Fwd: lot 2\r\n\r\n"
    url = f"/{box};UIDVALIDITY={validity}/;UID=2/;SECTION=TEXT".encode()
    typ, uids, text = append(
        m, box, b"(\\Draft) CATENATE (TEXT " + lit(header) + b' URL "' + url + b'")'
    )
    check("catenate-ok", typ == "OK" and uids == f"{validity} 4", f"{typ} {uids} {text}")
    typ, data = m.uid("FETCH", "4", "(BODY.PEEK[])")
    body = data[0][1] if isinstance(data[0], tuple) else b""
    check("catenate-content", body == header + b"Resultat 2.\r\n", repr(body))

    # RFC 4469 §6: BADURL carries the URL.
    bad = f"/{box}/;UID=99"
    typ, _, text = append(m, box, b'CATENATE (URL "' + bad.encode() + b'")')
    check("catenate-badurl", typ == "NO" and text.startswith(f"[BADURL {bad}]"), f"{typ} {text}")

    # RFC 4469 §5: a CATENATE message within a MULTIAPPEND.
    typ, uids, text = append(
        m,
        box,
        lit(message(5)) + b' CATENATE (URL "' + url + b'")',
    )
    check("multiappend-with-catenate", typ == "OK" and uids == f"{validity} 5:6", f"{typ} {uids}")
    typ, data = m.noop()
    _, exists = m.response("EXISTS")
    check("exists-after-append", b"6" in [e for e in exists if e], exists)
    m.logout()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
