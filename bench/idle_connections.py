#!/usr/bin/env python3
"""Opens N SMTP connections to HOST:PORT, says EHLO on each, holds them all open, prints
"holding N" and waits SECONDS before closing them. Used to measure a server's memory per idle
connection. Bounded: N and SECONDS are given, loopback only."""
import socket
import sys
import time

host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
assert host.startswith("127.") or host == "localhost", "loopback only"
conns = []
for i in range(n):
    s = socket.create_connection((host, port), timeout=30)
    f = s.makefile("rb")
    greeting = f.readline()
    assert greeting.startswith(b"220"), greeting
    s.sendall(b"EHLO idle.test\r\n")
    while True:
        line = f.readline()
        if line[3:4] != b"-":
            break
    conns.append((s, f))
print(f"holding {len(conns)}", flush=True)
time.sleep(seconds)
for s, _ in conns:
    s.close()
