#!/usr/bin/env python3
"""Sends one message with Python's smtplib, as a real mail client would.

Usage: send.py --port P --mode ssl|starttls --cafile F --user U --password W
               --sender S --to R [--to R ...] (--message FILE | --build-pdf FILE)
               [--login] [--smtputf8]

--message FILE     send the bytes of FILE as they are
--build-pdf FILE   build a message with a PDF attachment using the email package, write its
                   exact bytes to FILE, and send them
--login            authenticate with AUTH LOGIN (three exchanges) instead of smtplib's choice
--smtputf8         MAIL FROM ... SMTPUTF8 (RFC 6531)

Prints `SENT` (flushed) as soon as the server has accepted the message, before QUIT, then
`DONE` (or `DISCONNECTED` if the server is gone by then). On a refusal prints `REFUSED <code> <text>` and exits with status 2.
"""

import argparse
import email.policy
import email.utils
import smtplib
import ssl
import sys
from email.message import EmailMessage


def build_pdf_message(sender, to):
    msg = EmailMessage()
    msg["From"] = f"Dr Jean Martin <{sender}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = "Compte rendu de consultation"
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain="hopital.mshub.test")
    msg.set_content("Bonjour,\n\nVeuillez trouver le compte rendu ci-joint.\n\nPDF-MARKER-7f3a\n")
    # A small but real PDF, with binary bytes as PDF files have after the header.
    pdf = (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n"
        + bytes(range(256)) * 8
        + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="compte-rendu.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=["ssl", "starttls"], required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--sender", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--message")
    p.add_argument("--build-pdf")
    p.add_argument("--login", action="store_true")
    p.add_argument("--smtputf8", action="store_true")
    args = p.parse_args()

    if args.build_pdf:
        message = build_pdf_message(args.sender, args.to)
        with open(args.build_pdf, "wb") as f:
            f.write(message)
    else:
        with open(args.message, "rb") as f:
            message = f.read()

    ctx = ssl.create_default_context(cafile=args.cafile)
    if args.mode == "ssl":
        smtp = smtplib.SMTP_SSL("localhost", args.port, context=ctx, timeout=30)
    else:
        smtp = smtplib.SMTP("localhost", args.port, timeout=30)
        smtp.starttls(context=ctx)
    smtp.ehlo("client.test")
    try:
        if args.login:
            smtp.user, smtp.password = args.user, args.password
            smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
        else:
            smtp.login(args.user, args.password)
        options = ["SMTPUTF8"] if args.smtputf8 else []
        smtp.sendmail(args.sender, args.to, message, mail_options=options)
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        print(f"REFUSED {code} {text.decode('utf-8', 'replace')}", flush=True)
        sys.exit(2)
    except smtplib.SMTPResponseException as e:
        print(f"REFUSED {e.smtp_code} {e.smtp_error.decode('utf-8', 'replace')}", flush=True)
        sys.exit(2)
    print("SENT", flush=True)
    try:
        smtp.quit()
    except (smtplib.SMTPServerDisconnected, OSError):
        print("DISCONNECTED", flush=True)  # e.g. the server was killed right after its 250
        return
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
