#!/usr/bin/python3
"""test_features.py: the command's content codings, credentials, cookies, Unix sockets and
uploads, driven as a user would drive them (TAP).

Usage (under tests/servers/with-servers --nginx --httpbin --hostile):
  test_features.py ASYNCGET [CASE...]

Each case runs the command against nginx, httpbin and hostile.py on loopback and checks what
the server received (httpbin and hostile.py echo it) or what the user sees. A case whose option
is not in the binary yet (`asyncget --help` does not list it), or whose server side is not
there (a location of nginx.conf.in, a variable of with-servers), is a TAP skip that says so.
No case bounds how fast anything is.

Environment: with-servers' AG_* variables; AG_TEST_WRAPPER (valgrind) is put in front of every
run of the command. Python: /usr/bin/python3 with its standard library only.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import tapcases  # the TAP runner, beside this script

AG = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER = os.environ.get("AG_TEST_WRAPPER", "").split()
HANG = 120.0 if not WRAPPER else 1200.0

NG_PORT = int(os.environ.get("AG_NGINX_PORT", "0"))
NG = "http://127.0.0.1:%d" % NG_PORT
HB_PORT = int(os.environ.get("AG_HTTPBIN_PORT", "0"))
HB = "http://127.0.0.1:%d" % HB_PORT
# The same httpbin under another origin: a redirect between the two changes the host.
HB_OTHER = "http://localhost:%d" % HB_PORT
HO = "http://127.0.0.1:%s" % os.environ.get("AG_HOSTILE_PORT", "0")
MAN = os.path.join(HERE, "..", "..", "cli", "asyncget.1")


class Skip(Exception):
    pass


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


# ---------------------------------------------------------------- running the command

class Result:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def describe(self):
        return "asyncget %s: exit %s, stderr: %s" % (
            " ".join(a if len(a) < 100 else a[:97] + "..." for a in self.argv), self.rc,
            self.err[-600:].decode("utf-8", "replace").strip() or "(empty)")


_help = None


def help_text():
    global _help
    if _help is None:
        p = subprocess.run(WRAPPER + [AG, "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=HANG)
        _help = p.stdout.decode("utf-8", "replace")
    return _help


def offers(opt):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), help_text()) is not None


def need(*opts):
    """A skip naming the options `asyncget --help` does not list yet."""
    missing = [o for o in opts if not offers(o)]
    if missing:
        raise Skip("not in the binary yet: asyncget --help does not list %s" % ", ".join(missing))


def run(args, stdin=None, env=None, cwd=None):
    """asyncget with args (the options among them must be offered, else a skip); stdin bytes or
    None (then /dev/null)."""
    need(*[a.split("=", 1)[0] for a in args if re.match(r"^--?[A-Za-z]", a)])
    p = subprocess.Popen(WRAPPER + [AG] + list(args),
                         stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                         start_new_session=True)
    try:
        out, err = p.communicate(stdin, timeout=HANG)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise Fail("asyncget %s hung; stderr: %s" % (" ".join(args), err[-400:]))
    return Result(list(args), p.returncode, out, err)


def run_ok(args, **kw):
    r = run(args, **kw)
    check(r.rc == 0, "expected exit 0: " + r.describe())
    return r


def run_json(args, **kw):
    """One request whose body is a JSON document (httpbin's and hostile.py's echoes)."""
    r = run_ok(["-s"] + args, **kw)
    try:
        return json.loads(r.out)
    except ValueError:
        raise Fail("the body is not JSON: %r; %s" % (r.out[:300], r.describe()))


def status_of(args, **kw):
    """The status code the command reports for one request (-w), and the exit code."""
    r = run(["-s", "-o", "/dev/null", "-w", "%{http_code}"] + args, **kw)
    return int(r.out or b"0"), r


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="ag-feat.")
        return self.path

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def httpbin_bytes(value):
    """What httpbin echoes of a body or a file part: text as it is, other bytes as a base64
    data URL."""
    m = re.match(r"^data:application/octet-stream;base64,(.*)$", value, re.S)
    return base64.b64decode(m.group(1)) if m else value.encode("utf-8")


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def auth_seen(args):
    """The Authorization header httpbin's /headers saw, or None."""
    return run_json(args + [HB + "/headers"])["headers"].get("Authorization")


# ---------------------------------------------------------------- cases

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


NEW_OPTIONS = ["--compressed", "-u", "--user", "--oauth2-bearer", "--netrc", "--netrc-optional",
               "--netrc-file", "--location-trusted", "-b", "--cookie", "-c", "--cookie-jar", "-j",
               "--junk-session-cookies", "--unix-socket", "--abstract-unix-socket", "-T",
               "--upload-file", "-F", "--form", "--form-string", "--data-urlencode"]


@case
def features_man_page_lists_offered_options():
    # Every new option --help offers is in the man page too (the page is the source tree's).
    offered = [o for o in NEW_OPTIONS if offers(o)]
    if not offered:
        raise Skip("--help lists none of the new options yet")
    man = read(MAN).decode("utf-8").replace("\\-", "-")
    missing = [o for o in offered if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), man)]
    check(not missing, "options in --help but not in the man page: %s" % missing)


