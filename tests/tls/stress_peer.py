#!/usr/bin/python3
"""stress_peer.py: a TLS server for test-tls-stress that decides where TLS records and TCP sends
begin and end, and what happens on a connection while it is idle.

Usage: stress_peer.py CERT KEY

Prints "P13 P12 P" (a port speaking TLS 1.2 and 1.3, a port speaking TLS 1.2 only, a port
speaking plain HTTP, for redirects between the schemes) on one line of stdout, then serves on 127.0.0.1 until stdin reaches its end. Each connection has its own thread.
OpenSSL runs over memory BIOs (ssl.SSLObject): every write() is one record, and the records go
out only when the server flushes, as one send, so a test chooses the TCP segments.

Requests (the query parameters are all optional):

  /r            a response. size=N body bytes (byte i is (i * 7 + tag) % 251); tag=T;
                rec=K plaintext bytes per body record (default 16384); hrec=K the same for
                the head; chunked=1 (a chunk per record); X-Tag: T in the head; status=S (204 and 304 have no body; HEAD never has one);
                flush=each (a send per record; default: the whole response in one send);
                cut=K (the last K wire bytes are never sent: the server stays silent, the
                connection open); split=K (the last K wire bytes go out 300 ms after the rest);
                kumid=1 (a TLS 1.3 KeyUpdate asking for the client's own, halfway through the
                body); close=1 (Connection: close, then close_notify and close);
                after=ACTION with delay=MS and ev=NAME: MS after the response, on the idle
                connection, ACTION is one of close_notify (then the socket stays open),
                close (close_notify and FIN), reset (an RST), fin (FIN without close_notify),
                ticket (a new TLS 1.3 session ticket), keyupdate (a TLS 1.3 KeyUpdate asking
                for the client's), garbage (a record of application bytes nobody asked for);
                the event NAME is marked done once it was sent; tail=ticket or tail=garbage
                puts a ticket or the garbage record in the same send as the response.
  /wait         answers when event ev=NAME is done (at most 10 s: then 504).
  /echo         reads the request body (Content-Length or chunked) and answers with its length
                and SHA-256 ("LEN HEX"). With "Expect: 100-continue": mode=continue (default)
                sends 100 Continue first, mode=silent sends nothing and reads the body when it
                comes, mode=final answers 417 at once, without reading the body (and keeps the
                connection: the body still to come is read and dropped before the next request);
                poke=ACTION (keyupdate, ticket) does an after= action halfway through a
                body framed by Content-Length, while the client is still sending;
                early=1 answers 413 with Connection: close as soon as the head is read, then
                reads and drops whatever comes for 2 s, then closes.
  /redir        302 to the URL in to=URL.
  /conn         answers with the number of requests this connection served before (0 first).
"""
import ctypes
import hashlib
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

events = {}
events_lock = threading.Lock()


def event(name):
    with events_lock:
        e = events.get(name)
        if e is None:
            e = events[name] = threading.Event()
        return e


try:
    libssl = ctypes.CDLL("libssl.so.3")
    libssl.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
    libssl.SSL_new_session_ticket.argtypes = [ctypes.c_void_p]
    libssl.SSL_version.argtypes = [ctypes.c_void_p]
    libssl.SSL_is_server.argtypes = [ctypes.c_void_p]
except OSError:
    libssl = None


