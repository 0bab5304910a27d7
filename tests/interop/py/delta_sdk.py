#!/usr/bin/env python3
"""centrifuge-python 0.7 with `delta=DeltaType.FOSSIL` (JSON, or Protobuf with `--protobuf`):
ten similar large documents published through the API reach the application exactly, rebuilt
by the SDK's fossil decoder from the deltas Gyre sends after the first full payload.

Environment: GYRE_WS_URL, GYRE_API_URL, GYRE_API_KEY, GYRE_SECRET. Exit code 0 when every
check passes.
"""

import asyncio
import copy
import json
import os
import sys

from centrifuge import Client, DeltaType, PublicationContext, SubscriptionEventHandler

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from common import RUN, Report, api_call, connection_token, expect, next_event, read_env, run_checks_async  # noqa: E402


def docs(n):
    doc = {"title": "board", "cells": [f"cell-{i}" for i in range(200)], "note": "naïve café ✓"}
    out = []
    for i in range(n):
        doc["cells"][i * 13 % 200] = f"changed-{i}"
        doc["version"] = i
        out.append(copy.deepcopy(doc))
    return out


class SubEvents(SubscriptionEventHandler):
    def __init__(self):
        self.publications = asyncio.Queue()

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.publications.put_nowait(ctx.pub)


async def check_delta(env, protobuf):
    client = Client(
        env["GYRE_WS_URL"],
        token=connection_token(env["GYRE_SECRET"], "42"),
        use_protobuf=protobuf,
        proxy=None,
    )
    try:
        await client.connect()
        channel = f"delta:py-{RUN}-{int(protobuf)}"
        events = SubEvents()
        sub = client.new_subscription(channel, events=events, delta=DeltaType.FOSSIL)
        await sub.subscribe()
        sent = docs(10)
        for doc in sent:
            await asyncio.to_thread(
                api_call, env["GYRE_API_URL"], env["GYRE_API_KEY"], "publish", {"channel": channel, "data": doc}
            )
        for i, doc in enumerate(sent):
            pub = await next_event(events.publications, f"publication {i}")
            data = json.loads(pub.data) if protobuf else pub.data
            expect(data == doc, f"publication {i} differs from what was published")
        return f"10 documents rebuilt on {channel}"
    finally:
        await client.disconnect()


async def run(env, protobuf):
    report = Report("delta_sdk (protobuf)" if protobuf else "delta_sdk")
    await run_checks_async(report, [("fossil deltas", lambda e: check_delta(e, protobuf))], env)
    return report


def main():
    env = read_env("delta_sdk", "GYRE_WS_URL", "GYRE_API_URL", "GYRE_API_KEY", "GYRE_SECRET")
    if env is None:
        return 1
    return asyncio.run(run(env, "--protobuf" in sys.argv[1:])).finish()


if __name__ == "__main__":
    sys.exit(main())
