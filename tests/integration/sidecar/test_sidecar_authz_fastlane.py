"""Authz mode on the fast lane, over raw sockets: checks are read by llhttp and answered by the
fast lane (no aiohttp ``Server`` header), pipelined in order; the sidecar's own endpoints and
probes are handed off to aiohttp; what the proxy refuses, authz mode refuses the same way.
"""

from __future__ import annotations

import json

from sidecar_harness import StartSidecar, sid_of
from test_sidecar_fastlane import closed, connect, read_response

from fixtures.sessions import plant

MIN = 60_000


def nginx(cookie: str, uri: str, *, extra: bytes = b"") -> bytes:
    return (b"GET /auth HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Original-URI: %b\r\n"
            b"X-Original-Method: GET\r\nCookie: %b\r\n%b\r\n"
            % (uri.encode(), cookie.encode(), extra))


async def test_pipelined_nginx_checks_are_answered_in_order_by_the_fast_lane(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar(mode="authz")
    await running.register("raw-new")
    await plant(running.store, sid_of("raw-old"), created_ago_ms=20 * MIN, last_ago_ms=16 * MIN)
    reader, writer = await connect(running)
    writer.write(nginx("session=raw-new", "/a") + nginx("session=raw-old", "/b")
                 + nginx("theme=dark", "/c"))
    allowed, denied, anonymous = [await read_response(reader) for _ in range(3)]
    assert allowed[0] == 200
    assert allowed[1]["curfew-idle-remaining"] in ("899", "900")
    assert "server" not in allowed[1], "answered by the fast lane, not by aiohttp"
    assert (denied[0], denied[1]["curfew-reason"]) == (401, "idle")
    assert anonymous[0] == 200
    writer.close()


async def test_envoy_checks_outside_the_prefix_and_the_sidecars_own_paths(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    await running.register("raw-envoy")
    reader, writer = await connect(running)
    writer.write(b"POST /authz/api/orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 0\r\n"
                 b"Accept: application/json\r\nCookie: session=raw-envoy\r\n\r\n")
    status, fields, _ = await read_response(reader)
    assert (status, fields["curfew-idle-remaining"]) in ((200, "899"), (200, "900"))
    writer.write(b"GET /elsewhere HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, _, body = await read_response(reader)
    assert (status, body) == (404, b"authorization checks live under /authz")
    writer.write(b"GET /authz/.curfew/session HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 200, "the sidecar's own endpoints judge their requests themselves"
    writer.write(b"GET /.curfew/session HTTP/1.1\r\nHost: shop\r\nAccept: application/json\r\n"
                 b"Cookie: session=raw-envoy\r\n\r\n")
    status, fields, body = await read_response(reader)
    assert status == 200
    assert json.loads(body)["idleRemainingSeconds"] <= 900
    assert "aiohttp" in fields["server"], "handed off to aiohttp"
    writer.close()


async def test_probes_on_the_main_port_are_handed_off(start_sidecar: StartSidecar) -> None:
    running = await start_sidecar(mode="authz")
    reader, writer = await connect(running)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, fields, body = await read_response(reader)
    assert (status, body) == (200, b"ok\n")
    assert "aiohttp" in fields["server"]
    writer.close()


async def test_a_check_whose_connection_names_the_length_is_refused(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar(mode="authz")
    reader, writer = await connect(running)
    writer.write(nginx("session=raw-x", "/a", extra=b"Connection: keep-alive, Content-Length\r\n"
                                                   b"Content-Length: 0\r\n"))
    status, fields, body = await read_response(reader)
    assert status == 400
    assert b"which is not hop-by-hop" in body
    assert fields["connection"] == "close"
    assert await closed(reader)
    writer.close()
