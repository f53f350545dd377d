"""pool_requests.py: multiprocessing.Pool() (one process per CPU) mapping a fetch over N URLs;
each worker process keeps its own requests.Session."""
import multiprocessing

import requests

from common import args, now, report, verify_kw

session = None
tls = verify_kw()  # over https: the CA to verify against


def init():
    global session
    session = requests.Session()


def fetch(url):
    t = now()
    r = session.get(url, **tls)
    ok = r.status_code == 200 and "uuid" in r.json()
    return ok, now() - t


def main():
    url, n, _ = args()
    t0 = now()
    with multiprocessing.Pool(initializer=init) as pool:
        results = pool.map(fetch, [url] * n)
    wall = now() - t0
    report("multiprocessing.Pool", n, sum(ok for ok, _ in results), wall,
           [t for _, t in results])


if __name__ == "__main__":
    main()
