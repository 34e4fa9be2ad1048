#!/usr/bin/env python3
"""THREAD (RFC 5256 §4-5), ESORT (RFC 5267 §3) and PARTIAL (RFC 9394) checked with Python's
imaplib over implicit TLS: CAPABILITY, THREAD REFERENCES (a missing parent, a reference loop,
"Re:" replies) and ORDEREDSUBJECT, UID THREAD, SORT RETURN answered by ESEARCH in sort order,
SEARCH and SORT RETURN (PARTIAL).

Usage: imap_thread.py --port P --cafile F --user U --password W

Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1; `DONE` last.
"""

import re
import time

from imaplib_checks import check, ok, signed_in


def message(msgid, refs, subject, day, body_len):
    headers = (
        "From: a@x.test\r\n"
        "To: dr.martin@hopital.mshub.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {day} Jun 2025 10:00:00 +0000\r\n"
        f"Message-ID: {msgid}\r\n"
    )
    if refs:
        headers += refs + "\r\n"
    return (headers + "\r\n" + "x" * body_len + "\r\n").encode()


def esearch(m, name, *args):
    """The ESEARCH data of a command sent as is, without its (TAG "...") correlator."""
    typ, dat = m._simple_command(*args)
    check(name, typ == "OK", f"{typ} {dat!r}")
    typ, data = m._untagged_response(typ, dat, "ESEARCH")
    check(f"{name}-one-esearch", data and data[0] is not None and len(data) == 1, data)
    return re.sub(rb'^\(TAG "[^"]*"\) ?', b"", data[0]).decode()


def main():
    m = signed_in()
    caps = m.capabilities
    check("capability-thread", "THREAD=REFERENCES" in caps and "THREAD=ORDEREDSUBJECT" in caps, caps)
    check("capability-esort-partial", "ESORT" in caps and "PARTIAL" in caps, caps)
    check("capability-context", "CONTEXT=SEARCH" in caps and "CONTEXT=SORT" in caps, caps)
    box = f"Thread{int(time.time() * 1000)}"
    ok("create", m.create(box))
    msgs = [
        ("<a@x.test>", "", "Resultats", 1, 3000),
        ("<b@x.test>", "In-Reply-To: <a@x.test>", "Re: Resultats", 2, 1000),
        ("<c@x.test>", "References: <a@x.test> <b@x.test>", "Re: Resultats", 3, 5000),
        ("<d@x.test>", "References: <missing@x.test>", "Re: RDV", 4, 2000),
        ("<e@x.test>", "References: <missing@x.test>", "Re: RDV", 5, 4000),
        ("<f@x.test>", "References: <g@x.test>", "boucle", 6, 6000),
        ("<g@x.test>", "References: <f@x.test>", "Re: boucle", 7, 500),
    ]
    ok("append-gone", m.append(box, None, None, message("<z@x.test>", "", "gone", 1, 1)))
    for n, msg in enumerate(msgs):
        ok(f"append-{n}", m.append(box, None, None, message(*msg)))
    ok("select", m.select(box))
    ok("delete-1", m.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
    ok("expunge", m.expunge())

    data = ok("thread-references", m.thread("REFERENCES", "UTF-8", "ALL"))
    check("thread-references-tree", data == [b"(1 2 3)((4)(5))(7 6)"], data)
    data = ok("thread-orderedsubject", m.thread("ORDEREDSUBJECT", "UTF-8", "ALL"))
    check("thread-orderedsubject-tree", data == [b"(1 (2)(3))(4 5)(6 7)"], data)
    data = ok("uid-thread", m.uid("THREAD", "REFERENCES", "UTF-8", "ALL"))
    check("uid-thread-tree", data == [b"(2 3 4)((5)(6))(8 7)"], data)
    data = ok("thread-search-keys", m.thread("REFERENCES", "US-ASCII", "SUBJECT", "RDV"))
    check("thread-search-keys-tree", data == [b"((4)(5))"], data)
    typ, data = m._simple_command("THREAD", "ORDEREDSUBJECT", "ISO-8859-1", "ALL")
    check("thread-badcharset", typ == "NO" and b"BADCHARSET" in b" ".join(data), f"{typ} {data!r}")

    got = esearch(m, "esort", "SORT", "RETURN", "(MIN MAX COUNT ALL)", "(SIZE)", "UTF-8", "ALL")
    check("esort-in-sort-order", got == "MIN 7 MAX 6 ALL 7,2,4,1,5,3,6 COUNT 7", got)
    got = esearch(m, "esort-partial", "SORT", "RETURN", "(PARTIAL 1:3)", "(SIZE)", "UTF-8", "ALL")
    check("esort-partial-page", got == "PARTIAL (1:3 7,2,4)", got)
    got = esearch(m, "search-partial", "UID", "SEARCH", "RETURN", "(PARTIAL -1:-2)", "ALL")
    check("search-partial-last-page", got == "UID PARTIAL (-1:-2 7:8)", got)
    # RFC 5267 §4.3: UPDATE is accepted (CONTEXT=SEARCH).
    typ, data = m._simple_command("SEARCH", "RETURN", "(COUNT UPDATE)", "ALL")
    check("search-update", typ == "OK", f"{typ} {data!r}")
    ok("noop", m.noop())
    m.logout()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
