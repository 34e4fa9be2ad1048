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
  imap_bench.py profile KIND PORT CAFILE USER PASS CLIENTS SECONDS PID [LABEL [RANDOM]]
        CLIENTS processes for SECONDS seconds, client i from source address 127.0.0.(2+i),
        each drawing random read commands: FETCH <random n> (FLAGS
        BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]), SEARCH UNSEEN, NOOP,
        STATUS INBOX (MESSAGES UNSEEN).
        KIND reconnect: each loop connects (TLS), LOGIN, SELECT INBOX, RANDOM (default 5)
        random commands, LOGOUT; every command counts. KIND stay: one session per client,
        logged in and selected before the clock starts (the logins staggered by 50 ms),
        random commands until the end, LOGOUT after the clock stops; only the random
        commands count. Protocol errors: any tagged NO/BAD, a missing untagged answer
        (FETCH, SEARCH, STATUS, EXISTS), a closed connection or a timeout (the session is
        dropped and, for reconnect, a new one started). Server CPU: user+sys of PID and of
        every live descendant, plus what they reaped (cutime+cstime), from /proc, at the
        start and at the end of the clock (for Dovecot, PID is the master: login, imap and
        auth processes, reaped or not, are all counted). Prints a RESULT line.

Every connection is implicit TLS to 127.0.0.1, the certificate verified against CAFILE for
the name localhost. The client is a minimal raw IMAP reader (lines and literals) so that the
client's own CPU stays small beside the servers'.
"""

import asyncio
import multiprocessing
import os
import random
import re
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
    def __init__(self, port, cafile, source=None, timeout=300):
        raw = socket.create_connection(
            (HOST, port), timeout=timeout, source_address=(source, 0) if source else None
        )
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

# ---- profiles: reconnecting and staying clients, server CPU per command ---------------------

TICK = os.sysconf("SC_CLK_TCK")


class ProtocolError(Exception):
    pass


def tree_cpu_seconds(root):
    """User+sys seconds of `root` and its live descendants, plus what they reaped."""
    children = {}
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        rest = text[text.rindex(")") + 2 :].split()
        pid = int(entry)
        stats[pid] = sum(int(x) for x in rest[11:15])  # utime stime cutime cstime
        children.setdefault(int(rest[1]), []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / TICK


def random_command(c, rng, n, kind_counts):
    """One random read command; raises ProtocolError on NO/BAD or a missing answer."""
    k = rng.randrange(4)
    lines = []
    if k == 0:
        m = rng.randint(1, n)
        text = f"FETCH {m} (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"
        want = b"* %d FETCH " % m
        kind = "FETCH flags+headers"
    elif k == 1:
        text, want, kind = "SEARCH UNSEEN", b"* SEARCH", "SEARCH UNSEEN"
    elif k == 2:
        text, want, kind = "NOOP", None, "NOOP"
    else:
        text, want, kind = "STATUS INBOX (MESSAGES UNSEEN)", b"* STATUS ", "STATUS"
    t = time.perf_counter()
    checked(c, text, lines)
    kind_counts.setdefault(kind, []).append(time.perf_counter() - t)
    if want is not None and not any(l.startswith(want) for l in lines):
        raise ProtocolError(f"{text!r}: no {want!r} in the answer")


def checked(c, text, lines=None):
    try:
        return c.command(text, lines)
    except RuntimeError as e:  # tagged NO or BAD
        raise ProtocolError(str(e)) from None


def select_count(c, times):
    lines = []
    t = time.perf_counter()
    checked(c, "SELECT INBOX", lines)
    times.setdefault("SELECT", []).append(time.perf_counter() - t)
    for l in lines:
        if l.rstrip().endswith(b" EXISTS"):
            n = int(l.split()[1])
            if n > 0:
                return n
    raise ProtocolError(f"SELECT INBOX: no EXISTS > 0 in {lines!r}")


def profile_worker(kind, i, port, cafile, user, password, t0, deadline, random_n, seed,
                   results, release):
    rng = random.Random(seed)
    source = f"127.0.0.{2 + i}"
    times = {}
    ok = 0
    errors = []
    sessions = 0

    def error(e):
        errors.append(f"{type(e).__name__}: {e}"[:200])

    def timed(label, text):
        t = time.perf_counter()
        checked(c, text)
        times.setdefault(label, []).append(time.perf_counter() - t)

    c = None
    if kind == "stay":
        time.sleep(i * 0.05)  # staggered logins: setup is not measured
        for _attempt in range(20):
            try:
                c = Conn(port, cafile, source, timeout=30)
                checked(c, f'LOGIN "{user}" "{password}"')
                n = select_count(c, {})
                break
            except Exception as e:  # noqa: BLE001 - setup failure, retried
                error(e)
                c = None
                time.sleep(1)
        setup_errors = len(errors)
        errors.clear()
        time.sleep(max(0.0, t0 - time.time()))
        while c is not None and time.time() < deadline:
            try:
                random_command(c, rng, n, times)
                ok += 1
            except ProtocolError as e:
                error(e)
            except Exception as e:  # noqa: BLE001 - the session is lost: counted, stop
                error(e)
                break
        sessions = 1 if c is not None else 0
        results.put((i, ok, errors, times, sessions, setup_errors, time.time()))
        release.wait()
        if c is not None:
            try:
                c.command("LOGOUT")
                c.sock.close()
            except Exception:  # noqa: BLE001 - after the clock
                pass
        return

    time.sleep(max(0.0, t0 - time.time()))
    while time.time() < deadline:
        try:
            t = time.perf_counter()
            c = Conn(port, cafile, source, timeout=30)
            times.setdefault("connect+tls", []).append(time.perf_counter() - t)
            timed("LOGIN", f'LOGIN "{user}" "{password}"')
            ok += 1
            n = select_count(c, times)
            ok += 1
            for _ in range(random_n):
                random_command(c, rng, n, times)
                ok += 1
            timed("LOGOUT", "LOGOUT")
            ok += 1
            sessions += 1
        except Exception as e:  # noqa: BLE001 - every failure is a counted protocol error
            error(e)
            time.sleep(0.1)  # no hot loop against a server that refuses
        finally:
            if c is not None:
                try:
                    c.sock.close()
                except OSError:
                    pass
                c = None
    results.put((i, ok, errors, times, sessions, 0, time.time()))
    release.wait()


def profile(kind, port, cafile, user, password, clients, seconds, pid, label, random_n):
    assert kind in ("reconnect", "stay"), kind
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    release = ctx.Event()
    t0 = time.time() + 1.0 + (clients * 0.05 + 2.0 if kind == "stay" else 0.0)
    deadline = t0 + seconds
    procs = [
        ctx.Process(
            target=profile_worker,
            args=(kind, i, port, cafile, user, password, t0, deadline, random_n, 1000 + i,
                  results, release),
        )
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    time.sleep(max(0.0, t0 - time.time()))
    cpu0 = tree_cpu_seconds(pid)
    got = [results.get(timeout=seconds + clients * 0.05 + 120) for _ in procs]
    cpu1 = tree_cpu_seconds(pid)
    end = max(r[6] for r in got)
    release.set()
    for p in procs:
        p.join()
    elapsed = end - t0
    ok = sum(r[1] for r in got)
    errors = [e for r in got for e in r[2]]
    sessions = sum(r[4] for r in got)
    setup_errors = sum(r[5] for r in got)
    merged = {}
    for r in got:
        for k, v in r[3].items():
            merged.setdefault(k, []).extend(v)
    cpu = cpu1 - cpu0
    per = cpu * 1000 / ok if ok else float("nan")
    print(f"{label}, {kind}: {clients} clients, {elapsed:.1f} s, {sessions} sessions, "
          f"{ok} commands OK, {ok / elapsed:.0f} commands/s, server CPU {cpu:.2f} s = "
          f"{per:.2f} ms/command, {len(errors)} protocol errors"
          + (f" (+{setup_errors} at setup, not measured)" if setup_errors else ""), flush=True)
    for k in ["connect+tls", "LOGIN", "SELECT", "FETCH flags+headers", "SEARCH UNSEEN", "NOOP",
              "STATUS", "LOGOUT"]:
        v = merged.get(k, [])
        if v:
            print(f"  {k:<20} n={len(v):<7} p50={pct(v, 50) * 1000:8.2f} ms "
                  f"p99={pct(v, 99) * 1000:8.2f} ms")
    distinct = {}
    for e in errors:
        distinct.setdefault(re.sub(r"\d+", "N", e)[:100], [0, e])[0] += 1
    for key, (count, sample) in sorted(distinct.items(), key=lambda x: -x[1][0])[:5]:
        print(f"  error x{count}: {sample}")
    print(f"RESULT\t{label}\t{kind}\t{ok / elapsed:.0f}\t{per:.2f}\t{len(errors)}\t{sessions}"
          f"\t{elapsed:.1f}", flush=True)


def main():
    a = sys.argv[1:]
    if a and a[0] == "profile":
        if len(a) < 9:
            sys.exit(__doc__)
        profile(a[1], int(a[2]), a[3], a[4], a[5], int(a[6]), float(a[7]), int(a[8]),
                a[9] if len(a) > 9 else "server", int(a[10]) if len(a) > 10 else 5)
        return
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
