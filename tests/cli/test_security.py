#!/usr/bin/python3
"""test_security.py: the asyncget command's security promises attacked through its options (TAP).

Usage (under tests/servers/with-servers --nginx --tls):
  test_security.py ASYNCGET [CASE...]

The promises: certificate checks are skipped only by -k (no environment variable, no option of
another name, no redirect, no OpenSSL configuration turns them off), and a bad certificate fails
with curl's exit 60 and a message saying why; CR, LF and other control bytes in a URL, a header,
a method, credentials or a Location never make a field of their own (refused, or %-escapes sent
as written); the user's credentials (-u, --oauth2-bearer, -H Authorization, -H Cookie, -b
NAME=VALUE, -H Proxy-Authorization, the URL's userinfo, --netrc-file) never follow a redirect to
another origin, http to https on the same host and port included, unless --location-trusted; a
file of -O never lands outside its directory, whatever the URL, the glob, the URL file or the
redirect. A case fails for the reason its name gives; cases for a fault not fixed yet are in
KNOWN (TAP TODO while the fault shows).

A server of this script (one port, plain http and TLS on the same port: it looks at the first
byte) keeps the head of every request it gets, with the scheme it came over, so that what the
command sent is judged by the bytes that arrived, TLS hops included. It answers /loc?to=X with a
302 (or ?s=N) whose Location is X, %-decoded to raw bytes; /busy with 503; anything else with
200 "ok".

Limits: the only time limits catch a command that hangs; no case bounds how fast anything is.
Environment: with-servers' AG_* variables; AG_TEST_WRAPPER (valgrind) is put in front of every
run of the command. Python: /usr/bin/python3 with its standard library only.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse

import tapcases  # the TAP runner, beside this script

AG = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
WRAPPER = os.environ.get("AG_TEST_WRAPPER", "").split()
SLOW = 10.0 if WRAPPER else 1.0
HANG = 90.0 * SLOW
ENV = os.environ
TLS_DIR = ENV.get("AG_TLS_DIR", "")
CA = ENV.get("AG_TLS_CA", "")


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


_help = None


def help_text():
    global _help
    if _help is None:
        p = subprocess.run(WRAPPER + [AG, "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=HANG)
        _help = p.stdout.decode("utf-8", "replace")
    return _help


def need(*opts):
    """A skip naming the options `asyncget --help` does not list yet."""
    missing = [o for o in opts
               if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), help_text())]
    if missing:
        raise Skip("not in the binary yet: asyncget --help does not list %s" % ", ".join(missing))


def need_tls():
    if not ENV.get("AG_TLS_PORT") or not TLS_DIR:
        raise Skip("no TLS servers: run under with-servers --nginx --tls")


class Result:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def describe(self):
        args = " ".join(repr(a)[1:-1] if len(a) < 80 else repr(a[:77])[1:-1] + "..."
                        for a in self.args)
        return "asyncget %s: exit %s, stderr: %s" % (
            args, self.rc, self.err[-600:].decode("utf-8", "replace").strip() or "(empty)")


def run(args, stdin=None, cwd=None, env=None):
    p = subprocess.Popen(WRAPPER + [AG] + list(args),
                         stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(stdin, timeout=HANG)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise Fail("asyncget %s did not exit within %.0f s (hung); stderr: %s" % (
            " ".join(a[:80] for a in args), HANG, err[-300:]))
    r = Result(list(args), p.returncode, out or b"", err)
    for word in (b"AddressSanitizer", b"LeakSanitizer", b"runtime error:"):
        check(word not in r.err, "a sanitizer report: " + r.describe())
    check(r.rc >= 0, "asyncget died of signal %d: %s" % (-r.rc, r.describe()))
    return r


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="ag-sec.")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------- the server of this script

class Server:
    """One port, plain http and TLS (the first byte 0x16 is a TLS handshake): one request per
    connection, each kept as (scheme, head bytes, body bytes)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.ctx = None
        if TLS_DIR:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(os.path.join(TLS_DIR, "valid.pem"),
                                     os.path.join(TLS_DIR, "valid.key"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def reset(self):
        with self.lock:
            self.requests = []

    def seen(self):
        with self.lock:
            return list(self.requests)

    def serve(self, c):
        scheme = "http"
        try:
            c.settimeout(30)
            first = c.recv(1, socket.MSG_PEEK)
            if first == b"\x16":
                if not self.ctx:
                    return
                c = self.ctx.wrap_socket(c, server_side=True)
                scheme = "https"
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, body = buf.partition(b"\r\n\r\n")
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
            want = int(m.group(1)) if m else 0
            while len(body) < want:
                d = c.recv(65536)
                if not d:
                    break
                body += d
            with self.lock:
                self.requests.append((scheme, head + b"\r\n\r\n", body))
            target = head.split(b"\r\n")[0].split(b" ")[1].decode("latin-1")
            path, _, query = target.partition("?")
            # Each value %-decoded once, to bytes: the Location goes out exactly as the case
            # wrote it.
            q = dict(kv.partition("=")[::2] for kv in query.split("&") if kv)
            if path == "/loc":
                loc = urllib.parse.unquote_to_bytes(q["to"])
                status = int(q.get("s", "302"))
                c.sendall(b"HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n" % (status, loc))
            elif path == "/busy":
                c.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except (OSError, ssl.SSLError, ValueError, KeyError, IndexError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass


_server = []


def server():
    if not _server:
        _server.append(Server())
    s = _server[0]
    s.reset()
    return s


def loc(s, to, status=302, host="127.0.0.1", scheme="http"):
    """A URL of the server that redirects to `to` (bytes or text, raw)."""
    if isinstance(to, str):
        to = to.encode("latin-1")
    return "%s://%s:%d/loc?s=%d&to=%s" % (scheme, host, s.port, status,
                                        urllib.parse.quote_from_bytes(to, safe=""))


def clean_head(head):
    """No byte of the head is a control byte (other than the CR LF of each line) or 8-bit."""
    lines = head.split(b"\r\n")
    return all(not re.search(rb"[\x00-\x1f\x7f-\xff]", l) for l in lines)


# ---------------------------------------------------------------- certificates

BAD_CERTS = [("AG_TLS_EXPIRED_PORT", "expired"), ("AG_TLS_WRONGNAME_PORT", "hostname mismatch"),
             ("AG_TLS_SELFSIGNED_PORT", "self-signed"), ("AG_TLS_UNKNOWNCA_PORT", "issuer")]


def sec_tls_bad_certificate_exit_60():
    """Every kind of bad certificate fails with 60 and a message that says which fault (stderr
    and --jsonl's errormsg); -k lets each through; the valid server passes only with the test
    CA given (--cacert or --capath), not against the system's store."""
    need_tls()
    need("-k", "--cacert", "--capath", "--jsonl")
    for var, words in BAD_CERTS:
        url = "https://localhost:%s/hello" % ENV[var]
        r = run(["-s", "-S", "--cacert", CA, "-o", "/dev/null", url])
        check(r.rc == 60, "%s: %s" % (var, r.describe()))
        check(words.encode() in r.err, "%s: the message does not say %r: %s" % (
            var, words, r.describe()))
        r = run(["-s", "--cacert", CA, "--jsonl", "-o", "/dev/null", url])
        line = json.loads(r.out)
        check(line["exitcode"] == 60 and words in (line["errormsg"] or ""),
              "%s: --jsonl %r" % (var, line))
        r = run(["-s", "-k", "-o", "/dev/null", url])
        check(r.rc == 0, "%s with -k: %s" % (var, r.describe()))
    valid = "https://localhost:%s/hello" % ENV["AG_TLS_PORT"]
    r = run(["-s", "-S", "-o", "/dev/null", valid])
    check(r.rc == 60, "the test CA is trusted without being given: " + r.describe())
    for opt in (["--cacert", CA], ["--capath", ENV["AG_TLS_CA_DIR"]]):
        r = run(["-s", "-S", "-o", "/dev/null"] + opt + [valid])
        check(r.rc == 0, r.describe())


def sec_tls_environment_never_skips_checks():
    """No environment variable skips the checks: neither the names other tools read to turn
    them off, nor proxy settings (asyncget has no proxy), nor an OpenSSL configuration whose
    defaults ask for no verification, any TLS version and every cipher. SSL_CERT_FILE (read by
    OpenSSL, as curl reads it) only replaces the trusted CAs: a bad name or an expiry still
    fails."""
    need_tls()
    with TempDir() as d:
        conf = os.path.join(d, "openssl.cnf")
        with open(conf, "w") as f:
            f.write("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sd\n"
                    "[sd]\nVerifyMode = None\nMinProtocol = TLSv1\n"
                    "CipherString = ALL:@SECLEVEL=0\n")
        env = dict(os.environ)
        env.update({"CURL_INSECURE": "1", "CURL_SSL_NO_VERIFY": "1", "GIT_SSL_NO_VERIFY": "1",
                    "NODE_TLS_REJECT_UNAUTHORIZED": "0", "PYTHONHTTPSVERIFY": "0",
                    "SSL_NO_VERIFY": "1", "ASYNCGET_INSECURE": "1", "AG_INSECURE": "1",
                    "INSECURE": "1", "http_proxy": "http://127.0.0.1:9", "https_proxy":
                    "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY":
                    "http://127.0.0.1:9", "NO_PROXY": "*", "OPENSSL_CONF": conf,
                    "CURL_CA_BUNDLE": os.path.join(TLS_DIR, "selfsigned.pem")})
        for var, words in BAD_CERTS:
            url = "https://localhost:%s/hello" % ENV[var]
            r = run(["-s", "-S", "--cacert", CA, "-o", "/dev/null", url], env=env)
            check(r.rc == 60, "%s under the environment: %s" % (var, r.describe()))
        env["SSL_CERT_FILE"] = CA
        for var in ("AG_TLS_EXPIRED_PORT", "AG_TLS_WRONGNAME_PORT", "AG_TLS_SELFSIGNED_PORT"):
            url = "https://localhost:%s/hello" % ENV[var]
            r = run(["-s", "-S", "-o", "/dev/null", url], env=env)
            check(r.rc == 60, "%s with SSL_CERT_FILE: %s" % (var, r.describe()))
        r = run(["-s", "-S", "-o", "/dev/null", "https://localhost:%s/hello" % ENV["AG_TLS_PORT"]],
                env=env)
        check(r.rc == 0, "SSL_CERT_FILE names the trusted CAs: " + r.describe())
        # The old-protocol server: OPENSSL_CONF's MinProtocol does not lower the floor either.
        r = run(["-s", "-S", "-k", "-o", "/dev/null",
                 "https://localhost:%s/hello" % ENV["AG_TLS_OLD_PORT"]], env=env)
        check(r.rc == 35, "TLS 1.0/1.1 under OPENSSL_CONF: " + r.describe())


def sec_tls_no_other_option_skips_checks():
    """Options of other names that skip checks in other tools (proxy ones: asyncget has no
    proxy) are refused as unknown (2), not taken silently; the TLS options that exist (--cacert,
    --capath, --cert/--key) do not skip them; -k does not lower the TLS version floor."""
    need_tls()
    need("-k", "--cacert", "--cert", "--key")
    url = "https://localhost:%s/hello" % ENV["AG_TLS_SELFSIGNED_PORT"]
    for opt in (["--proxy-insecure"], ["--proxy", "http://127.0.0.1:9"], ["-x", "127.0.0.1:9"],
                ["--ssl-no-revoke"], ["--ssl-revoke-best-effort"], ["--no-insecure"],
                ["--insecure=yes"], ["--doh-insecure"], ["--ssl-allow-beast"], ["--no-verify"],
                ["--noproxy", "*"], ["--pinnedpubkey", "sha256//x"], ["--hsts", "/dev/null"]):
        r = run(["-s", "-S", "-o", "/dev/null"] + opt + [url])
        check(r.rc in (2, 60), "%r: %s" % (opt, r.describe()))
    for opt in (["--cacert", CA], ["--capath", ENV["AG_TLS_CA_DIR"]],
                ["--cacert", os.path.join(TLS_DIR, "other-ca.pem")],
                ["--cacert", CA, "--cert", ENV["AG_TLS_CLIENT_CERT"], "--key",
                 ENV["AG_TLS_CLIENT_KEY"]]):
        r = run(["-s", "-S", "-o", "/dev/null"] + opt + [url])
        check(r.rc == 60, "%r: %s" % (opt, r.describe()))
    r = run(["-s", "-S", "--cacert", "", "-o", "/dev/null",
             "https://localhost:%s/hello" % ENV["AG_TLS_PORT"]])
    check(r.rc != 0, "--cacert '' (no file) fell back to something that passed: " + r.describe())
    r = run(["-s", "-S", "-k", "-o", "/dev/null",
             "https://localhost:%s/hello" % ENV["AG_TLS_OLD_PORT"]])
    check(r.rc == 35, "-k with a TLS 1.0/1.1-only server: " + r.describe())


def sec_tls_redirects_verified():
    """A redirect to https (from http, or from https to another https origin) is verified like
    the first request: exit 60 at a bad certificate; -k covers every hop of the run (as curl's
    does)."""
    need_tls()
    need("-k", "-L", "--cacert")
    s = server()
    for var, _ in BAD_CERTS:
        target = "https://localhost:%s/hello" % ENV[var]
        for scheme in ("http", "https"):
            src = loc(s, target, scheme=scheme, host="localhost")
            r = run(["-s", "-S", "-L", "--cacert", CA, "-o", "/dev/null", src])
            check(r.rc == 60, "%s from %s: %s" % (var, scheme, r.describe()))
            r = run(["-s", "-S", "-L", "-k", "-o", "/dev/null", src])
            check(r.rc == 0, "%s from %s with -k: %s" % (var, scheme, r.describe()))
    # The server of this script itself, over https both times: both hops verified.
    s.reset()
    r = run(["-s", "-S", "-L", "--cacert", CA, "-o", "/dev/null",
             loc(s, "https://localhost:%d/ok" % s.port, scheme="https", host="localhost")])
    check(r.rc == 0, "https to https on a valid certificate: " + r.describe())
    check([x[0] for x in s.seen()] == ["https", "https"], "hops: %r" % s.seen())


# ---------------------------------------------------------------- header injection

def sec_inject_options_refused():
    """CR, LF and other control bytes in the URL, -H (name or value, Host and Cookie included),
    -A, -e, -b, -u (name or password), --oauth2-bearer, -X and a URL file's line: the request is
    refused (3, 43, or 2 for a malformed option) and nothing with the injected field reaches the
    server."""
    need("-H", "-A", "-e", "-b", "-u", "--oauth2-bearer", "-X", "--url-file")
    s = server()
    u = "http://127.0.0.1:%d/ok" % s.port
    inj = "\r\nX-Injected: 1"
    cases = [
        [u + inj], [u + "\nX-Injected: 1"], [u + "?q=" + inj], [u + "#" + inj],
        ["http://u" + inj + "@127.0.0.1:%d/" % s.port],
        ["http://u%0d%0aX-Injected:%201@127.0.0.1:" + str(s.port) + "/"],
        ["http://u:p%0d%0aX-Injected:%201@127.0.0.1:" + str(s.port) + "/"],
        [u + "\x01"], [u + "\x7f"], [u + " HTTP/1.0" + inj],
        ["-H", "X-A: 1" + inj, u], ["-H", "X-A: 1\nX-Injected: 1", u], ["-H", "X-A: 1\r", u],
        ["-H", "X-A: \x01", u], ["-H", "X-Injected: 1\r\nX-A: 1", u],
        ["-H", "Host: h" + inj, u], ["-H", "Cookie: a=1" + inj, u],
        ["-H", "Authorization: x" + inj, u], ["-H", "Proxy-Authorization: x" + inj, u],
        ["-A", "agent" + inj, u], ["-e", "http://r/" + inj, u], ["-b", "a=1" + inj, u],
        ["-u", "user" + inj + ":pw", u], ["-u", "user:pw" + inj, u],
        ["--oauth2-bearer", "tok" + inj, u], ["-X", "GET / HTTP/1.1" + inj + "\r\nX", u],
        ["-X", "GET\n", u], ["-X", "G T", u],
    ]
    for args in cases:
        s.reset()
        r = run(["-s", "-S", "-o", "/dev/null"] + args)
        seen = s.seen()
        check(r.rc in (2, 3, 43), "%r: not refused: %s" % (args, r.describe()))
        check(not seen, "%r: refused, yet the server got %r" % (args, seen))
    with TempDir() as d:
        f = os.path.join(d, "urls")
        with open(f, "wb") as fp:
            fp.write(b"http://127.0.0.1:%d/ok\rX-Injected: 1\n" % s.port)
            fp.write(b"http://127.0.0.1:%d/ok\x00X-Injected: 1\n" % s.port)
            fp.write(b"http://127.0.0.1:%d/ok\x0bX\n" % s.port)
            fp.write(b"http://127.0.0.1:%d/good\n" % s.port)
        s.reset()
        r = run(["-s", "-o", "/dev/null", "--url-file", f])
        seen = s.seen()
        check(len(seen) == 1 and seen[0][1].startswith(b"GET /good ") and
              clean_head(seen[0][1]), "--url-file: %r (%s)" % (seen, r.describe()))


def sec_inject_escapes_stay_escaped():
    """%0d%0a in a URL's path and query, in a glob, and in a Location go on the wire as
    written: no field of their own, every head clean."""
    need("-L", "-g")
    s = server()
    p = s.port
    r = run(["-s", "-o", "/dev/null", "-g",
             "http://127.0.0.1:%d/a%%0d%%0aX-Injected:%%201?q=%%0D%%0AX-Injected:%%201%%00" % p])
    seen = s.seen()
    check(r.rc == 0 and len(seen) == 1 and seen[0][1].startswith(
        b"GET /a%0d%0aX-Injected:%201?q=%0D%0AX-Injected:%201%00 HTTP/1.1\r\n"),
        "%r: %s" % (seen, r.describe()))
    s.reset()
    r = run(["-s", "-o", "/dev/null", "http://127.0.0.1:%d/{a,b%%0d%%0aX-Injected:%%201}" % p])
    seen = sorted(x[1].split(b"\r\n")[0] for x in s.seen())
    check(r.rc == 0 and seen == [b"GET /a HTTP/1.1", b"GET /b%0d%0aX-Injected:%201 HTTP/1.1"],
          "glob: %r: %s" % (seen, r.describe()))
    s.reset()
    r = run(["-s", "-o", "/dev/null", "-L", loc(s, "/ok%0d%0aX-Injected:%201")])
    seen = s.seen()
    check(r.rc == 0 and len(seen) == 2 and
          seen[1][1].startswith(b"GET /ok%0d%0aX-Injected:%201 HTTP/1.1\r\n"),
          "Location: %r: %s" % (seen, r.describe()))
    for _, head, _ in s.seen():
        check(clean_head(head) and b"\r\nX-Injected" not in head, "a head: %r" % head)


def sec_inject_location_raw_bytes_not_followed():
    """A Location with raw control bytes or a backslash is not followed (and said so); one with
    spaces or 8-bit bytes is refused or sent %-encoded, never raw (one request line still)."""
    need("-L")
    s = server()
    for to in (b"/ok\x01x", b"/ok\x7fx", b"/ok\tx", b"/ok\\..\\x",
               b"/ok\rX-Injected: 1", b"/ok\x00\r\nX-Injected: 1"):
        s.reset()
        r = run(["-s", "-S", "-L", "-o", "/dev/null", loc(s, to)])
        seen = s.seen()
        check(r.rc != 0 and len(seen) == 1, "%r followed: %r, %s" % (to, seen, r.describe()))
    for to in (b"/caf\xc3\xa9", b"/ok X-Injected: 1"):
        s.reset()
        r = run(["-s", "-S", "-L", "-o", "/dev/null", loc(s, to)])
        seen = s.seen()
        check((r.rc != 0 and len(seen) == 1) or (r.rc == 0 and len(seen) == 2),
              "Location %r: %r %s" % (to, seen, r.describe()))
        for _, head, _ in seen:
            check(clean_head(head) and b"\r\nX-Injected" not in head,
                  "raw bytes or an injected field on the wire: %r" % head)


# ---------------------------------------------------------------- credentials

CRED_KINDS = [
    ("-u", ["-u", "su:sp"], b"Authorization: Basic c3U6c3A="),
    ("--oauth2-bearer", ["--oauth2-bearer", "s3cret"], b"Authorization: Bearer s3cret"),
    ("-H Authorization", ["-H", "Authorization: Own s3cret"], b"Authorization: Own s3cret"),
    ("-H Cookie", ["-H", "Cookie: sess=s3cret"], b"sess=s3cret"),
    ("-b", ["-b", "bsess=s3cret"], b"bsess=s3cret"),
    ("-H Proxy-Authorization", ["-H", "Proxy-Authorization: Basic cHg6cHg="],
     b"Proxy-Authorization: Basic cHg6cHg="),
    ("userinfo", [], b"Authorization: Basic Y3U6Y3A="),
    ("--netrc-file", None, b"Authorization: Basic bnU6bnA="),
]


def cred_runs(s, start, extra, d, kinds=None):
    """For each kind of credentials (those named in kinds, or all), the runs from start (a URL
    of the server); yields the kind's name, the run, what each request received carried (a
    string of 0 and 1) and the schemes of the requests."""
    netrc = os.path.join(d, "netrc")
    with open(netrc, "w") as f:
        f.write("machine localhost login nu password np\n"
                "machine 127.0.0.1 login nu password np\n")
    for name, args, mark in CRED_KINDS:
        if kinds and name not in kinds:
            continue
        url = start
        if name == "userinfo":
            url = start.replace("://", "://cu:cp@", 1)
        if args is None:
            args = ["--netrc-file", netrc]
        s.reset()
        r = run(["-s", "-S", "-o", "/dev/null", "--cacert", CA] + extra + args + [url])
        got = "".join("1" if mark in head else "0" for _, head, _ in s.seen())
        yield name, r, got, [x[0] for x in s.seen()]


def sec_credentials_scheme_change_same_host_port():
    """http to https on the same host and port (and back) is another origin: none of the user's
    credentials go there (every kind: -u, --oauth2-bearer, -H Authorization, -H Cookie, -b,
    -H Proxy-Authorization, the URL's userinfo, --netrc-file), unless --location-trusted."""
    need_tls()
    need("-L", "--location-trusted", "-u", "--oauth2-bearer", "--netrc-file", "-b")
    s = server()
    with TempDir() as d:
        for src_scheme, dst_scheme in (("http", "https"), ("https", "http")):
            start = loc(s, "%s://localhost:%d/ok" % (dst_scheme, s.port), scheme=src_scheme,
                        host="localhost")
            for trusted in (False, True):
                extra = ["--location-trusted"] if trusted else ["-L"]
                want = "11" if trusted else "10"
                for name, r, got, schemes in cred_runs(s, start, extra, d):
                    check(r.rc == 0 and schemes == [src_scheme, dst_scheme],
                          "%s %s->%s: hops %r: %s" % (name, src_scheme, dst_scheme, schemes,
                                                     r.describe()))
                    check(got == want, "%s %s->%s%s: carried by the requests %r, want %r" % (
                        name, src_scheme, dst_scheme, " trusted" if trusted else "", got, want))


def sec_credentials_odd_locations():
    """Locations that name another origin in odd ways (another port, scheme-relative, a
    trailing dot, 127.0.0.1 against localhost, userinfo of their own, 307 and 308 with a body)
    get none of the user's credentials; the same origin spelled in capitals, or relative, gets
    them."""
    need("-L", "-u", "--oauth2-bearer", "--netrc-file", "-b", "-d")
    s = server()
    other = Server()
    with TempDir() as d:
        cases = [
            ("http://localhost:%d/ok" % other.port, "10", []),
            ("//localhost:%d/ok" % other.port, "10", []),
            ("http://localhost.:%d/ok" % s.port, "10", []),
            ("http://127.0.0.1:%d/ok" % s.port, "10", []),
            ("http://evil:pw@localhost:%d/ok" % other.port, "10", []),
            ("HTTP://LOCALHOST:%d/ok" % s.port, "11", []),
            ("/ok", "11", []),
        ]
        # Every kind for the first Location; a few for the others (the library's own test,
        # tests/http/test-security.c, crosses every kind with every Location): this keeps the
        # case short under the sanitizers.
        few = ("-u", "-H Cookie", "userinfo")
        for i, (to, want, extra) in enumerate(cases):
            start = loc(s, to, host="localhost")
            for name, r, got, _ in cred_runs(s, start, ["-L"] + extra, d,
                                             None if i == 0 else few):
                got += "".join("1" if b"s3cret" in h or b"c3U6c3A=" in h or b"Y3U6Y3A=" in h
                               or b"bnU6bnA=" in h or b"cHg6cHg=" in h else "0"
                               for _, h, _ in other.seen())
                other.reset()
                check(r.rc == 0 and got == want, "%s to %r: carried by %r, want %r (%s)" % (
                    name, to, got, want, r.describe()))
        for status in (307, 308):
            start = loc(s, "http://localhost:%d/ok" % other.port, status=status,
                        host="localhost")
            for name, r, got, _ in cred_runs(s, start, ["-L", "-d", "body=1"], d, few):
                seen = other.seen()
                other.reset()
                check(r.rc == 0 and got == "1" and len(seen) == 1 and seen[0][2] == b"body=1"
                      and seen[0][1].startswith(b"POST "),
                      "%s, %d with a body: %r %r (%s)" % (name, status, got, seen, r.describe()))
                for _, head, _ in seen:
                    for _, _, mark in CRED_KINDS:
                        check(mark not in head, "%s, %d: the other origin got %r" % (
                            name, status, mark))


def sec_credentials_retries_start_over():
    """--retry after a redirect to another origin that answers 503: each try starts again at the
    first URL (credentials there), and the other origin never gets them, try after try."""
    need("-L", "-u", "--retry", "--retry-delay")
    s = server()
    other = Server()
    with TempDir() as d:
        start = loc(s, "http://localhost:%d/busy" % other.port, host="localhost")
        for name, r, got, _ in cred_runs(s, start, ["-L", "--retry", "2", "--retry-delay", "0.01"],
                                         d):
            seen = other.seen()
            other.reset()
            check(got == "111" and len(seen) == 3, "%s: first origin %r, other %d requests (%s)"
                  % (name, got, len(seen), r.describe()))
            for _, head, _ in seen:
                for _, _, mark in CRED_KINDS:
                    check(mark not in head, "%s: a retry sent %r to the other origin" % (name,
                                                                                        mark))


# ---------------------------------------------------------------- -O

def sec_remote_name_stays_in_dir_every_source():
    """-O names from URLs given by a glob, a URL file and a redirect (the name is the first
    URL's, as curl's): every file lands in --output-dir, a name held by a directory or a
    symlink to one gets a suffix and nothing goes inside them."""
    need("-O", "--output-dir", "--url-file", "-L")
    s = server()
    with TempDir() as d:
        out = os.path.join(d, "out")
        os.mkdir(out)
        os.mkdir(os.path.join(out, "adir"))
        os.mkdir(os.path.join(d, "victim"))
        os.symlink(os.path.join(d, "victim"), os.path.join(out, "alink"))
        p = s.port
        urls = os.path.join(d, "urls")
        with open(urls, "w") as f:
            for seg in ("..", ".", "%2e%2e%2f%2e%2e%2fvictim%2fx", "..%2F..%2Fvictim%2Fy",
                        "adir", "alink", "a/..", "x/../../../victim/z"):
                f.write("http://127.0.0.1:%d/%s\n" % (p, seg))
        r = run(["-s", "-O", "--output-dir", out, "--url-file", urls,
                 "http://127.0.0.1:%d/{..,.,%%2e%%2e,adir,alink}" % p,
                 "-L", loc(s, "http://127.0.0.1:%d/../../victim/w" % p)], cwd=d)
        check(r.rc == 0, r.describe())
        check(os.listdir(os.path.join(d, "victim")) == [], "a body in the symlink's target: %r"
              % os.listdir(os.path.join(d, "victim")))
        check(os.listdir(os.path.join(out, "adir")) == [], "a body inside the directory")
        check(sorted(os.listdir(d)) == ["out", "urls", "victim"], "beside --output-dir: %r"
              % os.listdir(d))
        names = sorted(os.listdir(out))
        check(not any(n.startswith(".") or "/" in n for n in names), "names: %r" % names)
        # 8 from the file, 5 from the glob, 1 redirect; plus adir and alink themselves
        check(len(names) == 8 + 5 + 1 + 2, "files: %r" % names)
        for n in ("adir.1", "alink.1", "loc"):
            check(n in names, "%r not among %r" % (n, names))


CASES = [
    sec_tls_bad_certificate_exit_60,
    sec_tls_environment_never_skips_checks,
    sec_tls_no_other_option_skips_checks,
    sec_tls_redirects_verified,
    sec_inject_options_refused,
    sec_inject_escapes_stay_escaped,
    sec_inject_location_raw_bytes_not_followed,
    sec_credentials_scheme_change_same_host_port,
    sec_credentials_odd_locations,
    sec_credentials_retries_start_over,
    sec_remote_name_stays_in_dir_every_source,
]

KNOWN = {}


def main():
    if not AG:
        sys.stderr.write(__doc__)
        return 2
    return tapcases.run(CASES, KNOWN, Skip, Fail, "test_security.py", sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
