#!/usr/bin/env python3
"""Interop checks of every Gyre server API method against the real `cent` 5.2 client,
plus server-side actions observed by a real centrifuge-python 0.7 WebSocket client.

Plain script (no pytest). Environment:
  GYRE_API_URL  base API URL, e.g. http://127.0.0.1:PORT/api
  GYRE_API_KEY  server API key
  GYRE_WS_URL   WebSocket endpoint, e.g. ws://127.0.0.1:PORT/connection/websocket
  GYRE_SECRET   HMAC secret for HS256 connection tokens

The server is expected to run with namespaces `chat` (client subscribe,
presence, join_leave, history_size 100, history_ttl 300s, force_recovery),
`pub` (no presence, no history), and no namespace called `nope`; no RPC
extension is configured.

Exit code 0 when every check passes, 1 otherwise (or on bad environment).
"""

import asyncio
import os
import sys
import time
from typing import Any, Optional

import centrifuge
from cent import (
    BatchRequest,
    BatchResult,
    BroadcastRequest,
    BroadcastResult,
    CentRequest,
    CentResult,
    ChannelsRequest,
    ChannelsResult,
    Client,
    DisconnectRequest,
    DisconnectResult,
    HistoryRemoveRequest,
    HistoryRemoveResult,
    HistoryRequest,
    HistoryResult,
    InfoRequest,
    InfoResult,
    PresenceRequest,
    PresenceResult,
    PresenceStatsRequest,
    PresenceStatsResult,
    PublishRequest,
    PublishResult,
    RefreshRequest,
    RefreshResult,
    StreamPosition,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeRequest,
    UnsubscribeResult,
)

# common.py sits next to this script; find it whatever the working directory.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from common import (  # noqa: E402
    BAD_REQUEST,
    FORCE_NO_RECONNECT,
    NOT_AVAILABLE,
    NOT_FOUND,
    RUN,
    UNKNOWN_CHANNEL,
    UNRECOVERABLE_POSITION,
    UNSUBSCRIBE_SERVER,
    WAIT,
    CheckFailed,
    Report,
    connection_token,
    drain,
    expect,
    expect_api_error,
    next_event,
    read_env,
    run_checks_async,
)

WS_USER = "77"


class RpcResult(CentResult):
    data: Any = None


class RpcRequest(CentRequest[RpcResult]):
    """Server API `rpc` (Centrifugo's RPC extensions); cent 5.2 has no request class for it."""

    __returning__ = RpcResult
    __api_method__ = "rpc"

    method: str
    params: Optional[Any] = None


def expect_empty_result(res, cls, what):
    expect(isinstance(res, cls), f"{what}: expected {cls.__name__} (a `result` object), got {res!r}")
    expect(res.model_dump() == {}, f"{what}: expected empty result, got {res.model_dump()!r}")


def offsets(pubs):
    return [p.offset for p in pubs]


class State:
    def __init__(self, cent, ws_url, secret):
        self.cent = cent
        self.ws_url = ws_url
        self.secret = secret
        # WebSocket part
        self.ws = None
        self.ws_events = None
        self.ws_client_id = ""
        self.ws_channel = f"chat:ws-{RUN}"
        self.ws_sub = None
        self.ws_sub_events = None
        self.srv_channel = f"chat:srv-{RUN}"

    def need_ws(self):
        expect(self.ws is not None and self.ws_client_id, f"no WebSocket client of user {WS_USER} (connect failed)")

    def need_ws_sub(self):
        self.need_ws()
        expect(
            self.ws_sub is not None and self.ws_sub.state == centrifuge.SubscriptionState.SUBSCRIBED,
            f"WebSocket client not subscribed to {self.ws_channel}",
        )


def publish_n(cent, channel, n, start=1):
    res = []
    for i in range(start, start + n):
        res.append(cent.publish(PublishRequest(channel=channel, data={"n": i})))
    return res


# ---------------------------------------------------------------- publish


