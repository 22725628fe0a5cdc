"""Proxy mode: a reverse proxy in front of the app that enforces the policy on every request.

HTTP/1.1 keep-alive to the app through a pool of connections (the lean client of
:mod:`curfew.sidecar.upstream`); request and response bodies are streamed (small responses of
known length are relayed in one piece, which is cheaper);
end-to-end headers pass unchanged, hop-by-hop ones do not (RFC 9110 section 7.6.1); the
``X-Forwarded-*`` headers are set; websockets are relayed both ways, and the messages a client
sends count as activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from curfew.sidecar.enforce import JSON, Enforcer, RequestFacts, RequestOutcome, session_fields
from curfew.sidecar.http1 import (
    HOP_BY_HOP,
    REQUEST_DROP,
    build_upstream_head,
    header_block,
)
from curfew.sidecar.policy import APP_ANSWER_HEADERS
from curfew.sidecar.upstream import UpstreamError, UpstreamPool, UpstreamResponse, UpstreamTimeout

_log = logging.getLogger(__name__)

# A websocket handshake is made anew on each leg; these belong to one leg only.
_WS_LEG_HEADERS: Final = frozenset({
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    "sec-websocket-accept", "sec-websocket-protocol",
})
_RESPONSE_DROP: Final = HOP_BY_HOP | APP_ANSWER_HEADERS
_SMALL_BODY: Final = 64 * 1024
_NO_BODY_STATUS: Final = frozenset({204, 304})
_WS_CLOSE_EXPIRED: Final = 4401
"""Close code sent on a websocket whose session expired (4000-4999 are for applications)."""


def _connection_tokens(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    values = headers.getall("Connection", ())
    if not values:
        return frozenset()
    return frozenset(t.strip().lower() for v in values for t in v.split(","))


def facts_of(request: web.BaseRequest, session_header: str | None) -> RequestFacts:
    """Describe a request the client sent to this proxy."""
    h = request.headers
    proto = h.get("X-Forwarded-Proto")
    cookie, session = session_fields(h, session_header)
    return RequestFacts(
        method=request.method,
        path=request.path,
        target=request.raw_path,
        cookie=cookie,
        session_header=session,
        accept=h.get("Accept"),
        requested_with=h.get("X-Requested-With"),
        fetch_mode=h.get("Sec-Fetch-Mode"),
        secure=(proto.split(",")[0].strip() == "https") if proto else request.secure,
    )


def answer(outcome: RequestOutcome) -> web.Response:
    """The response of a request the sidecar turns away."""
    return web.Response(status=outcome.status, headers=outcome.headers, body=outcome.body)


class ReverseProxy:
    """Forwards allowed requests to the app and relays its answers."""

    def __init__(
        self,
        upstream: str,
        enforcer: Enforcer,
        *,
        connect_timeout: float,
        read_timeout: float,
        websocket_interval: float,
    ) -> None:
        self.upstream = upstream
        self.enforcer = enforcer
        self.read_timeout = read_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._ws_interval = websocket_interval
        target = urlsplit(upstream)
        self.pool = UpstreamPool(
            target.hostname or "127.0.0.1",
            target.port or (443 if target.scheme == "https" else 80),
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            tls=ssl.create_default_context() if target.scheme == "https" else None,
        )
        self.upstream_host = target.netloc.encode("latin-1")
        """The app's ``host[:port]``: the ``Host`` of a request that came without one."""
        # aiohttp's client makes the app's leg of websockets only.
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=10)
        self._client = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            # Never keep cookies between requests of different users.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def aclose(self) -> None:
        await self.pool.aclose()
        if self._client is not None:
            await self._client.close()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        enforcer = self.enforcer
        facts = facts_of(request, enforcer.session_header)
        outcome = await enforcer.check(facts)
        if not outcome.allowed:
            enforcer.metrics.added_latency.observe(time.perf_counter() - started)
            return answer(outcome)
        if request.raw_path[:1] != "/":
            return web.Response(status=400, text="absolute-form request targets are not proxied")
        if "websocket" in request.headers.get("Upgrade", "").lower():
            url = URL(self.upstream + request.raw_path, encoded=True)
            headers = self._upstream_headers(request, outcome.headers)
            return await self._websocket(request, url, headers, facts)
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        head, chunked = self._upstream_head(request, outcome.headers)
        enforcer.metrics.added_latency.observe(time.perf_counter() - started)
        try:
            upstream = await self.pool.request(
                request.method, head, request.content.iter_any() if request.body_exists else None,
                chunked=chunked,
            )
        except UpstreamTimeout:
            return _gateway_error(504, "upstream_timeout")
        except UpstreamError as err:
            _log.warning("upstream %s unreachable: %s", self.upstream, err)
            return _gateway_error(502, "upstream_unavailable")
        names = enforcer.issuing
        if names:
            enforcer.issued(outcome.known_session, [
                (n.lower(), v) for n, v in upstream.headers
                if n.lower().encode("latin-1") in names])
        return await self._relay(request, upstream, outcome.headers)

    def _upstream_head(
        self, request: web.BaseRequest, added: dict[str, str]
    ) -> tuple[bytes, bool]:
        """The request line and headers to send the app, and whether the body is re-chunked.

        Built from the client's raw header bytes: names keep their spelling and order."""
        # A chunked upload keeps its framing to the app (Transfer-Encoding is hop-by-hop).
        chunked = request.body_exists and "Content-Length" not in request.headers
        host = request.host
        head = build_upstream_head(
            request.method.encode("latin-1"),
            request.raw_path.encode("utf-8", "surrogateescape"),
            [(name, name.lower(), value) for name, value in request.raw_headers], plain=False,
            peer=request.remote, secure=request.secure,
            forwarded_host=host.encode("utf-8", "surrogateescape") if host else None,
            default_host=self.upstream_host, added=header_block(added), chunked=chunked,
        )
        return head, chunked

    def _upstream_headers(
        self, request: web.BaseRequest, added: dict[str, str]
    ) -> CIMultiDict[str]:
        """The websocket handshake's headers to the app (aiohttp's client makes that leg)."""
        src = request.headers
        drop = REQUEST_DROP | _connection_tokens(src) if "Connection" in src else REQUEST_DROP
        out: CIMultiDict[str] = CIMultiDict()
        for name, value in src.items():
            lname = name.lower()
            if lname not in drop and not lname.startswith("curfew-"):
                out.add(name, value)
        peer = request.remote
        if peer:
            prior = src.get("X-Forwarded-For")
            out["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        if "X-Forwarded-Proto" not in src:
            out["X-Forwarded-Proto"] = request.scheme
        if "X-Forwarded-Host" not in src and request.host:
            out["X-Forwarded-Host"] = request.host
        out.update(added)
        return out

    async def _relay(
        self,
        request: web.BaseRequest,
        upstream: UpstreamResponse,
        added: dict[str, str],
    ) -> web.StreamResponse:
        drop = _RESPONSE_DROP | upstream.connection_tokens
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in upstream.headers:
            if name.lower() not in drop:
                headers.add(name, value)
        headers.update(added)
        length = upstream.content_length
        if (
            length is not None and length <= _SMALL_BODY and request.method != "HEAD"
            and upstream.status not in _NO_BODY_STATUS
        ):
            try:
                body = await upstream.read()
            except UpstreamTimeout:
                return _gateway_error(504, "upstream_timeout")
            except UpstreamError as err:
                _log.warning("upstream %s failed mid-response: %s", self.upstream, err)
                return _gateway_error(502, "upstream_unavailable")
            return web.Response(status=upstream.status, reason=upstream.reason, headers=headers,
                                body=body)
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                      headers=headers)
        try:
            await response.prepare(request)
            async for chunk in upstream.iter_chunks():
                await response.write(chunk)
            await response.write_eof()
        finally:
            upstream.release()
        return response

    async def _websocket(
        self,
        request: web.BaseRequest,
        url: URL,
        headers: CIMultiDict[str],
        facts: RequestFacts,
    ) -> web.StreamResponse:
        assert self._client is not None
        for name in _WS_LEG_HEADERS:
            headers.popall(name, None)
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = tuple(p.strip() for p in offered.split(",") if p.strip())
        try:
            upstream = await self._client.ws_connect(
                url, headers=headers, protocols=protocols, autoclose=False, max_msg_size=0
            )
        except aiohttp.WSServerHandshakeError as err:
            return _gateway_error(err.status if err.status >= 400 else 502, "upstream_refused")
        except (TimeoutError, aiohttp.ClientError):
            return _gateway_error(502, "upstream_unavailable")
        chosen = (upstream.protocol,) if upstream.protocol else ()
        client = web.WebSocketResponse(protocols=chosen, autoclose=False, max_msg_size=0)
        await client.prepare(request)
        relay = _WebSocketRelay(client, upstream)
        watch = asyncio.create_task(self._watch_session(relay, facts))
        try:
            await relay.run()
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await upstream.close()
            await client.close()
        return client

    async def _watch_session(self, relay: _WebSocketRelay, facts: RequestFacts) -> None:
        """Every interval: count client messages as activity, and close once the session ends."""
        while True:
            await asyncio.sleep(self._ws_interval)
            active, relay.client_sent = relay.client_sent, False
            outcome = await self.enforcer.check(facts, activity=active, api=True)
            if not outcome.allowed:
                reason = outcome.headers.get("Curfew-Reason", "expired")
                await relay.close(_WS_CLOSE_EXPIRED, f"session {reason}".encode())
                return


