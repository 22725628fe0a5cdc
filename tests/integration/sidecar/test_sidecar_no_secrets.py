"""No raw session id, cookie or token on any output path: real sidecar processes (proxy mode,
and authz mode with bearer tokens) at DEBUG get an adversarial request set in which every
session value carries one marker, and every byte they print on stdout and stderr, and every
answer the sidecar writes itself, is searched for it.

The set covers the paths where request bytes tend to leak: parser errors in the fast lane and
in aiohttp after a hand-off (which quotes the offending line), oversized lines, ambiguous and
malformed cookies, expired sessions and their audit events, refused keepalives, websockets,
nginx and Envoy checks, registrations on the ops port (hostile ones too), and a store that
goes away.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sidecar_harness import KEY, MountedConfig, policy_doc, sid_of, wait_for

from curfew.sessions.keys import session_keys
from curfew.sessions.store import RedisSessionStore
from fixtures.redis_servers import RedisServer, free_port
from fixtures.sessions import plant

MARKER = b"Qz7Xv"
"""In every session value sent; a distinctive string no log line or answer has otherwise."""
MIN = 60_000


def secret(n: int) -> bytes:
    return b"sid-" + MARKER + b"-%04d-k9" % n


@dataclass
class Process:
    port: int
    ops: int
    stdout: Path
    stderr: Path
    proc: asyncio.subprocess.Process
    store: RedisSessionStore

    def printed(self) -> bytes:
        return self.stdout.read_bytes() + self.stderr.read_bytes()


Start = Callable[..., Awaitable[Process]]


@pytest.fixture
async def sidecar_process(
    tmp_path: Path, upstream: str, own_redis: RedisServer
) -> AsyncIterator[Start]:
    """``await sidecar_process(mode, doc=None, **flags)``: a ``curfew sidecar`` process at DEBUG
    on the test's own Redis, its output going to files."""
    started: list[Process] = []

    async def start(mode: str, doc: dict[str, Any] | None = None, *flags: str) -> Process:
        n = len(started)
        mount = MountedConfig(tmp_path / f"config-{n}")
        mount.root.mkdir()
        mount.write(doc or policy_doc())
        port, ops = free_port(), free_port()
        out, err = tmp_path / f"stdout-{n}", tmp_path / f"stderr-{n}"
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CURFEW_SESSION_KEY")}
        args = ["--upstream", upstream] if mode == "proxy" else []
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "curfew", "sidecar", "--config", str(mount.path),
                "--listen", f"127.0.0.1:{port}", "--ops-listen", f"127.0.0.1:{ops}",
                "--mode", mode, "--log-level", "DEBUG", *args, *flags,
                env={**env, "REDIS_URL": own_redis.url, "CURFEW_SESSION_KEY": KEY.decode()},
                stdout=stdout, stderr=stderr,
            )
        store = RedisSessionStore.from_url(own_redis.url, key_prefix="curfew:", format="curfew")
        process = Process(port, ops, out, err, proc, store)
        started.append(process)
        async with aiohttp.ClientSession() as http:
            async def ready() -> bool:
                assert proc.returncode is None, err.read_text()
                try:
                    async with http.get(f"http://127.0.0.1:{ops}/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await wait_for(ready, timeout=20)
        return process

    yield start
    for process in started:
        if process.proc.returncode is None:
            process.proc.terminate()
            await asyncio.wait_for(process.proc.wait(), 10)
        await process.store.aclose()


async def exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes on a new connection; everything the sidecar answers until it closes or
    goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 0.5):
            answer += chunk
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return answer