def check_publish_tags(st):
    channel = f"chat:tags-{RUN}"
    tags = {"kind": "note", "run": RUN}
    r = st.cent.publish(PublishRequest(channel=channel, data={"text": "tagged"}, tags=tags))
    expect(isinstance(r, PublishResult), f"publish {channel}: result type {type(r).__name__}")
    expect(r.offset == 1 and r.epoch, f"publish {channel}: expected offset 1 and an epoch, got {r!r}")
    h = st.cent.history(HistoryRequest(channel=channel, limit=10))
    expect(len(h.publications) == 1, f"history {channel}: expected 1 publication, got {h.publications!r}")
    pub = h.publications[0]
    expect(pub.data == {"text": "tagged"}, f"history {channel}: data {pub.data!r}")
    expect(pub.tags == tags, f"history {channel}: tags {pub.tags!r}, expected {tags!r}")
    expect(pub.info is None, f"history {channel}: API publication with client info {pub.info!r}")
    return "offset 1, tags kept in history"


def check_publish_skip_history(st):
    channel = f"chat:skip-{RUN}"
    r1 = st.cent.publish(PublishRequest(channel=channel, data={"n": 1}))
    expect(r1.offset == 1, f"publish {channel}: expected offset 1, got {r1!r}")
    r2 = st.cent.publish(PublishRequest(channel=channel, data={"n": 2}, skip_history=True))
    # Without history the publication gets no stream position (cent defaults 0/"").
    expect(not r2.offset and not r2.epoch, f"publish {channel} skip_history: expected no offset/epoch, got {r2!r}")
    h = st.cent.history(HistoryRequest(channel=channel, limit=10))
    expect(offsets(h.publications) == [1], f"history {channel}: expected offsets [1], got {offsets(h.publications)}")
    expect(h.offset == 1 and h.epoch == r1.epoch, f"history {channel}: expected top 1/{r1.epoch!r}, got {h.offset}/{h.epoch!r}")
    return "skipped publication not in history, top offset stays 1"


def check_publish_idempotency(st):
    channel = f"chat:idem-{RUN}"
    key = f"key-{RUN}"
    r1 = st.cent.publish(PublishRequest(channel=channel, data={"n": 1}, idempotency_key=key))
    r2 = st.cent.publish(PublishRequest(channel=channel, data={"n": 1}, idempotency_key=key))
    expect(r1.offset == 1, f"publish {channel} #1: expected offset 1, got {r1!r}")
    expect((r2.offset, r2.epoch) == (r1.offset, r1.epoch), f"publish {channel} same key: got {r2!r}, expected {r1!r}")
    h = st.cent.history(HistoryRequest(channel=channel, limit=10))
    expect(offsets(h.publications) == [1], f"history {channel}: expected one publication, got offsets {offsets(h.publications)}")
    expect(h.offset == 1, f"history {channel}: top offset {h.offset}, expected 1")
    r3 = st.cent.publish(PublishRequest(channel=channel, data={"n": 2}, idempotency_key=key + "-other"))
    expect(r3.offset == 2, f"publish {channel} other key: expected offset 2, got {r3!r}")
    return "same key -> same offset 1, stored once; other key -> offset 2"


# ---------------------------------------------------------------- broadcast


def check_broadcast(st):
    channels = [f"chat:bc1-{RUN}", f"chat:bc2-{RUN}"]
    tags = {"b": "1"}
    r = st.cent.broadcast(BroadcastRequest(channels=channels, data={"text": "all"}, tags=tags))
    expect(isinstance(r, BroadcastResult), f"broadcast: result type {type(r).__name__}")
    expect(len(r.responses) == 2, f"broadcast: expected 2 responses, got {r!r}")
    for ch, resp in zip(channels, r.responses):
        expect(resp.error is None, f"broadcast {ch}: unexpected error {resp.error!r}")
        expect(resp.result is not None and resp.result.offset == 1, f"broadcast {ch}: expected offset 1, got {resp!r}")
        h = st.cent.history(HistoryRequest(channel=ch, limit=10))
        expect(len(h.publications) == 1, f"history {ch}: expected 1 publication, got {h.publications!r}")
        expect(h.publications[0].data == {"text": "all"}, f"history {ch}: data {h.publications[0].data!r}")
        expect(h.publications[0].tags == tags, f"history {ch}: tags {h.publications[0].tags!r}")
    return "2 channels, offset 1 each, tags kept"


