#!/usr/bin/env python3
"""Drives one raw SMTP dialogue, step by step, and prints every reply the server gives.

Usage: dialogue.py PORT MODE CAFILE < steps
  MODE is `plain` (the server greets in clear; STARTTLS is a step) or `tls` (implicit TLS).
  The server's certificate is verified against CAFILE for the name "localhost".

Steps, one per line on standard input:
  send TEXT            send TEXT + CRLF (UTF-8), then read one reply
  pipe TEXT            send TEXT + CRLF, read nothing (pipelining: `read N` later)
  raw HEX              send these bytes, read nothing
  fill BYTE COUNT      send COUNT times the byte given in hex, read nothing
  read [N]             read N replies (default 1)
  starttls             send STARTTLS, read the reply; on 220 start TLS
  auth-plain USER PASS AUTH PLAIN with an initial response, read the reply
  auth-login USER PASS AUTH LOGIN in three exchanges, reading each reply
  data HEX             send DATA and read the reply; on 354 send the message (HEX, already
                       dot-stuffed and ending with CRLF), then ".\\r\\n", and read the reply
  readuntil PREFIX MAX read replies until one starts with PREFIX (at most MAX, stopping at
                       EOF or TIMEOUT)
  close                close the connection
  sleep SECONDS
  timeout SECONDS      how long a read waits for the server (default 30)

Output: one line per reply read: the step (`greeting`, `send TEXT`, `read`, `starttls`,
`auth-plain`, `auth-login[ user| password]`, `data` for the 354, `data.` for the end of the
message), a tab, then the reply's lines joined with " | " — or `EOF` when the server closed the
connection instead, `TIMEOUT` when it said nothing for 30 s.
"""

import base64
import socket
import ssl
import sys
import time


class Conn:
    def __init__(self, port, mode, cafile):
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if mode == "tls":
            self.sock = self.ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.closed = False

    def send(self, data):
        if self.closed:
            return
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def line(self):
        while b"\r\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return b""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        lines = []
        while True:
            line = self.line()
            if line is None:
                return "TIMEOUT"
            if line == b"" and self.closed:
                return "EOF" if not lines else " | ".join(lines) + " | EOF"
            text = line.decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return " | ".join(lines)

    def starttls(self):
        self.buf = b""
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname="localhost")


def out(step, text):
    print(f"{step[:80]}\t{text}", flush=True)


def main():
    port, mode, cafile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    conn = Conn(port, mode, cafile)
    out("greeting", conn.reply())
    for raw_step in sys.stdin.read().split("\n"):
        if not raw_step.strip():
            continue
        verb, _, arg = raw_step.partition(" ")
        if verb == "send":
            conn.send(arg.encode("utf-8") + b"\r\n")
            out(raw_step, conn.reply())
        elif verb == "pipe":
            conn.send(arg.encode("utf-8") + b"\r\n")
        elif verb == "raw":
            conn.send(bytes.fromhex(arg))
        elif verb == "fill":
            byte, count = arg.split()
            conn.send(bytes.fromhex(byte) * int(count))
        elif verb == "read":
            for _ in range(int(arg or "1")):
                out("read", conn.reply())
        elif verb == "starttls":
            conn.send(b"STARTTLS\r\n")
            reply = conn.reply()
            out("starttls", reply)
            if reply.startswith("220"):
                conn.starttls()
        elif verb == "auth-plain":
            user, password = arg.split(" ", 1)
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            conn.send(f"AUTH PLAIN {token}\r\n".encode())
            out("auth-plain", conn.reply())
        elif verb == "auth-login":
            user, password = arg.split(" ", 1)
            conn.send(b"AUTH LOGIN\r\n")
            out("auth-login", conn.reply())
            conn.send(base64.b64encode(user.encode()) + b"\r\n")
            out("auth-login user", conn.reply())
            conn.send(base64.b64encode(password.encode()) + b"\r\n")
            out("auth-login password", conn.reply())
        elif verb == "data":
            conn.send(b"DATA\r\n")
            reply = conn.reply()
            out("data", reply)
            if reply.startswith("354"):
                conn.send(bytes.fromhex(arg) + b".\r\n")
                out("data.", conn.reply())
        elif verb == "close":
            conn.sock.close()
            conn.closed = True
        elif verb == "sleep":
            time.sleep(float(arg))
        elif verb == "timeout":
            conn.sock.settimeout(float(arg))
        elif verb == "readuntil":
            prefix, limit = arg.split(" ")
            for _ in range(int(limit)):
                reply = conn.reply()
                out("readuntil", reply)
                if reply.startswith(prefix) or reply in ("EOF", "TIMEOUT"):
                    break
        else:
            sys.exit(f"unknown step {verb!r}")
    if not conn.closed:
        conn.sock.close()


if __name__ == "__main__":
    main()
