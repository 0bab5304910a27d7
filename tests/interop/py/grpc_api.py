#!/usr/bin/env python3
"""Gyre's gRPC server API called from Python's grpcio (its own HTTP/2 and protobuf stacks):
Publish, PresenceStats and History of `centrifugal.centrifugo.api.CentrifugoApi`, with the
message layouts of Centrifugo's api.proto declared here as descriptors (no generated code).

Environment: GYRE_GRPC_ADDR (host:port), GYRE_GRPC_KEY. Exit code 0 when every check passes.
"""

import json
import os
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from common import RUN, Report, expect, read_env, run_checks  # noqa: E402

F = descriptor_pb2.FieldDescriptorProto
SERVICE = "/centrifugal.centrifugo.api.CentrifugoApi/"

# (message, [(field, number, type, label, type_name)])
MESSAGES = [
    ("Error", [("code", 1, F.TYPE_UINT32, None, None), ("message", 2, F.TYPE_STRING, None, None)]),
    ("PublishRequest", [("channel", 1, F.TYPE_STRING, None, None), ("data", 2, F.TYPE_BYTES, None, None)]),
    ("PublishResult", [("offset", 1, F.TYPE_UINT64, None, None), ("epoch", 2, F.TYPE_STRING, None, None)]),
    ("PublishResponse", [("error", 1, F.TYPE_MESSAGE, None, "Error"), ("result", 2, F.TYPE_MESSAGE, None, "PublishResult")]),
    ("PresenceStatsRequest", [("channel", 1, F.TYPE_STRING, None, None)]),
    ("PresenceStatsResult", [("num_clients", 1, F.TYPE_UINT32, None, None), ("num_users", 2, F.TYPE_UINT32, None, None)]),
    ("PresenceStatsResponse", [("error", 1, F.TYPE_MESSAGE, None, "Error"),
                               ("result", 2, F.TYPE_MESSAGE, None, "PresenceStatsResult")]),
    ("HistoryRequest", [("channel", 1, F.TYPE_STRING, None, None), ("limit", 2, F.TYPE_INT32, None, None)]),
    ("Publication", [("data", 2, F.TYPE_BYTES, None, None), ("offset", 4, F.TYPE_UINT64, None, None)]),
    ("HistoryResult", [("publications", 1, F.TYPE_MESSAGE, F.LABEL_REPEATED, "Publication"),
                       ("epoch", 2, F.TYPE_STRING, None, None), ("offset", 3, F.TYPE_UINT64, None, None)]),
    ("HistoryResponse", [("error", 1, F.TYPE_MESSAGE, None, "Error"), ("result", 2, F.TYPE_MESSAGE, None, "HistoryResult")]),
]


def message_classes():
    fd = descriptor_pb2.FileDescriptorProto(name="gyre_grpc_api_test.proto", package="centrifugal.centrifugo.api",
                                            syntax="proto3")
    for name, fields in MESSAGES:
        m = fd.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            f = m.field.add(name=field, number=number, type=kind, label=label or F.LABEL_OPTIONAL)
            if type_name:
                f.type_name = f".centrifugal.centrifugo.api.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"centrifugal.centrifugo.api.{name}"))
            for name, _ in MESSAGES}


class State:
    def __init__(self, addr, key):
        self.m = message_classes()
        self.channel = grpc.insecure_channel(addr)
        self.metadata = [("authorization", f"apikey {key}")]
        self.chat = f"chat:grpc-py-{RUN}"

    def call(self, method, request, response, metadata=None):
        stub = self.channel.unary_unary(SERVICE + method, request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=self.m[response].FromString)
        return stub(request, metadata=self.metadata if metadata is None else metadata, timeout=5)


def check_publish(st):
    for n in (1, 2):
        r = st.call("Publish", st.m["PublishRequest"](channel=st.chat, data=json.dumps({"n": n}).encode()),
                    "PublishResponse")
        expect(not r.HasField("error") and r.result.offset == n, f"publish {n}: {r}")
    r = st.call("Publish", st.m["PublishRequest"](channel="nowhere:x", data=b"1"), "PublishResponse")
    expect(r.error.code == 102, f"unknown namespace: {r}")
    return f"2 publications in {st.chat}; an unknown namespace answers error 102"


def check_history(st):
    r = st.call("History", st.m["HistoryRequest"](channel=st.chat, limit=-1), "HistoryResponse")
    got = [json.loads(p.data) for p in r.result.publications]
    expect(got == [{"n": 1}, {"n": 2}] and r.result.offset == 2 and r.result.epoch, f"history: {r}")
    return "history holds both, data as JSON bytes"


def check_presence_stats(st):
    r = st.call("PresenceStats", st.m["PresenceStatsRequest"](channel=st.chat), "PresenceStatsResponse")
    expect(r.result.num_clients == 0, f"presence stats: {r}")
    return "presence stats answered"


def check_unauthenticated(st):
    try:
        st.call("PresenceStats", st.m["PresenceStatsRequest"](channel=st.chat), "PresenceStatsResponse", metadata=[])
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.UNAUTHENTICATED, f"status {e.code()}")
        return "no key: UNAUTHENTICATED"
    raise AssertionError("a call without the key succeeded")


def main():
    env = read_env("grpc_api", "GYRE_GRPC_ADDR", "GYRE_GRPC_KEY")
    if env is None:
        return 1
    st = State(env["GYRE_GRPC_ADDR"], env["GYRE_GRPC_KEY"])
    report = Report("grpc_api")
    run_checks(report, [("publish", check_publish), ("history", check_history),
                        ("presence stats", check_presence_stats), ("api key", check_unauthenticated)], st)
    st.channel.close()
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