def check_broadcast_no_channels(st):
    e = expect_api_error(
        lambda: st.cent.broadcast(BroadcastRequest(channels=[], data={"text": "x"})), BAD_REQUEST, "broadcast to []"
    )
    return f"-> error {e.code} {e.message!r}"


# ---------------------------------------------------------------- user commands without connections


def check_user_commands_offline(st):
    user = f"offline-{RUN}"
    channel = f"chat:off-{RUN}"
    expect_empty_result(st.cent.subscribe(SubscribeRequest(user=user, channel=channel)), SubscribeResult, "subscribe")
    expect_empty_result(st.cent.unsubscribe(UnsubscribeRequest(user=user, channel=channel)), UnsubscribeResult, "unsubscribe")
    expect_empty_result(st.cent.disconnect(DisconnectRequest(user=user)), DisconnectResult, "disconnect")
    expect_empty_result(st.cent.refresh(RefreshRequest(user=user)), RefreshResult, "refresh")
    return "subscribe, unsubscribe, disconnect, refresh -> {}"


# ---------------------------------------------------------------- presence


def check_presence_empty(st):
    channel = f"chat:nobody-{RUN}"
    p = st.cent.presence(PresenceRequest(channel=channel))
    expect(isinstance(p, PresenceResult), f"presence: result type {type(p).__name__}")
    expect(p.presence == {}, f"presence {channel}: expected {{}}, got {p.presence!r}")
    s = st.cent.presence_stats(PresenceStatsRequest(channel=channel))
    expect(isinstance(s, PresenceStatsResult), f"presence_stats: result type {type(s).__name__}")
    expect((s.num_clients, s.num_users) == (0, 0), f"presence_stats {channel}: expected 0/0, got {s!r}")
    return "presence {}, stats 0/0"


def check_not_available(st):
    channel = f"pub:x-{RUN}"
    calls = [
        ("presence", lambda: st.cent.presence(PresenceRequest(channel=channel))),
        ("presence_stats", lambda: st.cent.presence_stats(PresenceStatsRequest(channel=channel))),
        ("history", lambda: st.cent.history(HistoryRequest(channel=channel, limit=10))),
        ("history_remove", lambda: st.cent.history_remove(HistoryRemoveRequest(channel=channel))),
    ]
    for method, fn in calls:
        expect_api_error(fn, NOT_AVAILABLE, f"{method} {channel}")
    return f"presence, presence_stats, history, history_remove on {channel} -> {NOT_AVAILABLE}"


# ---------------------------------------------------------------- history


def check_history(st):
    channel = f"chat:hist-{RUN}"
    res = publish_n(st.cent, channel, 5)
    epoch = res[0].epoch
    expect([r.offset for r in res] == [1, 2, 3, 4, 5], f"publish {channel}: offsets {[r.offset for r in res]}")

    h = st.cent.history(HistoryRequest(channel=channel, limit=2))
    expect(isinstance(h, HistoryResult), f"history: result type {type(h).__name__}")
    expect(offsets(h.publications) == [1, 2], f"history limit 2: offsets {offsets(h.publications)}, expected [1, 2]")
    expect([p.data for p in h.publications] == [{"n": 1}, {"n": 2}], f"history limit 2: data {[p.data for p in h.publications]}")
    expect((h.offset, h.epoch) == (5, epoch), f"history limit 2: top {h.offset}/{h.epoch!r}, expected 5/{epoch!r}")

    h = st.cent.history(HistoryRequest(channel=channel, limit=2, reverse=True))
    expect(offsets(h.publications) == [5, 4], f"history reverse limit 2: offsets {offsets(h.publications)}, expected [5, 4]")

    h = st.cent.history(HistoryRequest(channel=channel, limit=10, since=StreamPosition(offset=3, epoch=epoch)))
    expect(offsets(h.publications) == [4, 5], f"history since 3: offsets {offsets(h.publications)}, expected [4, 5]")
    expect((h.offset, h.epoch) == (5, epoch), f"history since 3: top {h.offset}/{h.epoch!r}")

    h = st.cent.history(HistoryRequest(channel=channel))
    expect(h.publications == [], f"history without limit: expected no publications, got offsets {offsets(h.publications)}")
    expect((h.offset, h.epoch) == (5, epoch), f"history without limit: top {h.offset}/{h.epoch!r}, expected 5/{epoch!r}")
    return f"limit, reverse, since, position-only ok (epoch {epoch!r})"


