"""aiohttp_gather.py: asyncio.gather of N aiohttp fetches on one ClientSession. The connector's
limit is the concurrency given (0: no limit; aiohttp's default of 100 would cap what is in
flight)."""
import asyncio

import aiohttp

from common import args, now, report


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
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as session:
        results = await asyncio.gather(*(fetch(session) for _ in range(n)))
    report("aiohttp gather", n, sum(results), now() - t0, lat)


def main():
    url, n, conc = args()
    asyncio.run(run(url, n, conc))


if __name__ == "__main__":
    main()
