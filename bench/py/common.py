"""common.py: what the four Python peers share: arguments and the one JSON line they print."""
import json
import sys
import time


def args():
    """URL, number of requests, and an optional concurrency (0 when not given)."""
    if len(sys.argv) < 3:
        sys.exit(f"usage: {sys.argv[0]} URL N [CONCURRENCY]")
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    return sys.argv[1], int(sys.argv[2]), conc


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