def check_history_wrong_epoch(st):
    channel = f"chat:epoch-{RUN}"
    publish_n(st.cent, channel, 2)
    e = expect_api_error(
        lambda: st.cent.history(
            HistoryRequest(channel=channel, limit=10, since=StreamPosition(offset=1, epoch="not-the-epoch"))
        ),
        UNRECOVERABLE_POSITION,
        f"history {channel} since a wrong epoch",
    )
    return f"-> error {e.code} {e.message!r}"


def check_history_remove(st):
    channel = f"chat:rm-{RUN}"
    res = publish_n(st.cent, channel, 3)
    epoch = res[-1].epoch
    r = st.cent.history_remove(HistoryRemoveRequest(channel=channel))
    expect_empty_result(r, HistoryRemoveResult, f"history_remove {channel}")
    h = st.cent.history(HistoryRequest(channel=channel, limit=10))
    expect(h.publications == [], f"history after remove: expected no publications, got offsets {offsets(h.publications)}")
    expect((h.offset, h.epoch) == (3, epoch), f"history after remove: top {h.offset}/{h.epoch!r}, expected 3/{epoch!r}")
    r = st.cent.publish(PublishRequest(channel=channel, data={"n": 4}))
    expect((r.offset, r.epoch) == (4, epoch), f"publish after remove: {r.offset}/{r.epoch!r}, expected 4/{epoch!r}")
    return "no publications, top offset 3 and epoch kept, next offset 4"


# ---------------------------------------------------------------- channels, info, batch, rpc


def check_channels(st):
    r = st.cent.channels(ChannelsRequest())
    expect(isinstance(r, ChannelsResult), f"channels: result type {type(r).__name__}")
    r = st.cent.channels(ChannelsRequest(pattern=f"*{RUN}*"))
    expect(r.channels == {}, f"channels pattern *{RUN}*: expected {{}} (no subscribers yet), got {r.channels!r}")
    return f"{{}} for *{RUN}*"


def check_info(st):
    r = st.cent.info(InfoRequest())
    expect(isinstance(r, InfoResult), f"info: result type {type(r).__name__}")
    expect(len(r.nodes) >= 1, f"info: expected at least one node, got {r!r}")
    n = r.nodes[0]
    expect(n.uid and n.name, f"info: node without uid/name {n!r}")
    return f"{len(r.nodes)} node(s), {n.name!r}"


def check_batch(st, parallel):
    if parallel:
        channels = [f"chat:bp1-{RUN}", f"chat:bp2-{RUN}"]
        want = [1, 1]
    else:
        channels = [f"chat:bs-{RUN}"] * 2
        want = [1, 2]
    reqs = [
        PublishRequest(channel=channels[0], data={"n": 1}),
        PublishRequest(channel=channels[1], data={"n": 2}),
        InfoRequest(),
    ]
    r = st.cent.batch(BatchRequest(requests=reqs, parallel=parallel))
    expect(isinstance(r, BatchResult), f"batch: result type {type(r).__name__}")
    types = [type(x).__name__ for x in r.replies]
    expect(types == ["PublishResult", "PublishResult", "InfoResult"], f"batch: reply types {types}")
    got = [x.offset for x in r.replies[:2]]
    expect(got == want, f"batch: publish offsets {got}, expected {want}")
    expect(len(r.replies[2].nodes) >= 1, f"batch: info reply without nodes {r.replies[2]!r}")
    return f"3 replies in order, offsets {got}"


def check_rpc_unknown_method(st):
    # No RPC extension is configured, so every method is unknown.
    e = expect_api_error(
        lambda: st.cent._send(RpcRequest(method=f"missing_{RUN}", params={"a": 1})), NOT_FOUND, "rpc unknown method"
    )
    return f"-> error {e.code} {e.message!r}"