@case
def features_exit_61_in_help():
    need("--compressed")
    check(re.search(r"(?<![\d.])61(?![\d.])", help_text()), "--help does not list exit code 61")


# ---- content codings

NG_ROOT = os.environ.get("AG_NGINX_ROOT", "")
CODED = os.environ.get("AG_NGINX_CODED", "")
# The keys of a --jsonl line: curl's, asyncget's, then those added later.
JSONL_KEYS = ["urlnum", "url", "url_effective", "method", "http_code", "size_download",
              "size_header", "time_queue", "time_namelookup", "time_connect", "time_appconnect",
              "time_pretransfer", "time_starttransfer", "time_total", "num_connects",
              "num_redirects", "conn_id", "remote_ip", "remote_port", "exitcode", "errormsg",
              "reused", "tls_version", "tls_resumed", "attempts", "start", "size_decoded",
              "local_ip", "local_port"]


def need_codings():
    if not CODED:
        raise Skip("with-servers has no --codings (AG_NGINX_CODED is not set)")


_features = None


def features():
    """The words of the Features line of asyncget -V."""
    global _features
    if _features is None:
        need("-V")
        out = run_ok(["-V"]).out.decode()
        m = re.search(r"(?m)^Features:(.*)$", out)
        check(m, "-V has no Features line: %r" % out)
        _features = m.group(1).split()
    return _features


def need_coding(word, why):
    if word not in features():
        raise Skip("this build does not decode %s (-V lists no %s)" % (why, word))


def plain(name):
    return read(os.path.join(NG_ROOT, name))


def fetch_coded(args, path):
    """Body, size_download and size_decoded of one request with --compressed."""
    with TempDir() as d:
        out = os.path.join(d, "body")
        r = run(["-s", "--compressed", "-o", out, "-w", "%{size_download} %{size_decoded}"] +
                args + [NG + path])
        body = read(out) if os.path.exists(out) else b""
    sizes = r.out.split()
    if r.rc != 0 or len(sizes) != 2:
        return r, body, None, None
    return r, body, int(sizes[0]), int(sizes[1])


@case
def features_compressed_gzip_decoded_sizes():
    need("--compressed")
    need_codings()
    need_coding("libz", "gzip")
    text = plain("text.txt")
    r, body, wire, decoded = fetch_coded([], "/gz/text.txt")
    check(r.rc == 0, "expected exit 0: " + r.describe())
    check(body == text, "decoded body: %d bytes, not text.txt's %d (or different)" % (
        len(body), len(text)))
    check(decoded == len(text), "size_decoded %r, expected %d" % (decoded, len(text)))
    check(wire < len(text) // 2, "size_download %r: not the gzip on the wire (text %d)" % (
        wire, len(text)))
    # Without --compressed nothing is asked for: nginx sends the bytes as they are.
    r = run_ok(["-s", "-o", "/dev/null", "-w", "%{size_download} %{size_decoded}",
                NG + "/gz/text.txt"])
    check(r.out.split() == [str(len(text)).encode()] * 2, "without --compressed: sizes %r" % r.out)


@case
def features_compressed_coded_files():
    need("--compressed")
    need_codings()
    text = plain("text.txt")
    tried = []
    for word, path in (("libz", "/coded/gzip/text.txt"), ("libz", "/coded/gzip/multi.txt"),
                       ("libz", "/coded/deflate/text.txt"), ("libz", "/coded/gzip-gzip/text.txt"),
                       ("zstd", "/coded/zstd/text.txt"), ("zstd", "/coded/zstd/multi.txt")):
        if word not in features():
            continue
        if word == "zstd" and os.environ.get("AG_NGINX_ZSTD") != "1":
            continue
        tried.append(path)
        r, body, wire, decoded = fetch_coded([], path)
        coded = read(os.path.join(CODED, path[len("/coded/"):]))
        check(r.rc == 0, "%s: expected exit 0: %s" % (path, r.describe()))
        check(body == text, "%s: %d bytes decoded, not text.txt's %d" % (path, len(body),
                                                                          len(text)))
        check(wire == len(coded) and decoded == len(text), "%s: size_download %r (file %d), "
              "size_decoded %r" % (path, wire, len(coded), decoded))
    if not tried:
        raise Skip("this build decodes neither gzip nor zstd")
    # Without --compressed a coded body is delivered as it came.
    if "libz" in features():
        with TempDir() as d:
            out = os.path.join(d, "body")
            run_ok(["-s", "-o", out, NG + "/coded/gzip/text.txt"])
            check(read(out) == read(os.path.join(CODED, "gzip/text.txt")),
                  "without --compressed the body was changed")


