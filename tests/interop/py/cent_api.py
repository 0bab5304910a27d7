#!/usr/bin/env python3
"""Interop checks of Gyre's server HTTP API against the real `cent` 5.x client.

Plain script (no pytest). Environment:
  GYRE_API_URL  base API URL, e.g. http://127.0.0.1:PORT/api
  GYRE_API_KEY  server API key

The server is expected to run with namespaces `chat` (history_size 100,
history_ttl 300s), `pub` (no history), `locked` and `personal`, and no
namespace called `nope`.

Exit code 0 when every check passes, 1 otherwise (or on bad environment).
"""

import os
import sys

from cent import (
    BroadcastRequest,
    BroadcastResult,
    CentUnauthorizedError,
    Client,
    InfoRequest,
    InfoResult,
    PublishRequest,
    PublishResult,
)

# common.py sits next to this script; find it whatever the working directory.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from common import (  # noqa: E402
    RUN,
    UNKNOWN_CHANNEL,
    WAIT,
    CheckFailed,
    Report,
    expect,
    expect_api_error,
    read_env,
    run_checks,
)


def check_publish_history(client):
    channel = f"chat:cent_{RUN}"
    r1 = client.publish(PublishRequest(channel=channel, data={"text": "hi"}))
    expect(isinstance(r1, PublishResult), f"publish {channel}: result type {type(r1).__name__}")
    expect(r1.offset == 1, f"publish {channel} #1: expected offset 1, got {r1.offset!r} ({r1!r})")
    expect(isinstance(r1.epoch, str) and r1.epoch != "", f"publish {channel} #1: expected non-empty epoch, got {r1.epoch!r}")
    r2 = client.publish(PublishRequest(channel=channel, data={"text": "hi"}))
    expect(r2.offset == 2, f"publish {channel} #2: expected offset 2, got {r2.offset!r} ({r2!r})")
    expect(r2.epoch == r1.epoch, f"publish {channel} #2: epoch changed {r1.epoch!r} -> {r2.epoch!r}")
    return f"{channel} offsets {r1.offset},{r2.offset} epoch {r1.epoch!r}"


def check_publish_no_history(client):
    channel = f"pub:x_{RUN}"
    r = client.publish(PublishRequest(channel=channel, data={"text": "hi"}))
    expect(isinstance(r, PublishResult), f"publish {channel}: result type {type(r).__name__}")
    # Centrifugo omits offset/epoch for channels without history; cent defaults them to 0/"".
    expect(not r.offset, f"publish {channel}: expected no offset (0), got {r.offset!r}")
    expect(not r.epoch, f"publish {channel}: expected no epoch, got {r.epoch!r}")
    return f"{channel} offset {r.offset!r}"


def check_publish_unknown_namespace(client):
    channel = f"nope:x_{RUN}"
    e = expect_api_error(
        lambda: client.publish(PublishRequest(channel=channel, data={"text": "hi"})),
        UNKNOWN_CHANNEL,
        f"publish {channel}",
    )
    return f"{channel} -> error {e.code} {e.message!r}"


def check_broadcast(client):
    channels = [f"chat:b1_{RUN}", f"chat:b2_{RUN}", f"pub:b3_{RUN}"]
    r = client.broadcast(BroadcastRequest(channels=channels, data={"text": "hi"}))
    expect(isinstance(r, BroadcastResult), f"broadcast: result type {type(r).__name__}")
    expect(len(r.responses) == 3, f"broadcast: expected 3 responses, got {len(r.responses)} ({r!r})")
    for ch, resp in zip(channels, r.responses):
        expect(resp.error is None, f"broadcast {ch}: unexpected error {resp.error!r}")
        expect(resp.result is not None, f"broadcast {ch}: missing result ({resp!r})")
    # Responses come back in request order: history channels get offset 1.
    for ch, resp in zip(channels[:2], r.responses[:2]):
        expect(resp.result.offset == 1, f"broadcast {ch}: expected offset 1, got {resp.result.offset!r}")
        expect(resp.result.epoch != "", f"broadcast {ch}: expected non-empty epoch")
    expect(not r.responses[2].result.offset, f"broadcast {channels[2]}: expected no offset, got {r.responses[2].result.offset!r}")
    return "3 responses, no errors"


def check_broadcast_partial_error(client):
    channels = [f"chat:p1_{RUN}", f"nope:p2_{RUN}", f"pub:p3_{RUN}"]
    # A per-channel failure must not fail the whole call.
    r = client.broadcast(BroadcastRequest(channels=channels, data={"text": "hi"}))
    expect(len(r.responses) == 3, f"broadcast: expected 3 responses, got {len(r.responses)} ({r!r})")
    ok1, bad, ok3 = r.responses
    expect(bad.error is not None, f"broadcast {channels[1]}: expected per-channel error, got {bad!r}")
    expect(bad.error.code == UNKNOWN_CHANNEL, f"broadcast {channels[1]}: expected code {UNKNOWN_CHANNEL}, got {bad.error.code}")
    for ch, resp in ((channels[0], ok1), (channels[2], ok3)):
        expect(resp.error is None, f"broadcast {ch}: unexpected error {resp.error!r}")
        expect(resp.result is not None, f"broadcast {ch}: missing result ({resp!r})")
    expect(ok1.result.offset == 1, f"broadcast {channels[0]}: expected offset 1, got {ok1.result.offset!r}")
    return f"{channels[1]} -> error {bad.error.code} {bad.error.message!r}, others ok"


def check_info(client):
    r = client.info(InfoRequest())
    expect(isinstance(r, InfoResult), f"info: result type {type(r).__name__}")
    expect(len(r.nodes) >= 1, f"info: expected at least one node, got {r!r}")
    for n in r.nodes:
        expect(isinstance(n.uid, str) and n.uid, f"info: node with empty uid ({n!r})")
        expect(isinstance(n.name, str) and n.name, f"info: node with empty name ({n!r})")
        expect(type(n.num_clients) is int, f"info: num_clients not int ({n.num_clients!r})")
    n = r.nodes[0]
    return f"{len(r.nodes)} node(s), first name={n.name!r} uid={n.uid!r} num_clients={n.num_clients}"


def check_wrong_key(api_url):
    for key, label in (("wrong-" + RUN, "wrong key"), ("", "no key")):
        with Client(api_url, key, timeout=WAIT) as bad:
            try:
                res = bad.info(InfoRequest())
            except CentUnauthorizedError:
                continue
            raise CheckFailed(f"{label}: expected CentUnauthorizedError (HTTP 401), got result {res!r}")
    return "wrong key and missing key -> 401"


def main():
    env = read_env("cent_api", "GYRE_API_URL", "GYRE_API_KEY")
    if env is None:
        return 1
    api_url, api_key = env["GYRE_API_URL"], env["GYRE_API_KEY"]

    checks = [
        ("publish with history", check_publish_history),
        ("publish without history", check_publish_no_history),
        ("publish unknown namespace", check_publish_unknown_namespace),
        ("broadcast", check_broadcast),
        ("broadcast partial error", check_broadcast_partial_error),
        ("info", check_info),
        ("unauthorized", lambda _client: check_wrong_key(api_url)),
    ]
    report = Report("cent_api")
    with Client(api_url, api_key, timeout=WAIT) as client:
        run_checks(report, checks, client)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