def check_rpc_empty_method(st):
    # Centrifugo checks the method before looking it up: "" is a bad request, not "not found".
    e = expect_api_error(lambda: st.cent._send(RpcRequest(method="")), BAD_REQUEST, "rpc with empty method")
    return f"-> error {e.code} {e.message!r}"


def channel_calls(cent, channel):
    return [
        ("publish", lambda: cent.publish(PublishRequest(channel=channel, data={"x": 1}))),
        ("history", lambda: cent.history(HistoryRequest(channel=channel, limit=10))),
        ("history_remove", lambda: cent.history_remove(HistoryRemoveRequest(channel=channel))),
        ("presence", lambda: cent.presence(PresenceRequest(channel=channel))),
        ("presence_stats", lambda: cent.presence_stats(PresenceStatsRequest(channel=channel))),
        ("subscribe", lambda: cent.subscribe(SubscribeRequest(user=f"u-{RUN}", channel=channel))),
    ]


def check_unknown_namespace(st):
    channel = f"nope:x-{RUN}"
    calls = channel_calls(st.cent, channel)
    for method, fn in calls:
        expect_api_error(fn, UNKNOWN_CHANNEL, f"{method} {channel}")
    return f"{', '.join(m for m, _ in calls)} -> {UNKNOWN_CHANNEL}"


def check_unsubscribe_unknown_namespace(st):
    # Centrifugo validates a non-empty channel of unsubscribe too.
    channel = f"nope:x-{RUN}"
    e = expect_api_error(
        lambda: st.cent.unsubscribe(UnsubscribeRequest(user=f"u-{RUN}", channel=channel)),
        UNKNOWN_CHANNEL,
        f"unsubscribe {channel}",
    )
    return f"-> error {e.code} {e.message!r}"


def check_empty_channel(st):
    calls = channel_calls(st.cent, "")
    for method, fn in calls:
        expect_api_error(fn, BAD_REQUEST, f"{method} with empty channel")
    return f"{', '.join(m for m, _ in calls)} -> {BAD_REQUEST}"


# ---------------------------------------------------------------- with a WebSocket client


class WsEvents(centrifuge.ClientEventHandler):
    def __init__(self):
        self.connected = asyncio.Queue()
        self.connecting = asyncio.Queue()
        self.disconnected = asyncio.Queue()
        self.subscribed = asyncio.Queue()  # server-side subscriptions
        self.unsubscribed = asyncio.Queue()
        self.publications = asyncio.Queue()

    async def on_connected(self, ctx):
        self.connected.put_nowait(ctx)

    async def on_connecting(self, ctx):
        self.connecting.put_nowait(ctx)

    async def on_disconnected(self, ctx):
        self.disconnected.put_nowait(ctx)

    async def on_subscribed(self, ctx):
        self.subscribed.put_nowait(ctx)

    async def on_unsubscribed(self, ctx):
        self.unsubscribed.put_nowait(ctx)

    async def on_publication(self, ctx):
        self.publications.put_nowait(ctx)


class WsSubEvents(centrifuge.SubscriptionEventHandler):
    def __init__(self):
        self.subscribed = asyncio.Queue()
        self.unsubscribed = asyncio.Queue()
        self.subscribing = asyncio.Queue()

    async def on_subscribed(self, ctx):
        self.subscribed.put_nowait(ctx)

    async def on_unsubscribed(self, ctx):
        self.unsubscribed.put_nowait(ctx)

    async def on_subscribing(self, ctx):
        self.subscribing.put_nowait(ctx)


async def api(fn, *args):
    """Run a blocking cent call off the event loop, so the WebSocket client keeps reading."""
    return await asyncio.to_thread(fn, *args)