@case
def features_compressed_brotli():
    need("--compressed")
    need_codings()
    if os.environ.get("AG_NGINX_BROTLI") != "1":
        raise Skip("nginx has no brotli: %s" % os.environ.get("AG_NGINX_BROTLI_WHY", "?"))
    need_coding("brotli", "br")
    text = plain("text.txt")
    r, body, wire, decoded = fetch_coded([], "/br/text.txt")
    check(r.rc == 0 and body == text and decoded == len(text) and wire < len(text) // 2,
          "/br/text.txt: exit %s, %d bytes decoded of %d, size_download %r: %s" % (
              r.rc, len(body), len(text), wire, r.describe()))


@case
def features_compressed_bad_body_61():
    need("--compressed")
    need_codings()
    paths = []
    if "libz" in features():
        paths += ["/coded/gzip/corrupt.txt", "/coded/gzip/truncated.txt",
                  "/coded/gzip/truncated-trailer.txt", "/coded/gzip/badcrc.txt",
                  "/coded/deflate/truncated.txt"]
    if "zstd" in features() and os.environ.get("AG_NGINX_ZSTD") == "1":
        paths += ["/coded/zstd/corrupt.txt", "/coded/zstd/truncated.txt"]
    if not paths:
        raise Skip("this build decodes neither gzip nor zstd")
    # A coding nobody knows cannot be decoded either.
    paths.append("/coded/unknown/text.txt")
    for path in paths:
        r = run(["-s", "-o", "/dev/null", "--compressed", NG + path])
        check(r.rc == 61, "%s: expected exit 61 (bad content encoding): %s" % (path, r.describe()))


@case
def features_compressed_bomb_61():
    need("--compressed")
    need_codings()
    need_coding("libz", "gzip")
    # 1 GiB of zeros from 1 MB (a ratio of about 1011) and from 2.5 KB (gzip twice): past the
    # library's default ratio limit of 1000, stopped early rather than decoded whole.
    for path in ("/coded/gzip/bomb", "/coded/gzip-gzip/bomb"):
        r = run(["-s", "-o", "/dev/null", "-w", "%{size_decoded}", "--compressed", NG + path])
        check(r.rc == 61, "%s: expected exit 61 (the expansion ratio): %s" % (path, r.describe()))
        check(int(r.out or b"0") < (1 << 30), "%s: decoded whole (%s bytes)" % (path, r.out))


@case
def features_compressed_jsonl_har_summary():
    need("--compressed", "--jsonl", "--har", "--summary")
    need_codings()
    need_coding("libz", "gzip")
    text = plain("text.txt")
    with TempDir() as d:
        har = os.path.join(d, "h.har")
        r = run_ok(["--jsonl", "--compressed", "--har", har, "--summary",
                    NG + "/gz/text.txt", NG + "/hello"])
        lines = [json.loads(x, object_pairs_hook=lambda p: p) for x in r.out.splitlines()]
        check(len(lines) == 2, "%d --jsonl lines" % len(lines))
        for pairs in lines:
            check([k for k, _ in pairs] == JSONL_KEYS, "keys %s, expected %s" % (
                [k for k, _ in pairs], JSONL_KEYS))
        objs = sorted((dict(p) for p in lines), key=lambda o: o["urlnum"])
        gz, hello = objs
        check(gz["size_decoded"] == len(text) and gz["size_download"] < len(text),
              "gz: size_download %r size_decoded %r" % (gz["size_download"], gz["size_decoded"]))
        check(hello["size_decoded"] == hello["size_download"] == 13,
              "hello: %r %r" % (hello["size_download"], hello["size_decoded"]))
        doc = json.loads(read(har))
        by_url = {e["request"]["url"]: e["response"] for e in doc["log"]["entries"]}
        g = by_url[NG + "/gz/text.txt"]
        check(g["content"]["size"] == len(text) and g["bodySize"] == gz["size_download"],
              "HAR: content.size %r bodySize %r" % (g["content"]["size"], g["bodySize"]))
        check(g["content"].get("compression") == len(text) - gz["size_download"],
              "HAR: content.compression %r" % g["content"].get("compression"))
        h = by_url[NG + "/hello"]
        check("compression" not in h["content"], "HAR: compression for an identity body")
        check(b"decoded" in r.err, "the summary does not give the decoded bytes: %r" % r.err)


@case
def features_version_lists_codings():
    # The Features line names what --compressed decodes, in curl's words: a coding listed is
    # decoded, one not listed is not asked for (nginx's /gz/ and /br/ then send plain bytes)
    # and fails with 61 when a server sends it anyway.
    need("-V", "--compressed")
    need_codings()
    f = features()
    out = run_ok(["-V"]).out.decode()
    check(out.splitlines()[1].startswith("asyncget/"), "-V line 2 is not the library's "
          "details: %r" % out)
    text = len(plain("text.txt"))
    asked = [("libz", "/gz/text.txt")]
    if os.environ.get("AG_NGINX_BROTLI") == "1":
        asked.append(("brotli", "/br/text.txt"))
    for word, path in asked:
        r = run_ok(["-s", "-o", "/dev/null", "--compressed", "-w",
                    "%{size_download} %{size_decoded}", NG + path])
        wire, decoded = (int(x) for x in r.out.split())
        check(decoded == text, "%s: size_decoded %d, expected %d" % (path, decoded, text))
        check((wire < text) == (word in f), "-V %s %s, yet %s came with %d bytes on the wire" % (
            "lists" if word in f else "does not list", word, path, wire))
    if os.environ.get("AG_NGINX_ZSTD") == "1":
        r = run(["-s", "-o", "/dev/null", "--compressed", NG + "/coded/zstd/small.txt"])
        check(r.rc == (0 if "zstd" in f else 61), "-V %s zstd, yet a zstd body: %s" % (
            "lists" if "zstd" in f else "does not list", r.describe()))


