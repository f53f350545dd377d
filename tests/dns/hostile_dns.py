#!/usr/bin/python3
"""hostile_dns.py: a misbehaving DNS server for the resolver's attack tests (stdlib only).

Usage: hostile_dns.py [--log FILE]

Listens on 127.0.0.1, UDP and TCP on one kernel-picked port, prints "PORT\\n" on stdout when
ready, and runs until stdin reaches EOF (so it dies with the test that started it) or it gets
SIGTERM. Every query is logged to FILE as one line "TYPE NAME PROTO" (TYPE A, AAAA or a number,
PROTO udp or tcp), written before the answer is sent.

The first label of the name asked picks the behaviour; every name is under any zone (the zone
is ignored), so "servfail.h.test" and "servfail.x" behave alike. Names not listed are answered
NXDOMAIN. Addresses: the right answer of a behaviour is 127.0.0.N (and ::N for AAAA); 10.6.6.6 and
fd00::666 are "wrong" answers that a correct resolver never returns.

  ok            A 127.0.0.3, AAAA ::3, TTL 60
  v4only        A 127.0.0.3, AAAA NODATA
  wrongid       an answer with the wrong ID (10.6.6.6), nothing else
  wrongid-ok    the wrong-ID answer (10.6.6.6) then, 50 ms later, the right one (127.0.0.4)
  wrongq        the right ID but the question of another name (10.6.6.6), nothing else
  wrongq-ok     the wrong-question answer then the right one (127.0.0.4)
  wrongowner    the right question, an A record for another owner name (10.6.6.6)
  garbage       random bytes after the right ID
  garbage-ok    random bytes after the right ID, then the right answer (127.0.0.4)
  short         a packet cut inside the answer record, no TC bit
  empty         a zero-length datagram, then 50 ms later the right answer (127.0.0.4)
  header        only the 12-byte header (QDCOUNT 1, ANCOUNT 1)
  ptrloop       an answer whose owner name is a compression pointer to itself
  tc-ok         UDP: TC bit, no answer; TCP: 300 A records 127.0.1.x (a full answer)
  tc-stall      UDP: TC; TCP: accept, read, never answer
  tc-close      UDP: TC; TCP: close after reading the query
  tc-huge       UDP: TC; TCP: length prefix 65535 then 10 bytes, then nothing
  tc-garbage    UDP: TC; TCP: a length prefix and random bytes, then close
  tc-loop       UDP and TCP: TC bit set, no answer (truncated over TCP too)
  tc-late6      UDP: TC, for AAAA 300 ms late; TCP: the ok answer (tc-late4: A is late)
  many          300 A records 127.0.1.x over UDP (about 5 KB), no TC
  many-aaaa     300 AAAA records over UDP
  cnameloop     CNAME to cnameloop2.<zone>, which is a CNAME back, no address
  cnamepoison   CNAME victim.<zone> and the victim's A 127.0.0.9 / AAAA ::9 (victim itself: NXDOMAIN)
  ttl0          A 127.0.0.5 with TTL 0
  ttlmax        A 127.0.0.6 with TTL 0xffffffff (RFC 2181: MSB set means 0)
  ttlbig        A 127.0.0.7 with TTL 0x7fffffff
  otherfam      an A query answered with AAAA fd00::666, an AAAA query with A 10.6.6.6
  otherport     the right answer (10.6.6.6) sent from another socket (another port)
  otherport-ok  the answer from another port (10.6.6.6), then the right one from the right port
  dup           A 127.0.0.8 five times
  servfail      RCODE 2 (SERVFAIL)
  notimp        RCODE 4
  formerr       RCODE 1
  nxdomain      RCODE 3
  slowN         the ok answer after N ms (slow200.h.test: 200 ms)
  never         no answer at all
  localhost     10.6.6.6 or fd00::666 (localhost., a.localhost.: RFC 6761 says never ask)
  echo          A 127.0.0.K where K is the number in the second label (echo.7.h.test: 127.0.0.7),
                after a delay of (K % 5) * 20 ms, so answers come back out of order
"""

