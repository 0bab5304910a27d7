#!/usr/bin/env python3
"""Interop checks of Gyre's client protocol against the real centrifuge-python 0.7 SDK.

Plain script (no pytest). Environment:
  GYRE_WS_URL   WebSocket endpoint, e.g. ws://127.0.0.1:PORT/connection/websocket
  GYRE_API_URL  base API URL, e.g. http://127.0.0.1:PORT/api (used to publish)
  GYRE_API_KEY  server API key
  GYRE_SECRET   HMAC secret for HS256 connection tokens

The server is expected to run with namespaces `chat` (client subscribe, publish
for subscriber, presence and history for subscriber, history_size 100,
history_ttl 300s, force_recovery), `pub` (client subscribe and publish, no
history) and `locked` (nothing allowed).

The checks run in order over one connection (JSON protocol, or Protobuf with
`--protobuf`: data then travels as bytes of JSON text) and depend on each
other: once the connection or the chat subscription fails, the later checks
report that instead of timing out one by one.

Exit code 0 when every check passes, 1 otherwise (or on bad environment).
"""

import asyncio
import json
import os
import sys

from centrifuge import (
    CentrifugeError,
    Client,
    ClientEventHandler,
    ClientState,
    ConnectedContext,
    DisconnectedContext,
    PublicationContext,
    ReplyError,
    SubscribedContext,
    SubscriptionEventHandler,
    SubscriptionState,
    SubscriptionUnsubscribedError,
    UnsubscribedContext,
)

# common.py sits next to this script; find it whatever the working directory.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from common import (  # noqa: E402
    NOT_AVAILABLE,
    PERMISSION_DENIED,
    RUN,
    WAIT,
    CheckFailed,
    Report,
    api_call,
    connection_token,
    drain,
    expect,
    expect_quiet,
    next_event,
    read_env,
    run_checks_async,
)

USER = "42"


class ClientEvents(ClientEventHandler):
    def __init__(self):
        self.connected = asyncio.Queue()
        self.connecting = asyncio.Queue()
        self.disconnected = asyncio.Queue()
        self.errors = []

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.connected.put_nowait(ctx)

    async def on_connecting(self, ctx) -> None:
        self.connecting.put_nowait(ctx)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.disconnected.put_nowait(ctx)

    async def on_error(self, ctx) -> None:
        self.errors.append(ctx)


class SubEvents(SubscriptionEventHandler):
    def __init__(self):
        self.subscribed = asyncio.Queue()
        self.unsubscribed = asyncio.Queue()
        self.publications = asyncio.Queue()
        self.errors = []

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.put_nowait(ctx)

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self.unsubscribed.put_nowait(ctx)

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.publications.put_nowait(ctx.pub)

    async def on_error(self, ctx) -> None:
        self.errors.append(ctx)


class State:
    """What the checks share: the environment, the client and the chat subscription."""

    def __init__(self, ws_url, api_url, api_key, secret):
        self.ws_url = ws_url
        self.api_url = api_url
        self.api_key = api_key
        self.secret = secret
        self.client = None
        self.events = ClientEvents()
        self.client_id = ""
        self.channel = f"chat:py-{RUN}"
        self.sub = None
        self.sub_events = SubEvents()
        self.epoch = ""
        self.sent = []  # data published into self.channel, in order
        self.protobuf = False

    def encode(self, data):
        """Data as the client publishes it: bytes of JSON text over Protobuf."""
        return json.dumps(data).encode() if self.protobuf else data

    def decode(self, data):
        """Received data as a value; over Protobuf it must arrive as bytes."""
        if not self.protobuf:
            return data
        expect(isinstance(data, bytes), f"protobuf data should be bytes, got {type(data).__name__}: {data!r}")
        return json.loads(data)

    def need_client(self):
        expect(self.client is not None and self.client_id, "no connected client (connect failed)")

    def need_sub(self):
        self.need_client()
        expect(self.sub is not None and self.epoch, f"no subscription to {self.channel} (subscribe failed)")


async def check_connect(st):
    token = connection_token(st.secret, USER)
    st.client = Client(st.ws_url, events=st.events, token=token, use_protobuf=st.protobuf, timeout=WAIT, proxy=None)
    await st.client.connect()
    try:
        await st.client.ready(timeout=WAIT)
    except CentrifugeError as e:
        errs = ", ".join(f"{c.code}: {c.error}" for c in st.events.errors)
        gone = st.events.disconnected.get_nowait() if not st.events.disconnected.empty() else None
        raise CheckFailed(
            f"not ready: {type(e).__name__}: {e} (on_disconnected: {gone!r}; client errors: {errs or 'none'})"
        ) from None
    ctx = await next_event(st.events.connected, "on_connected")
    expect(isinstance(ctx.client, str) and ctx.client, f"on_connected: empty client id ({ctx!r})")
    expect(st.client.state == ClientState.CONNECTED, f"client state {st.client.state}")
    st.client_id = ctx.client
    # The initial connect reported on_connecting; later ones would mean a reconnect.
    drain(st.events.connecting)
    return f"user {USER} client {ctx.client!r} version {ctx.version!r}"


