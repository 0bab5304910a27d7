#!/usr/bin/env python3
"""centrifuge-python 0.7 against a Gyre whose backend proxies decide (tests/tests/e2e/proxy.rs
runs the backend): connect without a token (the SDK's `data` and `headers` reach the connect
proxy), RPC, and a subscribe and publish in the proxied namespace `px`. JSON, or Protobuf with
`--protobuf` (payloads then travel as bytes of JSON text).

Environment: GYRE_WS_URL. Exit code 0 when every check passes.
"""

import asyncio
import json
import os
import sys

from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    PublicationContext,
    ReplyError,
    SubscribedContext,
    SubscriptionEventHandler,
)

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from common import RUN, CheckFailed, Report, expect, next_event, read_env, run_checks_async  # noqa: E402

USER = "py-user"


class Events(ClientEventHandler):
    def __init__(self):
        self.connected = asyncio.Queue()

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.connected.put_nowait(ctx)


class SubEvents(SubscriptionEventHandler):
    def __init__(self):
        self.subscribed = asyncio.Queue()
        self.publications = asyncio.Queue()

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.put_nowait(ctx)

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.publications.put_nowait(ctx.pub)


class State:
    def __init__(self, ws_url, protobuf):
        self.protobuf = protobuf
        self.events = Events()
        self.client = Client(
            ws_url,
            events=self.events,
            use_protobuf=protobuf,
            name="py",
            data=self.payload({"user": USER}),
            headers={"Cookie": f"run={RUN}"},
            proxy=None,
        )

    def payload(self, value):
        return json.dumps(value).encode() if self.protobuf else value

    def value(self, data):
        return json.loads(data) if self.protobuf else data


async def check_connect(st):
    await st.client.connect()
    ctx = await next_event(st.events.connected, "on_connected")
    expect(st.value(ctx.data) == {"welcome": True}, f"connect data {ctx.data!r}")
    return f"client {ctx.client} connected without a token"


async def check_rpc(st):
    result = await st.client.rpc("echo", st.payload({"x": 1}))
    expect(st.value(result.data) == {"x": 1}, f"rpc data {result.data!r}")
    try:
        await st.client.rpc("missing", st.payload({}))
    except ReplyError as e:
        expect(e.code == 104, f"unknown method error {e.code}")
        return "echo answered, unknown method 104"
    raise CheckFailed("rpc of an unknown method succeeded")


async def check_subscribe_publish(st):
    channel = f"px:py-{RUN}"
    events = SubEvents()
    sub = st.client.new_subscription(channel, events=events)
    await sub.subscribe()
    ctx = await next_event(events.subscribed, "on_subscribed")
    expect(st.value(ctx.data) == {"hello": channel}, f"subscribe data {ctx.data!r}")
    await sub.publish(st.payload({"action": "rewrite", "n": 5}))
    pub = await next_event(events.publications, "the rewritten publication")
    expect(st.value(pub.data) == {"rewritten": 5}, f"publication data {pub.data!r}")
    return f"subscribed {channel}; publish rewritten by the backend"


async def run(ws_url, protobuf):
    st = State(ws_url, protobuf)
    checks = [("connect", check_connect), ("rpc", check_rpc), ("subscribe and publish", check_subscribe_publish)]
    report = Report("proxy_sdk (protobuf)" if protobuf else "proxy_sdk")
    try:
        await run_checks_async(report, checks, st)
    finally:
        await st.client.disconnect()
    return report


def main():
    env = read_env("proxy_sdk", "GYRE_WS_URL")
    if env is None:
        return 1
    return asyncio.run(run(env["GYRE_WS_URL"], "--protobuf" in sys.argv[1:])).finish()


if __name__ == "__main__":
    sys.exit(main())
