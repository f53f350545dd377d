#!/usr/bin/python3
"""faultproxy.py: a TCP proxy that injects faults, per connection, between a client and a server.

It forwards bytes blindly (so it works in front of a TLS port too: the client still verifies the
server's certificate against the name it asked for). Each accepted connection gets one fault,
chosen at random from a generator seeded with --seed and the connection's serial (so connection
N gets the same fault in every run with that seed):

  clean      bytes pass as they come
  split      each piece read is written in small writes: its first 48 bytes toward the client
             (16 toward the server) one byte a write, yielding to the loop after every 8, the
             rest in writes of 1 to 4096 bytes
  delay      every write waits first: a few ms (1-5, per connection), one in ten 20-200 ms
  reset      after k bytes toward the client, the connection to the client is closed with
             SO_LINGER 0 (a TCP reset) and the one to the server closed; in three cases of ten
             ("reset-request") after u bytes toward the server instead, in the middle of a
             request or its body (u: 0-199 in 30% of them, else 200-39999)
  halfclose  "client": after k bytes toward the client, shutdown(SHUT_WR) toward the client and
             nothing more is forwarded toward it; "server": after the m-th piece of the request
             stream (m in 1..3), shutdown(SHUT_WR) toward the server (which sees the end of its
             input after the request) and forwarding goes on otherwise
  stall      after k bytes toward the client, nothing more is forwarded either way for
             --stall-ms (meant to be longer than the client's idle timeout), then both
             connections are closed

k is 0 (before the first response byte: the request has reached the server) in 15% of the
cases, else 1..4095 (45%) or 4096..399999 (40%). A fault that needs k bytes and a connection
that ends first: the fault did not fire.

One JSON line per connection is appended to --log when the connection ends (written with one
write(2), so a reader sees whole lines):

  {"serial": 17, "listen": "tls", "client": "127.0.0.1:40312", "fault": "reset", "at": 2000,
   "fired": true, "fired_at": 2000, "up": 312, "down": 2000, "end": "reset", "ms": 12}

serial counts connections from 1 over every listener; listen names the listener; client is the
client's source address and port; at is k (or u, or m), fired_at the byte count toward the
client (for reset-request the bytes toward the server, for halfclose-server the pieces of the
request stream) when the fault fired, else null; up and down the bytes forwarded toward the server and toward the client; end
how the connection ended.

Usage:
  faultproxy.py --map LISTEN=UPSTREAM[=NAME] [--map ...] --log FILE [--seed N]
                [--rates clean=30,split=15,delay=15,reset=15,halfclose=15,stall=10]
                [--stall-ms 8000]
LISTEN is fd:N (an inherited listening socket) or PORT on 127.0.0.1 (0: the kernel picks);
UPSTREAM is the server's port on 127.0.0.1. Once it accepts it prints one line per listener,
"faultproxy: NAME 127.0.0.1:P -> 127.0.0.1:U", and flushes stdout.
"""

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
FAULTS = ("clean", "split", "delay", "reset", "halfclose", "stall")
READ_SIZE = 65536


def pick_k(rng):
    r = rng.random()
    if r < 0.15:
        return 0
    if r < 0.60:
        return rng.randrange(1, 4096)
    return rng.randrange(4096, 400000)


class Plan:
    """The fault of one connection and its parameters, from the connection's own generator."""

    def __init__(self, rng, weights):
        self.rng = rng
        self.fault = rng.choices(FAULTS, weights=[weights[f] for f in FAULTS])[0]
        self.at = None
        self.side = None
        self.base_delay = 0.0
        if self.fault == "reset" and rng.random() < 0.3:
            self.side = "request"
            self.at = rng.randrange(0, 200) if rng.random() < 0.3 else rng.randrange(200, 40000)
        elif self.fault in ("reset", "stall"):
            self.at = pick_k(rng)
        elif self.fault == "halfclose":
            self.side = rng.choice(("client", "server"))
            self.at = pick_k(rng) if self.side == "client" else rng.randint(1, 3)
        elif self.fault == "delay":
            self.base_delay = rng.uniform(0.001, 0.005)


