#!/usr/bin/python3
"""hostile.py: a misbehaving HTTP/1.1 server for client tests (stdlib only).

The request path (query string aside) selects a canned response, written as
raw bytes, possibly followed by closing, stalling or resetting the
connection. Unknown paths get 404. README.md lists the cases; the CASES
table at the bottom of this file is the authority.

Usage:
  hostile.py --fd N                 serve on an inherited listening socket
  hostile.py [--host H] [--port P]  bind H:P (default 127.0.0.1:0)
  [--port-file F]                   write the chosen port to F
It prints "hostile: listening on HOST:PORT" on stdout once it accepts.

Each connection is served by its own thread. Requests on a connection are
read one after another (pipelining works); request bodies are read via
Content-Length or chunked framing; "Expect: 100-continue" gets a
"100 Continue" before the body is read.
"""

import argparse
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

MAX_HEAD = 1 << 20          # request head limit
MAX_BODY = 1 << 30          # request body limit
IDLE_TIMEOUT = 300.0        # keep-alive idle limit between requests
STALL_LIMIT = 600.0         # longest a stall case holds a connection

stats_lock = threading.Lock()
stats = {"connections": 0, "active": 0, "requests": 0}


def bump(key, delta=1):
    with stats_lock:
        stats[key] += delta


class Closed(Exception):
    """The peer closed, or the request could not be read."""


class Request:
    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers          # list of (name, value) as str
        self.body = body
        path, _, query = target.partition("?")
        self.path = path
        self.query = urllib.parse.parse_qs(query)

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def qint(self, name, default):
        try:
            return int(self.query[name][0])
        except (KeyError, ValueError, IndexError):
            return default

    def wants_close(self):
        conn = (self.header("connection") or "").lower()
        tokens = [t.strip() for t in conn.split(",")]
        if "close" in tokens:
            return True
        return self.version == "HTTP/1.0" and "keep-alive" not in tokens


