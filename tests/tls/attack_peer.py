#!/usr/bin/python3
"""attack_peer.py: hostile TLS servers for test-tls-attack, one loopback port per behaviour.

Usage: attack_peer.py CERT KEY

Serves the certificate CERT (key KEY) on 127.0.0.1, one kernel-picked port per mode below, and
prints "MODE PORT" for each, then "ready", on stdout. Runs until stdin reaches its end (the test
that started it exits or closes the pipe).

The TLS side is Python's ssl module over memory BIOs (ssl.SSLObject), so the bytes that reach
the socket are ours to cut, hold back or replace; what the module does not offer (key updates,
new session tickets, renegotiation) is asked of the same libssl through ctypes on the SSL object
that the module wraps.

Modes (each connection: the handshake, then the request head is read, then):
  stall_body      a head with Content-Length: 100 and 10 body bytes, then half of the record
                  holding the next 90 bytes; nothing more until the client closes
  stall_head      half of the record holding the response head; nothing more
  garbage         bytes that are not TLS records
  huge_record     an application data record header announcing 65535 bytes, and those bytes
  alert_mid       a head with Content-Length: 1000 and 500 body bytes, then a fatal alert (the
                  server's own OpenSSL answers a forged record with bad_record_mac)
  notify_mid      a head with Content-Length: 1000 and 500 body bytes, then close_notify
  eof_delim       a body delimited by the close (Connection: close), then a TCP close without
                  close_notify
  notify_delim    the same, with close_notify before the close
  keyupdate       TLS 1.3: 200 key updates that ask for an answer, each with a slice of a
                  64 KiB body ("k" * 65536)
  tickets         TLS 1.3: 500 new session tickets, then "ok"
  idle_notify     "ok" with keep-alive, then close_notify 300 ms later while the connection idles
  idle_keyupdate  "ok" with keep-alive, then a key update and 3 tickets while it idles; the next
                  request on the connection gets "ok" again
  idle_bytes      "ok" with keep-alive, then an application data record "X" while it idles
  notify_after    "ok" with keep-alive and close_notify in the same send; the TCP connection
                  stays open
  bytes_after     "ok" with keep-alive and a record "X" in the same send
  reneg           TLS 1.2 only: a HelloRequest (renegotiation) before the response "ok"
  anon            TLS 1.2 only, no certificate: an anonymous (AECDH) cipher, then "ok"
  hs_close        reads the ClientHello and closes
  hs_reset        reads the ClientHello and resets (SO_LINGER 0)
  hs_silent       never answers the ClientHello
  hs_half         half of its first flight, then nothing
  plain           answers the ClientHello with a plain HTTP 400 and closes
  upload_reset    reads the request head and 64 KiB of its body, then resets
  idle_reset      "ok" with keep-alive, then a reset 200 ms later while the connection idles
  echo_close      "ok" with keep-alive for every request on the connection
  redirect        a 302 to the URL after "?" in the request's target
  early_413       answers the request head at once with a 413 (Connection: close), reads nothing
                  more for 2 s (an upload fills the socket buffers), then close_notify
"""
import ctypes
import os
import socket
import ssl
import struct
import sys
import threading
import time

CERT, KEY = sys.argv[1], sys.argv[2]

libssl = ctypes.CDLL("libssl.so.3")
for name, args, res in [
    ("SSL_key_update", [ctypes.c_void_p, ctypes.c_int], ctypes.c_int),
    ("SSL_new_session_ticket", [ctypes.c_void_p], ctypes.c_int),
    ("SSL_renegotiate", [ctypes.c_void_p], ctypes.c_int),
    ("SSL_do_handshake", [ctypes.c_void_p], ctypes.c_int),
    ("SSL_version", [ctypes.c_void_p], ctypes.c_int),
]:
    f = getattr(libssl, name)
    f.argtypes = args
    f.restype = res


def ssl_ptr(obj):
    """The SSL * of an ssl.SSLObject: the second pointer after the object header of the C
    object the module wraps (PySSLSocket: PyObject_HEAD, Socket, ssl)."""
    p = ctypes.c_void_p.from_address(id(obj._sslobj) + 3 * ctypes.sizeof(ctypes.c_void_p))
    return p.value


