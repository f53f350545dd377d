#!/usr/bin/python3
"""slowdns.py: a DNS server on 127.0.0.1 (UDP, kernel-picked port) whose AAAA answers come late
or never, for the Happy Eyeballs tests of the resolution delay.

Usage: slowdns.py AAAA_DELAY_MS

Every name has the A record 127.0.0.1 (answered at once) and the AAAA record ::1, answered
AAAA_DELAY_MS later, or never when AAAA_DELAY_MS is negative. Other types get an empty answer.
Prints the port on stdout, then serves until stdin closes (the test's end) or it is killed.
Logs one line per query on stderr: "<type> <name>".
"""

import heapq
import select
import socket
import struct
import sys
import time

A, AAAA = 1, 28


def parse_question(msg):
    """(id, flags, question bytes, qtype) of a query, or None when malformed."""
    if len(msg) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if qdcount != 1:
        return None
    i = 12
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            return None
        i += 1 + n
    if i + 4 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[i:i + 2])[0]
    return qid, flags, msg[12:i + 4], qtype


def answer(qid, flags, question, qtype):
    rd = flags & 0x0100
    head = struct.pack("!HHHHHH", qid, 0x8080 | rd, 1, 0, 0, 0)
    if qtype == A:
        rdata = socket.inet_pton(socket.AF_INET, "127.0.0.1")
    elif qtype == AAAA:
        rdata = socket.inet_pton(socket.AF_INET6, "::1")
    else:
        return head + question
    head = struct.pack("!HHHHHH", qid, 0x8080 | rd, 1, 1, 0, 0)
    # The owner name points at the question's (offset 12); TTL 60 s.
    rr = struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata
    return head + question + rr


def main():
    delay_ms = int(sys.argv[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    sys.stdout.write("%d\n" % s.getsockname()[1])
    sys.stdout.flush()
    later = []  # (when, seq, reply, address)
    seq = 0
    while True:
        timeout = None
        if later:
            timeout = max(0.0, later[0][0] - time.monotonic())
        r, _, _ = select.select([s, sys.stdin], [], [], timeout)
        now = time.monotonic()
        while later and later[0][0] <= now:
            _, _, reply, addr = heapq.heappop(later)
            s.sendto(reply, addr)
        if sys.stdin in r and not sys.stdin.buffer.read1(4096):
            return
        if s not in r:
            continue
        msg, addr = s.recvfrom(4096)
        q = parse_question(msg)
        if not q:
            continue
        qid, flags, question, qtype = q
        sys.stderr.write("%d %s\n" % (qtype, question[:-4]))
        sys.stderr.flush()
        reply = answer(qid, flags, question, qtype)
        if qtype != AAAA:
            s.sendto(reply, addr)
        elif delay_ms >= 0:
            seq += 1
            heapq.heappush(later, (now + delay_ms / 1000.0, seq, reply, addr))


if __name__ == "__main__":
    main()