async def check_subscribe(st):
    st.need_client()
    st.sub = st.client.new_subscription(st.channel, events=st.sub_events)
    await st.sub.subscribe()
    try:
        await st.sub.ready(timeout=WAIT)
    except SubscriptionUnsubscribedError:
        ctx = st.sub_events.unsubscribed.get_nowait() if not st.sub_events.unsubscribed.empty() else None
        raise CheckFailed(f"subscribe {st.channel}: unsubscribed ({ctx!r})") from None
    ctx = await next_event(st.sub_events.subscribed, f"on_subscribed for {st.channel}")
    expect(ctx.channel == st.channel, f"on_subscribed: channel {ctx.channel!r}, expected {st.channel!r}")
    # chat has force_recovery: the subscription is recoverable and positioned at the stream top.
    expect(ctx.recoverable, f"on_subscribed {st.channel}: expected recoverable (force_recovery), got {ctx!r}")
    sp = ctx.stream_position
    expect(sp is not None, f"on_subscribed {st.channel}: expected a stream position, got {ctx!r}")
    expect(sp.offset == 0, f"on_subscribed {st.channel}: expected offset 0 in a fresh channel, got {sp.offset}")
    expect(isinstance(sp.epoch, str) and sp.epoch, f"on_subscribed {st.channel}: empty epoch")
    st.epoch = sp.epoch
    return f"{st.channel} recoverable, epoch {sp.epoch!r}"


async def check_api_publications(st):
    st.need_sub()
    offsets = []
    for i in range(1, 4):
        data = {"n": i, "text": f"api-{i}"}
        body = api_call(st.api_url, st.api_key, "publish", {"channel": st.channel, "data": data})
        expect("error" not in body, f"API publish #{i}: error {body.get('error')!r}")
        offsets.append(body.get("result", {}).get("offset"))
        st.sent.append(data)
    expect(offsets == [1, 2, 3], f"API publish: expected offsets [1, 2, 3], got {offsets}")
    for i in range(1, 4):
        pub = await next_event(st.sub_events.publications, f"publication #{i} in {st.channel}")
        got = st.decode(pub.data)
        expect(got == st.sent[i - 1], f"publication #{i}: data {got!r}, expected {st.sent[i - 1]!r}")
        expect(pub.offset == i, f"publication #{i}: offset {pub.offset}, expected {i}")
        expect(pub.info is None, f"publication #{i} from the API: expected no client info, got {pub.info!r}")
    return "3 publications in order, offsets 1..3"


async def check_client_publish(st):
    st.need_sub()
    data = {"x": 1}
    await st.sub.publish(st.encode(data))
    st.sent.append(data)
    pub = await next_event(st.sub_events.publications, f"own publication in {st.channel}")
    got = st.decode(pub.data)
    expect(got == data, f"own publication: data {got!r}, expected {data!r}")
    expect(pub.offset == 4, f"own publication: offset {pub.offset}, expected 4")
    expect(pub.info is not None, "own publication: missing client info")
    expect(pub.info.user == USER, f"own publication: info.user {pub.info.user!r}, expected {USER!r}")
    expect(pub.info.client == st.client_id, f"own publication: info.client {pub.info.client!r}, expected {st.client_id!r}")
    return f"offset 4, info.user {pub.info.user!r}"


async def check_history(st):
    st.need_sub()
    res = await st.sub.history(limit=10)
    expect(len(res.publications) == 4, f"history: expected 4 publications, got {len(res.publications)} ({res!r})")
    for i, pub in enumerate(res.publications, start=1):
        expect(pub.offset == i, f"history publication #{i}: offset {pub.offset}")
        got = st.decode(pub.data)
        expect(got == st.sent[i - 1], f"history publication #{i}: data {got!r}, expected {st.sent[i - 1]!r}")
    last = res.publications[-1]
    expect(last.info is not None and last.info.user == USER, f"history publication #4: info {last.info!r}, expected user {USER!r}")
    expect(res.offset == 4, f"history: top offset {res.offset}, expected 4")
    expect(isinstance(res.epoch, str) and res.epoch, "history: empty epoch")
    expect(res.epoch == st.epoch, f"history: epoch {res.epoch!r} differs from subscribe epoch {st.epoch!r}")
    return f"4 publications, offset {res.offset}, epoch {res.epoch!r}"


async def check_history_position(st):
    st.need_sub()
    res = await st.sub.history(limit=0)
    expect(res.publications == [], f"history limit 0: expected no publications, got {res.publications!r}")
    expect(res.offset == 4, f"history limit 0: offset {res.offset}, expected 4")
    expect(res.epoch == st.epoch, f"history limit 0: epoch {res.epoch!r}, expected {st.epoch!r}")
    return f"[] at offset {res.offset}"


