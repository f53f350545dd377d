"""seq_requests.py: N GETs one after another on one requests.Session (one keep-alive connection)."""
import requests

from common import args, now, report, verify_kw

tls = verify_kw()  # over https: the CA to verify against


def main():
    url, n, _ = args()
    ok = 0
    lat = []
    t0 = now()
    with requests.Session() as s:
        for _ in range(n):
            t = now()
            r = s.get(url, **tls)
            ok += r.status_code == 200 and "uuid" in r.json()
            lat.append(now() - t)
    report("requests.Session loop", n, ok, now() - t0, lat)


if __name__ == "__main__":
    main()
