"""threads_requests.py: ThreadPoolExecutor(max_workers=10) mapping a fetch over N URLs; each
thread keeps its own requests.Session (a Session is not meant to be shared across threads)."""
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from common import args, now, report, verify_kw

local = threading.local()
tls = verify_kw()  # over https: the CA to verify against


def fetch(url):
    s = getattr(local, "session", None)
    if s is None:
        s = local.session = requests.Session()
    t = now()
    r = s.get(url, **tls)
    ok = r.status_code == 200 and "uuid" in r.json()
    return ok, now() - t


def main():
    url, n, _ = args()
    t0 = now()
    with ThreadPoolExecutor(max_workers=10) as ex:
        results = list(ex.map(fetch, [url] * n))
    wall = now() - t0
    report("ThreadPoolExecutor(10)", n, sum(ok for ok, _ in results), wall,
           [t for _, t in results])


if __name__ == "__main__":
    main()