class _WebSocketRelay:
    """Copies messages both ways until either side closes."""

    def __init__(
        self, client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.client_sent = False

    async def run(self) -> None:
        to_upstream = asyncio.create_task(self._client_to_upstream())
        to_client = asyncio.create_task(self._upstream_to_client())
        done, pending = await asyncio.wait(
            (to_upstream, to_client), return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            task.result()

    async def close(self, code: int, message: bytes) -> None:
        await self.client.close(code=code, message=message)
        await self.upstream.close(code=code, message=message)

    async def _client_to_upstream(self) -> None:
        async for msg in self.client:
            self.client_sent = True
            if not await _forward(msg, self.upstream):
                break
        await self.upstream.close(code=self.client.close_code or 1000)

    async def _upstream_to_client(self) -> None:
        async for msg in self.upstream:
            if not await _forward(msg, self.client):
                break
        await self.client.close(code=self.upstream.close_code or 1000)


async def _forward(
    msg: aiohttp.WSMessage, to: web.WebSocketResponse | aiohttp.ClientWebSocketResponse
) -> bool:
    if msg.type is aiohttp.WSMsgType.TEXT:
        await to.send_str(msg.data)
    elif msg.type is aiohttp.WSMsgType.BINARY:
        await to.send_bytes(msg.data)
    elif msg.type is aiohttp.WSMsgType.PING:
        await to.ping(msg.data)
    elif msg.type is aiohttp.WSMsgType.PONG:
        await to.pong(msg.data)
    else:
        return False
    return True


def gateway_body(error: str) -> bytes:
    """The JSON body of a 502 / 504 answer."""
    return f'{{"error": "{error}"}}'.encode()


def _gateway_error(status: int, error: str) -> web.Response:
    return web.Response(status=status, body=gateway_body(error), content_type=JSON)
