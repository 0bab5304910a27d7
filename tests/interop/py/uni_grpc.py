#!/usr/bin/env python3
"""Gyre's unidirectional gRPC transport read with the client protocol as the centrifuge-python
SDK ships it (its own generated `client_pb2`, not Gyre's proto files) over grpcio: the first push
is the connect result, publications follow, and a server-side disconnect ends the stream.

Environment: GYRE_UNI_GRPC_ADDR (host:port), GYRE_API_URL, GYRE_API_KEY, GYRE_SECRET.
Exit code 0 when every check passes.
"""

import json
import os
import sys

import grpc
from centrifuge.protocol import client_pb2

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from common import RUN, WAIT, Report, api_call, connection_token, expect, hs256_token, read_env, run_checks  # noqa: E402

CONSUME = "/centrifugal.centrifugo.unistream.CentrifugoUniStream/Consume"


class State:
    def __init__(self, env):
        self.env = env
        self.channel = grpc.insecure_channel(env["GYRE_UNI_GRPC_ADDR"])
        self.chat = f"chat:uni-py-{RUN}"
        self.user = f"uni-py-{RUN}"

    def consume(self, token):
        call = self.channel.unary_stream(CONSUME, request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=client_pb2.Push.FromString)
        return call(client_pb2.ConnectRequest(token=token, name="python-uni"), timeout=10 * WAIT)

    def api(self, method, params):
        return api_call(self.env["GYRE_API_URL"], self.env["GYRE_API_KEY"], method, params)


def check_stream(st):
    claims = {"sub": st.user, "channels": [st.chat]}
    stream = st.consume(hs256_token(st.env["GYRE_SECRET"], claims))
    first = next(stream)
    expect(first.HasField("connect"), f"the first push is the connect result: {first}")
    connect = first.connect
    expect(connect.client and st.chat in connect.subs, f"connect push: {connect}")
    st.api("publish", {"channel": st.chat, "data": {"n": 1}})
    push = next(stream)
    while not push.HasField("pub"):
        push = next(stream)
    expect(push.channel == st.chat and json.loads(push.pub.data) == {"n": 1} and push.pub.offset == 1,
           f"publication push: {push}")
    st.api("disconnect", {"user": st.user})
    last = next(stream)
    while not last.HasField("disconnect"):
        last = next(stream)
    expect(last.disconnect.code == 3503, f"disconnect push: {last}")
    return "connect result with the server-side subscription, a publication, a disconnect push"


def check_bad_token(st):
    stream = st.consume(connection_token("wrong-secret", st.user))
    pushes = list(stream)
    expect(len(pushes) == 1 and pushes[0].HasField("disconnect") and pushes[0].disconnect.code == 3500,
           f"a bad token gets one disconnect push: {pushes}")
    return "a bad token: one disconnect push (3500), then the stream ends"


def main():
    env = read_env("uni_grpc", "GYRE_UNI_GRPC_ADDR", "GYRE_API_URL", "GYRE_API_KEY", "GYRE_SECRET")
    if env is None:
        return 1
    st = State(env)
    report = Report("uni_grpc")
    run_checks(report, [("stream", check_stream), ("bad token", check_bad_token)], st)
    st.channel.close()
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
