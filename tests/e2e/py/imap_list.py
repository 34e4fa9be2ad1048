#!/usr/bin/env python3
"""LIST-EXTENDED (RFC 5258) and LSUB (RFC 3501 §6.3.9) checked with Python's imaplib over
implicit TLS: unknown options are BAD (§3, §6), subscribed names without a mailbox are
\\NonExistent (§3, §3.1), RECURSIVEMATCH gives CHILDINFO (§3.5), RETURN (CHILDREN) (§4),
several patterns (§3), and LSUB `%` over an unsubscribed parent is \\Noselect.

Usage: imap_list.py --port P --cafile F --user U --password W

Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1; `DONE` last.
"""

import imaplib
import time

from imaplib_checks import check, ok, signed_in


def listing(m, kind, *args):
    """Sends `kind args...` as written and returns its untagged lines as text."""
    typ, data = m._simple_command(kind, *args)
    typ, data = m._untagged_response(typ, data, kind)
    lines = []
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            d = d[0] + d[1]
        lines.append(d.decode())
    return typ, lines


def named(lines, name):
    return [l for l in lines if l.endswith(f'"{name}"') or f'"{name}" (' in l]


def bad(m, name, *args):
    try:
        typ, data = m._simple_command("LIST", *args)
    except imaplib.IMAP4.error as e:
        check(name, "BAD" in str(e), str(e))
        return
    check(name, False, f"{typ} {data!r}")


def main():
    m = signed_in()
    box = f"Liste{int(time.time() * 1000)}"

    # RFC 5258 §3, §6: unknown selection or return options are BAD; the session goes on.
    bad(m, "unknown-selection-bad", "(FOO)", '""', '"*"')
    bad(m, "unknown-return-bad", '""', '"*"', "RETURN", "(FOO)")
    bad(m, "recursivematch-alone-bad", "(RECURSIVEMATCH)", '""', '"*"')
    ok("noop-after-bad", m.noop())

    # RFC 5258 §3.1: a subscribed name without a mailbox is \NonExistent and \Subscribed.
    gone = f"{box}Parti"
    ok("create-gone", m.create(gone))
    ok("subscribe-gone", m.subscribe(gone))
    ok("delete-gone", m.delete(gone))
    elsewhere = f"{box}Ailleurs"
    ok("subscribe-nonexistent", m.subscribe(elsewhere))
    typ, lines = listing(m, "LIST", "(SUBSCRIBED)", '""', f'"{box}*"')
    for n, name in [("deleted", gone), ("never-created", elsewhere)]:
        found = named(lines, name)
        check(
            f"nonexistent-subscribed-{n}",
            typ == "OK"
            and len(found) == 1
            and "\\NonExistent" in found[0]
            and "\\Subscribed" in found[0],
            lines,
        )

    # RFC 5258 §3.5: RECURSIVEMATCH returns the unsubscribed parent with CHILDINFO.
    parent = f"{box}Dossiers"
    ok("create-child", m.create(f"{parent}/Camille"))
    ok("unsubscribe-parent", m.unsubscribe(parent))
    typ, lines = listing(m, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', f'"{box}%"')
    found = named(lines, parent)
    check(
        "recursivematch-childinfo",
        typ == "OK"
        and len(found) == 1
        and found[0].endswith('("CHILDINFO" ("SUBSCRIBED"))')
        and "\\Subscribed" not in found[0],
        lines,
    )
    typ, lines = listing(m, "LIST", "(SUBSCRIBED)", '""', f'"{box}%"')
    check("subscribed-without-recursivematch", not named(lines, parent), lines)

    # RFC 5258 §4: RETURN (CHILDREN).
    typ, lines = listing(m, "LIST", '""', f'"{parent}*"', "RETURN", "(CHILDREN)")
    check(
        "return-children",
        any("\\HasChildren" in l for l in named(lines, parent))
        and any("\\HasNoChildren" in l for l in named(lines, f"{parent}/Camille")),
        lines,
    )

    # RFC 5258 §3: several patterns in one command.
    typ, lines = listing(m, "LIST", '""', f'("INBOX" "{parent}/*")')
    check(
        "several-patterns",
        typ == "OK"
        and len(lines) == 2
        and named(lines, "INBOX")
        and named(lines, f"{parent}/Camille"),
        lines,
    )

    # RFC 3501 §6.3.9: LSUB with `%` returns the unsubscribed parent, \Noselect.
    typ, lines = listing(m, "LSUB", '""', f'"{box}%"')
    found = named(lines, parent)
    check("lsub-percent-noselect", len(found) == 1 and "\\Noselect" in found[0], lines)
    check("lsub-percent-not-child", not named(lines, f"{parent}/Camille"), lines)

    ok("unsubscribe-gone", m.unsubscribe(gone))
    ok("unsubscribe-elsewhere", m.unsubscribe(elsewhere))
    m.logout()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
