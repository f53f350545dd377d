#!/usr/bin/python3
"""dnsq.py: ask one DNS server one question and print the answer in a form
shell tests can compare (there is no dig on the test machines).

Usage: dnsq.py [--tcp] [--timeout S] ADDR:PORT NAME TYPE
       dnsq.py [--tcp] [--timeout S] --batch ADDR:PORT < QUESTIONS

TYPE is A, AAAA, CNAME or TXT. Prints the response code, then one line per
answer record, "TYPE TTL DATA" (CNAME data is the target name):

    NOERROR
    CNAME 60 alias2.test
    A 60 127.0.0.1

An answer with NOERROR and no record of the asked type prints "NODATA"
instead of "NOERROR" (CNAME records still follow). No answer within the
timeout (default 2 s) prints "TIMEOUT"; a TCP connection closed without an
answer prints "CLOSED", a refused connection "CONNREFUSED". Exit status 0
whenever something was printed.

With --batch, each line "NAME TYPE" of stdin is asked in turn and gets one
line of output, "NAME TYPE" followed by the lines above joined by spaces
("both.test A NOERROR A 60 127.0.0.1"), which saves a Python start per
question.
"""

import os
import socket
import struct
import sys

TYPES = {"A": 1, "CNAME": 5, "TXT": 16, "AAAA": 28}
TYPES_BY_NUM = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def build(qid, name, qtype):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def read_name(data, off):
    """(name, offset after it), following compression pointers."""
    labels = []
    end = None
    for _ in range(128):
        n = data[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | data[off + 1]
            continue
        off += 1
        if n == 0:
            break
        labels.append(data[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels), (off if end is None else end)


def parse(data, qid, qtype):
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    if rid != qid:
        raise ValueError("answer id %d, asked %d" % (rid, qid))
    off = 12
    for _ in range(qd):
        _, off = read_name(data, off)
        off += 4
    records = []
    for _ in range(an):
        _, off = read_name(data, off)
        rtype, _, ttl, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        off += 10
        rdata = data[off:off + rdlen]
        if rtype == 1:
            text = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            text = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == 5:
            text = read_name(data, off)[0]
        elif rtype == 16:
            text = rdata[1:1 + rdata[0]].decode("ascii", "replace") if rdata else ""
        else:
            text = rdata.hex()
        records.append("%s %d %s" % (TYPES_BY_NUM.get(rtype, str(rtype)), ttl, text))
        off += rdlen
    rcode = RCODES.get(flags & 0x0F, "RCODE%d" % (flags & 0x0F))
    if rcode == "NOERROR" and not any(r.split()[0] == TYPES_BY_NUM[qtype] for r in records):
        rcode = "NODATA"
    return [rcode] + records


def ask(addr, port, name, qtype, tcp, timeout):
    qid = struct.unpack(">H", os.urandom(2))[0]
    q = build(qid, name, qtype)
    try:
        if tcp:
            with socket.create_connection((addr, port), timeout=timeout) as s:
                s.sendall(struct.pack(">H", len(q)) + q)
                data = b""
                while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                    chunk = s.recv(65536)
                    if not chunk:
                        return ["CLOSED"] if len(data) < 2 else ["TRUNCATED"]
                    data += chunk
                data = data[2:]
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.sendto(q, (addr, port))
                data = s.recv(65536)
    except socket.timeout:
        return ["TIMEOUT"]
    except ConnectionRefusedError:
        return ["CONNREFUSED"]
    return parse(data, qid, qtype)


def main(argv):
    tcp = False
    batch = False
    timeout = 2.0
    while argv and argv[0].startswith("--"):
        if argv[0] == "--tcp":
            tcp = True
            argv = argv[1:]
        elif argv[0] == "--batch":
            batch = True
            argv = argv[1:]
        elif argv[0] == "--timeout" and len(argv) > 1:
            timeout = float(argv[1])
            argv = argv[2:]
        else:
            break
    if (len(argv) != (1 if batch else 3) or ":" not in argv[0]
            or (not batch and argv[2] not in TYPES)):
        sys.stderr.write("usage: dnsq.py [--tcp] [--timeout S] ADDR:PORT NAME A|AAAA|CNAME|TXT\n"
                         "       dnsq.py [--tcp] [--timeout S] --batch ADDR:PORT < QUESTIONS\n")
        return 2
    addr, _, port = argv[0].rpartition(":")
    if batch:
        for line in sys.stdin:
            words = line.split()
            if len(words) != 2 or words[1] not in TYPES:
                sys.stderr.write("dnsq.py: bad question %r\n" % line.strip())
                return 2
            answer = ask(addr, int(port), words[0], TYPES[words[1]], tcp, timeout)
            print(" ".join(words + answer))
            sys.stdout.flush()
        return 0
    for line in ask(addr, int(port), argv[1], TYPES[argv[2]], tcp, timeout):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