# ---- Unix sockets

@case
def features_unix_socket():
    need("--unix-socket")
    path = os.environ.get("AG_NGINX_UNIX")
    if not path:
        raise Skip("with-servers gives no AG_NGINX_UNIX")
    # The URL names a host nothing resolves: the socket is the only way there.
    r = run_ok(["-s", "--unix-socket", path, "http://nowhere.invalid/hello",
                "http://nowhere.invalid/1k"])
    check(r.out.startswith(b"hello, world\n") or r.out.endswith(b"hello, world\n"),
          "--unix-socket: %r" % r.out[:100])
    check(len(r.out) == 13 + 1024, "two bodies over the socket: %d bytes" % len(r.out))
    # A Unix socket has no address or port: remote_ip is "" and remote_port 0, as in curl.
    o = json.loads(run_ok(["--jsonl", "--unix-socket", path, "http://nowhere.invalid/hello"]).out)
    check(o["http_code"] == 200 and o["remote_ip"] == "" and o["remote_port"] == 0,
          "--jsonl over the socket: %r" % o)
    r = run(["-s", "--unix-socket", "/nonexistent/ag.sock", "http://nowhere.invalid/hello"])
    check(r.rc == 7, "a socket that is not there: expected exit 7: " + r.describe())


@case
def features_abstract_unix_socket():
    need("--abstract-unix-socket")
    name = os.environ.get("AG_NGINX_ABSTRACT")
    if not name:
        raise Skip("with-servers gives no AG_NGINX_ABSTRACT (--unix)")
    r = run_ok(["-s", "--abstract-unix-socket", name, "http://nowhere.invalid/hello"])
    check(r.out == b"hello, world\n", "--abstract-unix-socket: %r" % r.out[:100])
    # The same name as a path is no file.
    r = run(["-s", "--unix-socket", name, "http://nowhere.invalid/hello"])
    check(r.rc == 7, "the abstract name as a path: expected exit 7: " + r.describe())


# ---- request bodies

@case
def features_request_kinds_conflict():
    # curl refuses two kinds of request body on one command line, with exit 2 and a message,
    # before anything is sent; each pair alone works (the control runs).
    with TempDir() as d:
        f = os.path.join(d, "up")
        write(f, b"x")
        pairs = [(["-d", "a=1"], ["-F", "b=2"]), (["-T", f], ["-d", "a=1"]),
                 (["-I"], ["-d", "a=1"]), (["-F", "b=2"], ["-T", f]),
                 (["--data-urlencode", "a=1"], ["-T", f]), (["--json", "{}"], ["-F", "b=2"])]
        offered = [(a, b) for a, b in pairs if all(offers(o) for o in a + b if o.startswith("-"))]
        if not offered:
            need("-F")
        for a, b in offered:
            for one in (a, b):
                r = run(["-s", "-o", "/dev/null"] + one + [HO + "/echo"])
                check(r.rc == 0, "control, alone: " + r.describe())
            r = run(["-s", "-o", "/dev/null"] + a + b + [HO + "/echo"])
            check(r.rc == 2, "expected exit 2: " + r.describe())
            check(b"only select one" in r.err, "no message naming the conflict: " + r.describe())


@case
def features_data_urlencode_forms_in_order():
    # The five forms, joined with '&' in order with -d pieces, byte for byte as sent.
    with TempDir() as d:
        f = os.path.join(d, "text")
        write(f, b"line one\nl&2=x\n")
        e = run_json(["--data-urlencode", "a b=c d&e", "-d", "raw=1+2",
                      "--data-urlencode", "=only value", "--data-urlencode", "plain text",
                      "--data-urlencode", "file@" + f, "--data-urlencode", "@" + f,
                      HO + "/echo"])
        want = ("a b=c%20d%26e&raw=1+2&only%20value&plain%20text&"
                "file=line%20one%0Al%262%3Dx%0A&line%20one%0Al%262%3Dx%0A")
        check(e["method"] == "POST", "method %r" % e["method"])
        check(e["body"] == want, "body %r, expected %r" % (e["body"], want))
        ctype = dict((k.lower(), v) for k, v in e["headers"]).get("content-type")
        check(ctype == "application/x-www-form-urlencoded", "Content-Type %r" % ctype)
    # httpbin decodes what was sent as the form it stands for.
    e = run_json(["--data-urlencode", "name=J. Doe & co", "--data-urlencode", "q=a+b=c",
                  HB + "/post"])
    check(e["form"] == {"name": "J. Doe & co", "q": "a+b=c"}, "httpbin's form %r" % e["form"])


