#!/usr/bin/env python3
"""IMAP conformance points checked with Python's imaplib over implicit TLS: COPYUID sets
(RFC 4315 §3), a tagged NO for a name that is not modified UTF-7 (RFC 3501 §5.1.3) with the
session still usable, and ENVELOPE group syntax (RFC 3501 §7.4.2).

Usage: imap_misc.py --port P --cafile F --user U --password W

Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1; `DONE` last.
"""

import re
import time

from imaplib_checks import check, ok, signed_in


def message(n, to="dr.martin@hopital.mshub.test"):
    return (
        "From: Labo <labo@hopital.mshub.test>\r\n"
        f"To: {to}\r\n"
        f"Subject: misc {n}\r\n"
        "Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
        "\r\n"
        "Corps.\r\n"
    ).encode()


def main():
    m = signed_in()
    box = f"Misc{int(time.time() * 1000)}"
    ok("create", m.create(box))
    dest = f"{box}/Dest"
    ok("create-dest", m.create(dest))
    for n in range(5):
        ok(f"append-{n}", m.append(box, None, None, message(n)))
    ok("select", m.select(box))
    ok("delete-uid-2", m.uid("STORE", "2", "+FLAGS.SILENT", "(\\Deleted)"))
    ok("expunge", m.expunge())

    # RFC 4315 §3: the whole source set (UIDs 1, 3, 4, 5) and the destination set.
    ok("uid-copy", m.uid("COPY", "1:5", dest))
    # imaplib files the tagged reply's response code under its name.
    _, codes = m.response("COPYUID")
    text = " ".join(c.decode() for c in codes if isinstance(c, bytes))
    text = f"[COPYUID {text}]"
    found = re.search(r"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]", text)
    check("copyuid-present", found is not None, text)
    check("copyuid-source-set", found.group(2) == "1,3:5", text)
    check("copyuid-destination-set", found.group(3) == "1:4", text)

    # RFC 3501 §5.1.3: not modified UTF-7 is NO (not BAD), and the session goes on.
    for n, name in enumerate(["&Jjo", '"&AGE-"', '"x&-&ZZZ-"']):
        typ, data = m.create(name)
        check(f"invalid-name-no-{n}", typ == "NO", f"{typ} {data!r}")
    typ, data = m.select('"&Jjo"')
    check("invalid-name-select-no", typ == "NO", f"{typ} {data!r}")
    ok("noop-after-invalid-names", m.noop())
    ok("reselect", m.select(box))

    # RFC 3501 §7.4.2: group syntax in ENVELOPE.
    ok("append-group", m.append(box, None, None, message(9, "Team: a@x.test, Bob <b@y.test>;")))
    ok("append-undisclosed", m.append(box, None, None, message(10, "undisclosed-recipients:;")))
    ok("noop", m.noop())
    data = ok("fetch-envelope", m.fetch("5:6", "(ENVELOPE)"))
    env = b" ".join(d if isinstance(d, bytes) else d[0] + d[1] for d in data if d)
    check(
        "envelope-group",
        b'((NIL NIL "Team" NIL)(NIL NIL "a" "x.test")("Bob" NIL "b" "y.test")(NIL NIL NIL NIL))' in env,
        env,
    )
    check(
        "envelope-empty-group",
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))' in env,
        env,
    )
    m.logout()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