def context(max12=False, anon=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if anon:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("AECDH:@SECLEVEL=0")
        return ctx
    ctx.load_cert_chain(CERT, KEY)
    if max12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Conn:
    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.buf = b""

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def feed(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.inc.write(data)

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.feed()
        self.flush()

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            try:
                self.buf += self.obj.read(65536)
            except ssl.SSLWantReadError:
                self.flush()
                self.feed()
            except ssl.SSLZeroReturnError:
                raise EOFError
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def records(self, data):
        """The bytes of data encrypted, not sent."""
        self.flush()
        self.obj.write(data)
        return self.out.read()

    def send(self, data):
        self.sock.sendall(self.records(data))

    def close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self.flush()

    def hold(self, limit=60):
        """Keep the connection open until the client closes it (or limit seconds)."""
        self.sock.settimeout(limit)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def m_stall_body(c):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
    rec = c.records(b"b" * 90)
    c.sock.sendall(rec[: len(rec) // 2])
    c.hold()


def m_stall_head(c):
    rec = c.records(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.sock.sendall(rec[: len(rec) // 2])
    c.hold()


def m_garbage(c):
    c.sock.sendall(b"this is not a TLS record\r\n" * 100)
    c.hold(5)


def m_huge_record(c):
    c.sock.sendall(b"\x17\x03\x03\xff\xff" + os.urandom(65535))
    c.hold(5)


def m_alert_mid(c):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 500)
    # A record the server cannot decrypt makes its OpenSSL send a fatal alert, encrypted under
    # the connection's keys, as a real server's would be.
    c.inc.write(b"\x17\x03\x03\x00\x40" + os.urandom(64))
    try:
        c.obj.read(1)
    except ssl.SSLError:
        pass
    c.flush()
    c.hold(5)


def m_notify_mid(c):
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 500)
    c.close_notify()
    c.hold(5)


def m_eof_delim(c):
    c.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"d" * 5000)
    c.sock.shutdown(socket.SHUT_WR)
    c.hold(5)


def m_notify_delim(c):
    c.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"d" * 5000)
    c.close_notify()
    c.sock.shutdown(socket.SHUT_WR)
    c.hold(5)


def m_keyupdate(c):
    p = ssl_ptr(c.obj)
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n")
    body = b"k" * 65536
    piece = len(body) // 200 + 1
    for i in range(0, len(body), piece):
        libssl.SSL_key_update(p, 1)  # SSL_KEY_UPDATE_REQUESTED
        c.send(body[i : i + piece])
        # The client's answers come in as they may: read them so its writes never block.
        c.sock.setblocking(False)
        try:
            while True:
                d = c.sock.recv(65536)
                if not d:
                    break
                c.inc.write(d)
        except BlockingIOError:
            pass
        c.sock.setblocking(True)
        try:
            c.obj.read(1)
        except ssl.SSLWantReadError:
            pass
    c.hold(10)


def m_tickets(c):
    p = ssl_ptr(c.obj)
    for _ in range(500):
        libssl.SSL_new_session_ticket(p)
    c.send(OK)
    c.hold(10)


def m_idle_notify(c):
    c.send(OK)
    time.sleep(0.3)
    c.close_notify()
    c.hold(10)


def m_idle_keyupdate(c):
    p = ssl_ptr(c.obj)
    c.send(OK)
    time.sleep(0.2)
    libssl.SSL_key_update(p, 1)
    for _ in range(3):
        libssl.SSL_new_session_ticket(p)
    c.send(b"")  # nothing of the application: the key update and the tickets go out
    try:
        c.obj.do_handshake()
    except ssl.SSLError:
        pass
    c.flush()
    while True:
        try:
            c.read_head()
        except (EOFError, OSError):
            return
        c.send(OK)


def m_idle_bytes(c):
    c.send(OK)
    time.sleep(0.3)
    c.send(b"X")
    c.hold(10)


def m_notify_after(c):
    data = c.records(OK)
    try:
        c.obj.unwrap()
    except (ssl.SSLWantReadError, ssl.SSLError):
        pass
    c.sock.sendall(data + c.out.read())
    c.hold(10)


def m_bytes_after(c):
    c.sock.sendall(c.records(OK) + c.records(b"X"))
    c.hold(10)


def m_reneg(c):
    p = ssl_ptr(c.obj)
    libssl.SSL_renegotiate(p)
    libssl.SSL_do_handshake(p)
    c.flush()
    c.send(OK)
    # Whatever the client says next (an alert refusing the renegotiation, or its own handshake)
    # is read, and the connection kept until the client closes it.
    c.sock.settimeout(10)
    try:
        while True:
            c.feed()
            try:
                c.obj.read(65536)
            except ssl.SSLWantReadError:
                pass
            c.flush()
    except (EOFError, OSError, ssl.SSLError):
        pass


def m_anon(c):
    c.send(OK)
    c.hold(10)


def m_idle_reset(c):
    c.send(OK)
    time.sleep(0.2)
    reset(c.sock)


def m_echo_close(c):
    while True:
        try:
            c.read_head()
        except (EOFError, OSError):
            return
        c.send(OK)


def m_early_413(c):
    c.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!")
    time.sleep(2)
    c.close_notify()
    c.sock.shutdown(socket.SHUT_WR)
    c.hold(5)


def m_redirect(c):
    target = c.head.split(b" ")[1]
    loc = target.split(b"?", 1)[1] if b"?" in target else b"/"
    c.send(b"HTTP/1.1 302 Found\r\nLocation: " + loc + b"\r\nContent-Length: 0\r\n\r\n")
    c.hold(10)


def m_upload_reset(c):
    got = len(c.buf)
    while got < 65536:
        try:
            got += len(c.obj.read(65536))
        except ssl.SSLWantReadError:
            c.feed()
    reset(c.sock)


# The modes that act before the TLS handshake, on the raw socket.
def r_hs_close(sock):
    sock.recv(65536)
    sock.close()


def r_hs_reset(sock):
    sock.recv(65536)
    reset(sock)


def r_hs_silent(sock):
    Conn.hold(type("H", (), {"sock": sock})())


def r_hs_half(sock):
    c = Conn(sock, context())
    c.feed()
    try:
        c.obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    flight = c.out.read()
    sock.sendall(flight[: len(flight) // 2])
    c.hold()


def r_plain(sock):
    sock.recv(65536)
    sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    sock.close()


TLS_MODES = {
    "stall_body": m_stall_body,
    "stall_head": m_stall_head,
    "garbage": m_garbage,
    "huge_record": m_huge_record,
    "alert_mid": m_alert_mid,
    "notify_mid": m_notify_mid,
    "eof_delim": m_eof_delim,
    "notify_delim": m_notify_delim,
    "keyupdate": m_keyupdate,
    "tickets": m_tickets,
    "idle_notify": m_idle_notify,
    "idle_keyupdate": m_idle_keyupdate,
    "idle_bytes": m_idle_bytes,
    "notify_after": m_notify_after,
    "bytes_after": m_bytes_after,
    "reneg": m_reneg,
    "anon": m_anon,
    "upload_reset": m_upload_reset,
    "early_413": m_early_413,
    "redirect": m_redirect,
    "echo_close": m_echo_close,
    "idle_reset": m_idle_reset,
}
RAW_MODES = {
    "hs_close": r_hs_close,
    "hs_reset": r_hs_reset,
    "hs_silent": r_hs_silent,
    "hs_half": r_hs_half,
    "plain": r_plain,
}


def serve_conn(mode, sock):
    try:
        if mode in RAW_MODES:
            RAW_MODES[mode](sock)
            return
        ctx = context(max12=mode == "reneg", anon=mode == "anon")
        c = Conn(sock, ctx)
        c.handshake()
        c.head = c.read_head()
        TLS_MODES[mode](c)
    except (OSError, EOFError, ssl.SSLError) as e:
        print("attack_peer: %s: %s" % (mode, e), file=sys.stderr)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def listen(mode):
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(128)

    def accept():
        while True:
            s, _ = l.accept()
            threading.Thread(target=serve_conn, args=(mode, s), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return l.getsockname()[1]


def main():
    for mode in list(TLS_MODES) + list(RAW_MODES):
        print(mode, listen(mode))
    print("ready", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
