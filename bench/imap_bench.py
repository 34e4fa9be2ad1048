#!/usr/bin/env python3
"""IMAP benchmark driver (bench/imap-vs-dovecot.sh runs it). Loopback only, bounded load.

  imap_bench.py load  PORT CAFILE USER PASS N       APPEND N messages (a few KB each) to INBOX,
                                                    pipelined (LITERAL+), one session
  imap_bench.py run   PORT CAFILE USER PASS CLIENTS ROUNDS [SEED]
        CLIENTS processes, each running the workload ROUNDS times, one session per round:
        LOGIN, SELECT INBOX, FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]),
        100 x FETCH <random n> BODY.PEEK[], SEARCH SUBJECT "<lot>", 100 x STORE <random n>
        +FLAGS/-FLAGS (\\Flagged), LOGOUT. Prints workloads/s, commands/s, and p50/p99 latency
        per command kind.
  imap_bench.py idle  PORT CAFILE USER PASS N PID [HOLD [MAILBOX]]
        opens N connections (LOGIN, SELECT MAILBOX (default INBOX), IDLE), spread over source addresses
        127.0.0.1, 127.0.0.2, ... (PER_SOURCE each, the server's per-address limit), and prints
        the RSS of process PID at every 1,000 (every 50 up to 1,000) and at the end; holds
        them HOLD seconds. Stops opening more once PID's RSS passes RSS_CAP_MIB.

Every connection is implicit TLS to 127.0.0.1, the certificate verified against CAFILE for
the name localhost. The client is a minimal raw IMAP reader (lines and literals) so that the
client's own CPU stays small beside the servers'.
"""

import asyncio
import multiprocessing
import random
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"
PER_SOURCE = 450
# The idle driver stops opening connections once the server's RSS passes this (the machine is
# shared): see the login memory note in BENCHMARKS.md.
RSS_CAP_MIB = 3072


def context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


class Conn:
    def __init__(self, port, cafile):
        raw = socket.create_connection((HOST, port), timeout=300)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context(cafile).wrap_socket(raw, server_hostname="localhost")
        self.f = self.sock.makefile("rb", buffering=1 << 16)
        self.n = 0
        greeting = self.f.readline()
        assert greeting.startswith(b"* OK"), greeting

    def send(self, data):
        self.sock.sendall(data)

    def response(self, tag, lines=None):
        """Reads until the tagged response; returns (status line, untagged byte count).
        Untagged lines (without literals) go to `lines` when given."""
        size = 0
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("connection closed")
            if lines is not None:
                lines.append(line)
            size += len(line)
            while line.endswith(b"}\r\n"):
                n = int(line[line.rindex(b"{") + 1 : -3].rstrip(b"+"))
                size += len(self.f.read(n))
                line = self.f.readline()
                size += len(line)
            if line.startswith(tag + b" "):
                return line, size

    def command(self, text, lines=None):
        self.n += 1
        tag = b"b%d" % self.n
        self.send(tag + b" " + text.encode() + b"\r\n")
        line, size = self.response(tag, lines)
        status = line.split(b" ", 2)[1]
        if status != b"OK":
            raise RuntimeError(f"{text!r}: {line!r}")
        return line, size


def message(i):
    lot = i % 100
    body = "".join(
        f"Ligne {j:03d} du compte rendu {i}: hemoglobine, plaquettes, leucocytes, normal.\r\n"
        for j in range(40)
    )
    return (
        "From: Laboratoire <labo@hopital.mshub.test>\r\n"
        "To: dr.martin@hopital.mshub.test\r\n"
        f"Subject: Resultats lot-{lot:03d} dossier {i}\r\n"
        "Date: Mon, 2 Jun 2025 10:00:00 +0200\r\n"
        f"Message-ID: <bench-{i}@hopital.mshub.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n" + body
    ).encode()


def load(port, cafile, user, password, n):
    c = Conn(port, cafile)
    c.command(f'LOGIN "{user}" "{password}"')
    start = time.time()
    batch = 50
    for first in range(0, n, batch):
        tags = []
        out = b""
        for i in range(first, min(n, first + batch)):
            m = message(i)
            c.n += 1
            tag = b"b%d" % c.n
            tags.append(tag)
            out += tag + b" APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n"
        c.send(out)
        for tag in tags:
            line, _ = c.response(tag)
            assert line.split(b" ")[1] == b"OK", line
    line, _ = c.command("STATUS INBOX (MESSAGES)")
    c.command("LOGOUT")
    print(f"loaded {n} messages in {time.time() - start:.1f} s", flush=True)