def ssl_pointer(obj):
    """None for a plain connection. The SSL * inside an ssl.SSLObject: _ssl's PySSLSocket starts with the object header
    (refcount and type), then the socket's weak reference, then the SSL pointer. Checked: a
    server SSL of TLS 1.3 or 1.2, else None."""
    if libssl is None or isinstance(obj, PlainObj):
        return None
    inner = obj._sslobj
    p = ctypes.c_void_p.from_address(id(inner) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    if not p or libssl.SSL_is_server(p) != 1 or libssl.SSL_version(p) not in (0x0303, 0x0304):
        return None
    return p


def body_bytes(size, tag):
    # 7 and 251 are coprime: the pattern repeats every 251 bytes.
    block = bytes((i * 7 + tag) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


class PlainObj:
    """What Conn uses of ssl.SSLObject, without TLS: writes go to the outgoing buffer as they
    are, reads take what came in."""

    def __init__(self, inc, out):
        self.inc, self.out = inc, out

    def do_handshake(self):
        pass

    def write(self, data):
        self.out.write(data)

    def read(self, n):
        if self.inc.pending:
            return self.inc.read(n)
        if self.inc.eof:
            return b""
        raise ssl.SSLWantReadError()

    def unwrap(self):
        pass


class Conn:
    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        if ctx is None:
            self.obj = PlainObj(self.inc, self.out)
        else:
            self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.plain = bytearray()
        self.closed = False

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def pull(self, timeout=None):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        except OSError:
            data = b""
        finally:
            self.sock.settimeout(None)
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                if not self.pull():
                    raise EOFError
        self.flush()

    def fill(self, timeout=None):
        """More plaintext into self.plain: True, False at the end, None on timeout."""
        while True:
            try:
                data = self.obj.read(65536)
                if not data:
                    return False
                self.plain += data
                self.flush()  # a KeyUpdate's answer, say
                return True
            except ssl.SSLWantReadError:
                self.flush()
                got = self.pull(timeout)
                if got is not True:
                    return got
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return False

    def read_until(self, marker):
        while marker not in self.plain:
            if not self.fill():
                return None
        i = self.plain.index(marker) + len(marker)
        out = bytes(self.plain[:i])
        del self.plain[:i]
        return out

    def read_exact(self, n):
        while len(self.plain) < n:
            if not self.fill():
                return None
        out = bytes(self.plain[:n])
        del self.plain[:n]
        return out

    def write(self, data, rec=16384):
        for i in range(0, len(data), rec):
            self.obj.write(data[i:i + rec])

    def close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError, OSError):
            pass
        try:
            self.flush()
        except OSError:
            pass


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    hdrs = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    u = urllib.parse.urlsplit(target)
    q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
    return method, u.path, q, hdrs


def read_body(c, hdrs, poke=None):
    """The request body; poke (an idle_action name) is done once half of a body framed by
    Content-Length has been read, while the client is still sending."""
    if poke and hdrs.get("transfer-encoding", "").lower() != "chunked":
        n = int(hdrs.get("content-length", "0"))
        first = c.read_exact(n // 2)
        if first is None:
            return None
        idle_action(c, poke)
        rest = c.read_exact(n - n // 2)
        return None if rest is None else first + rest
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            line = c.read_until(b"\r\n")
            if line is None:
                return None
            n = int(line.split(b";")[0], 16)
            if n == 0:
                if c.read_until(b"\r\n") is None:
                    return None
                return body
            data = c.read_exact(n + 2)
            if data is None:
                return None
            body += data[:-2]
    return c.read_exact(int(hdrs.get("content-length", "0")))


def respond(c, status, body=b"", extra=(), close=False):
    reason = {200: "OK", 100: "Continue", 302: "Found", 413: "Too Large", 417: "Expectation Failed",
              504: "Timeout"}.get(status, "X")
    h = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (status, reason, len(body))
    for k, v in extra:
        h += "%s: %s\r\n" % (k, v)
    if close:
        h += "Connection: close\r\n"
    c.obj.write(h.encode() + b"\r\n" + body)
    c.flush()


def idle_action(c, action, flush=True):
    p = ssl_pointer(c.obj)
    if action == "close_notify":
        c.close_notify()
    elif action == "close":
        c.close_notify()
        c.sock.shutdown(socket.SHUT_WR)
    elif action == "fin":
        c.sock.shutdown(socket.SHUT_WR)
    elif action == "reset":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()
        c.closed = True
    elif action == "ticket":
        if p is None or libssl.SSL_new_session_ticket(p) != 1:
            raise RuntimeError("no ticket")
        c.obj.do_handshake()
        if flush:
            c.flush()
    elif action == "keyupdate":
        if p is None or libssl.SSL_key_update(p, 1) != 1:
            raise RuntimeError("no key update")
        c.obj.do_handshake()
        c.flush()
    elif action == "garbage":
        c.obj.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad")
        if flush:
            c.flush()


def serve_r(c, method, q):
    size = int(q.get("size", "0"))
    tag = int(q.get("tag", "0"))
    rec = int(q.get("rec", "16384"))
    status = int(q.get("status", "200"))
    chunked = q.get("chunked") == "1"
    close = q.get("close") == "1"
    nobody = method == "HEAD" or status in (204, 304)
    h = "HTTP/1.1 %d X\r\n" % status
    if status == 204:
        pass
    elif chunked:
        h += "Transfer-Encoding: chunked\r\n"
    else:
        h += "Content-Length: %d\r\n" % size
    h += "X-Tag: %d\r\n" % tag
    if close:
        h += "Connection: close\r\n"
    c.write(h.encode() + b"\r\n", int(q.get("hrec", "16384")))
    each = q.get("flush") == "each"
    if each:
        c.flush()
    if not nobody:
        body = body_bytes(size, tag)
        pieces = [body[i:i + rec] for i in range(0, len(body), rec)]
        for k, piece in enumerate(pieces):
            if q.get("kumid") == "1" and k == len(pieces) // 2:
                c.flush()
                p = ssl_pointer(c.obj)
                if p is None or libssl.SSL_key_update(p, 1) != 1:
                    raise RuntimeError("no key update")
                c.obj.do_handshake()
                c.flush()
            if chunked:
                c.obj.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                c.obj.write(piece)
            if each:
                c.flush()
        if chunked:
            c.obj.write(b"0\r\n\r\n")
    if q.get("tail") in ("ticket", "garbage"):
        # In the same send as the response: housekeeping the client reads ahead with it, or
        # bytes nobody asked for.
        idle_action(c, q["tail"], flush=False)
    data = c.out.read()
    if "cut" in q:
        k = int(q["cut"])
        c.sock.sendall(data[:len(data) - k])
        # Silent with the connection open until the client goes away.
        while c.pull(30) is True:
            pass
        c.closed = True
        return False
    if "split" in q:
        k = int(q["split"])
        c.sock.sendall(data[:len(data) - k])
        time.sleep(0.3)
        c.sock.sendall(data[len(data) - k:])
    else:
        c.sock.sendall(data)
    if close:
        c.close_notify()
        return False
    if "after" in q:
        # The client sends nothing on this connection before the event is done (it waits for
        # it through /wait on another connection): the action happens while it is idle.
        time.sleep(int(q.get("delay", "0")) / 1000)
        try:
            idle_action(c, q["after"])
        except Exception as e:  # the client may be gone: the event still ends
            sys.stderr.write("stress_peer: %s: %r\n" % (q["after"], e))
        if "ev" in q:
            event(q["ev"]).set()
    return True


def serve(sock, ctx):
    c = Conn(sock, ctx)
    served = 0
    try:
        c.handshake()
        while not c.closed:
            head = c.read_until(b"\r\n\r\n")
            if head is None:
                break
            method, path, q, hdrs = parse_head(head)
            if path == "/r":
                if not serve_r(c, method, q):
                    break
            elif path == "/wait":
                ok = event(q.get("ev", "")).wait(10)
                respond(c, 200 if ok else 504, b"ok" if ok else b"")
            elif path == "/conn":
                respond(c, 200, str(served).encode())
            elif path == "/redir":
                respond(c, 302, b"", [("Location", q.get("to", "/"))])
            elif path == "/echo":
                expect = hdrs.get("expect", "").lower() == "100-continue"
                mode = q.get("mode", "continue")
                if q.get("early") == "1":
                    respond(c, 413, b"too large", close=True)
                    end = time.monotonic() + 2
                    while time.monotonic() < end and c.fill(0.2) is not False:
                        del c.plain[:]
                    c.close_notify()
                    break
                if expect and mode == "final":
                    respond(c, 417, b"no")
                    body = read_body(c, hdrs)
                    if body is None:
                        break
                    served += 1
                    continue
                if expect and mode == "continue":
                    c.obj.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    c.flush()
                body = read_body(c, hdrs, q.get("poke"))
                if body is None:
                    break
                respond(c, 200, b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode()))
            else:
                respond(c, 404, b"no")
            served += 1
    except (EOFError, OSError, ssl.SSLError):
        pass  # the client went away, or wrote after a close_notify: the connection ends
    finally:
        if not c.closed:
            try:
                sock.close()
            except OSError:
                pass


def listener(ctx):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(512)

    def accept():
        while True:
            conn, _ = s.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve, args=(conn, ctx), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return s.getsockname()[1]


def main():
    cert, key = sys.argv[1], sys.argv[2]
    ports = []
    for top in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = top
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["http/1.1"])
        ports.append(listener(ctx))
    ports.append(listener(None))
    print("%d %d %d" % tuple(ports), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
