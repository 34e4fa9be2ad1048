#!/usr/bin/env python3
"""SORT and UID SORT (RFC 5256 §3, RFC 5957 SORT=DISPLAY) checked with Python's imaplib over
implicit TLS: CAPABILITY, the order for several criteria, REVERSE, search keys, UIDs and
BADCHARSET.

Usage: imap_sort.py --port P --cafile F --user U --password W

Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1; `DONE` last.
"""

import time

from imaplib_checks import check, ok, signed_in


def message(sender, subject, date, body_len):
    return (
        f"From: {sender}\r\n"
        "To: dr.martin@hopital.mshub.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        "\r\n"
        + "x" * body_len
        + "\r\n"
    ).encode()


def numbers(data):
    return data[0].decode().split() if data and data[0] else []


def main():
    m = signed_in()
    check("capability-sort", "SORT" in m.capabilities, m.capabilities)
    check("capability-sort-display", "SORT=DISPLAY" in m.capabilities, m.capabilities)
    box = f"Sort{int(time.time() * 1000)}"
    ok("create", m.create(box))
    msgs = [
        ("Zoe <zoe@a.test>", "Re: banana", "Tue, 3 Jun 2025 00:30:00 +0000", 1000),
        ('"Anne" <carl@a.test>', "apple", "Sun, 1 Jun 2025 10:00:00 +0000", 100),
        ("bob@a.test", "[labo] Fwd: cherry", "Mon, 2 Jun 2025 10:00:00 +0000", 3000),
    ]
    ok("append-gone", m.append(box, None, None, message("x@a.test", "gone", "Mon, 2 Jun 2025 10:00:00 +0000", 1)))
    for n, (sender, subject, date, size) in enumerate(msgs):
        ok(f"append-{n}", m.append(box, None, None, message(sender, subject, date, size)))
    ok("select", m.select(box))
    ok("delete-1", m.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
    ok("expunge", m.expunge())

    for name, criteria, expected in [
        ("sort-subject", "(SUBJECT)", ["2", "1", "3"]),
        ("sort-date", "(DATE)", ["2", "3", "1"]),
        ("sort-reverse-size", "(REVERSE SIZE)", ["3", "1", "2"]),
        ("sort-from", "(FROM)", ["3", "2", "1"]),
        ("sort-displayfrom", "(DISPLAYFROM)", ["2", "3", "1"]),
    ]:
        got = numbers(ok(name, m.sort(criteria, "UTF-8", "ALL")))
        check(f"{name}-order", got == expected, got)
    got = numbers(ok("sort-search-keys", m.sort("(SUBJECT)", "UTF-8", "NOT", "SUBJECT", "apple")))
    check("sort-search-keys-order", got == ["1", "3"], got)
    got = numbers(ok("uid-sort", m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")))
    check("uid-sort-order", got == ["3", "2", "4"], got)
    typ, data = m._simple_command("SORT", "(DATE)", "ISO-8859-1", "ALL")
    check("badcharset", typ == "NO" and b"BADCHARSET" in b" ".join(data), f"{typ} {data!r}")
    ok("noop", m.noop())
    m.logout()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