@case
def features_data_urlencode_missing_file_26():
    r = run(["-s", "--data-urlencode", "n@/nonexistent/ag-feat", HO + "/echo"])
    check(r.rc == 26, "expected exit 26 (cannot read): " + r.describe())


@case
def features_upload_file_put():
    # -T FILE: a PUT of the file's bytes, as httpbin and hostile.py received them.
    with TempDir() as d:
        f = os.path.join(d, "blob.bin")
        data = os.urandom(300 * 1024) + bytes(range(256))
        write(f, data)
        e = run_json(["-T", f, HB + "/put"])
        got = httpbin_bytes(e["data"])
        check(got == data, "httpbin /put received %d bytes, not the file's %d (or different)"
              % (len(got), len(data)))
        check(e["headers"].get("Content-Length") == str(len(data)),
              "Content-Length %r" % e["headers"].get("Content-Length"))
        e = run_json(["-T", f, HO + "/echo"])
        check(e["method"] == "PUT", "method %r" % e["method"])
        check(e["body_sha256"] == hashlib.sha256(data).hexdigest(),
              "hostile.py received %d bytes, not the file" % e["body_len"])
        # -X still chooses the method.
        e = run_json(["-X", "POST", "-T", f, HO + "/echo"])
        check(e["method"] == "POST" and e["body_len"] == len(data),
              "-X POST -T: method %r, %d bytes" % (e["method"], e["body_len"]))


@case
def features_upload_file_many_urls_share_it():
    # One file, several URLs at once: every request sends all of it.
    with TempDir() as d:
        f = os.path.join(d, "blob")
        data = os.urandom(64 * 1024)
        write(f, data)
        urls = [HO + "/echo?i=%d" % i for i in range(6)]
        r = run_ok(["-s", "--parallel-max", "6", "-T", f] + urls)
        docs = [json.loads(line) for line in r.out.splitlines() if line.strip()]
        check(len(docs) == 6, "%d echoes for 6 URLs" % len(docs))
        want = hashlib.sha256(data).hexdigest()
        check(all(x["body_sha256"] == want for x in docs),
              "bodies received: %s" % [x["body_len"] for x in docs])


@case
def features_upload_url_gets_file_name():
    # A URL whose path ends in '/' gets the file's base name, encoded, as curl does; one that
    # names a file keeps its own.
    with TempDir() as d:
        f = os.path.join(d, "my file.txt")
        write(f, b"hello")
        for url, want in ((HO + "/dir/", HO + "/dir/my%20file.txt"), (HO, HO + "/my%20file.txt"),
                          (HO + "/named", HO + "/named"), (HO + "/dir/?q=1", HO + "/dir/?q=1")):
            r = run_ok(["-s", "-o", "/dev/null", "-w", "%{url_effective}", "-T", f, url])
            check(r.out.decode() == want, "-T to %s went to %r, expected %s" % (url, r.out, want))


@case
def features_upload_stdin():
    # -T -: stdin, streamed (chunked: its length is not known), for one URL.
    data = os.urandom(100 * 1024)
    e = run_json(["-T", "-", HO + "/echo"], stdin=data)
    check(e["method"] == "PUT" and e["body_sha256"] == hashlib.sha256(data).hexdigest(),
          "-T -: method %r, %d bytes received of %d" % (e["method"], e["body_len"], len(data)))
    te = dict((k.lower(), v) for k, v in e["headers"]).get("transfer-encoding")
    check(te == "chunked", "Transfer-Encoding %r" % te)
    # Two requests cannot both read stdin: refused before anything is sent.
    r = run(["-s", "-T", "-", HO + "/echo?a", HO + "/echo?b"], stdin=b"x")
    check(r.rc == 2 and b"one URL" in r.err, "-T - with two URLs: " + r.describe())


@case
def features_upload_unreadable_26():
    r = run(["-s", "-T", "/nonexistent/ag-feat", HO + "/echo"])
    check(r.rc == 26, "expected exit 26: " + r.describe())
    with TempDir() as d:
        r = run(["-s", "-T", d, HO + "/echo"])
        check(r.rc == 26, "a directory: expected exit 26: " + r.describe())


