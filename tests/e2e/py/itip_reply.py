#!/usr/bin/env python3
"""Reads iCalendar as an independent calendar client would, with the `icalendar` package.

Usage:
  itip_reply.py reply --port P --cafile F --user U --password W [--wait S]
      Logs in over IMAPS (imaplib, certificate verified for the name localhost), looks in the
      INBOX for a message with a `text/calendar; method=REPLY` part (RFC 6047), waiting up to
      S seconds for it, and parses that part.
  itip_reply.py feed FILE
      Parses a calendar feed (RFC 5545) saved in FILE.

Prints one JSON object on standard output:
  reply: {"subject", "from", "in_reply_to", "content_type_method", "calendar": CAL}
  feed:  CAL
where CAL is {"method", "events": [{"uid", "summary", "location", "status", "sequence",
"dtstart_utc", "organizer", "attendees": [{"address", "partstat"}]}]}; dtstart_utc is
`YYYY-MM-DDTHH:MMZ`, the instant as icalendar computes it from TZID (zoneinfo).

Exits with status 3 and says so on standard error when `icalendar` is missing
(`scripts/install-deps --tests` installs it), 1 when no REPLY came.
"""

import argparse
import datetime
import email
import email.policy
import imaplib
import json
import ssl
import sys
import time

try:
    import icalendar
except ImportError:
    print("python3 has no `icalendar` package: run `scripts/install-deps --tests`", file=sys.stderr)
    sys.exit(3)


def address(value):
    v = str(value)
    return v[len("mailto:"):].lower() if v.lower().startswith("mailto:") else v.lower()


def utc(prop):
    if prop is None:
        return None
    dt = prop.dt
    if not isinstance(dt, datetime.datetime):
        return dt.isoformat()
    if dt.tzinfo is None:
        return "floating " + dt.isoformat()
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def describe(data):
    cal = icalendar.Calendar.from_ical(data)
    events = []
    for ev in cal.walk("VEVENT"):
        attendees = ev.get("ATTENDEE", [])
        if not isinstance(attendees, list):
            attendees = [attendees]
        events.append(
            {
                "uid": str(ev.get("UID")),
                "summary": str(ev.get("SUMMARY", "")),
                "location": str(ev.get("LOCATION", "")),
                "status": str(ev.get("STATUS", "")),
                "sequence": int(ev.get("SEQUENCE", 0)),
                "dtstart_utc": utc(ev.get("DTSTART")),
                "organizer": address(ev.get("ORGANIZER", "")),
                "attendees": [
                    {"address": address(a), "partstat": str(a.params.get("PARTSTAT", ""))}
                    for a in attendees
                ],
            }
        )
    return {"method": str(cal.get("METHOD", "")), "events": events}


def find_reply(imap):
    imap.select("INBOX", readonly=True)
    typ, data = imap.uid("SEARCH", None, "ALL")
    for uid in reversed(data[0].split()):
        typ, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = next(p[1] for p in parts if isinstance(p, tuple))
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for part in msg.walk():
            if part.get_content_type() != "text/calendar":
                continue
            method = part.get_param("method") or ""
            if method.upper() != "REPLY":
                continue
            return {
                "subject": str(msg["Subject"]),
                "from": str(msg["From"]),
                "in_reply_to": str(msg["In-Reply-To"] or ""),
                "content_type_method": method,
                "calendar": describe(part.get_payload(decode=True)),
            }
    return None


def reply(args):
    ctx = ssl.create_default_context(cafile=args.cafile)
    imap = imaplib.IMAP4_SSL("localhost", args.port, ssl_context=ctx, timeout=30)
    imap.login(args.user, args.password)
    deadline = time.monotonic() + args.wait
    while True:
        found = find_reply(imap)
        if found is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    imap.logout()
    if found is None:
        print(f"no message with a text/calendar; method=REPLY part in {args.user}'s INBOX",
              file=sys.stderr)
        sys.exit(1)
    print(json.dumps(found))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reply")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--cafile", required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--password", required=True)
    r.add_argument("--wait", type=float, default=20)
    f = sub.add_parser("feed")
    f.add_argument("file")
    args = p.parse_args()
    if args.command == "reply":
        reply(args)
    else:
        with open(args.file, "rb") as fh:
            print(json.dumps(describe(fh.read())))


if __name__ == "__main__":
    main()
