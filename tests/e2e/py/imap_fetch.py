#!/usr/bin/env python3
"""FETCH of attached messages and BINARY checked with Python's imaplib over implicit TLS: a
message holding a message/rfc822 part (itself holding another, two levels deep), a base64 part
with NUL bytes and a quoted-printable part with soft line breaks and trailing white space.
`BODY.PEEK[1.1.MIME]` and `BODY.PEEK[1.2.TEXT]` go inside the attached message (RFC 9051
§6.4.5); `BINARY.PEEK[2]`, `BINARY.PEEK[3]` and `BINARY.SIZE[3]` give the decoded bytes
(RFC 3516 §4.2, RFC 2045 §6.7-8), a literal8 when they hold a NUL.

Usage: imap_fetch.py --port P --cafile F --user U --password W

Prints `PASS <check>` per check, or `FAIL <check>: <why>` and exits with status 1; `DONE` last.
"""

import base64
import time

from imaplib_checks import check, ok, signed_in

BINARY = bytes(range(256)) + b"\x00\r\n\x00"

QP_ENCODED = (
    b"R=C3=A9sultat normal   \r\n"
    b"ligne coup=\r\n"
    b"=c3=a9e au milieu=  \r\n"
    b"fin =3D ok\t\r\n"
    b"derni=C3=A8re"
)
QP_DECODED = "Résultat normal\r\nligne coupée au milieufin = ok\r\ndernière".encode()

PART_MIME = b"Content-Type: text/plain; charset=utf-8\r\nX-Part: middle-1\r\n\r\n"
INNER_TEXT = (
    b"--I\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n"
    b"--I\r\nContent-Type: text/html\r\n\r\n<p>inner</p>\r\n--I--"
)


def nested_message():
    inner = (
        b"From: D <d@hopital.mshub.test>\r\n"
        b"Subject: inner\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="I"\r\n'
        b"\r\n" + INNER_TEXT
    )
    middle = (
        b"From: C <c@hopital.mshub.test>\r\n"
        b"Subject: middle\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="M"\r\n'
        b"\r\n"
        b"--M\r\n" + PART_MIME + b"middle text\r\n"
        b"--M\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--M--"
    )
    encoded = base64.encodebytes(BINARY).replace(b"\n", b"\r\n")
    return (
        b"From: Labo <labo@hopital.mshub.test>\r\n"
        b"To: dr.martin@hopital.mshub.test\r\n"
        b"Subject: nested\r\n"
        b"Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="O"\r\n'
        b"\r\n"
        b"--O\r\nContent-Type: message/rfc822\r\n\r\n" + middle + b"\r\n"
        b"--O\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--O\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + QP_ENCODED + b"\r\n"
        b"--O--\r\n"
    )


def item(data, label):
    """The literal following `label` in a FETCH reply imaplib split into (head, literal)."""
    for d in data:
        if isinstance(d, tuple) and label.encode() + b" " in d[0]:
            return d[1]
    return None


def main():
    m = signed_in()
    typ, caps = m.capability()
    check("binary-advertised", b"BINARY" in caps[0].split(), caps)
    box = f"Fetch{int(time.time() * 1000)}"
    ok("create", m.create(box))
    ok("append", m.append(box, None, None, nested_message()))
    ok("select", m.select(box))

    data = ok(
        "fetch-nested",
        m.fetch("1", "(BODY.PEEK[1.1.MIME] BODY.PEEK[1.2.TEXT] BODY.PEEK[1.HEADER.FIELDS (SUBJECT)])"),
    )
    got = item(data, "BODY[1.1.MIME]")
    check("body-1.1.mime", got == PART_MIME, repr(got))
    got = item(data, "BODY[1.2.TEXT]")
    check("body-1.2.text", got == INNER_TEXT, repr(got))
    got = item(data, 'BODY[1.HEADER.FIELDS ("SUBJECT")]')
    check("body-1.header.fields", got == b"Subject: middle\r\n\r\n", repr(data))

    data = ok("fetch-binary", m.fetch("1", "(BINARY.PEEK[2] BINARY.PEEK[3] BINARY.SIZE[3])"))
    heads = b" ".join(d[0] if isinstance(d, tuple) else d for d in data)
    check("binary-2-literal8", b"BINARY[2] ~{" in heads, repr(heads))
    got = item(data, "BINARY[2]")
    check("binary-2-base64", got == BINARY, repr(got))
    got = item(data, "BINARY[3]")
    check("binary-3-quoted-printable", got == QP_DECODED, repr(got))
    check("binary-size-3", f"BINARY.SIZE[3] {len(QP_DECODED)}".encode() in heads, repr(heads))

    data = ok("fetch-partial", m.fetch("1", "(BINARY.PEEK[2]<250.8>)"))
    got = item(data, "BINARY[2]<250>")
    check("binary-partial", got == BINARY[250:258], repr(got))
    data = ok("fetch-flags", m.fetch("1", "(FLAGS)"))
    check("peek-leaves-unseen", b"\\Seen" not in data[0], repr(data))
    m.logout()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