import os
import random
import select
import socket
import struct
import sys
import threading
import time

LOG = None
LOG_LOCK = threading.Lock()
WRONG4 = bytes([10, 6, 6, 6])
WRONG6 = bytes.fromhex("fd000000000000000000000000000666")


def log(qtype, name, proto):
    if LOG is None:
        return
    t = {1: "A", 28: "AAAA"}.get(qtype, str(qtype))
    with LOG_LOCK:
        with open(LOG, "a") as f:
            f.write("%s %s %s\n" % (t, name, proto))


def parse_query(data):
    """(id, flags, name, qtype, question bytes) or None."""
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if qd < 1:
        return None
    labels, i = [], 12
    while True:
        if i >= len(data):
            return None
        n = data[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(data):
            return None
        labels.append(data[i:i + n].decode("latin-1"))
        i += n
    if i + 4 > len(data):
        return None
    qtype, _qclass = struct.unpack("!HH", data[i:i + 4])
    return qid, flags, ".".join(labels), qtype, data[12:i + 4]


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            b = label.encode("latin-1")
            out += bytes([len(b)]) + b
    return out + b"\0"


def header(qid, rcode=0, an=0, tc=False, qd=1):
    flags = 0x8000 | 0x0400 | 0x0100 | 0x0080 | rcode  # QR AA RD RA
    if tc:
        flags |= 0x0200
    return struct.pack("!HHHHHH", qid, flags, qd, an, 0, 0)


def rr(owner_ptr_or_name, rtype, ttl, rdata):
    owner = owner_ptr_or_name
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


PTR_Q = b"\xc0\x0c"  # a pointer to the question's name


def addr_rr(qtype, last, ttl=60, owner=PTR_Q):
    if qtype == 28:
        return rr(owner, 28, ttl, bytes(15) + bytes([last]))
    return rr(owner, 1, ttl, bytes([127, 0, 0, last]))


def answer(q, records, rcode=0, tc=False):
    qid, _flags, _name, _qtype, question = q
    return header(qid, rcode, len(records), tc) + question + b"".join(records)


def wrong_answer(q):
    """An answer carrying a wrong address of the family asked."""
    qtype = q[3]
    if qtype == 28:
        return answer(q, [rr(PTR_Q, 28, 60, WRONG6)])
    return answer(q, [rr(PTR_Q, 1, 60, WRONG4)])


def many_records(q, qtype):
    recs = []
    for i in range(300):
        if qtype == 28:
            recs.append(rr(PTR_Q, 28, 60, bytes(14) + bytes([1, i % 256])))
        else:
            recs.append(rr(PTR_Q, 1, 60, bytes([127, 0, 1 + i // 256, i % 256])))
    return answer(q, recs)


def behaviour(name):
    first = name.split(".")[0].lower() if name else ""
    return first


def plan(q, proto):
    """A list of (delay_s, kind, bytes) to send: kind is "same" (the socket asked) or "other"
    (UDP from another socket); an empty list sends nothing; None in place of the list closes
    (TCP)."""
    qid, flags, name, qtype, question = q
    b = behaviour(name)
    labels = name.split(".")
    ok_last = 3
    if b == "ok":
        return [(0, "same", answer(q, [addr_rr(qtype, ok_last)]))]
    if b == "v4only":
        return [(0, "same", answer(q, [addr_rr(1, 3)] if qtype == 1 else []))]
    if b in ("wrongid", "wrongid-ok"):
        w = bytearray(wrong_answer(q))
        w[0:2] = struct.pack("!H", (qid + 1) & 0xFFFF)
        out = [(0, "same", bytes(w))]
        if b == "wrongid-ok":
            out.append((0.05, "same", answer(q, [addr_rr(qtype, 4)])))
        return out
    if b in ("wrongq", "wrongq-ok"):
        other = encode_name("ok.elsewhere.test") + struct.pack("!HH", qtype, 1)
        w = header(qid, 0, 1) + other + rr(b"\xc0\x0c", qtype,
                                           60, WRONG6 if qtype == 28 else WRONG4)
        out = [(0, "same", w)]
        if b == "wrongq-ok":
            out.append((0.05, "same", answer(q, [addr_rr(qtype, 4)])))
        return out
    if b == "wrongowner":
        owner = encode_name("victim.test")
        return [(0, "same", answer(q, [rr(owner, qtype, 60, WRONG6 if qtype == 28 else WRONG4)]))]
    if b in ("garbage", "garbage-ok"):
        g = struct.pack("!H", qid) + bytes(random.getrandbits(8) for _ in range(200))
        out = [(0, "same", g)]
        if b == "garbage-ok":
            out.append((0.05, "same", answer(q, [addr_rr(qtype, 4)])))
        return out
    if b == "short":
        full = answer(q, [addr_rr(qtype, 3)])
        return [(0, "same", full[:-3])]
    if b == "empty":
        return [(0, "same", b""), (0.05, "same", answer(q, [addr_rr(qtype, 4)]))]
    if b == "header":
        return [(0, "same", header(qid, 0, 1))]
    if b == "ptrloop":
        # The answer's owner is a pointer to its own offset.
        off = 12 + len(question)
        loop = struct.pack("!H", 0xC000 | off)
        return [(0, "same", answer(q, [rr(loop, qtype, 60, WRONG6 if qtype == 28 else WRONG4)]))]
    if b in ("tc-late6", "tc-late4"):
        # The other family's TC comes 300 ms after the first family went over TCP and got its
        # answer: its query joins a TCP connection that is idle and writable.
        late = 28 if b == "tc-late6" else 1
        if proto == "udp":
            return [(0.3 if qtype == late else 0, "same", answer(q, [], tc=True))]
        return [(0, "same", answer(q, [addr_rr(qtype, ok_last)]))]
    if b.startswith("tc-"):
        if proto == "udp":
            return [(0, "same", answer(q, [], tc=True))]
        if b == "tc-ok":
            return [(0, "same", many_records(q, qtype))]
        if b == "tc-stall":
            return []
        if b == "tc-close":
            return None
        if b == "tc-huge":
            return [(0, "raw", struct.pack("!H", 65535) + bytes(10))]
        if b == "tc-garbage":
            g = bytes(random.getrandbits(8) for _ in range(300))
            return [(0, "raw", struct.pack("!H", len(g)) + g), (0, "close", b"")]
        if b == "tc-loop":
            return [(0, "same", answer(q, [], tc=True))]
    if b == "many":
        return [(0, "same", many_records(q, 1) if qtype == 1 else answer(q, []))]
    if b == "many-aaaa":
        return [(0, "same", many_records(q, 28) if qtype == 28 else answer(q, []))]
    if b == "cnameloop":
        zone = ".".join(labels[1:])
        a = encode_name(name)
        b2 = encode_name("cnameloop2." + zone)
        return [(0, "same", answer(q, [rr(a, 5, 60, b2), rr(b2, 5, 60, a)]))]
    if b == "cnamepoison":
        # A CNAME to victim.<zone> with the victim's address in the same answer: fine for this
        # name, but it must not become the cached answer for victim.<zone> (which is NXDOMAIN).
        zone = ".".join(labels[1:])
        victim = encode_name("victim." + zone)
        return [(0, "same", answer(q, [rr(PTR_Q, 5, 60, victim), addr_rr(qtype, 9, owner=victim)]))]
    if b == "ttl0":
        return [(0, "same", answer(q, [addr_rr(qtype, 5, ttl=0)]))]
    if b == "ttlmax":
        return [(0, "same", answer(q, [addr_rr(qtype, 6, ttl=0xFFFFFFFF)]))]
    if b == "ttlbig":
        return [(0, "same", answer(q, [addr_rr(qtype, 7, ttl=0x7FFFFFFF)]))]
    if b == "otherfam":
        if qtype == 1:
            return [(0, "same", answer(q, [rr(PTR_Q, 28, 60, WRONG6)]))]
        return [(0, "same", answer(q, [rr(PTR_Q, 1, 60, WRONG4)]))]
    if b in ("otherport", "otherport-ok"):
        out = [(0, "other", wrong_answer(q))]
        if b == "otherport-ok":
            out.append((0.05, "same", answer(q, [addr_rr(qtype, 4)])))
        return out
    if b == "dup":
        return [(0, "same", answer(q, [addr_rr(qtype, 8)] * 5))]
    if b == "servfail":
        return [(0, "same", answer(q, [], rcode=2))]
    if b == "notimp":
        return [(0, "same", answer(q, [], rcode=4))]
    if b == "formerr":
        return [(0, "same", answer(q, [], rcode=1))]
    if b.startswith("slow") and b[4:].isdigit():
        return [(int(b[4:]) / 1000.0, "same", answer(q, [addr_rr(qtype, ok_last)]))]
    if b == "never":
        return []
    if b == "localhost":
        return [(0, "same", wrong_answer(q))]
    if b == "echo" and len(labels) > 1 and labels[1].isdigit():
        k = int(labels[1])
        return [((k % 5) * 0.02, "same", answer(q, [addr_rr(qtype, k % 256)]))]
    return [(0, "same", answer(q, [], rcode=3))]


def udp_send_later(sock, other, steps, peer):
    for delay, kind, data in steps:
        if delay:
            time.sleep(delay)
        try:
            (other if kind == "other" else sock).sendto(data, peer)
        except OSError:
            pass


def serve_udp(sock, other):
    while True:
        try:
            data, peer = sock.recvfrom(65535)
        except OSError:
            return
        q = parse_query(data)
        if not q:
            continue
        log(q[3], q[2], "udp")
        steps = plan(q, "udp") or []
        if all(d == 0 for d, _, _ in steps):
            udp_send_later(sock, other, steps, peer)
        else:
            threading.Thread(target=udp_send_later, args=(sock, other, steps, peer),
                             daemon=True).start()


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve_tcp_conn(conn):
    try:
        while True:
            head = recv_exact(conn, 2)
            if head is None:
                return
            data = recv_exact(conn, struct.unpack("!H", head)[0])
            if data is None:
                return
            q = parse_query(data)
            if not q:
                return
            log(q[3], q[2], "tcp")
            steps = plan(q, "tcp")
            if steps is None:
                return
            if not steps:
                # Stall: hold the connection until the peer goes away.
                while conn.recv(4096):
                    pass
                return
            for delay, kind, payload in steps:
                if delay:
                    time.sleep(delay)
                if kind == "close":
                    return
                if kind == "raw":
                    conn.sendall(payload)
                    continue
                conn.sendall(struct.pack("!H", len(payload)) + payload)
            if any(k == "raw" for _, k, _ in steps):
                while conn.recv(4096):
                    pass
                return
    except OSError:
        pass
    finally:
        conn.close()


def serve_tcp(lsock):
    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:
            return
        threading.Thread(target=serve_tcp_conn, args=(conn,), daemon=True).start()


def main():
    global LOG
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--log":
        LOG = args[1]
    elif args:
        sys.stderr.write("usage: hostile_dns.py [--log FILE]\n")
        sys.exit(2)
    # One port for UDP and TCP: take a UDP port, then the same for TCP (retry if taken).
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            u.close()
            t.close()
            continue
        break
    else:
        sys.stderr.write("hostile_dns.py: no port free for UDP and TCP\n")
        sys.exit(1)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    t.listen(128)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    threading.Thread(target=serve_udp, args=(u, other), daemon=True).start()
    threading.Thread(target=serve_tcp, args=(t,), daemon=True).start()
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    # Run until the parent closes our stdin (or dies).
    while True:
        r, _, _ = select.select([sys.stdin], [], [])
        if r and not os.read(sys.stdin.fileno(), 4096):
            break
    os._exit(0)


if __name__ == "__main__":
    main()
