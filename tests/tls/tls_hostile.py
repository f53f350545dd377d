#!/usr/bin/python3
"""tls_hostile.py: a misbehaving TLS server for the TLS transport's tests (stdlib only).

Usage: tls_hostile.py --dir DIR

Makes a throwaway CA and a leaf for localhost and 127.0.0.1 (EC P-256, the openssl CLI) in DIR
(DIR/ca.pem is the CA a client trusts), listens on 127.0.0.1 on several kernel-picked ports and
prints one line "NAME=PORT NAME=PORT ...\\n" on stdout when ready. Runs until stdin reaches EOF
(so it dies with the test that started it) or it gets SIGTERM.

TLS goes through ssl.MemoryBIO, not a wrapped socket: the server decides which bytes reach the
socket and when, so it can cut records small, send many of them in one write, hold back part of
a flight, and close the TCP connection with or without a close_notify before it.

Ports and what a connection to each gets:

  tls       TLS 1.2 or 1.3 with the leaf, ALPN http/1.1 when offered; then HTTP/1.1
            keep-alive, the request path picks the response (below)
  tls13     the same, TLS 1.3 only
  noalpn    the same as tls, but selects no ALPN protocol
  close     reads the ClientHello, closes (FIN)
  reset     reads the ClientHello, resets (RST: SO_LINGER 0)
  silent    reads the ClientHello, never answers, closes when the client does
  partial   a real handshake whose first server flight is cut in half; then silence
  garbage   reads the ClientHello, answers bytes that are not TLS at all; then silence
  badrecord reads the ClientHello, answers a well-formed handshake record holding a ServerHello
            whose session id length runs past its end; then silence
  plain     an HTTP server without TLS: reads the ClientHello, answers "400 Bad Request", closes

Paths on the tls, tls13 and noalpn ports (query parameters in brackets, defaults after "="). Bodies are
the pattern body(n, seed): byte i is "a" + ((i * 2654435761 + seed) mod 2^32 >> 24) mod 26.

  /ok                         "ok", Content-Length, kept alive
  /data[n=0,seed=0,rec=0]     body(n, seed) with Content-Length, kept alive; rec > 0 writes head
                              and body as TLS records of at most rec bytes (rec=0: one write, so
                              16 KiB records); the whole response leaves in one send
  /close-delimited[n,seed,notify=0]
                              body(n, seed) without Content-Length or chunking, Connection: close;
                              then notify=0: TCP close without close_notify; notify=1:
                              close_notify then TCP close; notify=2: close_notify, and the TCP
                              connection stays open until the client closes it
  /length-close[n,seed]       body(n, seed) with Content-Length (no Connection: close), then a
                              TCP close without close_notify
  /chunked-close[n,seed]      the same, chunked
  /short-length[n,seed,notify=0]
                              Content-Length n, half of body(n, seed), then close as for
                              /close-delimited (notify=0 or 1)
  /reset-mid-body[n,seed]     Content-Length n, half of the body, then a reset
  /corrupt-record[n,seed]     Content-Length n, half of the body, then the rest with one byte of
                              ciphertext flipped (a bad record MAC); then silence
  /oversized-record[n,seed]   Content-Length n, half of the body, then a record header announcing
                              65535 bytes; then silence
  /cut-record[n,seed]         Content-Length n, half of the body, then half of the rest's records
                              (a record cut in the middle), then a TCP close
  /idle-notify[ms=50,fin=0]   "ok" kept alive; ms later a close_notify, and with fin=1 a TCP close
                              too (fin=0: the TCP connection stays open until the client closes)
  /idle-reset[ms=50]          "ok" kept alive; ms later a reset
  /slow-body[n=1000,ms=50]    Content-Length n, the head at once, then one byte every ms
  /upload[]                   reads the whole request body (Content-Length or chunked), answers
                              "LEN SUM" (byte count, and byte sum mod 2^32)
  /upload-reset[after=65536,fin=0]
                              reads after bytes of the request body, then resets (fin=1: closes,
                              with the rest of the body unread, which makes the kernel reset)

"Expect: 100-continue" is answered with "100 Continue". Paths not listed get 404.
"""

import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

HOLD_S = 20  # how long a silent or half-closed connection waits for the client at most


def body(n, seed):
    return bytes(97 + (((i * 2654435761 + seed) & 0xFFFFFFFF) >> 24) % 26 for i in range(n))


def make_certs(d):
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=d, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
        "/CN=asyncget tls_hostile test CA")
    run("req", "-new", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
        "2", "-days", "2", "-extfile", "leaf.ext", "-out", "leaf.pem")
    return os.path.join(d, "leaf.pem"), os.path.join(d, "leaf.key")