async def poll(fn, cond, what, timeout=WAIT):
    """Call fn (blocking cent call) until cond(result) holds; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        res = await api(fn)
        if cond(res):
            return res
        if time.monotonic() >= deadline:
            raise CheckFailed(f"{what}: still {res!r} after {timeout}s")
        await asyncio.sleep(0.1)


async def check_ws_connect(st):
    st.ws_events = WsEvents()
    token = connection_token(st.secret, WS_USER)
    st.ws = centrifuge.Client(st.ws_url, events=st.ws_events, token=token, timeout=WAIT, proxy=None)
    await st.ws.connect()
    try:
        await st.ws.ready(timeout=WAIT)
    except centrifuge.CentrifugeError as e:
        gone = st.ws_events.disconnected.get_nowait() if not st.ws_events.disconnected.empty() else None
        raise CheckFailed(f"connect as user {WS_USER}: {type(e).__name__}: {e} (on_disconnected: {gone!r})") from None
    ctx = await next_event(st.ws_events.connected, "on_connected")
    st.ws_client_id = ctx.client
    drain(st.ws_events.connecting)  # the initial connect; later ones mean a reconnect

    st.ws_sub_events = WsSubEvents()
    st.ws_sub = st.ws.new_subscription(st.ws_channel, events=st.ws_sub_events)
    await st.ws.ready()
    await st.ws_sub.subscribe()
    try:
        await st.ws_sub.ready(timeout=WAIT)
    except centrifuge.CentrifugeError as e:
        raise CheckFailed(f"subscribe {st.ws_channel}: {type(e).__name__}: {e}") from None
    await next_event(st.ws_sub_events.subscribed, f"on_subscribed for {st.ws_channel}")
    return f"user {WS_USER} client {st.ws_client_id!r} subscribed to {st.ws_channel}"


async def check_ws_presence(st):
    st.need_ws_sub()
    p = await api(st.cent.presence, PresenceRequest(channel=st.ws_channel))
    expect(list(p.presence) == [st.ws_client_id], f"presence {st.ws_channel}: expected only {st.ws_client_id!r}, got {p.presence!r}")
    info = p.presence[st.ws_client_id]
    expect(info.user == WS_USER and info.client == st.ws_client_id, f"presence {st.ws_channel}: info {info!r}")
    s = await api(st.cent.presence_stats, PresenceStatsRequest(channel=st.ws_channel))
    expect((s.num_clients, s.num_users) == (1, 1), f"presence_stats {st.ws_channel}: expected 1/1, got {s!r}")
    c = await api(st.cent.channels, ChannelsRequest(pattern=f"*ws-{RUN}"))
    expect(list(c.channels) == [st.ws_channel], f"channels *ws-{RUN}: expected [{st.ws_channel!r}], got {c.channels!r}")
    expect(c.channels[st.ws_channel].num_clients == 1, f"channels: num_clients {c.channels[st.ws_channel]!r}, expected 1")
    return f"presence has user {WS_USER}, stats 1/1, channels lists {st.ws_channel} with 1 client"


async def check_ws_server_subscribe(st):
    st.need_ws()
    r = await api(st.cent.subscribe, SubscribeRequest(user=WS_USER, channel=st.srv_channel))
    expect(isinstance(r, SubscribeResult), f"subscribe: result {r!r}")
    ctx = await next_event(st.ws_events.subscribed, f"client on_subscribed for {st.srv_channel}")
    expect(ctx.channel == st.srv_channel, f"on_subscribed: channel {ctx.channel!r}, expected {st.srv_channel!r}")
    # A server-side subscription receives the channel's publications.
    pr = await api(st.cent.publish, PublishRequest(channel=st.srv_channel, data={"srv": 1}))
    pctx = await next_event(st.ws_events.publications, f"server-side publication in {st.srv_channel}")
    expect(pctx.channel == st.srv_channel, f"server-side publication: channel {pctx.channel!r}")
    expect(pctx.pub.data == {"srv": 1}, f"server-side publication: data {pctx.pub.data!r}")
    expect(pctx.pub.offset == pr.offset, f"server-side publication: offset {pctx.pub.offset}, expected {pr.offset}")
    p = await api(st.cent.presence, PresenceRequest(channel=st.srv_channel))
    expect(st.ws_client_id in p.presence, f"presence {st.srv_channel}: client missing ({p.presence!r})")
    return f"on_subscribed {st.srv_channel}, publication delivered, in presence"


async def check_ws_server_unsubscribe(st):
    st.need_ws_sub()
    r = await api(st.cent.unsubscribe, UnsubscribeRequest(user=WS_USER, channel=st.ws_channel))
    expect(isinstance(r, UnsubscribeResult), f"unsubscribe: result {r!r}")
    ctx = await next_event(st.ws_sub_events.unsubscribed, f"on_unsubscribed for {st.ws_channel}")
    expect(ctx.code == UNSUBSCRIBE_SERVER, f"on_unsubscribed: code {ctx.code} ({ctx.reason!r}), expected {UNSUBSCRIBE_SERVER}")
    expect(st.ws_sub.state == centrifuge.SubscriptionState.UNSUBSCRIBED, f"subscription state {st.ws_sub.state}")
    await poll(
        lambda: st.cent.presence(PresenceRequest(channel=st.ws_channel)),
        lambda p: p.presence == {},
        f"presence {st.ws_channel} after unsubscribe",
    )
    expect(st.ws.state == centrifuge.ClientState.CONNECTED, f"client state after unsubscribe: {st.ws.state}")
    return f"on_unsubscribed {ctx.code} {ctx.reason!r}, presence empty"


async def check_ws_server_disconnect(st):
    st.need_ws()
    r = await api(st.cent.disconnect, DisconnectRequest(user=WS_USER))
    expect(isinstance(r, DisconnectResult), f"disconnect: result {r!r}")
    ctx = await next_event(st.ws_events.disconnected, "on_disconnected")
    expect(ctx.code == FORCE_NO_RECONNECT, f"on_disconnected: code {ctx.code} ({ctx.reason!r}), expected {FORCE_NO_RECONNECT}")
    await asyncio.sleep(0.5)
    expect(st.ws.state == centrifuge.ClientState.DISCONNECTED, f"client state {st.ws.state}, expected disconnected (no reconnect)")
    if not st.ws_events.connecting.empty():
        raise CheckFailed(f"client reconnecting: {st.ws_events.connecting.get_nowait()!r}")
    await poll(
        lambda: st.cent.presence(PresenceRequest(channel=st.srv_channel)),
        lambda p: p.presence == {},
        f"presence {st.srv_channel} after disconnect",
    )
    return f"on_disconnected {ctx.code} {ctx.reason!r}, no reconnect, presence empty"


# ---------------------------------------------------------------- runner


async def run(st):
    checks = [
        ("publish with tags", check_publish_tags),
        ("publish skip_history", check_publish_skip_history),
        ("publish idempotency_key", check_publish_idempotency),
        ("broadcast", check_broadcast),
        ("broadcast without channels", check_broadcast_no_channels),
        ("user commands without connections", check_user_commands_offline),
        ("presence of an empty channel", check_presence_empty),
        ("presence/history not available", check_not_available),
        ("history", check_history),
        ("history since wrong epoch", check_history_wrong_epoch),
        ("history_remove", check_history_remove),
        ("channels", check_channels),
        ("info", check_info),
        ("batch sequential", lambda s: check_batch(s, parallel=False)),
        ("batch parallel", lambda s: check_batch(s, parallel=True)),
        ("rpc unknown method", check_rpc_unknown_method),
        ("rpc empty method", check_rpc_empty_method),
        ("unknown namespace", check_unknown_namespace),
        ("unsubscribe unknown namespace", check_unsubscribe_unknown_namespace),
        ("empty channel", check_empty_channel),
        ("ws client connect", check_ws_connect),
        ("ws presence via API", check_ws_presence),
        ("ws server subscribe", check_ws_server_subscribe),
        ("ws server unsubscribe", check_ws_server_unsubscribe),
        ("ws server disconnect", check_ws_server_disconnect),
    ]
    report = Report("cent_full")
    try:
        await run_checks_async(report, checks, st)
    finally:
        if st.ws is not None and st.ws.state != centrifuge.ClientState.DISCONNECTED:
            await st.ws.disconnect()
    return report


def main():
    env = read_env("cent_full", "GYRE_API_URL", "GYRE_API_KEY", "GYRE_WS_URL", "GYRE_SECRET")
    if env is None:
        return 1
    with Client(env["GYRE_API_URL"], env["GYRE_API_KEY"], timeout=WAIT) as cent:
        st = State(cent, env["GYRE_WS_URL"], env["GYRE_SECRET"])
        report = asyncio.run(run(st))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