def get(target: bytes, *fields: bytes, version: bytes = b"1.1") -> bytes:
    lines = [b"GET " + target + b" HTTP/" + version, b"Host: shop.example.com", *fields]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def register(*fields: bytes, body: bytes = b"") -> bytes:
    """A ``POST /sessions/register`` of the ops port."""
    lines = [b"POST /sessions/register HTTP/1.1", b"Host: 127.0.0.1", *fields,
             b"Content-Length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def proxy_attacks() -> list[tuple[bytes, bool]]:
    """(request, whether the sidecar answers it itself) in proxy mode."""
    s = secret
    cookie = b"Cookie: session="
    return [
        (get(b"/cart", cookie + s(1)), False),                       # live: reaches the app
        (get(b"/cart", cookie + s(2), b"Accept: application/json"), True),  # expired: 401
        (get(b"/cart", cookie + s(3), b"Accept: text/html"), True),  # expired: login redirect
        (get(b"/cart", cookie + s(4) + b"; session=" + s(5)), True),  # ambiguous
        (get(b"/cart", cookie + s(6), cookie + s(7)), True),         # ambiguous, two fields
        (get(b"/cart", cookie + s(8) + b"\x01"), True),             # control char: fast lane
        (get(b"/cart", cookie + s(9) + b"\x00x"), True),            # NUL
        (get(b"/cart", cookie + s(10), b" folded"), True),          # obs-fold
        (get(b"/cart", cookie + s(11) + b"\nX: y"), True),          # bare LF
        (get(b"/cart", b"Cookie : session=" + s(12)), True),        # space before colon
        # aiohttp's parser error: llhttp in the fast lane refuses such a head itself, so it
        # follows a request that hands the connection off.
        (get(b"/first", b"Connection: keep-alive", version=b"1.0")
         + get(b"/cart", cookie + s(13) + b"\x7f", version=b"1.0"), True),
        (get(b"/cart", cookie + s(14) + b"a" * 9000, version=b"1.0"), True),  # line too long
        # A long head the fast lane reads whole is forwarded: the app answers it.
        (get(b"/cart", cookie + s(15) + b"a" * 20000), False),
        (get(b"/cart", cookie + s(16), *[b"X-%d: y" % i for i in range(120)]), False),
        (get(b"/cart", b"Cookie: session=\"" + s(17) + b"\\\""), False),
        (get(b"/cart", cookie + s(18) + b"\xff\xfe"), False),
        (get(b"/.curfew/session", cookie + s(19)), False),
        (get(b"/.curfew/session", cookie + s(20) + b"\x7f", version=b"1.0"), True),
        (b"POST /.curfew/keepalive HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: "
         b"text/plain\r\nOrigin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\n"
         + cookie + s(21) + b"\r\nContent-Length: 1\r\n\r\nx", True),
        (b"POST /cart HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: chunked\r\n"
         + cookie + s(22) + b"\x01\r\n\r\n0\r\n\r\n", True),
        (b"POST /cart HTTP/1.1\r\nHost: shop.example.com\r\nExpect: 100-continue\r\n"
         b"Content-Length: 2\r\n" + cookie + s(23) + b"\x7f\r\n\r\n{}", True),
        (b"GET /ws HTTP/1.1\r\nHost: shop.example.com\r\nUpgrade: websocket\r\n"
         b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + cookie + s(24) + b"\r\n\r\n",
         False),
        (get(b"/cart", b"Connection: content-length", cookie + s(25)), False),
        (get(b"http://shop.example.com/cart", cookie + s(26) + b"\x7f"), True),
        (b"GARBAGE " + s(27) + b"\r\n\r\n", True),
    ]


async def test_a_proxy_process_prints_and_answers_no_session_value(
    sidecar_process: Start, own_redis: RedisServer
) -> None:
    process = await sidecar_process("proxy")
    for n in (2, 3):
        await plant(process.store, sid_of(secret(n).decode()), created_ago_ms=20 * MIN,
                    last_ago_ms=16 * MIN)
    answers = []
    for i, (request, own) in enumerate(proxy_attacks()):
        answer = await exchange(process.port, request)
        answers.append(answer)
        if own:
            assert MARKER.lower() not in answer.lower(), (i, answer)
    assert answers[1].startswith(b"HTTP/1.1 401"), answers[1][:80]
    assert answers[5].endswith(b"bad request: Invalid header value char\n"), "llhttp's reason"
    assert answers[10].endswith(b"bad request: BadHttpMessage\n"), "aiohttp's parser answered"
    assert answers[11].endswith(b"bad request: LineTooLong\n")
    # The app issues a session in Curfew-Session-Issued: registered, and removed from the answer.
    issued = await exchange(process.port, get(
        b"/issue?header=Curfew-Session-Issued&value=" + secret(30), b"Connection: close"))
    assert issued.startswith(b"HTTP/1.1 200"), issued[:80]
    assert MARKER.lower() not in issued.lower(), issued
    record = session_keys(process.store.namespace, sid_of(secret(30).decode()))[0]

    async def has_record() -> bool:
        return bool(await process.store.client.exists(record))

    await wait_for(has_record)  # registered as the answer was relayed
    registered = get(b"/cart", b"Cookie: session=" + secret(30), b"Connection: close")
    assert b"curfew-idle-remaining" in (await exchange(process.port, registered)).lower()
    own_redis.kill()  # the store goes away: 503s, store_unavailable audit events
    for n in range(40, 43):
        answer = await exchange(process.port, get(b"/cart", b"Cookie: session=" + secret(n)))
        assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
        assert MARKER.lower() not in answer.lower()
    process.proc.terminate()
    assert await asyncio.wait_for(process.proc.wait(), 10) == 0
    printed = process.printed()
    # What was printed is there to search: the paths above did log.
    assert b'"event":"session_expired"' in printed
    assert b'"event":"store_unavailable"' in printed
    assert b"bad request from" in printed, "the aiohttp parser error was exercised"
    assert MARKER.lower() not in printed.lower(), [
        line for line in printed.splitlines() if MARKER.lower() in line.lower()]


async def test_an_authz_process_with_bearer_tokens_prints_and_answers_no_token(
    sidecar_process: Start,
) -> None:
    doc = policy_doc(session={"header": "Authorization", "headerPrefix": "Bearer "})
    process = await sidecar_process("authz", doc, "--authz-path-prefix", "/authz")
    await plant(process.store, sid_of(secret(2).decode()), created_ago_ms=20 * MIN,
                last_ago_ms=16 * MIN)
    bearer = b"Authorization: Bearer "
    nginx = (b"X-Original-URI: /api/orders", b"X-Original-Method: POST")
    attacks = [
        get(b"/authz/api/orders", bearer + secret(1)),
        get(b"/authz/api/orders", bearer + secret(2)),
        get(b"/authz/api/orders", bearer + secret(3), bearer + secret(4)),
        get(b"/auth", bearer + secret(5), *nginx),
        get(b"/auth", bearer + secret(6) + b"\x01", *nginx),
        get(b"/auth", b"Connection: keep-alive", *nginx, version=b"1.0")  # handed off
        + get(b"/auth", bearer + secret(7) + b"\x7f", *nginx, version=b"1.0"),
        get(b"/auth", bearer + secret(8) + b"a" * 9000, *nginx),
        get(b"/auth", b"X-Original-URI: /.curfew/../admin", bearer + secret(10)),
        get(b"/authz/.curfew/%2E%2E/admin", bearer + secret(11)),
        get(b"/.curfew/session", bearer + secret(12)),
        b"POST /.curfew/keepalive HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        + bearer + secret(13) + b"\r\n\r\n",
    ]
    for request in attacks:
        answer = await exchange(process.port, request)
        assert answer.startswith(b"HTTP/1."), answer[:80]
        assert MARKER.lower() not in answer.lower(), (request[:60], answer)
    # The app registers sessions on the ops port; every answer there is searched too.
    registrations = [
        (register(bearer + secret(1)), b"HTTP/1.1 201"),
        (register(bearer + secret(1)), b"HTTP/1.1 200"),
        (register(bearer + secret(2)), b"HTTP/1.1 409"),  # expired
        (register(bearer + secret(14) + b" x"), b"HTTP/1.1 400"),  # outside the grammar
        (register(bearer + secret(15), bearer + secret(16)), b"HTTP/1.1 400"),  # ambiguous
        (register(bearer + secret(17) + b"a" * 5000), b"HTTP/1.1 400"),  # huge
        (register(bearer + secret(18) + b"a" * 9000), b"HTTP/1.0 400"),  # past aiohttp's limit
        (register(bearer + secret(19) + b"\x01"), b"HTTP/1.0 400"),  # aiohttp's parser error
        (register(bearer + secret(20), body=secret(21)), b"HTTP/1.1 400"),  # a body
    ]
    for request, status in registrations:
        answer = await exchange(process.ops, request)
        assert answer.startswith(status), (request[:60], answer[:80])
        assert MARKER.lower() not in answer.lower(), (request[:60], answer)
    check = get(b"/authz/api", bearer + secret(1))
    assert b"curfew-idle-remaining" in (await exchange(process.port, check)).lower(), (
        "the registered session is enforced")
    process.proc.terminate()
    assert await asyncio.wait_for(process.proc.wait(), 10) == 0
    printed = process.printed()
    assert b'"event":"session_expired"' in printed
    assert b"bad request from" in printed
    assert MARKER.lower() not in printed.lower(), [
        line for line in printed.splitlines() if MARKER.lower() in line.lower()]
