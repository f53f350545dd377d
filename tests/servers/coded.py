#!/usr/bin/python3
"""coded.py: the files of with-servers --codings (README.md, "Content codings").

    coded.py ROOT CODED [ZSTD]

writes the plain files into ROOT (nginx's document root, where /gz/ and /br/
compress them as they are sent) and the coded files into CODED/<coding>/
(served as they are, with a Content-Encoding header), using the zstd CLI at
ZSTD for the zstd files (none without it). with-servers imports make() from
here; run alone, it makes the files for a look.

Everything is made by streaming or from small pieces: the 1 GiB bombs are
never in memory whole (the gzip bomb repeats one byte-aligned deflate piece
of 1 MiB of zeros; its CRC-32 comes from the CRC's algebra, not from 1 GiB of
bytes). All of it takes about 0.1 s.
"""

import os
import subprocess
import sys
import threading
import zlib

# The plain files (bytes are fixed: a test may hash them).
TEXT_SIZE = (2 << 20) + 12345  # crosses no power of two on purpose
BOMB_SIZE = 1 << 30            # decoded size of every bomb
ZEROS64M_SIZE = 64 << 20       # a valid body of zeros with a large ratio (about 1011:1)
MULTI_CUT = (1 << 20) + 7      # where multi.txt's two gzip members (zstd frames) meet


def text_bytes(size):
    """size bytes of numbered lines of made-up words: text that compresses
    about as well as prose (gzip -6 to about a third), with no repeat within
    gzip's 32 KiB window."""
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "pe", "do", "an", "el",
            "or", "us", "ix", "qua", "bre", "stri", "gon", "fel"]
    words = []
    x = 12345
    for _ in range(509):
        w = ""
        for _ in range(1 + x % 4):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            w += syll[(x >> 16) % len(syll)]
        words.append(w)
    lines = []
    for i in range(4099):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        n = 3 + (x >> 16) % 9
        ws = []
        for _ in range(n):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            ws.append(words[(x >> 12) % len(words)])
        lines.append(" ".join(ws))
    out = []
    total = 0
    n = 0
    while total < size:
        line = "%07d %s\n" % (n, lines[(n * 7919) % len(lines)])
        out.append(line)
        total += len(line)
        n += 1
    return "".join(out).encode()[:size]


def json_bytes():
    items = ['{"id": %d, "name": "item-%d", "tags": ["a%d", "b%d"], "ok": %s}'
             % (i, i, i % 7, i % 11, "true" if i % 3 else "false") for i in range(600)]
    return ('{"items": [\n' + ",\n".join(items) + "\n]}\n").encode()


def html_bytes():
    rows = ["<tr><td>%d</td><td>row %d of the table</td></tr>" % (i, i) for i in range(500)]
    return ("<!DOCTYPE html>\n<html><head><title>asyncget</title></head><body>\n<table>\n"
            + "\n".join(rows) + "\n</table>\n</body></html>\n").encode()


PLAIN = {
    "small.txt": lambda: b"hello, coded world: a small body that still gets a coding\n",
    "empty.txt": lambda: b"",
    "data.json": json_bytes,
    "page.html": html_bytes,
}


# ---- CRC-32 of n zero bytes, by the CRC's algebra (what zlib's crc32_combine does)

def _gf2_times(mat, vec):
    s = 0
    i = 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat):
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_zeros(crc, n):
    """zlib.crc32(bytes(n), crc) without the n bytes: the CRC register's
    step over one zero bit is a linear map of GF(2)^32; square it up to a byte
    and then by powers of two."""
    odd = [0xEDB88320] + [1 << (k - 1) for k in range(1, 32)]  # one zero bit
    even = _gf2_square(odd)  # two bits
    odd = _gf2_square(even)  # four bits
    # crc32() pre- and post-inverts the register; the zero bytes act on the inner value.
    reg = crc ^ 0xFFFFFFFF
    while n:
        even = _gf2_square(odd)  # first round: one byte
        if n & 1:
            reg = _gf2_times(even, reg)
        n >>= 1
        if not n:
            break
        odd = _gf2_square(even)
        if n & 1:
            reg = _gf2_times(odd, reg)
        n >>= 1
    return reg ^ 0xFFFFFFFF


GZIP_HEAD = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # no name, no mtime, Unix