class Conn:
    def __init__(self, proxy, serial, name, client, plan):
        self.proxy = proxy
        self.serial = serial
        self.name = name
        self.client = client
        self.plan = plan
        self.fired_at = None
        self.up = 0
        self.down = 0
        self.up_pieces = 0
        self.end = None
        self.t0 = time.monotonic()
        self.cw = None  # writer toward the client
        self.uw = None  # writer toward the server
        self.tasks = []

    def record(self):
        p = self.plan
        fault = p.fault if p.side is None else "%s-%s" % (p.fault, p.side)
        line = {"serial": self.serial, "listen": self.name, "client": self.client,
                "fault": fault, "at": p.at, "fired": self.fired_at is not None,
                "fired_at": self.fired_at, "up": self.up, "down": self.down,
                "end": self.end or "closed", "ms": int((time.monotonic() - self.t0) * 1000)}
        os.write(self.proxy.log_fd, (json.dumps(line) + "\n").encode())

    async def delay(self):
        p = self.plan
        if p.fault == "delay":
            d = p.base_delay if p.rng.random() >= 0.1 else p.rng.uniform(0.02, 0.2)
            await asyncio.sleep(d)

    async def send(self, writer, data, ones):
        """Write data as the fault wants it: split or delayed, or as it is."""
        p = self.plan
        if p.fault == "split":
            # Each write is a send(2) of its own and, with TCP_NODELAY, a segment of its own; a
            # yield to the loop after every 8 of the 1-byte writes lets the peer read between
            # them. (A yield after every byte, or a timer, made the proxy itself the bottleneck
            # on a loaded machine: every other connection starved past the client's timeouts.)
            head = data[:ones]
            for i in range(len(head)):
                writer.write(head[i:i + 1])
                if i % 8 == 7:
                    await asyncio.sleep(0)
            pos = len(head)
            while pos < len(data):
                n = p.rng.randint(1, 4096)
                writer.write(data[pos:pos + n])
                pos += n
        else:
            await self.delay()
            writer.write(data)
        await writer.drain()

    async def flushed(self, writer):
        """Until the transport has handed every byte to the kernel."""
        await writer.drain()
        while writer.transport.get_write_buffer_size() > 0 and not writer.is_closing():
            await asyncio.sleep(0.001)

    def abort_all(self, reset_client=False):
        """Close both connections; reset_client: the client's with a TCP reset."""
        if reset_client and self.cw is not None and not self.cw.is_closing():
            sock = self.cw.get_extra_info("socket")
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.cw.transport.abort()
        for w in (self.cw, self.uw):
            if w is not None and not w.is_closing():
                w.transport.abort()

    async def drop_until_eof(self, reader):
        while await reader.read(READ_SIZE):
            pass

    async def down_pump(self, ur):
        """Server to client, where reset, halfclose-client and stall fire."""
        p = self.plan
        armed = ((p.fault in ("reset", "stall") and p.side is None)
                 or (p.fault == "halfclose" and p.side == "client"))
        while True:
            data = await ur.read(READ_SIZE)
            if not data:
                # The server ended its side: so does the proxy toward the client.
                await self.flushed(self.cw)
                if not self.cw.is_closing():
                    self.cw.write_eof()
                return "server-eof"
            if armed and self.fired_at is None and self.down + len(data) >= p.at:
                part = data[:p.at - self.down]
                if part:
                    await self.send(self.cw, part, 48)
                    self.down += len(part)
                await self.flushed(self.cw)
                self.fired_at = self.down
                if p.fault != "halfclose":
                    return p.fault
                # The end of the stream toward the client; what the server sends later is
                # dropped, and the connection ends when the client closes.
                self.cw.write_eof()
                await self.drop_until_eof(ur)
                return "server-eof"
            await self.send(self.cw, data, 48)
            self.down += len(data)

    async def up_pump(self, cr):
        """Client to server, where reset-request and halfclose-server fire."""
        p = self.plan
        while True:
            data = await cr.read(READ_SIZE)
            if not data:
                await self.flushed(self.uw)
                if not self.uw.is_closing():
                    self.uw.write_eof()
                return "client-eof"
            if (p.fault == "reset" and p.side == "request" and self.fired_at is None
                    and self.up + len(data) >= p.at):
                part = data[:p.at - self.up]
                if part:
                    await self.send(self.uw, part, 16)
                    self.up += len(part)
                await self.flushed(self.uw)
                self.fired_at = self.up
                return "reset"
            await self.send(self.uw, data, 16)
            self.up += len(data)
            self.up_pieces += 1
            if (p.fault == "halfclose" and p.side == "server" and self.fired_at is None
                    and self.up_pieces >= p.at):
                await self.flushed(self.uw)
                self.uw.write_eof()
                self.fired_at = self.up_pieces
                # The client's later bytes have nowhere to go: read and dropped.
                await self.drop_until_eof(cr)
                return "client-eof"

    async def run(self, cr, cw, upstream):
        self.cw = cw
        try:
            ur, uw = await asyncio.open_connection(HOST, upstream, limit=READ_SIZE)
        except OSError as e:
            self.end = "upstream connect: %s" % e.strerror
            cw.transport.abort()
            self.record()
            return
        self.uw = uw
        for w in (cw, uw):
            try:
                w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        down = asyncio.ensure_future(self.down_pump(ur))
        up = asyncio.ensure_future(self.up_pump(cr))
        pending = {down, up}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    exc = t.exception()
                    what = None if exc is not None else t.result()
                    if exc is not None:
                        # A write to a peer that went away, or a reset from it: the end.
                        self.end = self.end or "%s: %s" % ("down" if t is down else "up",
                                                           type(exc).__name__)
                    elif what in ("reset", "stall"):
                        self.end = what
                    else:
                        continue
                    for o in pending:
                        o.cancel()
                    pending = set()
                    if what == "reset":
                        self.abort_all(reset_client=True)
                    elif what == "stall":
                        # Nothing is read or written either way, then both close.
                        await asyncio.sleep(self.proxy.stall_ms / 1000.0)
        except asyncio.CancelledError:
            self.end = self.end or "proxy stopped"
            raise
        finally:
            for t in (down, up):
                t.cancel()
            self.abort_all()
            self.record()