def reset(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def hold(sock):
    """Wait, silent, until the client closes (or HOLD_S passes), then close."""
    deadline = time.monotonic() + HOLD_S
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([sock], [], [], 0.5)
            if r and not sock.recv(65536):
                break
    except OSError:
        pass
    sock.close()


def read_hello(sock):
    """Read what the client sent first (its ClientHello), at most 2 s."""
    sock.settimeout(2)
    try:
        return sock.recv(65536)
    except OSError:
        return b""
    finally:
        sock.settimeout(None)


class Tls:
    """One server-side TLS connection over a socket, through memory BIOs."""

    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.plain = bytearray()  # decrypted bytes not consumed yet (appends stay linear)

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            self.inc.write_eof()
            return False
        self.inc.write(d)
        return True

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return True
            except ssl.SSLWantReadError:
                self.flush()
                if not self.fill():
                    return False
            except ssl.SSLError:
                # A refused handshake: let the client read the alert that says why.
                self.flush()
                return False

    def recv_some(self):
        """More plaintext into self.plain; False at EOF or close_notify."""
        while True:
            try:
                d = self.obj.read(65536)
                if not d:
                    return False
                self.plain += d
                return True
            except ssl.SSLWantReadError:
                self.flush()
                if not self.fill():
                    return False
            except ssl.SSLZeroReturnError:
                return False

    def read_until(self, sep):
        while sep not in self.plain:
            if not self.recv_some():
                return None
        i = self.plain.index(sep) + len(sep)
        out = bytes(self.plain[:i])
        del self.plain[:i]
        return out

    def read_n(self, n):
        while len(self.plain) < n:
            if not self.recv_some():
                return None
        out = bytes(self.plain[:n])
        del self.plain[:n]
        return out

    def write(self, data, rec=0, send=True):
        """Encrypt data as records of at most rec bytes (0: as OpenSSL cuts it); send unless
        send is False (then the records wait in self.out for the next flush)."""
        if rec > 0:
            for i in range(0, len(data), rec):
                self.obj.write(data[i:i + rec])
        elif data:
            self.obj.write(data)
        if send:
            self.flush()

    def notify(self):
        """Send a close_notify (without waiting for the client's)."""
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self.flush()


def head(status, fields):
    return ("HTTP/1.1 %s\r\n%s\r\n" % (status, "".join("%s: %s\r\n" % f for f in fields))).encode()


def respond(t, method, path, q, headers):
    """Answer one request; returns False when the connection is over."""
    def qi(name, default):
        return int(q.get(name, [default])[0])

    n, seed = qi("n", 0), qi("seed", 0)
    if path == "/ok":
        t.write(head("200 OK", [("Content-Length", 2)]) + b"ok")
        return True
    if path == "/data":
        t.write(head("200 OK", [("Content-Length", n)]) + body(n, seed), rec=qi("rec", 0))
        return True
    if path == "/close-delimited":
        t.write(head("200 OK", [("Connection", "close")]) + body(n, seed))
        return end(t, qi("notify", 0))
    if path == "/length-close":
        t.write(head("200 OK", [("Content-Length", n)]) + body(n, seed))
        return end(t, 0)
    if path == "/chunked-close":
        b = body(n, seed)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(b[i:i + 1000]), b[i:i + 1000])
                          for i in range(0, n, 1000))
        t.write(head("200 OK", [("Transfer-Encoding", "chunked")]) + chunks + b"0\r\n\r\n")
        return end(t, 0)
    if path == "/short-length":
        t.write(head("200 OK", [("Content-Length", n)]) + body(n, seed)[:n // 2])
        return end(t, qi("notify", 0))
    if path in ("/corrupt-record", "/oversized-record", "/cut-record"):
        # Half the body as it should be; then the other half's records with one ciphertext byte
        # flipped, or a record header that announces 65535 bytes (more than TLS allows), or the
        # first half of the next record followed by a TCP close.
        b = body(n, seed)
        t.write(head("200 OK", [("Content-Length", n)]) + b[:n // 2])
        t.write(b[n // 2:], send=False)
        rest = bytearray(t.out.read())
        if path == "/corrupt-record":
            rest[len(rest) // 2] ^= 0x40
            t.sock.sendall(rest)
            hold(t.sock)
        elif path == "/oversized-record":
            t.sock.sendall(b"\x17\x03\x03\xff\xff" + b"\x00" * 512)
            hold(t.sock)
        else:
            t.sock.sendall(rest[:len(rest) // 2])
            t.sock.close()
        return False
    if path == "/reset-mid-body":
        t.write(head("200 OK", [("Content-Length", n)]) + body(n, seed)[:n // 2])
        time.sleep(0.05)
        reset(t.sock)
        return False
    if path == "/idle-notify":
        t.write(head("200 OK", [("Content-Length", 2)]) + b"ok")
        time.sleep(qi("ms", 50) / 1000)
        t.notify()
        if qi("fin", 0):
            t.sock.close()
        else:
            hold(t.sock)
        return False
    if path == "/idle-reset":
        t.write(head("200 OK", [("Content-Length", 2)]) + b"ok")
        time.sleep(qi("ms", 50) / 1000)
        reset(t.sock)
        return False
    if path == "/slow-body":
        n = qi("n", 1000)
        t.write(head("200 OK", [("Content-Length", n)]))
        b = body(n, seed)
        for i in range(n):
            time.sleep(qi("ms", 50) / 1000)
            t.write(b[i:i + 1])
        return True
    if path in ("/upload", "/upload-reset"):
        if headers.get("expect", "").lower() == "100-continue":
            t.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if path == "/upload-reset":
            if t.read_n(qi("after", 65536)) is not None and not qi("fin", 0):
                reset(t.sock)
            else:
                t.sock.close()
            return False
        total = csum = 0
        if "content-length" in headers:
            data = t.read_n(int(headers["content-length"]))
            if data is None:
                return False
            total, csum = len(data), sum(data)
        else:
            while True:
                line = t.read_until(b"\r\n")
                if line is None:
                    return False
                size = int(line.split(b";")[0], 16)
                data = t.read_n(size + 2)
                if data is None:
                    return False
                if size == 0:
                    break
                total += size
                csum += sum(data[:size])
        answer = b"%d %d" % (total, csum & 0xFFFFFFFF)
        t.write(head("200 OK", [("Content-Length", len(answer))]) + answer)
        return True
    t.write(head("404 Not Found", [("Content-Length", 0)]))
    return True


def end(t, notify):
    """Close after a response: 0 TCP only, 1 close_notify then TCP, 2 close_notify and wait."""
    if notify:
        t.notify()
    if notify == 2:
        hold(t.sock)
    else:
        t.sock.close()
    return False


def serve_tls(sock, ctx):
    t = Tls(sock, ctx)
    if not t.handshake():
        sock.close()
        return
    while True:
        h = t.read_until(b"\r\n\r\n")
        if h is None:
            break
        lines = h.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        u = urllib.parse.urlsplit(target)
        if not respond(t, method, u.path, urllib.parse.parse_qs(u.query), headers):
            return
    sock.close()


def serve_close(sock):
    read_hello(sock)
    sock.close()


def serve_reset(sock):
    read_hello(sock)
    reset(sock)


def serve_silent(sock):
    read_hello(sock)
    hold(sock)


def serve_partial(sock, ctx):
    t = Tls(sock, ctx)
    if not t.fill():
        sock.close()
        return
    try:
        t.obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    flight = t.out.read()
    sock.sendall(flight[:len(flight) // 2])
    hold(sock)


def serve_garbage(sock):
    read_hello(sock)
    sock.sendall(b"\x00\xffthis is not TLS at all, just bytes\r\n" * 4)
    hold(sock)


def serve_badrecord(sock):
    read_hello(sock)
    # A handshake record (22, TLS 1.2) holding a ServerHello (2) of consistent lengths whose
    # session id claims 255 bytes where 5 are left: a decode error, not a wait for more bytes.
    hello = b"\x03\x03" + b"\xa5" * 32 + b"\xff" + b"\x00" * 5
    inner = b"\x02" + struct.pack(">I", len(hello))[1:] + hello
    sock.sendall(b"\x16\x03\x03" + struct.pack(">H", len(inner)) + inner)
    hold(sock)


def serve_plain(sock):
    read_hello(sock)
    msg = b"Bad Request"
    sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (len(msg), msg))
    sock.close()


def guarded(fn, *args):
    try:
        fn(*args)
    except (OSError, ssl.SSLError, ValueError):
        # The client went away or sent something we cannot parse: the connection simply ends.
        try:
            args[0].close()
        except OSError:
            pass


def listen(fn, *extra):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(512)

    def loop():
        while True:
            c, _ = s.accept()
            # As web servers do: without it, Nagle holds a response behind the ACK of the session
            # tickets sent just before it (a delayed ACK, 40 ms), and a reset meant for an idle
            # connection would destroy a response still waiting in the kernel.
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=guarded, args=(fn, c) + extra, daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return s.getsockname()[1]


def main():
    args = sys.argv[1:]
    if len(args) != 2 or args[0] != "--dir":
        sys.stderr.write("usage: tls_hostile.py --dir DIR\n")
        sys.exit(2)
    cert, key = make_certs(args[1])

    def context(minimum, alpn):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.minimum_version = minimum
        c.load_cert_chain(cert, key)
        if alpn:
            c.set_alpn_protocols(["http/1.1"])
        return c

    ctx = context(ssl.TLSVersion.TLSv1_2, True)
    ports = [
        ("tls", listen(serve_tls, ctx)),
        ("tls13", listen(serve_tls, context(ssl.TLSVersion.TLSv1_3, True))),
        ("noalpn", listen(serve_tls, context(ssl.TLSVersion.TLSv1_2, False))),
        ("close", listen(serve_close)),
        ("reset", listen(serve_reset)),
        ("silent", listen(serve_silent)),
        ("partial", listen(serve_partial, ctx)),
        ("garbage", listen(serve_garbage)),
        ("badrecord", listen(serve_badrecord)),
        ("plain", listen(serve_plain)),
    ]
    sys.stdout.write(" ".join("%s=%d" % p for p in ports) + "\n")
    sys.stdout.flush()
    # Run until the parent closes our stdin (or dies).
    while True:
        r, _, _ = select.select([sys.stdin], [], [])
        if r and not os.read(sys.stdin.fileno(), 4096):
            break
    os._exit(0)


if __name__ == "__main__":
    main()
