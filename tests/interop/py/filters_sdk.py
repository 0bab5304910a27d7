#!/usr/bin/env python3
"""centrifuge-python 0.7 `tags_filter` built with its `Filter` helpers (JSON, or Protobuf with
`--protobuf`): only API publications whose tags pass reach the subscription (namespace `tf`,
see tests/tests/e2e/filters.rs).

Environment: GYRE_WS_URL, GYRE_API_URL, GYRE_API_KEY, GYRE_SECRET. Exit code 0 when every
check passes.
"""

import asyncio
import json
import os
import sys

from centrifuge import Client, Filter, PublicationContext, SubscriptionEventHandler

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from common import RUN, Report, api_call, connection_token, expect, next_event, read_env, run_checks_async  # noqa: E402


class SubEvents(SubscriptionEventHandler):
    def __init__(self):
        self.publications = asyncio.Queue()

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.publications.put_nowait(ctx.pub)


async def check_filter(env, protobuf):
    client = Client(
        env["GYRE_WS_URL"], token=connection_token(env["GYRE_SECRET"], "42"), use_protobuf=protobuf, proxy=None
    )
    try:
        await client.connect()
        channel = f"tf:py-{RUN}-{int(protobuf)}"
        events = SubEvents()
        tags_filter = Filter.all(Filter.eq("ticker", "AAPL"), Filter.gte("price", "100"))
        sub = client.new_subscription(channel, events=events, tags_filter=tags_filter)
        await sub.subscribe()
        quotes = [("AAPL", "150"), ("MSFT", "300"), ("AAPL", "50"), ("AAPL", "100.0"), ("AAPL", "101")]
        for n, (ticker, price) in enumerate(quotes, start=1):
            params = {"channel": channel, "data": {"n": n}, "tags": {"ticker": ticker, "price": price}}
            await asyncio.to_thread(api_call, env["GYRE_API_URL"], env["GYRE_API_KEY"], "publish", params)
        got = []
        for i in range(3):
            pub = await next_event(events.publications, f"matching publication {i + 1}")
            got.append((json.loads(pub.data) if protobuf else pub.data)["n"])
        expect(got == [1, 4, 5], f"received {got}")
        return f"publications {got} of 5 passed the filter on {channel}"
    finally:
        await client.disconnect()


async def run(env, protobuf):
    report = Report("filters_sdk (protobuf)" if protobuf else "filters_sdk")
    await run_checks_async(report, [("tags filter", lambda e: check_filter(e, protobuf))], env)
    return report


def main():
    env = read_env("filters_sdk", "GYRE_WS_URL", "GYRE_API_URL", "GYRE_API_KEY", "GYRE_SECRET")
    if env is None:
        return 1
    return asyncio.run(run(env, "--protobuf" in sys.argv[1:])).finish()


if __name__ == "__main__":
    sys.exit(main())