def gzip_bytes(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def raw_deflate(data):
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zeros_gzip(path, size):
    """A gzip file of size zero bytes (a multiple of 1 MiB), written piece by
    piece: one deflate piece of 1 MiB of zeros ending in a full flush (byte
    aligned, history reset) is the same bytes every time, so it is repeated."""
    mib = 1 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    piece = c.compress(bytes(mib)) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.flush(zlib.Z_FINISH)
    with open(path, "wb") as f:
        f.write(GZIP_HEAD)
        n = size // mib
        for k in range(0, n, 64):
            f.write(piece * min(64, n - k))
        f.write(last)
        f.write(crc32_zeros(0, size).to_bytes(4, "little"))
        f.write((size & 0xFFFFFFFF).to_bytes(4, "little"))


def put(path, data):
    with open(path, "wb") as f:
        f.write(data)


def flip(data, at):
    b = bytearray(data)
    b[at] ^= 0x55
    return bytes(b)


def make(root, coded, zstd=None):
    """Write the plain files into root and the coded ones under coded; the
    zstd files only when zstd (the CLI's path) is given."""
    text = text_bytes(TEXT_SIZE)
    put(os.path.join(root, "text.txt"), text)
    plain = {"text.txt": text}
    for name, fn in PLAIN.items():
        plain[name] = fn()
        put(os.path.join(root, name), plain[name])

    dirs = {}
    for d in ("gzip", "gzip-gzip", "deflate", "zstd", "unknown"):
        dirs[d] = os.path.join(coded, d)
        os.makedirs(dirs[d], exist_ok=True)

    # zstd first: the CLI runs while Python makes the rest.
    procs = []
    if zstd:
        zd = dirs["zstd"]
        for name in ("text.txt", "small.txt"):
            procs.append(subprocess.Popen([zstd, "-q", "-f", "-3", os.path.join(root, name),
                                           "-o", os.path.join(zd, name)],
                                          stdin=subprocess.DEVNULL))
        # One frame of 1 MiB of zeros; the bomb is 1024 of them (concatenated frames decode to
        # the concatenation of their contents).
        procs.append(subprocess.Popen([zstd, "-q", "-f", "-3", "-", "-o",
                                       os.path.join(zd, "zeros1m.frame")],
                                      stdin=subprocess.PIPE))
        procs[-1].stdin.write(bytes(1 << 20))
        procs[-1].stdin.close()
        # multi.txt: text.txt as two frames, split where no block ends.
        for i, piece in enumerate((text[:MULTI_CUT], text[MULTI_CUT:])):
            procs.append(subprocess.Popen([zstd, "-q", "-f", "-3", "-", "-o",
                                           os.path.join(zd, "multi.%d" % i)],
                                          stdin=subprocess.PIPE))
            procs[-1].stdin.write(piece)
            procs[-1].stdin.close()

    # The compressions of the whole text run on threads (zlib lets go of the GIL).
    cut = MULTI_CUT
    jobs = {
        "gz": lambda: gzip_bytes(text),
        "multi": lambda: gzip_bytes(text[:cut], 1) + gzip_bytes(text[cut:], 1),
        "zlib": lambda: zlib.compress(text, 1),
        "raw": lambda: raw_deflate(text),
    }
    done = {}
    threads = [threading.Thread(target=lambda k=k, fn=fn: done.__setitem__(k, fn()))
               for k, fn in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    g = dirs["gzip"]
    gz = done["gz"]
    put(os.path.join(g, "text.txt"), gz)
    put(os.path.join(g, "small.txt"), gzip_bytes(plain["small.txt"]))
    put(os.path.join(g, "empty.txt"), gzip_bytes(b""))
    put(os.path.join(g, "multi.txt"), done["multi"])
    put(os.path.join(g, "truncated.txt"), gz[:len(gz) // 2])
    put(os.path.join(g, "truncated-trailer.txt"), gz[:-4])
    put(os.path.join(g, "corrupt.txt"), flip(gz, len(gz) // 2))
    put(os.path.join(g, "badcrc.txt"), flip(gz, len(gz) - 6))
    put(os.path.join(g, "trailing.txt"), gz + b"trailing garbage after the gzip member\n")
    zeros_gzip(os.path.join(g, "bomb"), BOMB_SIZE)
    zeros_gzip(os.path.join(g, "zeros64m"), ZEROS64M_SIZE)

    gg = dirs["gzip-gzip"]
    put(os.path.join(gg, "text.txt"), gzip_bytes(gz))
    with open(os.path.join(g, "bomb"), "rb") as f:
        put(os.path.join(gg, "bomb"), gzip_bytes(f.read(), 9))

    d = dirs["deflate"]
    zl = done["zlib"]
    put(os.path.join(d, "text.txt"), zl)
    put(os.path.join(d, "raw.txt"), done["raw"])
    put(os.path.join(d, "truncated.txt"), zl[:len(zl) // 2])

    # The gzip bytes under a coding nobody knows: delivered as they came.
    put(os.path.join(dirs["unknown"], "text.txt"), gz)

    failed = [p.args for p in procs if p.wait() != 0]
    if failed:
        raise RuntimeError("zstd failed: %s" % failed)
    if zstd:
        zd = dirs["zstd"]
        with open(os.path.join(zd, "text.txt"), "rb") as f:
            zt = f.read()
        put(os.path.join(zd, "truncated.txt"), zt[:len(zt) // 2])
        put(os.path.join(zd, "corrupt.txt"), flip(zt, len(zt) // 2))
        with open(os.path.join(zd, "multi.txt"), "wb") as out:
            for i in range(2):
                part = os.path.join(zd, "multi.%d" % i)
                with open(part, "rb") as f:
                    out.write(f.read())
                os.unlink(part)
        frame_path = os.path.join(zd, "zeros1m.frame")
        with open(frame_path, "rb") as f:
            frame = f.read()
        os.unlink(frame_path)
        with open(os.path.join(zd, "bomb"), "wb") as f:
            f.write(frame * (BOMB_SIZE >> 20))


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.stderr.write(__doc__)
        sys.exit(2)
    os.makedirs(sys.argv[1], exist_ok=True)
    make(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None)