class Proxy:
    def __init__(self, args):
        self.seed = args.seed
        self.weights = parse_rates(args.rates)
        self.stall_ms = args.stall_ms
        self.log_fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.serial = 0

    def handler(self, name, upstream):
        async def handle(cr, cw):
            self.serial += 1
            serial = self.serial
            peer = cw.get_extra_info("peername")
            client = "%s:%d" % (peer[0], peer[1]) if peer else "?"
            rng = random.Random("%d/%d" % (self.seed, serial))
            conn = Conn(self, serial, name, client, Plan(rng, self.weights))
            await conn.run(cr, cw, upstream)
        return handle


def parse_rates(text):
    w = {"clean": 30, "split": 15, "delay": 15, "reset": 15, "halfclose": 15, "stall": 10}
    if text:
        for item in text.split(","):
            k, _, v = item.partition("=")
            if k not in w or not v.isdigit():
                raise SystemExit("faultproxy: bad --rates item %r" % item)
            w[k] = int(v)
    if sum(w.values()) <= 0:
        raise SystemExit("faultproxy: --rates are all zero")
    return w


def parse_map(text):
    parts = text.split("=")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise SystemExit("faultproxy: bad --map %r (LISTEN=UPSTREAM[=NAME])" % text)
    listen, upstream = parts[0], int(parts[1])
    name = parts[2] if len(parts) == 3 else listen
    if listen.startswith("fd:"):
        sock = socket.socket(fileno=int(listen[3:]))
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, int(listen)))
        sock.listen(4096)
    sock.setblocking(False)
    return sock, upstream, name


async def main_async(args):
    proxy = Proxy(args)
    servers = []
    for m in args.map:
        sock, upstream, name = parse_map(m)
        srv = await asyncio.start_server(proxy.handler(name, upstream), sock=sock,
                                         limit=READ_SIZE)
        servers.append(srv)
        print("faultproxy: %s %s:%d -> %s:%d" % (name, HOST, sock.getsockname()[1], HOST,
                                                 upstream))
    sys.stdout.flush()
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main():
    ap = argparse.ArgumentParser(description="TCP proxy that injects faults per connection")
    ap.add_argument("--map", action="append", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rates", default="")
    ap.add_argument("--stall-ms", type=int, default=8000)
    args = ap.parse_args()
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