def workload(args):
    port, cafile, user, password, rounds, seed = args
    rng = random.Random(seed)
    times = {}

    def timed(kind, text, lines=None):
        t = time.perf_counter()
        r = c.command(text, lines)
        times.setdefault(kind, []).append(time.perf_counter() - t)
        return r

    done = 0
    for r in range(rounds):
        t = time.perf_counter()
        c = Conn(port, cafile)
        times.setdefault("connect+tls", []).append(time.perf_counter() - t)
        timed("LOGIN", f'LOGIN "{user}" "{password}"')
        lines = []
        timed("SELECT", "SELECT INBOX", lines)
        n = next(int(l.split()[1]) for l in lines if l.rstrip().endswith(b" EXISTS"))
        _, size = timed(
            "FETCH headers 1:*",
            "FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])",
        )
        assert size > n * 60, size
        for _ in range(100):
            timed("FETCH body", f"FETCH {rng.randint(1, n)} BODY.PEEK[]")
        timed("SEARCH", f'SEARCH SUBJECT "lot-{rng.randint(0, 99):03d} "')
        op = "+FLAGS" if r % 2 == 0 else "-FLAGS"
        for _ in range(100):
            timed("STORE", f"STORE {rng.randint(1, n)} {op} (\\Flagged)")
        timed("LOGOUT", "LOGOUT")
        c.sock.close()
        done += 1
    return done, times


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def run(port, cafile, user, password, clients, rounds, seed=1):
    jobs = [(port, cafile, user, password, rounds, seed * 1000 + i) for i in range(clients)]
    start = time.time()
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(workload, jobs)
    elapsed = time.time() - start
    workloads = sum(d for d, _ in results)
    merged = {}
    for _, t in results:
        for k, v in t.items():
            merged.setdefault(k, []).extend(v)
    commands = sum(len(v) for k, v in merged.items() if k != "connect+tls")
    print(
        f"{clients} clients x {rounds} rounds: {elapsed:.1f} s, "
        f"{workloads / elapsed:.2f} workloads/s, {commands / elapsed:.0f} commands/s"
    )
    for kind in ["connect+tls", "LOGIN", "SELECT", "FETCH headers 1:*", "FETCH body",
                 "SEARCH", "STORE", "LOGOUT"]:
        v = merged.get(kind, [])
        if v:
            print(
                f"  {kind:<18} n={len(v):<6} p50={pct(v, 50) * 1000:9.1f} ms "
                f"p99={pct(v, 99) * 1000:9.1f} ms"
            )


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def idle(port, cafile, user, password, n, pid, hold, mailbox):
    ctx = context(cafile)
    sem = asyncio.Semaphore(24)
    conns = []
    opened = 0
    failures = 0

    async def one(i):
        nonlocal opened, failures
        source = f"127.0.0.{2 + i // PER_SOURCE}"
        async with sem:
            if rss_mib(pid) > RSS_CAP_MIB:
                failures += 1
                if failures == 1:
                    print(f"  RSS cap {RSS_CAP_MIB} MiB reached at {opened} connections: "
                          "not opening more", flush=True)
                return
            try:
                r, w = await asyncio.open_connection(
                    HOST, port, ssl=ctx, server_hostname="localhost",
                    local_addr=(source, 0),
                )
                await r.readline()
                for tag, cmd in ((b"a", f'LOGIN "{user}" "{password}"'),
                                 (b"b", f"SELECT {mailbox}")):
                    w.write(tag + b" " + cmd.encode() + b"\r\n")
                    while True:
                        line = await r.readline()
                        if not line:
                            raise EOFError
                        if line.startswith(tag + b" "):
                            assert line.startswith(tag + b" OK"), line
                            break
                w.write(b"c IDLE\r\n")
                while True:
                    line = await r.readline()
                    if not line:
                        raise EOFError
                    if line.startswith(b"+"):
                        break
                conns.append((r, w))
                opened += 1
                if opened % 1000 == 0 or (n <= 1000 and opened % 50 == 0):
                    print(f"  {opened} idle connections: mshub RSS {rss_mib(pid):.0f} MiB",
                          flush=True)
            except Exception as e:  # noqa: BLE001 - counted and reported
                failures += 1
                if failures <= 3:
                    print(f"  connection {i} failed: {e!r}", flush=True)

    start = time.time()
    await asyncio.gather(*(one(i) for i in range(n)))
    print(f"holding {opened} idle connections ({failures} failed) after "
          f"{time.time() - start:.0f} s: mshub RSS {rss_mib(pid):.0f} MiB", flush=True)
    await asyncio.sleep(hold)
    print(f"after {hold:.0f} s: mshub RSS {rss_mib(pid):.0f} MiB", flush=True)
    for _, w in conns:
        w.close()


def main():
    a = sys.argv[1:]
    action, port, cafile, user, password = a[0], int(a[1]), a[2], a[3], a[4]
    if action == "load":
        load(port, cafile, user, password, int(a[5]))
    elif action == "run":
        run(port, cafile, user, password, int(a[5]), int(a[6]), int(a[7]) if len(a) > 7 else 1)
    elif action == "idle":
        hold = float(a[7]) if len(a) > 7 else 5
        mailbox = a[8] if len(a) > 8 else "INBOX"
        asyncio.run(idle(port, cafile, user, password, int(a[5]), int(a[6]), hold, mailbox))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
