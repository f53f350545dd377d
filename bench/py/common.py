"""common.py: what the four Python peers share: arguments, the certificate to trust over https,
and the one JSON line they print."""
import json
import os
import sys
import time


def args():
    """URL, number of requests, and an optional concurrency (0 when not given)."""
    if len(sys.argv) < 3:
        sys.exit(f"usage: {sys.argv[0]} URL N [CONCURRENCY]")
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    return sys.argv[1], int(sys.argv[2]), conc


def ca_file():
    """The CA certificate to verify an https server against (bench/peers --tls sets
    BENCH_CA_FILE), or None for the system's."""
    return os.environ.get("BENCH_CA_FILE") or None


def verify_kw():
    """Keyword arguments of a requests call that verify against ca_file(). Given per call: a
    Session's verify attribute loses to REQUESTS_CA_BUNDLE in the environment."""
    ca = ca_file()
    return {"verify": ca} if ca else {}


def percentile(values, p):
    """Nearest-rank percentile of a list of numbers; 0 for an empty list."""
    if not values:
        return 0.0
    v = sorted(values)
    rank = max(1, min(len(v), -(-len(v) * p // 100)))
    return v[int(rank) - 1]


def report(name, n, ok, wall, latencies):
    """Print the run as one JSON line, the form bench/peers reads."""
    print(json.dumps({
        "tool": name,
        "requests": n,
        "ok": ok,
        "wall_s": wall,
        "rps": n / wall if wall > 0 else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }))


now = time.perf_counter