class Conn:
    """One accepted connection with its read buffer."""

    def __init__(self, sock, addr):
        self.sock = sock
        self.addr = addr
        self.buf = b""
        self.idle_timeout = IDLE_TIMEOUT
        self.reuse_trap = False
        self.drop_next = False          # /ta/drop-next: close on the next request, unanswered

    def recv_more(self, timeout=None):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise
        except OSError:
            raise Closed()
        if not data:
            raise Closed()
        self.buf += data

    def read_until(self, sep, limit):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise Closed()
            self.recv_more(self.idle_timeout)

    def read_exact(self, n):
        while len(self.buf) < n:
            self.recv_more(self.idle_timeout)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.sock.sendall(data)

    def read_request(self):
        # Tolerate empty lines before a request line (RFC 9112, 2.2).
        while self.buf.startswith(b"\r\n"):
            self.buf = self.buf[2:]
        head = self.read_until(b"\r\n\r\n", MAX_HEAD)
        lines = head.split(b"\r\n")
        while lines and lines[0] == b"":
            lines.pop(0)
        if not lines:
            raise Closed()
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3:
            self.send(simple(400, b"bad request line\n", close=True))
            raise Closed()
        method, target, version = parts
        headers = []
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                self.send(simple(400, b"bad header line\n", close=True))
                raise Closed()
            headers.append((name, value.strip(" \t")))
        req = Request(method, target, version, headers, b"")
        early = EARLY.get(req.path)
        if early is not None:
            early(self, req)             # answers before the body, never reads it
            raise Closed()
        if (req.header("expect") or "").lower() == "100-continue" and req.path != "/no-continue":
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        te = (req.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            req.body = self.read_chunked_body()
        else:
            cl = req.header("content-length")
            if cl is not None:
                try:
                    n = int(cl)
                except ValueError:
                    n = -1
                if n < 0 or n > MAX_BODY:
                    self.send(simple(400, b"bad content-length\n", close=True))
                    raise Closed()
                req.body = self.read_exact(n)
        return req

    def read_chunked_body(self):
        body = []
        total = 0
        while True:
            line = self.read_until(b"\r\n", 4096)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Closed()
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                raise Closed()
            body.append(self.read_exact(size))
            if self.read_exact(2) != b"\r\n":
                raise Closed()
        while self.read_until(b"\r\n", MAX_HEAD) != b"":
            pass
        return b"".join(body)

    def stall(self, limit=STALL_LIMIT):
        """Hold the connection, discarding input, until the peer closes,
        the limit passes, or the server exits."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                self.recv_more(1.0)
                self.buf = b""
            except socket.timeout:
                continue
            except Closed:
                return

    def linger_close(self):
        """Send FIN, then read until the peer closes (at most 2 s) so that
        unread input does not turn the close into a reset."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                self.sock.settimeout(0.5)
                if not self.sock.recv(65536):
                    break
        except OSError:
            pass

    def reset(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             (1).to_bytes(4, sys.byteorder) + (0).to_bytes(4, sys.byteorder))
        self.sock.close()


# ---------------------------------------------------------------- responses

REASONS = {100: "Continue", 200: "OK", 204: "No Content", 304: "Not Modified",
           400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


def simple(status, body, close=False, ctype="text/plain", extra=b""):
    head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
        status, REASONS.get(status, "Unknown"), ctype, len(body))
    if close:
        head += "Connection: close\r\n"
    return head.encode() + extra + b"\r\n" + body


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# Results of a case: KEEP serves the next request, CLOSE closes (FIN).
KEEP = "keep"
CLOSE = "close"
DONE = "done"   # the case already closed or reset the socket


def raw(data, then=CLOSE):
    """A case that writes fixed bytes, then keeps or closes the connection."""
    def case(c, req):
        c.send(data)
        return then
    return case


def case_ok(c, req):
    c.send(OK)
    return KEEP


def case_close_no_length(c, req):
    n = req.qint("size", 0)
    body = b"x" * n if n > 0 else b"body delimited by close\n"
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
    return CLOSE


def case_head_ok(c, req):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
    c.send(head if req.method == "HEAD" else head + b"hello")
    return KEEP


def case_many_1xx(c, req):
    n = req.qint("n", 50)
    c.send(b"HTTP/1.1 100 Continue\r\n\r\n" * n + OK)
    return KEEP


def case_huge_header(c, req):
    n = req.qint("size", 1 << 20)
    c.send(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * n + b"\r\nContent-Length: 2\r\n\r\nok")
    return KEEP


def case_many_headers(c, req):
    n = req.qint("n", 10000)
    hdrs = b"".join(b"X-H-%d: v%d\r\n" % (i, i) for i in range(n))
    c.send(b"HTTP/1.1 200 OK\r\n" + hdrs + b"Content-Length: 2\r\n\r\nok")
    return KEEP


def case_stall(c, req):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    c.stall(req.qint("s", STALL_LIMIT))
    return CLOSE


def case_stall_headers(c, req):
    c.stall(req.qint("s", STALL_LIMIT))
    return CLOSE


def case_stall_body(c, req):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
    c.stall(req.qint("s", STALL_LIMIT))
    return CLOSE


def case_reset(c, req):
    c.reset()
    return DONE


def case_reset_mid_body(c, req):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"0123456789")
    time.sleep(0.05)
    c.reset()
    return DONE


def case_slow_body(c, req):
    n = req.qint("n", 10)
    ms = req.qint("ms", 100)
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % n)
    for i in range(n):
        time.sleep(ms / 1000.0)
        c.send(b"0123456789"[i % 10:i % 10 + 1])
    return KEEP


def case_slow_headers(c, req):
    data = b"HTTP/1.1 200 OK\r\nX-Slow: yes\r\nContent-Length: 2\r\n\r\nok"
    ms = req.qint("ms", 100)
    for i in range(0, len(data), 4):
        c.send(data[i:i + 4])
        time.sleep(ms / 1000.0)
    return KEEP


def case_http10_keepalive(c, req):
    c.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
    c.reuse_trap = True
    return KEEP


def case_close_after_response(c, req):
    c.send(OK)
    c.idle_timeout = req.qint("ms", 50) / 1000.0
    return KEEP


def case_echo(c, req):
    b = req.body
    doc = {
        "method": req.method,
        "target": req.target,
        "version": req.version,
        "headers": [[k, v] for k, v in req.headers],
        "body_len": len(b),
        "body_sha256": hashlib.sha256(b).hexdigest(),
        "body": b.decode("latin-1") if len(b) <= 65536 else None,
    }
    c.send(simple(200, json.dumps(doc).encode() + b"\n", ctype="application/json"))
    return KEEP