async def check_presence(st):
    st.need_sub()
    res = await st.sub.presence()
    expect(st.client_id in res.clients, f"presence: own client {st.client_id!r} missing ({res.clients!r})")
    info = res.clients[st.client_id]
    expect(info.user == USER, f"presence: user {info.user!r}, expected {USER!r}")
    expect(info.client == st.client_id, f"presence: client {info.client!r}, expected {st.client_id!r}")
    expect(len(res.clients) == 1, f"presence: expected 1 client, got {len(res.clients)} ({res.clients!r})")
    return f"{{{st.client_id!r}: user {info.user!r}}}"


async def check_presence_stats(st):
    st.need_sub()
    res = await st.sub.presence_stats()
    expect((res.num_clients, res.num_users) == (1, 1), f"presence_stats: expected 1 client 1 user, got {res!r}")
    return "1 client, 1 user"


async def check_locked_subscribe(st):
    st.need_client()
    channel = f"locked:x-{RUN}"
    events = SubEvents()
    sub = st.client.new_subscription(channel, events=events)
    try:
        await sub.subscribe()
        # A permission error is not temporary: the SDK moves the subscription
        # to unsubscribed with the server's error code.
        ctx = await next_event(events.unsubscribed, f"on_unsubscribed for {channel}")
        expect(ctx.code == PERMISSION_DENIED, f"subscribe {channel}: unsubscribed with code {ctx.code} ({ctx.reason!r}), expected {PERMISSION_DENIED}")
        expect(sub.state == SubscriptionState.UNSUBSCRIBED, f"subscribe {channel}: state {sub.state}")
        expect(events.subscribed.empty(), f"subscribe {channel}: unexpected on_subscribed")
        try:
            await sub.ready(timeout=1.0)
        except SubscriptionUnsubscribedError:
            pass
        else:
            raise CheckFailed(f"subscribe {channel}: ready() succeeded")
        expect(st.client.state == ClientState.CONNECTED, f"client state after denied subscribe: {st.client.state}")
        return f"{channel} -> unsubscribed {ctx.code} {ctx.reason!r}"
    finally:
        st.client.remove_subscription(sub)


async def check_no_history(st):
    st.need_client()
    channel = f"pub:x-{RUN}"
    events = SubEvents()
    sub = st.client.new_subscription(channel, events=events)
    try:
        await sub.subscribe()
        try:
            await sub.ready(timeout=WAIT)
        except SubscriptionUnsubscribedError:
            raise CheckFailed(f"subscribe {channel}: unsubscribed") from None
        # Publishing is allowed for any client in `pub`.
        await sub.publish(st.encode({"y": 2}))
        pub = await next_event(events.publications, f"publication in {channel}")
        got = st.decode(pub.data)
        expect(got == {"y": 2}, f"{channel}: publication data {got!r}")
        expect(pub.offset == 0, f"{channel}: publication offset {pub.offset}, expected 0 (no history)")
        expect(pub.info is not None and pub.info.user == USER, f"{channel}: publication info {pub.info!r}")
        try:
            res = await sub.history(limit=10)
        except ReplyError as e:
            expect(e.code == NOT_AVAILABLE, f"history {channel}: error {e.code} {e.message!r}, expected {NOT_AVAILABLE}")
            return f"publish ok; history -> error {e.code} {e.message!r}"
        raise CheckFailed(f"history {channel}: expected error {NOT_AVAILABLE}, got {res!r}")
    finally:
        if sub.state != SubscriptionState.UNSUBSCRIBED:
            await sub.unsubscribe()
        st.client.remove_subscription(sub)


async def check_disconnect(st):
    st.need_client()
    await st.client.disconnect()
    ctx = await next_event(st.events.disconnected, "on_disconnected")
    expect(st.client.state == ClientState.DISCONNECTED, f"client state {st.client.state}")
    expect_quiet(st.events.connecting, "on_connecting (reconnect) during the run")
    return f"disconnected ({ctx.code} {ctx.reason!r})"


async def run(ws_url, api_url, api_key, secret, protobuf):
    st = State(ws_url, api_url, api_key, secret)
    st.protobuf = protobuf
    checks = [
        ("connect", check_connect),
        ("subscribe chat", check_subscribe),
        ("API publications in order", check_api_publications),
        ("client publish", check_client_publish),
        ("history", check_history),
        ("history position only", check_history_position),
        ("presence", check_presence),
        ("presence_stats", check_presence_stats),
        ("subscribe locked", check_locked_subscribe),
        ("history without history", check_no_history),
        ("disconnect", check_disconnect),
    ]
    report = Report("client_sdk (protobuf)" if protobuf else "client_sdk")
    try:
        await run_checks_async(report, checks, st)
    finally:
        if st.client is not None and st.client.state != ClientState.DISCONNECTED:
            await st.client.disconnect()
    return report


def main():
    env = read_env("client_sdk", "GYRE_WS_URL", "GYRE_API_URL", "GYRE_API_KEY", "GYRE_SECRET")
    if env is None:
        return 1
    protobuf = "--protobuf" in sys.argv[1:]
    report = asyncio.run(
        run(env["GYRE_WS_URL"], env["GYRE_API_URL"], env["GYRE_API_KEY"], env["GYRE_SECRET"], protobuf)
    )
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
