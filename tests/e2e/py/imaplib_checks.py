"""What the imaplib conformance scripts share (run by support::imaplib_checks): a signed-in
IMAP4_SSL session from `--port P --cafile F --user U --password W`, and the `PASS <check>` /
`FAIL <check>: <why>` lines the Rust side reads (a failure exits with status 1)."""

import argparse
import imaplib
import ssl
import sys


def check(name, cond, detail=""):
    if cond:
        print(f"PASS {name}", flush=True)
    else:
        print(f"FAIL {name}: {detail}", flush=True)
        sys.exit(1)


def ok(name, result):
    typ, data = result
    check(name, typ == "OK", f"{typ} {data!r}")
    return data


def signed_in():
    """The command line's account, logged in over implicit TLS with the hub's CA (check `login`)."""
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    args = p.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)
    m = imaplib.IMAP4_SSL("localhost", args.port, ssl_context=ctx, timeout=30)
    ok("login", m.login(args.user, args.password))
    return m