def case_flood(c, req):
    """A body delimited by the close that never ends: sends as fast as the peer reads."""
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
           b"Connection: close\r\n\r\n")
    blob = b"x" * (1 << 20)
    try:
        while True:
            c.send(blob)
    except OSError:
        pass
    return DONE


def case_stats(c, req):
    with stats_lock:
        body = json.dumps(stats).encode() + b"\n"
    c.send(simple(200, body, ctype="application/json"))
    return KEEP


def case_pipeline_echo_path(c, req):
    c.send(simple(200, req.target.encode()))
    return KEEP


SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"


def case_http10_te(c, req):
    """An HTTP/1.0 response with Transfer-Encoding and keep-alive: the body (the
    request target) in chunks, then, a little later, bytes a client that reuses
    the connection reads as the answer to its next request."""
    t = req.target.encode()
    c.send(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"%x\r\n%s\r\n0\r\n\r\n" % (len(t), t))
    time.sleep(0.02)
    c.send(SMUGGLED)
    return KEEP


# path -> case(conn, request) returning KEEP, CLOSE or DONE
CASES = {
    # valid, keep-alive
    "/ok": case_ok,
    "/head-ok": case_head_ok,
    "/chunked-trailers": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer, X-Checksum\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\nX-Checksum: abc\r\n\r\n", KEEP),
    "/chunked": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", KEEP),
    "/many-1xx": case_many_1xx,
    "/one-1xx": raw(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + OK, KEEP),
    "/huge-header": case_huge_header,
    "/many-headers": case_many_headers,
    "/slow-body": case_slow_body,
    "/slow-headers": case_slow_headers,
    "/status-999": raw(b"HTTP/1.1 999 Weird\r\nContent-Length: 2\r\n\r\nok", KEEP),
    "/http10-keepalive": case_http10_keepalive,
    "/http10-explicit-keepalive": raw(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", KEEP),
    "/extra-bytes": raw(
        OK + b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngarbage", KEEP),
    "/obs-fold": raw(
        b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok", KEEP),
    "/double-length-same": raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", KEEP),
    "/close-after-response": case_close_after_response,
    "/echo": case_echo,
    "/stats": case_stats,
    "/path": case_pipeline_echo_path,
    "/no-continue": case_echo,          # /echo that never says 100 Continue
    "/flood": case_flood,
    "/redirect-307-echo": raw(          # after reading the whole body, like any server
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /echo\r\nContent-Length: 0\r\n\r\n",
        KEEP),

    # valid, then the server closes
    "/close-no-length": case_close_no_length,
    "/conn-close": raw(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
    "/204-with-body": raw(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"),
    "/304-with-body": raw(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello"),

    # broken framing or syntax; the server closes after writing
    "/truncated": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"),
    "/truncated-chunked": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n0123456789"),
    "/truncated-headers": raw(b"HTTP/1.1 200 OK\r\nContent-Len"),
    "/bad-status-5": raw(b"HTTP/1.1 5 OK\r\nContent-Length: 2\r\n\r\nok"),
    "/http2-status": raw(b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "/bare-cr-status": raw(b"HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok"),
    "/bare-lf": raw(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    "/space-before-colon": raw(b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"),
    "/obs-fold-first": raw(
        b"HTTP/1.1 200 OK\r\n X-Folded: a\r\nContent-Length: 2\r\n\r\nok"),
    "/bad-header-name": raw(
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok"),
    "/bad-header-ctl": raw(b"HTTP/1.1 200 OK\r\nX\x01: y\r\nContent-Length: 2\r\n\r\nok"),
    "/no-colon": raw(b"HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 2\r\n\r\nok"),
    "/chunk-no-crlf": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
    "/chunk-bad-size": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    "/chunked-huge-size": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello"),
    "/chunked-overflow": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello"),
    "/te-not-chunked-last": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    "/cl-and-te": raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"),
    "/negative-length": raw(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok"),
    "/double-length": raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nok"),
    "/length-list": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 5\r\n\r\nok"),
    "/length-overflow": raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nok"),

    # Transfer-Encoding framing a client must refuse or must not trust past the message
    "/te-gzip": raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00gzip"),
    "/te-chunked-twice": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    "/switching-protocols": raw(b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + OK),
    "/http10-te": case_http10_te,

    # connection-level misbehaviour
    "/stall": case_stall,
    "/stall-headers": case_stall_headers,
    "/stall-body": case_stall_body,
    "/close-immediately": raw(b""),
    "/reset": case_reset,
    "/reset-mid-body": case_reset_mid_body,
}


# Cases that answer as soon as the request head is read, before its body (an upload the
# server refuses), then hold the connection without reading for ?s= seconds (default 10).
def early_answer(status, reason):
    def case(c, req):
        body = b"refused before the body\n"
        c.send(b"HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
               % (status, reason, len(body)) + body)
        time.sleep(req.qint("s", 10))
    return case


def early_close(c, req):
    body = b"refused before the body\n"
    c.send(b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
           % len(body) + body)
    # The close with the body unread sends a reset right behind the answer.


EARLY = {
    "/early-413": early_answer(413, b"Content Too Large"),
    "/early-413-close": early_close,
    "/early-401": early_answer(401, b"Unauthorized"),
}


# ---------------------------------------------------------------- attack cases
# Cases for tests/http/test-attack.c, kept apart from the cases above.

attack_lock = threading.Lock()
attack_seen = {}                        # ?tag= value -> requests that arrived with it


def case_attack_mark(c, req):
    """/echo that also remembers the tag of every request that reached the server."""
    tag = (req.query.get("tag") or [""])[0]
    with attack_lock:
        attack_seen[tag] = attack_seen.get(tag, 0) + 1
    return case_echo(c, req)


def case_attack_seen(c, req):
    """How many requests with ?tag= arrived, as a decimal body."""
    tag = (req.query.get("tag") or [""])[0]
    with attack_lock:
        n = attack_seen.get(tag, 0)
    c.send(simple(200, b"%d" % n))
    return KEEP


def attack_early_reset(c, req):
    """Answer 413 as soon as the head is read, then reset the connection at once: the answer
    is in the client's receive queue, and its next write fails with ECONNRESET."""
    body = b"refused before the body\n"
    c.send(b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
           % len(body) + body)
    c.reset()


def attack_split_body(c, req):
    """Head and first body byte, then the last byte ?ms= later: two arrivals, two edges."""
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\na")
    time.sleep(req.qint("ms", 100) / 1000.0)
    c.send(b"b")
    return KEEP


def attack_expect_417(c, req):
    """Refuses "Expect: 100-continue" with 417, as some servers do; a request without the
    expectation has its body read and is echoed. The connection closes after either, and says
    so: a client must not keep it."""
    if (req.header("expect") or "").lower() == "100-continue":
        c.send(simple(417, b"no expectations here\n", close=True))
        return
    if "chunked" in (req.header("transfer-encoding") or "").lower():
        req.body = c.read_chunked_body()
    else:
        req.body = c.read_exact(int(req.header("content-length") or "0"))
    doc = {"method": req.method, "headers": [[k, v] for k, v in req.headers],
           "body": req.body.decode("latin-1")}
    c.send(simple(200, json.dumps(doc).encode() + b"\n", ctype="application/json", close=True))


def attack_answer_while_reading(c, req):
    """Starts the answer as soon as the head is read (a streaming server), waits ?ms= (default
    200) so that the client's write of a large body fills the socket, then reads the whole body
    (Content-Length) and ends the answer with a chunk saying how many bytes were not 'b'."""
    c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    time.sleep(req.qint("ms", 200) / 1000.0)
    n = int(req.header("content-length") or "0")
    bad = 0
    left = n
    while left > 0:
        chunk = c.read_exact(min(left, 65536))
        bad += len(chunk) - chunk.count(b"b")
        left -= len(chunk)
    text = b"received %d, not b: %d" % (n, bad)
    c.send(b"%x\r\n" % len(text) + text + b"\r\n0\r\n\r\n")


CASES.update({
    "/attack/mark": case_attack_mark,
    "/attack/seen": case_attack_seen,
    "/attack/split-body": attack_split_body,
})
EARLY.update({
    "/attack/early-reset": attack_early_reset,
    "/attack/answer-while-reading": attack_answer_while_reading,
    "/attack/expect-417": attack_expect_417,
})


# ---------------------------------------------------------------- trace attack cases
# Cases for tests/http/test-trace-attack.c: response heads cut into pieces, interim heads, odd
# reason phrases, heads padded past the header limit, a connection dropped on its next request.
# Every /ta/ case takes ?step=N (write N bytes at a time, 0: all at once), ?ms=M (sleep between
# writes) and ?at=K (one cut after byte K, then the rest ?ms= later).

TA_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Trace: one byte at a time\r\n"
           b"Content-Length: 2\r\n\r\n")
TA_INTERIM = (b"HTTP/1.1 100 Continue\r\n\r\n"
              b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")


def ta_send(c, req, data):
    step = req.qint("step", 0)
    ms = req.qint("ms", 0) / 1000.0
    at = req.qint("at", -1)
    if 0 <= at < len(data):
        c.send(data[:at])
        time.sleep(ms)
        c.send(data[at:])
    elif step > 0:
        for i in range(0, len(data), step):
            c.send(data[i:i + step])
            time.sleep(ms)
    else:
        c.send(data)


def ta_raw(data, then=KEEP):
    def case(c, req):
        ta_send(c, req, data)
        return then
    return case


def ta_ws_head(c, req):
    """A head of ?size= bytes (default 1 MiB) that is all white space before one field value:
    the fields stay tiny, the head does not."""
    n = req.qint("size", 1 << 20)
    ta_send(c, req, b"HTTP/1.1 200 OK\r\nX-Pad:" + b" " * n + b"v\r\nContent-Length: 2\r\n\r\nok")
    return KEEP


def ta_fold_head(c, req):
    """A head of ?n= folded continuation lines (default 100000) of one space each."""
    n = req.qint("n", 100000)
    ta_send(c, req, b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n" + b" b\r\n" * n
            + b"Content-Length: 2\r\n\r\nok")
    return KEEP


def ta_drop_next(c, req):
    """/ok, and the next request on this connection is read and answered with a close."""
    c.send(OK)
    c.drop_next = True
    return KEEP


def ta_redirect(c, req):
    """302 to http://127.0.0.1:?port=/?path= (default: this server's /ok); ?close=1 closes."""
    port = req.qint("port", c.sock.getsockname()[1])
    path = (req.query.get("path") or ["/ok"])[0]
    close = req.qint("close", 0)
    c.send(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d%s\r\nContent-Length: 0\r\n%s\r\n"
           % (port, path.encode(), b"Connection: close\r\n" if close else b""))
    return CLOSE if close else KEEP


CASES.update({
    "/ta/head": ta_raw(TA_HEAD + b"ok"),
    "/ta/interim": ta_raw(TA_INTERIM + TA_HEAD + b"ok"),
    "/ta/chunked-trailers": ta_raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Trailer: HTTP/1.1 200 OK\r\n\r\n"),
    "/ta/reason-empty": ta_raw(b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"),
    "/ta/reason-none": ta_raw(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
    "/ta/reason-long": ta_raw(
        b"HTTP/1.1 200 " + b"0123456789" * 4 + b"ABCDEFG" + b"z" * 300
        + b"\r\nContent-Length: 2\r\n\r\nok"),
    "/ta/reason-obs": ta_raw(
        b"HTTP/1.1 200 caf\xe9 \x80\xff\tend\r\nContent-Length: 2\r\n\r\nok"),
    "/ta/reason-nul": ta_raw(b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok", CLOSE),
    "/ta/interim-reason": ta_raw(
        b"HTTP/1.1 103 " + b"E" * 100 + b"\r\n\r\nHTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"),
    "/ta/bad-field": ta_raw(b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok",
                            CLOSE),
    "/ta/truncated-head": ta_raw(b"HTTP/1.1 200 OK\r\nContent-Len", CLOSE),
    "/ta/truncated-after-interim": ta_raw(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A", CLOSE),
    "/ta/bare-lf": ta_raw(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", CLOSE),
    "/ta/ws-head": ta_ws_head,
    "/ta/fold-head": ta_fold_head,
    "/ta/drop-next": ta_drop_next,
    "/ta/redirect": ta_redirect,
})


# ---------------------------------------------------------------- serving

# Cases for tests/http/test-codings.c: coded bodies (content codings, transfer codings), cut,
# unknown, a bomb. COD_TEXT is the decoded body of every good case; the test builds it the same
# way: line i (from 0) is "line <i> of the coded body\n", 20000 lines.
COD_TEXT = b"".join(b"line %d of the coded body\n" % i for i in range(20000))
cod_cache = {}
cod_lock = threading.Lock()


def cod_gzip(data):
    import zlib
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    return z.compress(data) + z.flush()


def cod_deflate_raw(data):
    import zlib
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush()


def cod_bomb():
    """100 MiB of zeros, gzip over gzip: 337 bytes on the wire (made once, on first use)."""
    with cod_lock:
        if "bomb" not in cod_cache:
            cod_cache["bomb"] = cod_gzip(cod_gzip(bytes(100 << 20)))
        return cod_cache["bomb"]


def cod_send(c, fields, body, close=False):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + fields
    if close:
        head += b"Connection: close\r\n"
    c.send(head + b"\r\n" + body)
    return CLOSE if close else KEEP


def cod_gzip_case(c, req):
    body = cod_gzip(COD_TEXT)
    return cod_send(c, b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(body), body)


def cod_deflate_raw_case(c, req):
    body = cod_deflate_raw(COD_TEXT)
    return cod_send(c, b"Content-Encoding: deflate\r\nContent-Length: %d\r\n" % len(body), body)


def cod_gzip_cut(c, req):
    """A gzip body cut in the middle, with a Content-Length that matches what is sent."""
    body = cod_gzip(COD_TEXT)
    body = body[:len(body) // 2]
    return cod_send(c, b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(body), body)


def cod_te_gzip_chunked(c, req):
    coded = cod_gzip(COD_TEXT)
    body = b"".join(b"%x\r\n%s\r\n" % (len(coded[i:i + 4000]), coded[i:i + 4000])
                    for i in range(0, len(coded), 4000)) + b"0\r\n\r\n"
    return cod_send(c, b"Transfer-Encoding: gzip, chunked\r\n", body)


def cod_unknown(c, req):
    return cod_send(c, b"Content-Encoding: compress\r\nContent-Length: 5\r\n", b"LZW!!")


def cod_bomb_case(c, req):
    body = cod_bomb()
    return cod_send(c, b"Content-Encoding: gzip, gzip\r\nContent-Length: %d\r\n" % len(body),
                    body)


def cod_echo_ae(c, req):
    """The request's Accept-Encoding, as the body ("-" when there was none)."""
    v = req.header("accept-encoding")
    body = b"-" if v is None else v.encode("latin-1")
    return cod_send(c, b"Content-Length: %d\r\n" % len(body), body)


def cod_redirect(c, req):
    """302 to /cod/gzip with a body that says gzip and is not: dropped, never decoded."""
    c.send(b"HTTP/1.1 302 Found\r\nLocation: /cod/gzip\r\nContent-Encoding: gzip\r\n"
           b"Content-Length: 9\r\n\r\nnot gzip!")
    return KEEP


CASES.update({
    "/cod/gzip": cod_gzip_case,
    "/cod/deflate-raw": cod_deflate_raw_case,
    "/cod/gzip-cut": cod_gzip_cut,
    "/cod/te-gzip-chunked": cod_te_gzip_chunked,
    "/cod/unknown": cod_unknown,
    "/cod/bomb": cod_bomb_case,
    "/cod/echo-ae": cod_echo_ae,
    "/cod/redirect": cod_redirect,
})


# ---- /atk11/: content codings attacked (tests/http/test-attack11.c) ----
ATK11_TEXT = b"".join(b"row %d: attack text\n" % i for i in range(150))


def atk11_coded(kind):
    import zlib
    if kind == "gzip":
        return cod_gzip(ATK11_TEXT)
    if kind == "deflate":
        return zlib.compress(ATK11_TEXT, 6)
    if kind == "br":
        try:
            import brotli
        except ImportError:
            return None
        return brotli.compress(ATK11_TEXT)
    return None


def atk11_cut(c, req):
    """The first n bytes of a coded body (n < 0: all of it), with a matching Content-Length."""
    kind = req.query.get("c", ["gzip"])[0]
    body = atk11_coded(kind)
    if body is None:
        c.send(simple(404, b"no such coding here\n"))
        return KEEP
    n = req.qint("n", -1)
    if n >= 0:
        body = body[:n]
    return cod_send(c, b"Content-Encoding: %s\r\nContent-Length: %d\r\n" % (kind.encode(), len(body)),
                    body)


def atk11_smuggle(c, req):
    """A gzip body corrupt after 30 bytes whose rest, inside its Content-Length, looks like a
    whole response: a client that kept the connection would read it as the next answer."""
    body = cod_gzip(ATK11_TEXT)[:30] + b"\xff\xff\xff\xff" + \
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"
    return cod_send(c, b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(body), body)


def atk11_good(c, req):
    return cod_send(c, b"Content-Length: 4\r\n", b"GOOD")


def atk11_early(c, req):
    """A 103 that names a coding, then a plain 200: the 1xx's fields say nothing of the body."""
    c.send(b"HTTP/1.1 103 Early Hints\r\nContent-Encoding: gzip\r\nLink: </x>\r\n\r\n")
    return cod_send(c, b"Content-Length: 4\r\n", b"GOOD")


def atk11_te_gzip_close(c, req):
    """Transfer-Encoding: gzip without chunked: the body ends at the close."""
    return cod_send(c, b"Transfer-Encoding: gzip\r\n", cod_gzip(ATK11_TEXT), close=True)


CASES.update({
    "/atk11/cut": atk11_cut,
    "/atk11/smuggle": atk11_smuggle,
    "/atk11/good": atk11_good,
    "/atk11/early": atk11_early,
    "/atk11/te-gzip-close": atk11_te_gzip_close,
})



# ---- /frm/: framing and semantics rules (tests/http/test-framing-live.c) ----
# Heads ended by LF alone, HTTP/1.2, status codes outside 100-599 or unknown inside, chunk sizes
# with leading zeros, and redirects whose Location has spaces, raw non-ASCII bytes, a tab,
# nothing, or percent-encoded CR LF. Every case keeps the connection open: whether it may be
# reused is the client's to decide.
FRM_LF = b"HTTP/1.1 200 OK\nContent-Type: text/plain\nX-Line: ends in LF\nContent-Length: 2\n\n"


def frm_status(c, req):
    """?code= as sent (three characters: "000", "042", "600"), with a body of 2 bytes."""
    code = (req.query.get("code") or ["600"])[0].encode("latin-1")
    c.send(b"HTTP/1.1 " + code + b" Odd\r\nContent-Length: 2\r\n\r\nok")
    return KEEP


def frm_redirect(location, code=b"302 Found"):
    body = b"redirect body"
    return raw(b"HTTP/1.1 " + code + b"\r\nLocation: " + location +
               b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body, KEEP)


CASES.update({
    "/frm/echo": case_echo,
    # The path a Location of "/frm/a b\xc3\xa9" becomes once escaped (upper-case hex).
    "/frm/a%20b%C3%A9": case_echo,
    "/frm/lf": raw(FRM_LF + b"ok", KEEP),
    "/frm/lf-interim": raw(b"HTTP/1.1 100 Continue\n\n" + FRM_LF + b"ok", KEEP),
    "/frm/lf-chunked": raw(
        b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\r\nok\r\n0\r\n\r\n", KEEP),
    "/frm/lf-chunk-size": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n", KEEP),
    "/frm/lf-trailer": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nT: v\n\r\n", KEEP),
    "/frm/bare-cr": raw(b"HTTP/1.1 200 OK\nX: a\rb\nContent-Length: 2\n\nok", KEEP),
    "/frm/http12": raw(b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", KEEP),
    "/frm/http12-chunked": raw(
        b"HTTP/1.2 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", KEEP),
    "/frm/http20": raw(b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", KEEP),
    "/frm/status": frm_status,
    "/frm/interim-199": raw(b"HTTP/1.1 199 Odd\r\nX: y\r\n\r\n" + OK, KEEP),
    "/frm/399": frm_redirect(b"/frm/echo", b"399 Odd"),
    "/frm/300": frm_redirect(b"/frm/echo", b"300 Multiple Choices"),
    "/frm/zeros": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 40 + b"2\r\nok\r\n"
        + b"0" * 40 + b"\r\n\r\n", KEEP),
    "/frm/loc-space": frm_redirect(b"/frm/echo?q=a b c"),
    "/frm/loc-path": frm_redirect(b"/frm/a b\xc3\xa9"),
    "/frm/loc-8bit": frm_redirect(b"/frm/echo?q=caf\xc3\xa9\xff"),
    "/frm/loc-tab": frm_redirect(b"/frm/echo?q=a\tb"),
    "/frm/loc-empty": frm_redirect(b""),
    "/frm/loc-blank": frm_redirect(b" \t "),
    "/frm/loc-crlf": frm_redirect(b"/frm/echo?x=%0d%0aX-Injected:%20yes"),
    "/frm/loc-crlf-host": frm_redirect(b"http://evil%0d%0aX-Injected%3a%20yes/frm/echo"),
})


# ---- /atk12/: framing rules attacked (tests/http/test-attack12.c) ----


def atk12_raw(c, req):
    """Writes the bytes of ?b= (hex) as the whole response (?step=N&ms=M: N bytes at a time, M ms
    apart); ?close=1 closes after them, else the connection serves the next request."""
    data = bytes.fromhex((req.query.get("b") or [""])[0])
    ta_send(c, req, data)   # ?step=N&ms=M: in pieces of N bytes, M ms apart
    return CLOSE if req.qint("close", 0) else KEEP


def atk12_port(c, req):
    """200 whose body is the client's source port: which connection carried the request."""
    body = b"%d" % c.sock.getpeername()[1]
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return KEEP


CASES.update({
    "/atk12/raw": atk12_raw,
    "/atk12/port": atk12_port,
})


# The allocation-failure torture (tests/http/test-alloc-torture.c): a redirect that sets a
# cookie, then a gzip-coded chunked echo of what the request carried, so that a request whose
# header, cookie or coding was dropped silently cannot pass for a good one.
TORT_TEXT = b"".join(b"line %d of the torture body\n" % i for i in range(3000))


def tort_start(c, req):
    """302 to ?to= (default /torture/echo) with "Set-Cookie: tort=1; Path=/"."""
    to = (req.query.get("to") or ["/torture/echo"])[0]
    c.send(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nSet-Cookie: tort=1; Path=/\r\n"
           b"Content-Length: 0\r\n\r\n" % to.encode("latin-1"))
    return KEEP


def tort_echo(c, req):
    """The request's Cookie, X-Torture, Accept-Encoding and User-Agent ("-" when absent), one
    "name: value" line each, then TORT_TEXT: gzip-coded, chunked in 4,000-byte chunks."""
    lines = b"".join(b"%s: %s\n" % (n.encode(), (req.header(n) or "-").encode("latin-1"))
                     for n in ("cookie", "x-torture", "accept-encoding", "user-agent"))
    coded = cod_gzip(lines + TORT_TEXT)
    body = b"".join(b"%x\r\n%s\r\n" % (len(coded[i:i + 4000]), coded[i:i + 4000])
                    for i in range(0, len(coded), 4000)) + b"0\r\n\r\n"
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
           b"X-Torture-Reply: ok\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    return KEEP


CASES.update({
    "/torture/start": tort_start,
    "/torture/echo": tort_echo,
})


REUSED = b"HTTP/1.1 500 Reused\r\nConnection: close\r\nContent-Length: 7\r\n\r\nreused\n"


def serve(sock, addr):
    bump("connections")
    bump("active")
    c = Conn(sock, addr)
    try:
        while True:
            try:
                req = c.read_request()
            except socket.timeout:
                return
            bump("requests")
            c.idle_timeout = IDLE_TIMEOUT
            if c.reuse_trap:
                c.send(REUSED)
                return
            if c.drop_next:
                return
            case = CASES.get(req.path)
            if case is None:
                c.send(simple(404, b"no such case: " + req.path.encode("latin-1", "replace")
                              + b"\n"))
                result = KEEP
            else:
                result = case(c, req)
            if result == DONE:
                return
            if result == CLOSE or req.wants_close():
                c.linger_close()
                return
    except (Closed, OSError):
        pass
    except Exception as e:                      # never let a case kill the server
        sys.stderr.write("hostile: %s: %r\n" % (addr, e))
    finally:
        bump("active", -1)
        try:
            sock.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description="misbehaving HTTP/1.1 test server")
    ap.add_argument("--fd", type=int, help="inherited listening socket")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda n, f: os._exit(0))
    signal.signal(signal.SIGINT, lambda n, f: os._exit(0))

    if args.fd is not None:
        lsock = socket.socket(fileno=args.fd)
    else:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((args.host, args.port))
    lsock.listen(1024)
    lsock.settimeout(None)
    host, port = lsock.getsockname()[:2]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print("hostile: listening on %s:%d" % (host, port), flush=True)

    while True:
        try:
            sock, addr = lsock.accept()
        except InterruptedError:
            continue
        except OSError as e:
            sys.stderr.write("hostile: accept: %s\n" % e)
            time.sleep(0.05)
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = threading.Thread(target=serve, args=(sock, addr), daemon=True)
        t.start()


if __name__ == "__main__":
    main()