@case
def features_form_fields_and_files():
    # -F fields, files (with a type and a filename of their own), a field read from a file,
    # and --form-string: what httpbin parsed, byte for byte.
    with TempDir() as d:
        f1 = os.path.join(d, "one.txt")
        f2 = os.path.join(d, "two.bin")
        f3 = os.path.join(d, "field.txt")
        write(f1, "text file\nwith two lines\n")
        bin2 = os.urandom(20000)
        write(f2, bin2)
        write(f3, "from a file")
        e = run_json(["-F", "a=1", "-F", "quoted=\"x;y\"", "-F", "f=@%s;type=text/plain" % f1,
                      "-F", "g=@%s;filename=renamed.bin" % f2, "-F", "c=<" + f3,
                      "--form-string", "s=@not a file;type=x", HB + "/post"])
        check(e["form"] == {"a": "1", "quoted": "x;y", "c": "from a file",
                            "s": "@not a file;type=x"}, "form %r" % e["form"])
        check(set(e["files"]) == {"f", "g"}, "files %r" % list(e["files"]))
        check(httpbin_bytes(e["files"]["f"]) == read(f1), "file f differs")
        check(httpbin_bytes(e["files"]["g"]) == bin2, "file g differs")
        ctype = e["headers"].get("Content-Type", "")
        check(ctype.startswith("multipart/form-data; boundary="), "Content-Type %r" % ctype)
        # The parts' own heads, as sent.
        e = run_json(["-F", "f=@%s;type=text/plain" % f1, "-F", "g=@%s;filename=renamed.bin" % f2,
                      "-F", "c=<" + f3, HO + "/echo"])
        check(e["method"] == "POST", "method %r" % e["method"])
        body = e["body"] or ""
        check('name="f"; filename="one.txt"' in body and "Content-Type: text/plain" in body,
              "part f's head not as asked: %r" % body[:400])
        check('name="g"; filename="renamed.bin"' in body, "part g's filename not renamed.bin")
        check(re.search(r'name="c"\r\n\r\nfrom a file', body), "part c is not a plain field")


@case
def features_form_stdin():
    data = b"from stdin\n"
    e = run_json(["-F", "up=@-", HB + "/post"], stdin=data)
    check(httpbin_bytes(e["files"].get("up", "")) == data, "files %r" % e["files"])
    e = run_json(["-F", "t=<-", HB + "/post"], stdin=data)
    check(e["form"].get("t") == data.decode(), "form %r" % e["form"])


@case
def features_form_missing_file_26():
    r = run(["-s", "-F", "f=@/nonexistent/ag-feat", HB + "/post"])
    check(r.rc == 26, "expected exit 26: " + r.describe())
    r = run(["-s", "-F", "no-equals-sign", HB + "/post"])
    check(r.rc == 2, "a field without '=': expected exit 2: " + r.describe())


# ---- credentials

@case
def features_user_basic_auth():
    code, r = status_of(["-u", "user:pass", HB + "/basic-auth/user/pass"])
    check(code == 200, "-u user:pass: status %d; %s" % (code, r.describe()))
    code, r = status_of(["-u", "user:wrong", HB + "/basic-auth/user/pass"])
    check(code == 401, "-u user:wrong: status %d, expected 401; %s" % (code, r.describe()))
    code, r = status_of([HB + "/basic-auth/user/pass"])
    check(code == 401, "without -u: status %d, expected 401" % code)
    # No ':' : an empty password (curl would prompt).
    got = auth_seen(["-u", "someone"])
    check(got == basic("someone", ""), "-u someone: Authorization %r" % got)
    # The URL's userinfo.
    code, r = status_of(["http://user:pass@127.0.0.1:%d/basic-auth/user/pass" % HB_PORT])
    check(code == 200, "userinfo in the URL: status %d; %s" % (code, r.describe()))


@case
def features_oauth2_bearer():
    got = auth_seen(["--oauth2-bearer", "tok.en-123"])
    check(got == "Bearer tok.en-123", "Authorization %r" % got)


@case
def features_netrc_file():
    with TempDir() as d:
        n = os.path.join(d, "netrc")
        write(n, "machine other.example login x password y\n"
                 "macdef init\nmachine 127.0.0.1 login evil password evil\n\n"
                 "machine 127.0.0.1\n  login user\n  password \"pass\"\n")
        code, r = status_of(["--netrc-file", n, HB + "/basic-auth/user/pass"])
        check(code == 200, "--netrc-file: status %d; %s" % (code, r.describe()))
        # Only the URL's host is searched: an entry for another host gives nothing.
        write(n, "machine other.example login user password pass\n")
        got = auth_seen(["--netrc-file", n])
        check(got is None, "credentials of another host's entry were sent: %r" % got)
        # default answers for any host.
        write(n, "machine other.example login a password b\ndefault login user password pass\n")
        code, r = status_of(["--netrc-file", n, HB + "/basic-auth/user/pass"])
        check(code == 200, "default entry: status %d; %s" % (code, r.describe()))
        # -u comes before .netrc.
        got = auth_seen(["--netrc-file", n, "-u", "me:mine"])
        check(got == basic("me", "mine"), "-u with --netrc-file: %r" % got)


