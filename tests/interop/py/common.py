"""Helpers shared by the Python interop scripts (cent_api.py, cent_full.py, client_sdk.py).

Environment reading, HS256 connection tokens, plain server API calls, the
`expect` family, event-queue helpers and the check runner that prints one
`ok`/`FAIL` line per check and the final `<script>: N passed, N failed` line.
"""

import asyncio
import base64
import hashlib
import hmac
import inspect
import json
import os
import importlib
import sys
import tempfile
import time
import traceback
import urllib.request
import uuid

import cent
import centrifuge

# Server error codes (Centrifugo's numbering) and push/disconnect codes.
UNKNOWN_CHANNEL = 102
PERMISSION_DENIED = 103
NOT_FOUND = 104
BAD_REQUEST = 107
NOT_AVAILABLE = 108
UNRECOVERABLE_POSITION = 112
UNSUBSCRIBE_SERVER = 2000  # unsubscribe push code of the server API's unsubscribe
FORCE_NO_RECONNECT = 3503  # default disconnect of the server API's disconnect

WAIT = 5.0  # seconds to wait for any single event or HTTP call

# Unique suffix so a script can run repeatedly against one long-lived node
# and still observe fresh history streams (offsets from 1).
RUN = uuid.uuid4().hex[:12]


# ---------------------------------------------------------------- environment


def read_env(script, *keys):
    """The named environment variables, or None (after telling stderr) when any is unset.

    GYRE_API_URL comes back without a trailing slash.
    """
    env = {k: os.environ.get(k, "") for k in keys}
    if "GYRE_API_URL" in env:
        env["GYRE_API_URL"] = env["GYRE_API_URL"].rstrip("/")
    missing = [k for k, v in env.items() if not v]
    if missing:
        print(f"{script}: {', '.join(missing)} must be set", file=sys.stderr)
        return None
    return env


# ---------------------------------------------------------------- protobuf


PROTO_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto"))


def compile_proto(name):
    """Compiles the repository's proto/<name>.proto with grpcio-tools into a temporary
    directory; returns its (messages, services) modules."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix=f"gyre-{name}-proto-")
    args = ["grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}",
            os.path.join(PROTO_DIR, f"{name}.proto")]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc could not compile {name}.proto")
    sys.path.insert(0, out)
    return importlib.import_module(f"{name}_pb2"), importlib.import_module(f"{name}_pb2_grpc")


# ---------------------------------------------------------------- tokens


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_token(secret, claims):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def connection_token(secret, user, ttl=3600):
    """HS256 connection token for `user`, valid for `ttl` seconds."""
    return hs256_token(secret, {"sub": user, "exp": int(time.time()) + ttl})


# ---------------------------------------------------------------- server HTTP API


def api_call(api_url, api_key, method, params):
    """POST one server API command; returns the decoded JSON body."""
    req = urllib.request.Request(
        f"{api_url}/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": api_key},
        method="POST",
    )
    # Talk to the node directly, whatever proxy the environment configures.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=WAIT) as resp:
        return json.loads(resp.read().decode())


# ---------------------------------------------------------------- expectations


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def expect_api_error(fn, code, what):
    """Call fn (a cent call) and expect it to fail with server API error `code`; returns the error."""
    try:
        res = fn()
    except cent.CentApiResponseError as e:
        expect(e.code == code, f"{what}: expected API error code {code}, got {e.code} ({e.message!r})")
        return e
    raise CheckFailed(f"{what}: expected CentApiResponseError code {code}, got result {res!r}")


# ---------------------------------------------------------------- event queues


async def next_event(queue, what, timeout=WAIT):
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except asyncio.TimeoutError:
        raise CheckFailed(f"timed out after {timeout}s waiting for {what}") from None


def drain(queue):
    while not queue.empty():
        queue.get_nowait()


def expect_quiet(queue, what):
    if not queue.empty():
        raise CheckFailed(f"unexpected {what}: {queue.get_nowait()!r}")


# ---------------------------------------------------------------- running checks


class Report:
    """Counts checks and prints one `ok`/`FAIL` line per check and the summary line."""

    def __init__(self, script):
        self.script = script
        self.passed = 0
        self.failed = 0

    def ok(self, name, detail):
        self.passed += 1
        print(f"ok   {name}: {detail}")

    def fail(self, name, e):
        """Report the exception a check raised; call it from the `except` block."""
        self.failed += 1
        if isinstance(e, CheckFailed):
            print(f"FAIL {name}: {e}")
        elif isinstance(e, centrifuge.ReplyError):
            print(f"FAIL {name}: unexpected server error {e.code} {e.message!r}")
        elif isinstance(e, cent.CentError):  # unexpected cent exception (API error, network, 401, decode, ...)
            text = str(e) or (
                "HTTP 401 (check GYRE_API_KEY)" if isinstance(e, cent.CentUnauthorizedError) else repr(e.__cause__)
            )
            print(f"FAIL {name}: unexpected {type(e).__name__}: {text}")
        elif isinstance(e, centrifuge.CentrifugeError):  # timeout, unsubscribed, disconnected, ...
            print(f"FAIL {name}: unexpected {type(e).__name__}: {e}")
        else:  # bug in the script or a client
            print(f"FAIL {name}: unexpected {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)

    def finish(self):
        """Print the summary line; returns the exit code (0 only when checks ran and all passed)."""
        print(f"{self.script}: {self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


def run_checks(report, checks, arg):
    """Run blocking checks `fn(arg)` in order, in this thread."""
    for name, fn in checks:
        try:
            detail = fn(arg)
        except Exception as e:
            report.fail(name, e)
        else:
            report.ok(name, detail)


async def run_checks_async(report, checks, arg):
    """Run checks in order: coroutine functions awaited, blocking ones in a worker thread."""
    for name, fn in checks:
        try:
            if inspect.iscoroutinefunction(fn):
                detail = await fn(arg)
            else:
                detail = await asyncio.to_thread(fn, arg)
        except Exception as e:
            report.fail(name, e)
        else:
            report.ok(name, detail)
