"""aiohttp_gather.py: asyncio.gather of N aiohttp fetches on one ClientSession. The connector's
limit is the concurrency given (0: no limit; aiohttp's default of 100 would cap what is in
flight)."""
import asyncio
import ssl

import aiohttp

from common import args, ca_file, now, report


async def run(url, n, limit):
    lat = []

    async def fetch(session):
        t = now()
        async with session.get(url) as r:
            data = await r.json()
            ok = r.status == 200 and "uuid" in data
        lat.append(now() - t)
        return ok

    t0 = now()
    # Over https with a CA given: verify against it (the default context checks host names too).
    # Without one, aiohttp's own default, as in the plain-http runs.
    ca = ca_file()
    ctx = ssl.create_default_context(cafile=ca) if ca else True
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit, ssl=ctx)) as session:
        results = await asyncio.gather(*(fetch(session) for _ in range(n)))
    report("aiohttp gather", n, sum(results), now() - t0, lat)


def main():
    url, n, conc = args()
    asyncio.run(run(url, n, conc))


if __name__ == "__main__":
    main()