@case
def features_netrc_home():
    with TempDir() as d:
        env = dict(os.environ, HOME=d)
        env.pop("NETRC", None)
        # --netrc without ~/.netrc: curl's ".netrc error", exit 26; --netrc-optional goes on.
        r = run(["-s", "-o", "/dev/null", "--netrc", HB + "/get"], env=env)
        check(r.rc == 26, "--netrc, no ~/.netrc: expected exit 26: " + r.describe())
        r = run(["-s", "-o", "/dev/null", "--netrc-optional", HB + "/get"], env=env)
        check(r.rc == 0, "--netrc-optional, no ~/.netrc: " + r.describe())
        write(os.path.join(d, ".netrc"), "machine 127.0.0.1 login user password pass\n")
        code, r = status_of(["--netrc", HB + "/basic-auth/user/pass"], env=env)
        check(code == 200, "--netrc with ~/.netrc: status %d; %s" % (code, r.describe()))
        # A --netrc-file that does not exist is refused at once (curl: exit 2).
        r = run(["-s", "--netrc-file", os.path.join(d, "none"), HB + "/get"], env=env)
        check(r.rc == 2, "--netrc-file missing: expected exit 2: " + r.describe())


def redirect_to(target):
    return HB + "/redirect-to?url=" + target


@case
def features_redirect_drops_credentials_across_origins():
    # httpbin at 127.0.0.1 redirects to itself under the name localhost: another origin. The
    # same redirect to 127.0.0.1 (same origin) keeps the credentials, so their absence is due
    # to the change of origin.
    same = redirect_to("http://127.0.0.1:%d/headers" % HB_PORT)
    other = redirect_to("http://localhost:%d/headers" % HB_PORT)
    for creds, want in ((["-u", "user:pass"], basic("user", "pass")),
                        (["--oauth2-bearer", "tok"], "Bearer tok")):
        e = run_json(["-L"] + creds + [same])
        check(e["headers"].get("Authorization") == want,
              "%s, same-origin redirect: Authorization %r" % (creds[0], e["headers"].get(
                  "Authorization")))
        e = run_json(["-L"] + creds + [other])
        check(e["headers"].get("Host", "").startswith("localhost"),
              "the redirect did not reach the other origin: %r" % e["headers"])
        check("Authorization" not in e["headers"],
              "%s: credentials sent to another origin: %r" % (creds[0],
                                                              e["headers"].get("Authorization")))
        e = run_json(["-L", "--location-trusted"] + creds + [other])
        check(e["headers"].get("Authorization") == want,
              "%s --location-trusted: Authorization %r" % (creds[0],
                                                           e["headers"].get("Authorization")))
    # .netrc's credentials are dropped the same way.
    with TempDir() as d:
        n = os.path.join(d, "netrc")
        write(n, "machine 127.0.0.1 login user password pass\n")
        e = run_json(["-L", "--netrc-file", n, other])
        check("Authorization" not in e["headers"], ".netrc credentials sent to another origin")


@case
def features_location_trusted_follows():
    # curl's --location-trusted follows redirects as -L does.
    e = run_json(["--location-trusted", "-u", "user:pass",
                  redirect_to("http://localhost:%d/headers" % HB_PORT)])
    check(e["headers"].get("Authorization") == basic("user", "pass"),
          "--location-trusted alone: %r" % e)


# ---- cookies

def jar_cookies(path):
    """name -> value of the cookie lines of a Netscape cookie file."""
    out = {}
    for line in read(path).decode().splitlines():
        if line.startswith("#HttpOnly_"):
            line = line[len("#HttpOnly_"):]
        elif not line.strip() or line.startswith("#"):
            continue
        f = line.split("\t")
        if len(f) == 7:
            out[f[5]] = f[6]
    return out


@case
def features_cookie_string():
    e = run_json(["-b", "a=1; b=two", HB + "/cookies"])
    check(e["cookies"] == {"a": "1", "b": "two"}, "cookies %r" % e["cookies"])
    e = run_json(["-b", "a=1", "-b", "c=3", HB + "/cookies"])
    check(e["cookies"] == {"a": "1", "c": "3"}, "two -b strings: %r" % e["cookies"])


@case
def features_cookie_jar_round_trip():
    with TempDir() as d:
        jar = os.path.join(d, "jar")
        # /cookies/set answers 302 with Set-Cookie: stored without following.
        run_ok(["-s", "-o", "/dev/null", "-c", jar, HB + "/cookies/set?a=1&b=2"])
        check(jar_cookies(jar) == {"a": "1", "b": "2"}, "jar after -c: %r" % read(jar))
        e = run_json(["-b", jar, HB + "/cookies"])
        check(e["cookies"] == {"a": "1", "b": "2"}, "-b FILE sent %r" % e["cookies"])
        # -b FILE -c FILE: the jar grows and is written back.
        run_ok(["-s", "-o", "/dev/null", "-b", jar, "-c", jar, HB + "/cookies/set?c=3"])
        check(jar_cookies(jar) == {"a": "1", "b": "2", "c": "3"}, "jar: %r" % read(jar))
        # -c -: the jar on stdout after the body.
        r = run_ok(["-s", "-o", "/dev/null", "-c", "-", HB + "/cookies/set?z=26"])
        check(re.search(rb"(?m)^127\.0\.0\.1\t.*\tz\t26$", r.out), "-c -: %r" % r.out)


@case
def features_cookie_missing_file_is_no_error():
    # curl reads a -b file that does not exist as an empty one (also how `-b ''` turns the
    # cookie engine on).
    with TempDir() as d:
        e = run_json(["-b", os.path.join(d, "none"), HB + "/cookies"])
        check(e["cookies"] == {}, "cookies %r" % e["cookies"])


