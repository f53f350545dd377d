#!/usr/bin/python3
"""test_attack.py: the asyncget command attacked as a demanding user and a hostile server would
(TAP).

Usage (under tests/servers/with-servers --nginx --hostile):
  test_attack.py ASYNCGET [CASE...]

Each case is a way the command was seen to break, or could: output that cannot be written, a
closed stdout, hostile bytes in responses and URL files, signals at awkward moments, option
values at their limits, a low open-file limit, many threads. A case fails for the reason its
name gives. Cases for a fault not fixed yet are listed in KNOWN: they report TAP TODO while the
fault shows and pass silently once it is gone (then remove them from KNOWN).

Besides the servers of with-servers, a small server of this script answers the cases no other
server has: 503 without Retry-After, header values of invalid UTF-8, and a count of requests per
path.

Limits: the only time limits catch a command that hangs; no case bounds how fast anything is.
Environment: with-servers' AG_* variables; AG_TEST_WRAPPER (valgrind) is put in front of every
run of the command. Python: /usr/bin/python3 with its standard library only.
"""

import calendar
import fcntl
import json
import os
import pty
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import tapcases  # the TAP runner, beside this script

AG = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
WRAPPER = os.environ.get("AG_TEST_WRAPPER", "").split()
SLOW = 10.0 if WRAPPER else 1.0
# A run that takes longer than this has hung.
HANG = 60.0 * SLOW
NG = "http://127.0.0.1:%s" % os.environ.get("AG_NGINX_PORT", "0")
HO = "http://127.0.0.1:%s" % os.environ.get("AG_HOSTILE_PORT", "0")
HELLO = b"hello, world\n"
P1M = (bytes(range(251)) * (1048576 // 251 + 1))[:1048576]  # nginx's /1m


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Result:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def describe(self):
        args = " ".join(a if len(a) < 80 else a[:77] + "..." for a in self.args)
        return "asyncget %s: exit %s, stderr: %s" % (
            args, self.rc, self.err[-500:].decode("utf-8", "replace").strip() or "(empty)")


def run(args, stdin=None, stdout=None, timeout=None, preexec=None, env=None):
    """asyncget with args; stdin bytes (or /dev/null); stdout a file object, or captured."""
    p = subprocess.Popen(WRAPPER + [AG] + list(args),
                         stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=stdout if stdout is not None else subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=preexec, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(stdin, timeout=timeout or HANG)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise Fail("asyncget %s did not exit within %.0f s (hung); stderr: %s" % (
            " ".join(a[:80] for a in args), timeout or HANG, err[-300:]))
    return Result(list(args), p.returncode, out or b"", err)


def sanitizer_clean(r):
    for word in (b"AddressSanitizer", b"LeakSanitizer", b"runtime error:"):
        check(word not in r.err, "a sanitizer report: " + r.describe())


def strict_json(data, what):
    """data parsed as JSON, refusing what Python's parser lets through but JSON does not: bytes
    that are not UTF-8, NaN and Infinity, lone surrogates."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Fail("%s is not UTF-8 (%s): %r" % (what, e, data[:200]))

    def bad_constant(c):
        raise ValueError("%s is not JSON" % c)

    try:
        obj = json.loads(text, parse_constant=bad_constant)
    except ValueError as e:
        raise Fail("%s is not JSON (%s): %r" % (what, e, text[:300]))

    def walk(v):
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise Fail("%s holds a lone surrogate: %r" % (what, v[:100]))
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(obj)
    return obj


def jsonl(data, what="--jsonl"):
    check(data.endswith(b"\n") or not data, "%s does not end in a newline: %r" % (what, data[-80:]))
    return [strict_json(line, "%s line %d" % (what, i))
            for i, line in enumerate(data.split(b"\n")[:-1])]


def tempdir():
    return tempfile.mkdtemp(prefix="ag-attack.")


# ---------------------------------------------------------------- a server of our own

class Server:
    """Canned answers by path, keep-alive, a count of requests per path (GET /count/PATH)."""

    ANSWERS = {
        "/503": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy\n",
        # A connection that ends after each answer: every attempt opens one.
        "/503-close": b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                      b"Content-Length: 5\r\n\r\nbusy\n",
        # Bytes a parser must let through (obs-text, a quote, a backslash, a tab), which
        # are not UTF-8 and would break JSON written naively.
        "/weird": b"HTTP/1.1 200 \xff\xfe\"Reason\\\r\n"
                  b"X-Bin: \xc3\x28\xff\x80 \"q\" \\ \t end\r\n"
                  b"X-Sep: \xe2\x80\xa8\xed\xa0\x80\r\n"
                  b"Content-Type: text/\xffplain\"\r\nLocation: /\xfe\"\r\n"
                  b"Content-Length: 2\r\n\r\nok",
        "/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        # C1 controls a parser lets through as obs-text: CSI and OSC in UTF-8, a lone CSI.
        "/c1": b"HTTP/1.1 200 OK\r\nX-C1: a\xc2\x9b2J\xc2\x9d0;pwned b\x9bc\r\n"
               b"Content-Length: 2\r\n\r\nok",
    }

    def __init__(self):
        self.counts = {}
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1].split(b"?")[0].decode("latin-1")
                length = 0
                for h in lines[1:]:
                    k, _, v = h.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                while len(buf) < length:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                buf = buf[length:]
                with self.lock:
                    self.counts[path] = self.counts.get(path, 0) + 1
                answer = self.ANSWERS.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0"
                                          b"\r\n\r\n")
                c.sendall(answer)
                if b"Connection: close" in answer:
                    return
        except OSError:
            pass
        finally:
            c.close()


SERVER = None


def server():
    global SERVER
    if SERVER is None:
        SERVER = Server()
    return SERVER


# ---------------------------------------------------------------- output that cannot be written

def attack_output_file_full_exit_23():
    """-o to a full device: curl's 23 (write error), not success."""
    r = run(["-s", "-o", "/dev/full", NG + "/hello"])
    sanitizer_clean(r)
    check(r.rc == 23, "a body written to /dev/full, yet " + r.describe())


def attack_stdout_full_exit_23():
    """Bodies, and --jsonl lines, to a stdout that is a full device: 23, not success."""
    with open("/dev/full", "wb") as full:
        r = run(["-s", NG + "/hello"], stdout=full)
        sanitizer_clean(r)
        check(r.rc == 23, "a body written to a full stdout, yet " + r.describe())
        r = run(["-s", "--jsonl", NG + "/hello"], stdout=full)
        check(r.rc == 23, "--jsonl written to a full stdout, yet " + r.describe())


def attack_summary_json_full_exit_23():
    """--summary-json to a full device: the write fails at close, and that is a failure."""
    r = run(["-s", "-o", "/dev/null", "--summary-json", "/dev/full", NG + "/hello"])
    sanitizer_clean(r)
    check(r.rc == 23, "--summary-json to /dev/full, yet " + r.describe())


def attack_closed_stdout_keeps_jsonl_out_of_file():
    """With stdout closed, the file of -o takes descriptor 1: the --jsonl line must not land in
    it (curl opens /dev/null on a closed 0, 1 or 2 first)."""
    d = tempdir()
    try:
        path = os.path.join(d, "out")
        r = run(["-s", "--jsonl", "-o", path, NG + "/hello"], stdout=subprocess.DEVNULL,
                preexec=lambda: os.close(1))
        sanitizer_clean(r)
        with open(path, "rb") as f:
            data = f.read()
        check(data == HELLO, "-o FILE with stdout closed holds %r, not the body alone (%s)" % (
            data[:120], r.describe()))
    finally:
        shutil.rmtree(d)


def attack_closed_stderr_keeps_summary_out_of_file():
    """With stderr closed, the file of -o takes descriptor 2: the summary must not land in it."""
    d = tempdir()
    try:
        path = os.path.join(d, "out")
        r = run(["--summary", "-o", path, NG + "/hello", NG + "/hello"],
                preexec=lambda: os.close(2))
        with open(path, "rb") as f:
            data = f.read()
        check(data == HELLO * 2, "-o FILE with stderr closed holds %r, not the bodies alone "
              "(exit %s)" % (data[:120], r.rc))
    finally:
        shutil.rmtree(d)


def attack_har_stdout_valid_json():
    """--har - writes the archive to stdout: it must stay one JSON document (bodies elsewhere)."""
    r = run(["-s", "--har", "-", NG + "/hello", NG + "/hello"])
    sanitizer_clean(r)
    check(r.rc == 0, r.describe())
    har = strict_json(r.out, "the HAR on stdout")
    check(len(har["log"]["entries"]) == 2, "entries: %r" % har["log"]["entries"])


def attack_har_stdout_alone():
    """--har - with --jsonl or -w: the archive and the lines cannot share stdout and stay JSON;
    either the command refuses the pair (2) or stdout is the archive alone."""
    for extra in (["--jsonl"], ["-w", "%{http_code}\\n"]):
        r = run(["-s", "--har", "-"] + extra + [NG + "/hello", NG + "/hello"])
        sanitizer_clean(r)
        if r.rc == 2:
            continue
        check(r.rc == 0, r.describe())
        strict_json(r.out, "stdout of --har - %s" % extra[0])


def attack_writeout_not_inside_other_body():
    """Several threads, bodies to stdout, and failing requests whose -w line goes to stdout on
    its own: no -w line may land inside another request's body. stdout is a pipe read slowly,
    so that a 1 MiB body takes many writes. The kernel lets another writer in between those
    only now and then: the fault does not show in every run."""
    d = tempdir()
    try:
        urls = os.path.join(d, "urls")
        with open(urls, "w") as f:
            for i in range(6):
                f.write("%s/1m?%d\n" % (NG, i))
                for j in range(60):
                    f.write("%s/nope?%d-%d\n" % (NG, i, j))
        p = subprocess.Popen(WRAPPER + [AG, "-s", "--threads", "4", "--parallel-max", "8", "-f",
                                        "-w", "W%{http_code}W\\n",
                                        "--url-file", urls],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        data = bytearray()
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            data += chunk
            time.sleep(0.0005)
        if p.poll() is None and time.monotonic() >= deadline:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        unit_ok, unit_404 = P1M + b"W200W\n", b"W404W\n"
        off = n200 = n404 = 0
        while off < len(data):
            if data.startswith(unit_404, off):
                off += len(unit_404)
                n404 += 1
            elif data.startswith(unit_ok, off):
                off += len(unit_ok)
                n200 += 1
            else:
                inside = data.find(b"W404W", off)
                raise Fail("stdout at offset %d is not a whole body or -w line (a -w line at "
                           "%d, %d bytes into it): %r" % (off, inside, inside - off,
                                                          bytes(data[off:off + 24])))
        check((n200, n404) == (6, 360), "bodies %d, -w lines of 404s %d" % (n200, n404))
    finally:
        shutil.rmtree(d)


def attack_nonblocking_stdout_keeps_every_line():
    """stdout a pipe in non-blocking mode (as a parent may leave it) and read slowly: every
    --jsonl line arrives, as every body does (a write that would block waits; it is not
    dropped)."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
    p = subprocess.Popen(WRAPPER + [AG, "-s", "--jsonl", "--repeat", "3000", NG + "/hello"],
                         stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.PIPE,
                         start_new_session=True)
    os.close(w)
    data = bytearray()
    try:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
            time.sleep(0.001)
        err = p.communicate(timeout=HANG)[1]
    finally:
        os.close(r)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    check(p.returncode == 0, "exit %s: %r" % (p.returncode, err[-300:]))
    lines = jsonl(bytes(data))
    check(len(lines) == 3000, "%d --jsonl lines of 3000 reached a non-blocking stdout" %
          len(lines))


# ---------------------------------------------------------------- hostile bytes

def attack_hostile_bytes_valid_json():
    """Header values and a reason phrase of invalid UTF-8, quotes and backslashes: --jsonl,
    -w '%{json}', --har and --summary-json stay valid JSON (and UTF-8)."""
    s = server()
    d = tempdir()
    try:
        har, summ = os.path.join(d, "h.har"), os.path.join(d, "s.json")
        bad_url = s.url + "/weird?\xff".encode("latin-1").decode("utf-8", "surrogateescape")
        r = run(["-s", "--jsonl", "--har", har, "--summary-json", summ, s.url + "/weird",
                 s.url + "/weird?a=%ff&b=%22%5c"])
        sanitizer_clean(r)
        check(r.rc == 0, r.describe())
        lines = jsonl(r.out)
        check(len(lines) == 2, "%d --jsonl lines" % len(lines))
        doc = strict_json(open(har, "rb").read(), "--har")
        resp = doc["log"]["entries"][0]["response"]
        check(any(h["name"] == "X-Bin" for h in resp["headers"]), "HAR headers: %r" % resp)
        strict_json(open(summ, "rb").read(), "--summary-json")
        r = run(["-s", "-o", "/dev/null", "-w", "%{json}\\n", s.url + "/weird"])
        check(r.rc == 0, r.describe())
        jsonl(r.out, "-w '%{json}'")
        # A URL of invalid UTF-8 is refused, and still its line is JSON.
        r = run(["-s", "--jsonl", bad_url])
        (line,) = jsonl(r.out)
        check(line["exitcode"] == 3, "a URL with byte 0xff: %r" % line)
    finally:
        shutil.rmtree(d)


def attack_verbose_escapes_c1():
    """-v and --trace-ascii - show a header of C1 controls (CSI, OSC) escaped: a hostile server
    cannot clear or retitle the terminal of whoever debugs it."""
    s = server()
    for opt in (["-v"], ["--trace-ascii", "-"]):
        r = run(["-o", "/dev/null"] + opt + [s.url + "/c1"])
        sanitizer_clean(r)
        check(r.rc == 0, r.describe())
        check(b"X-C1: a" in r.err, "%s shows no X-C1 line: %r" % (opt[0], r.err[-300:]))
        check(b"\xc2\x9b" not in r.err and b"\xc2\x9d" not in r.err and b"\x9b" not in r.err,
              "%s wrote C1 controls to the terminal: %r" % (
                  opt[0], r.err[r.err.find(b"X-C1"):][:80]))


def attack_url_file_hostile_lines():
    """A URL file with CRLF lines, blanks, comments, a 1 MB line, invalid UTF-8 and bad URLs:
    each bad line fails alone, every good one is fetched once, every --jsonl line is JSON."""
    d = tempdir()
    try:
        path = os.path.join(d, "urls")
        lines = [NG.encode() + b"/hello\r\n", b"\r\n", b"  # comment\r\n",
                 NG.encode() + b"/1k\xff\xfe\n", b"x" * 1000000 + b"\n", b"ftp://x/\n",
                 b"http://[::1\n", b"  \t" + NG.encode() + b"/0 \t\r\n",
                 NG.encode() + b"/hello"]
        with open(path, "wb") as f:
            f.write(b"".join(lines))
        r = run(["-s", "--jsonl", "--url-file", path])
        sanitizer_clean(r)
        got = sorted(jsonl(r.out), key=lambda o: o["urlnum"])
        check([o["urlnum"] for o in got] == list(range(7)), "urlnums: %r" % [
            o["urlnum"] for o in got])
        codes = [o["exitcode"] for o in got]
        check(codes == [0, 3, 3, 1, 3, 0, 0], "exit codes per line: %r" % codes)
        check(r.rc == 3, "the lowest failed urlnum's code is 3: " + r.describe())
    finally:
        shutil.rmtree(d)


def attack_error_message_escapes_url():
    """A URL file line with terminal escapes (a list taken from anywhere): its error message on
    stderr shows the bytes escaped, so they cannot retitle or clear the user's terminal."""
    d = tempdir()
    try:
        path = os.path.join(d, "urls")
        with open(path, "wb") as f:
            f.write(b"http://127.0.0.1:1/\x1b]0;pwned\x07\x1b[2J\xc2\x9b2J\n")
        r = run(["--url-file", path])
        sanitizer_clean(r)
        check(r.rc == 3, r.describe())
        check(b"\x1b" not in r.err and b"\x07" not in r.err and b"\xc2\x9b" not in r.err,
              "terminal control bytes on stderr: %r" % r.err[:200])
    finally:
        shutil.rmtree(d)


def attack_url_file_nul_line_refused():
    """A NUL byte inside a URL line, or at its start or end: that line is bad, not a shorter URL
    (the bytes before the NUL, or the line without it) fetched in its place."""
    d = tempdir()
    try:
        path = os.path.join(d, "urls")
        with open(path, "wb") as f:
            f.write(NG.encode() + b"/hello\x00/../../secret\n" + NG.encode() + b"/hello\x00\n" +
                    b"\x00" + NG.encode() + b"/hello\n" + NG.encode() + b"/hello\n")
        r = run(["-s", "--jsonl", "--url-file", path])
        sanitizer_clean(r)
        got = sorted(jsonl(r.out), key=lambda o: o["urlnum"])
        check(len(got) == 4, "%d lines" % len(got))
        for o in got[:3]:
            check(o["exitcode"] != 0, "line %d, with a NUL byte, was fetched as %r (%d)" % (
                o["urlnum"] + 1, o["url"], o["http_code"]))
        check(got[3]["exitcode"] == 0, "the good line: %r" % got[3])
    finally:
        shutil.rmtree(d)


def attack_url_file_streamed():
    """A URL list from a pipe that writes slowly: requests run as lines come, not once the
    writer is done."""
    p = subprocess.Popen(WRAPPER + [AG, "-s", "--jsonl", "--url-file", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        p.stdin.write(("%s/hello?first\n" % NG).encode())
        p.stdin.flush()
        first = p.stdout.readline()  # arrives while the list is still open
        check(first, "no result for the first line while the list stays open")
        check(b'"urlnum":0' in first, "first line: %r" % first[:100])
        more = "".join("%s/hello?%d\n" % (NG, i) for i in range(2000)).encode()
        rest, err = p.communicate(more, timeout=HANG)
        got = jsonl(first + rest)
        check(len(got) == 2001, "%d results of 2001 lines" % len(got))
        check(p.returncode == 0, "exit %d: %r" % (p.returncode, err[-300:]))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


# ---------------------------------------------------------------- URLs and options at their limits

def attack_bad_glob_exit_3():
    """A malformed glob on the command line is a bad URL (curl: 3), not a URL sent with its
    brackets; with -s nothing is said."""
    s = server()
    before = s.count("/x[1-")
    r = run(["-s", s.url + "/x[1-", s.url + "/ok"])
    sanitizer_clean(r)
    check(s.count("/x[1-") == before, "the malformed glob was requested as it is")
    check(r.rc == 3, "a malformed glob, yet " + r.describe())
    check(r.err == b"", "-s, yet stderr: %r" % r.err[:200])


def attack_option_limits_refused():
    """Option values at and past their limits: refused with 2, or run; never a sanitizer report
    or a hang."""
    cases = [["--parallel-max", "0"], ["--parallel-max", "-1"],
             ["--parallel-max", "99999999999999999999"], ["--threads", "0"],
             ["--threads", "100000"], ["--repeat", "0"], ["--rate", "0/s"], ["--rate", "-1/s"],
             ["--rate", "nan/s"], ["--rate", "5/x"], ["--duration", "-1"], ["--duration", "nan"],
             ["--retry", "-1"], ["--retry-delay", "inf"], ["--max-redirs", "-1"],
             ["--connect-timeout", "1e400"], ["-m", "-0.5"]]
    for c in cases:
        r = run(["-s", "-o", "/dev/null"] + c + [NG + "/hello"], timeout=20 * SLOW)
        sanitizer_clean(r)
        check(r.rc == 2, "%s: expected exit 2 (bad option), got %s" % (" ".join(c),
                                                                       r.describe()))


def attack_rate_tiny_refused():
    """--rate 1e-300/s is one request every 10^300 s: the interval cannot be held, so the
    option is refused (2), not overflowed into a negative interval (which UBSan reports and
    which makes the second request wait forever)."""
    r = run(["-s", "-o", "/dev/null", "--rate", "1e-300/s", NG + "/hello", NG + "/hello"],
            timeout=10 * SLOW)
    sanitizer_clean(r)
    check(r.rc == 2, "expected exit 2: " + r.describe())


def attack_bad_client_options_fail():
    """--resolve, --connect-to and -A values the client refuses: the run fails (not 0 with
    nothing fetched)."""
    for opt in (["--resolve", "bogus"], ["--connect-to", "bogus"], ["-A", "a\nb"]):
        r = run(["-s", "-o", "/dev/null"] + opt + [NG + "/hello"])
        sanitizer_clean(r)
        check(r.rc != 0, "%s: nothing fetched, yet exit 0: %s" % (opt[0], r.describe()))


def attack_unreadable_url_file_fails():
    """A URL file that cannot be read is an error of the run (curl: 26), not exit 0."""
    d = tempdir()
    try:
        for path in ("/nonexistent/urls", d):
            r = run(["-s", "--url-file", path])
            sanitizer_clean(r)
            check(r.rc != 0, "--url-file %s: unreadable, yet exit 0" % path)
    finally:
        shutil.rmtree(d)


def attack_fail_options_conflict_clean_exit():
    """-f with --fail-with-body is refused with 2, and nothing leaks on the way out (under ASan
    a leak turns the exit into 1)."""
    r = run(["-H", "X-A: 1", "-f", "--fail-with-body", NG + "/hello"])
    sanitizer_clean(r)
    check(r.rc == 2, r.describe())


def attack_huge_header_values():
    """Headers of 120 kB each (the most one argument may hold), many of them: the request goes
    or the server refuses it; nothing breaks."""
    big = "a" * 120000
    args = ["-s", "-o", "/dev/null", "-w", "%{http_code}"]
    for i in range(8):
        args += ["-H", "X-Big%d: %s" % (i, big)]
    r = run(args + [HO + "/echo", NG + "/hello"])
    sanitizer_clean(r)
    check(r.rc == 0, r.describe())
    check(r.out in (b"200400", b"400200", b"200200"), "codes: %r" % r.out)


def attack_refused_run_keeps_output_file():
    """A run refused before it starts (a -w file that cannot be read, a bad --resolve: exit 2)
    leaves the file of -o as it was, not emptied."""
    d = tempdir()
    try:
        path = os.path.join(d, "precious")
        for bad in (["-w", "@/nonexistent/format"], ["--resolve", "bogus"]):
            with open(path, "wb") as f:
                f.write(b"precious\n")
            r = run(["-s", "-o", path] + bad + [NG + "/hello"])
            sanitizer_clean(r)
            check(r.rc == 2, r.describe())
            with open(path, "rb") as f:
                data = f.read()
            check(data == b"precious\n", "%s refused the run (2), yet -o FILE now holds %r" % (
                bad[0], data[:40]))
    finally:
        shutil.rmtree(d)


def attack_json_twice_concatenated():
    """--json given twice: the pieces are joined as they are (curl's own example is
    --json '{ "drink":' --json ' "coffe" }'), not with the '&' of -d."""
    r = run(["-s", "--json", '{"drink":', "--json", ' "coffee"}', HO + "/echo"])
    sanitizer_clean(r)
    check(r.rc == 0, r.describe())
    body = json.loads(r.out)["body"]
    check(body == '{"drink": "coffee"}', "the body sent: %r" % body)


def attack_json_from_stdin():
    """--json @- reads the body from stdin; a second reader of stdin (--url-file -) finds it
    consumed, and the run does not hang."""
    r = run(["-s", "--json", "@-", HO + "/echo"], stdin=b'{"a":\xff1}\n')
    sanitizer_clean(r)
    check(r.rc == 0, r.describe())
    echo = json.loads(r.out)
    check(echo["body_len"] == 9 and echo["method"] == "POST", "echo: %r" % echo)
    r = run(["-s", "--json", "@-", "--url-file", "-", HO + "/echo"], stdin=b"{}\n")
    check(r.rc == 0, r.describe())


# ---------------------------------------------------------------- -O against hostile paths

def attack_remote_name_hostile_paths():
    """-O with URL paths that try to climb out or to reuse planted symlinks: every file lands in
    the directory, no symlink is followed or replaced, and nothing is left half-written."""
    d = tempdir()
    try:
        od = os.path.join(d, "od")
        os.mkdir(od)
        os.mkdir(os.path.join(d, "victimdir"))
        os.symlink(os.path.join(d, "victim"), os.path.join(od, "hello"))
        os.symlink(os.path.join(d, "victimdir"), os.path.join(od, "sub"))
        urls = [NG + "/hello", NG + "/..", NG + "/%2e%2e", NG + "/..%2f..%2fvictim",
                NG + "/hello?x=/../../victim", NG + "/hello#/../victim", NG, NG + "/sub/",
                NG + "/.asyncget-1-0.part", NG + "/" + "%C3%A9" * 120]
        r = run(["-s", "-g", "-O", "--output-dir", od] + urls)
        sanitizer_clean(r)
        check(r.rc == 0, r.describe())
        check(not os.path.lexists(os.path.join(d, "victim")), "a body went through a symlink")
        check(os.listdir(os.path.join(d, "victimdir")) == [], "a body went into sub/")
        check(os.readlink(os.path.join(od, "hello")) == os.path.join(d, "victim"),
              "the planted symlink was replaced")
        names = os.listdir(od)
        check(len(names) == 2 + len(urls), "files in the directory: %r" % names)
        check(not any(n.startswith(".") for n in names), "hidden or temporary: %r" % names)
        check(sorted(os.listdir(d)) == ["od", "victimdir"], "outside: %r" % os.listdir(d))
    finally:
        shutil.rmtree(d)


# ---------------------------------------------------------------- many at once

def attack_threads_counts_add_up():
    """--threads 8, 8000 requests of which a quarter fail: every urlnum once in --jsonl, and
    the summary's counts agree with the lines."""
    d = tempdir()
    try:
        summ = os.path.join(d, "s.json")
        r = run(["-s", "--threads", "8", "--repeat", "2000", "--jsonl", "--summary-json", summ,
                 NG + "/hello", NG + "/nope", HO + "/reset", NG + "/1k"])
        sanitizer_clean(r)
        lines = jsonl(r.out)
        nums = sorted(o["urlnum"] for o in lines)
        check(nums == list(range(8000)), "urlnums: %d lines, %d distinct, from %s to %s" % (
            len(nums), len(set(nums)), nums[:1], nums[-1:]))
        failed = sum(1 for o in lines if o["exitcode"])
        check(failed == 2000, "%d failed lines" % failed)
        s = strict_json(open(summ, "rb").read(), "--summary-json")
        check((s["requests"], s["ok"], s["failed"]) == (8000, 6000, 2000),
              "summary: %r" % {k: s[k] for k in ("requests", "ok", "failed")})
        # A reset after the request is 56; libkqueue reports it as the peer's close (52).
        check(r.rc in (56, 52), "urlnum 2 (a reset) decides the exit: " + r.describe())
    finally:
        shutil.rmtree(d)


def attack_parallel_host_holds_across_threads():
    """--parallel-host 2 with --threads 4: the host sees at most two connections, not two per
    thread rounded up (four)."""
    d = tempdir()
    try:
        summ = os.path.join(d, "s.json")
        r = run(["-s", "-o", "/dev/null", "--parallel-host", "2", "--threads", "4", "--repeat",
                 "40", "--summary-json", summ, HO + "/slow-body?n=2&ms=5"])
        sanitizer_clean(r)
        check(r.rc == 0, r.describe())
        opened = strict_json(open(summ, "rb").read(), "--summary-json")["connections"]["opened"]
        check(opened <= 2, "%d connections opened to one host with --parallel-host 2" % opened)
    finally:
        shutil.rmtree(d)


def attack_low_fd_limit_completes():
    """An open-file limit of 64 (soft and hard) with --parallel-max 1000: every one of 1000
    requests succeeds (no EMFILE midway); with --jsonl, where each body in flight needs a buffer
    of its own, the command lowers its concurrency and says so."""
    if WRAPPER:
        raise Skip("a wrapper (valgrind) needs descriptors of its own under the limit")

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    for extra in (["--jsonl"], ["--threads", "4", "-o", "/dev/null", "-w", "%{exitcode}\\n"]):
        r = run(["--parallel-max", "1000", "--repeat", "1000", NG + "/hello"] + extra,
                preexec=limit)
        sanitizer_clean(r)
        check(r.rc == 0, r.describe())
        if "--jsonl" in extra:
            check(sum(1 for o in jsonl(r.out) if o["exitcode"] == 0) == 1000, "not all ok")
        else:
            check(r.out == b"0\n" * 1000, "exit codes: %r" % r.out[:200])
        if "--jsonl" in extra:
            check(b"lowered" in r.err, "no note that --parallel-max was lowered: " + r.describe())


def attack_low_fd_limit_glob_1000():
    """Under an open-file limit of 64 (soft and hard, as prlimit --nofile=64 sets it), a URL glob
    of 1,000 distinct URLs with --parallel-max 1000: all complete, with the right body length,
    and the command exits 0."""
    if WRAPPER:
        raise Skip("a wrapper (valgrind) needs descriptors of its own under the limit")

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    r = run(["--parallel-max", "1000", "-o", "/dev/null", "-w", "%{exitcode} %{size_download}\\n",
             NG + "/1k?n=[1-1000]"], preexec=limit)
    sanitizer_clean(r)
    check(r.rc == 0, r.describe())
    check(r.out == b"0 1024\n" * 1000, "not all 1000 ok: %r" % r.out[:200])
    # With -o /dev/null no request needs a file of its own: the connections queue for
    # descriptors in the library, and --parallel-max stays as asked.
    check(b"lowered" not in r.err, "--parallel-max lowered: " + r.describe())


# ---------------------------------------------------------------- retries

def attack_retry_counts_and_methods():
    """--retry 3 against a 503: four attempts, exit 0 without -f and 22 with it; POST is not
    retried unless --retry-all-methods."""
    s = server()
    base = ["-s", "-o", "/dev/null", "--retry", "3", "--retry-delay", "0.05", "-w",
            "%{http_code} %{attempts}"]
    n = s.count("/503")
    r = run(base + [s.url + "/503"])
    check((r.rc, r.out) == (0, b"503 4"), r.describe() + " -w: %r" % r.out)
    check(s.count("/503") - n == 4, "the server saw %d" % (s.count("/503") - n))
    r = run(base + ["-f", s.url + "/503"])
    check((r.rc, r.out) == (22, b"503 4"), r.describe() + " -w: %r" % r.out)
    n = s.count("/503")
    r = run(base + ["-X", "POST", s.url + "/503"])
    check(r.out == b"503 1" and s.count("/503") - n == 1, "POST retried: %r" % r.out)
    r = run(base + ["-d", "x", "--retry-all-methods", s.url + "/503"])
    check(r.out == b"503 4", "--retry-all-methods: %r" % r.out)
    sanitizer_clean(r)


def attack_retry_connections_counted():
    """Retries against a server that closes after each answer: each attempt opens a connection,
    and the summary counts them all, not only the final attempt's."""
    s = server()
    d = tempdir()
    try:
        summ = os.path.join(d, "s.json")
        r = run(["-s", "-o", "/dev/null", "--retry", "2", "--retry-delay", "0.05",
                 "--summary-json", summ, s.url + "/503-close"])
        check(r.rc == 0, r.describe())
        doc = strict_json(open(summ, "rb").read(), "--summary-json")
        check(doc["retries"] == 2, "retries: %r" % doc["retries"])
        check(doc["connections"]["opened"] == 3, "3 connections opened by 3 attempts, the "
              "summary says %r" % doc["connections"])
    finally:
        shutil.rmtree(d)


# ---------------------------------------------------------------- signals and --rate

def read_lines_until(p, n, limit):
    """n lines of p's stdout (fewer if it ends); fails past the time limit."""
    lines = []
    deadline = time.monotonic() + limit
    while len(lines) < n:
        check(time.monotonic() < deadline, "no %d lines within %.0f s" % (n, limit))
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
    return lines


def attack_rate_nothing_after_sigint():
    """--rate 5/s then Ctrl-C: no request starts after the signal, though more were due within
    the grace second."""
    p = subprocess.Popen(WRAPPER + [AG, "-s", "--jsonl", "--rate", "5/s", NG + "/hello?[1-1000]"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        first = read_lines_until(p, 2, HANG)
        when = time.time()
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=HANG)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    check(p.returncode == 130, "exit %s after Ctrl-C: %r" % (p.returncode, err[-300:]))
    for o in jsonl(b"".join(first) + rest):
        t = calendar.timegm(time.strptime(o["start"][:19], "%Y-%m-%dT%H:%M:%S"))
        t += float("0" + o["start"][19:-1])
        check(t <= when + 0.05, "urlnum %d started %.3f s after Ctrl-C" % (o["urlnum"],
                                                                            t - when))


def attack_sigint_ignored_stays_ignored():
    """Started with SIGINT ignored (a background job of a script, nohup): a Ctrl-C meant for the
    script's foreground does not stop the run; shells ignore the signal for exactly that."""
    p = subprocess.Popen(WRAPPER + [AG, "-s", "-o", "/dev/null", "-w", "%{exitcode},",
                                    NG + "/slow/1m?rate=300k", NG + "/slow/1m?rate=300k"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        time.sleep(0.3 * SLOW)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=HANG)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    check(p.returncode == 0 and out == b"0,0,", "SIGINT was ignored at start, yet exit %s, "
          "exit codes of the requests %r" % (p.returncode, out))


def attack_rate_single_url_ends():
    """--rate 1/h with one URL: the run ends with its only request, not an hour later; with
    --duration 1 as well."""
    for extra in ([], ["--duration", "1"]):
        r = run(["-s", "-o", "/dev/null", "--rate", "1/h"] + extra + [NG + "/hello"],
                timeout=15 * SLOW)
        check(r.rc == 0, r.describe())


def attack_sigint_random_moments():
    """Ctrl-C at random moments of runs that mix slow, stalled, failing and retried requests,
    with -O, --har and --summary-json: the exit is 130 or a failure's code, no temporary file
    stays, the HAR and the summary are whole JSON, no sanitizer report."""
    rnd = random.Random(int(os.environ.get("AG_ATTACK_SEED", "7")))
    d = tempdir()
    try:
        for _ in range(6):
            od = os.path.join(d, "od")
            shutil.rmtree(od, ignore_errors=True)
            os.mkdir(od)
            urls = rnd.sample([NG + "/1m", NG + "/hello?[1-100]", HO + "/stall-body",
                               HO + "/slow-body?n=20&ms=50", NG + "/slow/1m?rate=300k",
                               HO + "/reset", HO + "/stall-headers", NG + "/503"], 4)
            opts = ["-O", "--output-dir", od, "--har", os.path.join(d, "h.har"),
                    "--summary-json", os.path.join(d, "s.json"),
                    "--parallel-max", str(rnd.choice([1, 3, 50]))]
            opts += rnd.choice([[], ["--threads", "3"], ["--rate", "50/s"],
                                ["--retry", "2", "--retry-delay", "0.3"]])
            p = subprocess.Popen(WRAPPER + [AG] + opts + urls, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 start_new_session=True)
            try:
                # The handler exists once the HAR is opened: a signal before that is the
                # default action, which is not under test.
                deadline = time.monotonic() + HANG
                while not os.path.exists(os.path.join(d, "h.har")):
                    check(time.monotonic() < deadline and p.poll() is None, "never started")
                    time.sleep(0.01)
                time.sleep(rnd.uniform(0.05, 1.2) * SLOW)
                p.send_signal(signal.SIGINT)
                err = p.communicate(timeout=HANG)[1]
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            what = "%s %s: exit %s, stderr %r" % (opts, urls, p.returncode, err[-400:])
            check(p.returncode in (130, 7, 56, 22, 28, 18, 52), what)
            for word in (b"AddressSanitizer", b"LeakSanitizer", b"runtime error:"):
                check(word not in err, "sanitizer: " + what)
            left = [n for n in os.listdir(od) if n.startswith(".")]
            check(not left, "temporary files stayed: %r; %s" % (left, what))
            strict_json(open(os.path.join(d, "h.har"), "rb").read(), "--har after Ctrl-C")
            strict_json(open(os.path.join(d, "s.json"), "rb").read(), "summary after Ctrl-C")
            os.unlink(os.path.join(d, "h.har"))
    finally:
        shutil.rmtree(d)


# ---------------------------------------------------------------- a terminal

def attack_progress_not_over_bodies():
    """stdout and stderr the same terminal, bodies to stdout: no progress line is drawn over
    them (curl turns its meter off when the body goes to the terminal), so the terminal shows
    the bodies as sent."""
    m, s = pty.openpty()
    urls = [HO + "/slow-body?n=3&ms=%d" % ms for ms in (100, 150, 200)]
    p = subprocess.Popen(WRAPPER + [AG, "--no-summary", "--parallel-max", "1"] + urls,
                         stdin=subprocess.DEVNULL, stdout=s, stderr=s, start_new_session=True)
    os.close(s)
    out = b""
    deadline = time.monotonic() + HANG
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(m, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        p.wait(timeout=HANG)
    finally:
        os.close(m)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    check(p.returncode == 0, "exit %s" % p.returncode)
    check(b"\r" not in out and b"\033[K" not in out,
          "a progress line shares the terminal with the bodies: %r" % out[:300])


# ---------------------------------------------------------------- TAP

CASES = [
    attack_output_file_full_exit_23,
    attack_stdout_full_exit_23,
    attack_summary_json_full_exit_23,
    attack_closed_stdout_keeps_jsonl_out_of_file,
    attack_closed_stderr_keeps_summary_out_of_file,
    attack_har_stdout_valid_json,
    attack_har_stdout_alone,
    attack_writeout_not_inside_other_body,
    attack_nonblocking_stdout_keeps_every_line,
    attack_hostile_bytes_valid_json,
    attack_verbose_escapes_c1,
    attack_url_file_hostile_lines,
    attack_error_message_escapes_url,
    attack_url_file_nul_line_refused,
    attack_url_file_streamed,
    attack_bad_glob_exit_3,
    attack_option_limits_refused,
    attack_rate_tiny_refused,
    attack_bad_client_options_fail,
    attack_unreadable_url_file_fails,
    attack_fail_options_conflict_clean_exit,
    attack_huge_header_values,
    attack_refused_run_keeps_output_file,
    attack_json_twice_concatenated,
    attack_json_from_stdin,
    attack_remote_name_hostile_paths,
    attack_threads_counts_add_up,
    attack_parallel_host_holds_across_threads,
    attack_low_fd_limit_completes,
    attack_low_fd_limit_glob_1000,
    attack_retry_counts_and_methods,
    attack_retry_connections_counted,
    attack_rate_nothing_after_sigint,
    attack_sigint_ignored_stays_ignored,
    attack_rate_single_url_ends,
    attack_sigint_random_moments,
    attack_progress_not_over_bodies,
]

# Faults of the command not fixed yet, reported as TAP TODO while they show. A case listed here
# that passes prints a note: then remove it from this table. (attack_writeout_not_inside_other_body
# shows its fault, when there is one, only in some runs.)
KNOWN = {}


def main():
    if AG is None:
        sys.stderr.write("usage: test_attack.py ASYNCGET [CASE...]\n")
        return 2
    return tapcases.run(CASES, KNOWN, Skip, Fail, "test_attack.py", sys.argv[2:])

if __name__ == "__main__":
    sys.exit(main())