@case
def features_cookies_follow_redirect_and_later_requests():
    # Set by a redirect's response, sent to where it leads, in the same run.
    with TempDir() as d:
        jar = os.path.join(d, "jar")
        e = run_json(["-L", "-c", jar, HB + "/cookies/set?r=1"])
        check(e["cookies"] == {"r": "1"}, "after the redirect: %r" % e["cookies"])
        # Set by one request, sent by a later one of the run (one at a time: in order).
        r = run_ok(["-s", "--parallel-max", "1", "-b", "", HB + "/cookies/set?s=1",
                    HB + "/cookies"])
        docs = [json.loads(x) for x in re.findall(rb"\{[^{}]*\{[^{}]*\}[^{}]*\}", r.out)]
        check({"cookies": {"s": "1"}} in docs, "the later request did not send it: %r" % r.out)


@case
def features_cookie_jar_threads_share():
    # One jar for the whole run: cookies set on every thread end up in the file.
    with TempDir() as d:
        jar = os.path.join(d, "jar")
        urls = [HB + "/cookies/set?c%d=%d" % (i, i) for i in range(12)]
        run_ok(["-s", "-o", "/dev/null", "--parallel-max", "4", "--threads", "2", "-c", jar] +
               urls)
        got = jar_cookies(jar)
        check(got == {"c%d" % i: str(i) for i in range(12)}, "jar: %r" % got)


@case
def features_junk_session_cookies():
    with TempDir() as d:
        jar = os.path.join(d, "jar")
        write(jar, "# Netscape HTTP Cookie File\n"
                   "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t1\n"
                   "127.0.0.1\tFALSE\t/\tFALSE\t%d\tkept\t2\n" % (time.time() + 86400))
        e = run_json(["-b", jar, HB + "/cookies"])
        check(e["cookies"] == {"session": "1", "kept": "2"}, "without -j: %r" % e["cookies"])
        e = run_json(["-b", jar, "-j", HB + "/cookies"])
        check(e["cookies"] == {"kept": "2"}, "-j: %r" % e["cookies"])


@case
def features_cookie_jar_written_after_sigint():
    # Ctrl-C: the run ends as it does, and the jar is written with what was set. The second
    # request stalls for a minute (hostile.py), not httpbin's 10 s at most: under valgrind a
    # run slowed down enough ended by itself before the interrupt came.
    with TempDir() as d:
        jar = os.path.join(d, "jar")
        need("-c")
        p = subprocess.Popen(WRAPPER + [AG, "-s", "-o", "/dev/null", "-c", jar,
                                        "--parallel-max", "1", HB + "/cookies/set?i=1",
                                        HO + "/stall-headers?s=60"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        time.sleep(2.0 if not WRAPPER else 20.0)
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=HANG)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            raise Fail("the run did not end after SIGINT")
        check(p.returncode == 130, "exit %s after SIGINT: %r" % (p.returncode, err[-300:]))
        check(os.path.exists(jar) and jar_cookies(jar) == {"i": "1"},
              "jar after SIGINT: %r" % (read(jar) if os.path.exists(jar) else None))


# ---------------------------------------------------------------- timeouts

@case
def features_default_max_time_is_stated_and_used():
    # A try is bounded even when -m is not given: -v states the bounds the run uses, --help
    # the default; -m 0 removes the whole bound (the idle wait still stands).
    r = run(["-v", "-o", "/dev/null", NG + "/small.txt"])
    err = r.err.decode("utf-8", "replace")
    check(r.rc == 0 and "* timeouts: each try 300 s," in err, "no default stated: " + r.describe())
    r = run(["-v", "-m", "0", "-o", "/dev/null", NG + "/small.txt"])
    check("* timeouts: each try none," in r.err.decode("utf-8", "replace"), r.describe())
    r = run(["-v", "-m", "1.5", "-o", "/dev/null", NG + "/small.txt"])
    check("* timeouts: each try 1.5 s," in r.err.decode("utf-8", "replace"), r.describe())
    check(re.search(r"--max-time S +each try, whole \(default 300", help_text()),
          "--help does not state the default of -m")


@case
def features_max_time_stops_a_trickle():
    # A body trickled a byte every 300 ms never trips the 60 s idle wait: only the whole bound
    # stops it, with curl's 28, and not before the bound.
    start = time.monotonic()
    r = run(["-s", "-m", "1", "-o", "/dev/null", HO + "/slow-body?n=1000&ms=300"])
    took = time.monotonic() - start
    check(r.rc == 28, "expected exit 28: " + r.describe())
    check(took >= 1.0, "stopped before the bound: %.2f s" % took)


# ---------------------------------------------------------------- TAP

KNOWN = {}


def main():
    if AG is None:
        sys.stderr.write("usage: test_features.py ASYNCGET [CASE...]\n")
        return 2
    return tapcases.run(CASES, KNOWN, Skip, Fail, "test_features.py", sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
