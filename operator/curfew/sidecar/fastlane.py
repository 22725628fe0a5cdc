"""The fast lane: the main listener serves the common requests itself, in proxy mode and in
authz mode.

A proxied request through aiohttp's server costs about as much CPU as the whole app behind
it (a task, a request object, a response object and its writer per request). The fast lane
is an :class:`asyncio.Protocol` per client connection that reads HTTP/1.1 requests with
llhttp (:mod:`curfew.sidecar.http1`, strictly, as aiohttp does) and serves them with chained
callbacks, no task: the store's reply future calls back the decision, the request goes to a
pooled connection to the app whose bytes come straight to the exchange (:class:`_Exchange`),
and a small answer of known length goes back to the client in one write.

What it serves: origin-form HTTP/1.1 requests with a ``Host``, no body or a body of
``Content-Length`` up to 64 KiB, outside ``/.curfew/``. Everything else well-formed is
**handed off**, untouched, to the aiohttp server on the same connection (websockets,
``Expect``, chunked or large uploads, HTTP/1.0, other target forms, the sidecar's own
endpoints, oversized heads), which then owns the connection to its end. A head llhttp refuses,
or one the hop-by-hop step could turn into another request (see
:func:`curfew.sidecar.http1.request_refusal`), is refused with 400 and the connection closed.

In authz mode the fast lane answers the checks of Envoy and nginx the same way, with no app
behind it (:class:`curfew.sidecar.authz.AuthzService` says what each check is and what to
answer); the sidecar's own endpoints and probes are handed off.

Rarer paths do use a task: a store call that must wait (no connection yet, a retry, an
expired session to end), a new connection to the app, and answers streamed to the client
(chunked, close-delimited or over 64 KiB), which keep the client's flow control and the
app's read timeout of :mod:`curfew.sidecar.upstream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, cast

from aiohttp import web
from yarl import URL

from curfew.sessions.cookies import SEPARATE_FIELDS
from curfew.sessions.store import RedisSessionStore
from curfew.sidecar.authz import NGINX_URI, AuthzService, Reply
from curfew.sidecar.enforce import Ask, Enforcer, RequestFacts, RequestOutcome
from curfew.sidecar.http1 import (
    HAND_OFF,
    Malformed,
    RequestHead,
    RequestParser,
    ResponseHead,
    build_response_head,
    build_upstream_head,
    header_block,
)
from curfew.sidecar.policy import APP_ANSWER_HEADERS
from curfew.sidecar.proxy import ReverseProxy, gateway_body
from curfew.sidecar.redact import QuietServer
from curfew.sidecar.reserved import is_reserved_target
from curfew.sidecar.upstream import Connection, UpstreamError, UpstreamPool, UpstreamResponse

_log = logging.getLogger(__name__)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

MAX_HEAD: Final = 16 * 1024
"""A request head longer than this is handed off (aiohttp then applies its own limits)."""
SMALL_BODY: Final = 64 * 1024
"""Request bodies up to this are read whole and sent with the head; answers up to this are
relayed in one write (a cut-short one is then still a clean 502)."""
_MAX_BUFFER: Final = 4 * SMALL_BODY
"""Pipelined bytes held while a request is in flight before reading from the client pauses."""
LINGER_SECONDS: Final = 2.0
"""After a refusal, the client's bytes are read and dropped for this long before closing."""
KEEPALIVE_SECONDS: Final = 75.0
"""An idle client connection is closed after this long (aiohttp's default, kept)."""
_JSON: Final = {"Content-Type": "application/json"}
_NGINX_URI: Final = NGINX_URI.lower().encode()
_APP_ANSWER_RAW: Final = frozenset(name.encode() for name in APP_ANSWER_HEADERS)


def _phrase(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def _text(value: bytes | None) -> str | None:
    # As aiohttp decodes header values.
    return None if value is None else value.decode("utf-8", "surrogateescape")


@functools.cache
def _names(headers: tuple[str, ...]) -> frozenset[bytes]:
    """The lower-cased names of the app's answer fields the client does not get: those the
    sidecar adds (a handful of combinations), and the app's answers to the sidecar.
    (A ``Curfew-*`` field makes a head not plain, so these are always looked at.)"""
    return frozenset(name.lower().encode() for name in headers) | _APP_ANSWER_RAW


def _session_header(head: RequestHead, name: str) -> str | None:
    """The session header's value; every value, joined, when the field came more than once."""
    key = name.encode("latin-1")
    if key not in head.repeated:
        return _text(head.first.get(key))
    return SEPARATE_FIELDS.join(v.decode("utf-8", "surrogateescape") for v in head.values(key))


def _path_of(target: str) -> str:
    """The decoded path of an origin-form target, exactly as aiohttp's ``request.path``."""
    path = target.partition("?")[0].partition("#")[0]
    if "%" not in path:
        return path
    return URL.build(path=path, encoded=True).path


class _Fields:
    """A request head's fields as :class:`curfew.sidecar.authz.Headers` (as aiohttp gives
    them: decoded, looked up in any case)."""

    __slots__ = ("_head",)

    def __init__(self, head: RequestHead) -> None:
        self._head = head

    def get(self, key: str, /) -> str | None:
        return _text(self._head.first.get(key.lower().encode("latin-1")))

    def getall(self, key: str, default: tuple[()], /) -> list[str] | tuple[()]:
        values = self._head.values(key.lower().encode("latin-1"))
        return [v.decode("utf-8", "surrogateescape") for v in values] if values else default


class _Check:
    """A request head as :class:`curfew.sidecar.authz.Check`."""

    __slots__ = ("headers", "method", "raw_path")

    secure = False
    """The fast lane listens on plain HTTP."""

    def __init__(self, head: RequestHead, target: str) -> None:
        self.method = head.method.decode("ascii")
        self.raw_path = target
        self.headers = _Fields(head)


class FastLane:
    """The main listener (see the module docstring): of proxy mode with ``proxy``, of authz
    mode with ``authz``; ``hand_off``: paths aiohttp serves (the sidecar's own, besides
    ``/.curfew/``)."""

    def __init__(
        self,
        enforcer: Enforcer,
        handler: Handler,
        grace: float,
        *,
        proxy: ReverseProxy | None = None,
        authz: AuthzService | None = None,
        hand_off: frozenset[str] = frozenset(),
    ) -> None:
        self.proxy = proxy
        self.authz = authz
        self.hand_off = hand_off
        self.enforcer = enforcer
        self.pool: UpstreamPool | None = proxy.pool if proxy is not None else None
        self.read_timeout = proxy.read_timeout if proxy is not None else 30.0
        self.upstream_host = proxy.upstream_host if proxy is not None else b""
        self.upstream = proxy.upstream if proxy is not None else ""
        self.web = QuietServer(handler)
        """The aiohttp server that takes the connections handed off."""
        self.connections: set[_Client] = set()
        self.stopping = False
        self._grace = grace
        self.loop = asyncio.get_running_loop()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; the bound address."""
        self._server = await self.loop.create_server(
            lambda: _Client(self), host, port, reuse_address=True
        )
        self._sweep()
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def stop(self) -> None:
        """Stop accepting; close idle connections; let requests in flight finish within the
        grace period (those handed off to aiohttp too); then close what is left."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for client in list(self.connections):
            client.stop()
        self.web.pre_shutdown()
        if self.connections:
            self._idle.clear()
        else:
            self._idle.set()
        await asyncio.gather(self.web.shutdown(self._grace), self._settled())
        for client in list(self.connections):
            client.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def _settled(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self._grace)

    def forget(self, client: _Client) -> None:
        self.connections.discard(client)
        if self.stopping and not self.connections:
            self._idle.set()

    def _sweep(self) -> None:
        """Every so often: time out answers the app is too slow to send, close idle clients."""
        now = self.loop.time()
        stale = now - self.read_timeout
        idle = now - KEEPALIVE_SECONDS
        for client in list(self.connections):
            exchange = client.exchange
            if exchange is not None:
                if exchange.last < stale:
                    exchange.timed_out()
            elif not client.busy and client.last < idle:
                client.close()
        self._sweeper = self.loop.call_later(min(1.0, self.read_timeout / 4), self._sweep)


class _Client(asyncio.Protocol):
    """One client connection of the fast lane: one request at a time, answers in order."""

    def __init__(self, lane: FastLane) -> None:
        self.lane = lane
        self.loop = lane.loop
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.buf = b""
        self.busy = False
        """A request is being served (the next pipelined one waits in ``buf``)."""
        self.exchange: _Exchange | None = None
        self.last = 0.0
        self.closing = False
        self.closed = False
        self._head: RequestHead | None = None
        self._parser = RequestParser()
        self._fed = 0
        """Bytes of the head in ``buf`` already fed to the parser."""
        self._pending: tuple[RequestHead, str, str, int] | None = None
        """A head read whose body is still on its way: (head, target, path, body start)."""
        self._ask: Ask | None = None
        self._added = b""
        self._added_names: frozenset[bytes] = frozenset()
        self._known: str | None = None
        self._started = 0.0
        self._reading_paused = False
        self._writing_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._body = b""
        self._sent = False
        """Part of a streamed answer is out: a failure can only cut the connection."""
        self._refused = False
        """A request was refused: what the client still sends is dropped."""
        self._lingering = False

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else None
        self.last = self.loop.time()
        if self.lane.stopping:
            self.transport.close()
            return
        self.lane.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped until the lingering close ends
        buf = self.buf + data if self.buf else data
        self.buf = buf
        if self.busy or self._writing_paused or self.closing:
            if len(buf) > _MAX_BUFFER and not self._reading_paused and self.transport:
                self._reading_paused = True
                self.transport.pause_reading()
            return
        self._serve()

    def eof_received(self) -> bool | None:
        # As aiohttp's server: a client that stops sending is gone (the answer in flight, if
        # any, is dropped and the app's connection closed).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lane.forget(self)
        exchange = self.exchange
        if exchange is not None:
            exchange.abandon()
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("the client went away"))
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if not self.busy and self.buf and not self.closing:
            self._serve()

    # --- requests ----------------------------------------------------------------------------

    def _serve(self) -> None:
        """Serve the next request in ``buf`` once it is complete (or hand it off)."""
        pending = self._pending
        if pending is None:
            pending = self._read_head()
            if pending is None:
                return
        head, target, path, start = pending
        buf = self.buf
        length = head.content_length
        if len(buf) < start + length:
            self._pending = pending
            return  # the rest of the body is on its way
        self._pending = None
        body = buf[start:start + length]
        self.buf = buf[start + length:]
        self.busy = True
        try:
            if length:
                self._parser.feed_body(body)
            self._start(head, target, path, body)
        except Exception:
            self._internal_error()

    def _read_head(self) -> tuple[RequestHead, str, str, int] | None:
        """The next head in ``buf`` once it is whole, fed to llhttp as it comes; None when it
        is not whole yet, or the request was refused or handed off."""
        buf = self.buf
        fed = self._fed
        if not fed and buf[:1] in (b"\r", b"\n"):
            # llhttp skips empty lines before a request line (RFC 9112 section 2.2); so does
            # the search for the end of the head, which starts at the request line.
            buf = self.buf = buf.lstrip(b"\r\n")
            if not buf:
                return None
        end = buf.find(b"\r\n\r\n", fed - 3 if fed > 3 else 0)
        try:
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._hand_off()
                    return None
                # A head in pieces: llhttp refuses a bad byte as soon as it sees it.
                self._parser.feed_head(buf[fed:])
                self._fed = len(buf)
                return None
            self._fed = 0
            # llhttp refuses bare CR and LF, so the first empty line ends the head it reads.
            if not self._parser.feed_head(buf[fed:end + 4]):
                raise Malformed("the head did not end at its empty line")
            head = self._parser.head(buf[:end + 2])
        except Malformed as error:
            self._refuse(str(error))
            return None
        if head == HAND_OFF:
            self._hand_off()
            return None
        assert isinstance(head, RequestHead)
        if head.content_length > SMALL_BODY:
            self._hand_off()
            return None
        target = head.target.decode("utf-8", "surrogateescape")
        path = _path_of(target)
        if is_reserved_target(target) or path in self.lane.hand_off:
            self._hand_off()
            return None
        return head, target, path, end + 4

    def _start(self, head: RequestHead, target: str, path: str, body: bytes) -> None:
        self._started = time.perf_counter()
        self._head = head
        self._body = body
        first = head.first
        enforcer = self.lane.enforcer
        authz = self.lane.authz
        if authz is not None:
            prepared = authz.prepare(_Check(head, target))
            if isinstance(prepared, Reply):
                self._answer(prepared.status, prepared.headers, prepared.body)
                return
            self._begin(enforcer, prepared)
            return
        session_header = enforcer.session_header
        proto = first.get(b"x-forwarded-proto")
        cookie = first.get(b"cookie")
        # Positional, in RequestFacts' order (method, path, target, cookie, session header,
        # Accept, X-Requested-With, Sec-Fetch-Mode, secure): keywords would cost a dict.
        facts = RequestFacts(
            head.method.decode("ascii"),
            path,
            target,
            None if cookie is None else cookie.decode("utf-8", "surrogateescape"),
            _session_header(head, session_header) if session_header else None,
            _text(first.get(b"accept")),
            _text(first.get(b"x-requested-with")),
            _text(first.get(b"sec-fetch-mode")),
            proto is not None and proto.split(b",")[0].strip() == b"https",
        )
        self._begin(enforcer, facts)

    def _begin(self, enforcer: Enforcer, facts: RequestFacts) -> None:
        ask = enforcer.begin(facts)
        if isinstance(ask, RequestOutcome):
            self._decided(ask)
            return
        self._ask = ask
        if not enforcer.ask_now(ask, self._answered):
            self._spawn(self._finish(ask, None))

    def _answered(self, reply: Any, error: BaseException | None) -> None:
        """The store's reply to the request's one EVALSHA."""
        if self.closed:
            return
        ask = self._ask
        assert ask is not None
        try:
            if error is not None:
                self._spawn(self._finish(ask, error))
                return
            verdict = RedisSessionStore.verdict_of(reply)
            outcome = self.lane.enforcer.settle(ask, verdict)
            if outcome is None:
                self._spawn(self._expire(ask, verdict))
                return
            self._decided(outcome)
        except Exception:
            self._internal_error()

    async def _finish(self, ask: Ask, after: BaseException | None) -> None:
        self._decided(await self.lane.enforcer.finish(ask, after=after))

    async def _expire(self, ask: Ask, verdict: Any) -> None:
        self._decided(await self.lane.enforcer.expire(ask, verdict, None))

    def _decided(self, outcome: RequestOutcome) -> None:
        lane = self.lane
        head = self._head
        assert head is not None
        if lane.authz is not None:
            lane.enforcer.metrics.added_latency.observe(time.perf_counter() - self._started)
            reply = lane.authz.reply(outcome, _NGINX_URI in head.first)
            self._answer(reply.status, reply.headers, reply.body)
            return
        if not outcome.allowed:
            lane.enforcer.metrics.added_latency.observe(time.perf_counter() - self._started)
            self._answer(outcome.status, outcome.headers, outcome.body)
            return
        self._known = outcome.known_session
        added = outcome.headers
        self._added = header_block(added) if added else b""
        self._added_names = _names(tuple(added))
        request = build_upstream_head(
            head.method, head.target, head.fields, block=head.block, plain=head.plain,
            peer=self.peer, secure=False,
            forwarded_host=head.first[b"host"], default_host=lane.upstream_host,
            added=self._added,
        )
        lane.enforcer.metrics.added_latency.observe(time.perf_counter() - self._started)
        if self._body:
            request += self._body
        assert lane.pool is not None
        conn = lane.pool.take()
        if conn is None:
            self._spawn(self._connect(request))
        else:
            self._send(conn, request, resend=not self._body)

    async def _connect(self, request: bytes) -> None:
        assert self.lane.pool is not None
        try:
            conn = await self.lane.pool.open()
        except UpstreamError as error:
            self.upstream_failed(error)
            return
        self._send(conn, request, resend=False)

    def _send(self, conn: Connection, request: bytes, *, resend: bool) -> None:
        head = self._head
        assert head is not None
        pool = self.lane.pool
        assert pool is not None
        self.exchange = exchange = _Exchange(
            self, pool, conn, request, head.method == b"HEAD", resend)
        conn.sink = exchange
        try:
            conn.write(request)
        except UpstreamError:
            exchange.upstream_lost()

    # --- answers -------------------------------------------------------------------------

    def _issued(self, head: ResponseHead) -> None:
        """Hand the answer's fields that may issue a session to the enforcer."""
        enforcer = self.lane.enforcer
        names = enforcer.issuing
        if names:
            # llhttp's fields come with their lower-cased names already.
            fields = [(n.decode(), v.decode("latin-1")) for _, n, v in head.fields if n in names]
            if fields:
                enforcer.issued(self._known, fields)

    def relay(self, head: ResponseHead, body: bytes) -> None:
        """The app's whole answer, in one write."""
        self.exchange = None
        self._issued(head)
        close = self._closes_after()
        assert self.transport is not None
        self.transport.write(build_response_head(
            head, self._added, self._added_names, b"Connection: close\r\n" if close else b""
        ) + body)
        self._done(close)

    def stream(self, response: UpstreamResponse, head: ResponseHead) -> None:
        """The app's answer, relayed as it arrives (chunked, until close, or large)."""
        self.exchange = None
        self._issued(head)
        self._spawn(self._stream(response, head))

    async def _stream(self, response: UpstreamResponse, head: ResponseHead) -> None:
        transport = self.transport
        assert transport is not None
        close = self._closes_after()
        # A body without a length is chunked to the client, so its connection stays usable.
        chunked = head.content_length is None
        framing = b"Transfer-Encoding: chunked\r\n" if chunked else b""
        if close:
            framing += b"Connection: close\r\n"
        transport.write(build_response_head(head, self._added, self._added_names, framing))
        self._sent = True
        try:
            async for chunk in response.iter_chunks():
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                if self._writing_paused:
                    await self._drain()
            if chunked:
                transport.write(b"0\r\n\r\n")
        except (UpstreamError, ConnectionError) as error:
            # Part of the answer is out: only a cut connection tells the client it is short.
            _log.warning("upstream %s failed mid-response: %s", self.lane.upstream, error)
            transport.abort()
            return
        finally:
            response.release()
        self._done(close)

    async def _drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("the client went away")
        self._drained = self.loop.create_future()
        await self._drained

    def upstream_failed(self, error: UpstreamError, *, timeout: bool = False) -> None:
        """The app could not be asked, or did not answer (before any byte went to the client)."""
        self.exchange = None
        if self.closed:
            return
        if timeout:
            self._answer(504, _JSON, gateway_body("upstream_timeout"))
        else:
            _log.warning("upstream %s unreachable: %s", self.lane.upstream, error)
            self._answer(502, _JSON, gateway_body("upstream_unavailable"))

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """An answer of the sidecar's own."""
        head = self._head
        close = self._closes_after()
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 %d %b\r\n%bContent-Length: %d\r\n%b\r\n%b" % (
            status, _phrase(status), header_block(headers), len(body),
            b"Connection: close\r\n" if close else b"",
            b"" if head is not None and head.method == b"HEAD" else body,
        ))
        self._done(close)

    def _closes_after(self) -> bool:
        head = self._head
        return self.closing or head is None or head.close

    def _done(self, close: bool) -> None:
        """The answer is out: serve the next request, or close."""
        self.busy = self._sent = False
        self._head = self._ask = None
        self._task = None
        self._body = b""
        if close:
            self.close()
            return
        self.last = self.loop.time()
        if self._reading_paused and len(self.buf) <= _MAX_BUFFER and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        if self.buf and not self._writing_paused and not self.closed:
            self._serve()

    # --- the connection --------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._task = self.loop.create_task(self._guarded(work))

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            self._internal_error()

    def _internal_error(self) -> None:
        _log.exception("the fast lane failed on a request")
        self.exchange = None
        if self._sent:
            self.abort()
        elif not self.closed and self.busy:
            self.closing = True
            self._answer(500, {"Content-Type": "text/plain"}, b"internal error\n")

    def _refuse(self, why: str) -> None:
        """Answer 400 to a head that is not strictly HTTP/1.1, and close."""
        self.closing = self._refused = True
        self.buf = b""
        self._answer(400, {"Content-Type": "text/plain"}, f"bad request: {why}\n".encode())

    def _hand_off(self) -> None:
        """Give the connection, from the request in ``buf`` on, to the aiohttp server."""
        transport = self.transport
        assert transport is not None
        self.lane.forget(self)
        handler = self.lane.web()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._reading_paused:
            transport.resume_reading()
        buf, self.buf = self.buf, b""
        if buf:
            handler.data_received(buf)

    def stop(self) -> None:
        """Shutting down: close now when idle, else after the answer in flight."""
        self.closing = True
        if not self.busy:
            self.close()

    def close(self) -> None:
        self.closing = True
        transport = self.transport
        if transport is None:
            return
        if self._refused and not self._lingering and transport.can_write_eof():
            # A lingering close (RFC 9112 section 9.6): closed with the client's bytes unread,
            # the socket would be reset and the client could lose the 400 before reading it.
            self._lingering = True
            transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, transport.close)
            return
        transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _Exchange:
    """One request on a connection to the app, fed its bytes as they arrive (a ``Sink``)."""

    __slots__ = (
        "_received",
        "client",
        "conn",
        "last",
        "pool",
        "reader",
        "request",
        "resend",
    )

    def __init__(
        self,
        client: _Client,
        pool: UpstreamPool,
        conn: Connection,
        request: bytes,
        head_only: bool,
        resend: bool,
    ) -> None:
        self.client = client
        self.pool = pool
        self.conn = conn
        self.request = request
        self.resend = resend
        """Bodiless on a reused connection: if the app closes it unanswered, send it anew."""
        self.reader = conn.expect(head_only=head_only)
        self.last = conn.loop.time()
        self._received = False

    def upstream_data(self, data: bytes) -> None:
        self._received = True
        self.last = self.conn.loop.time()
        reader = self.reader
        try:
            reader.feed(data)
        except Malformed as error:
            self._fail(UpstreamError(str(error)))
            return
        head = reader.head
        if head is None:
            return
        try:
            if not reader.complete:
                if head.content_length is None or head.content_length > SMALL_BODY:
                    self._stream(head)
                return  # the rest of a small body is on its way
            conn = self.conn
            conn.sink = None
            if head.keep_alive and not reader.leftover:
                conn.reader = None
                self.pool.put(conn)
            else:
                conn.close()  # the app said close, or sent bytes past its answer's framing
            self.client.relay(head, bytes(reader.body))
        except Exception:
            self.conn.sink = None
            self.conn.close()
            self.client._internal_error()

    def _stream(self, head: ResponseHead) -> None:
        response = self.pool.response(self.conn, self.reader)
        self.client.stream(response, head)

    def upstream_lost(self) -> None:
        """The app closed the connection before the answer was whole."""
        conn = self.conn
        conn.sink = None
        client = self.client
        if client.exchange is not self:
            return
        if self.resend and not self._received:
            # The app closed a kept-alive connection as it was reused: it never saw the request.
            client.exchange = None
            fresh = self.request
            client._spawn(client._connect(fresh))
            return
        self._fail(UpstreamError("the app closed the connection without answering"
                                 if not self._received else
                                 "the app closed the connection mid-answer"))

    def _fail(self, error: UpstreamError) -> None:
        self.conn.sink = None
        self.conn.close()
        self.client.upstream_failed(error)

    def timed_out(self) -> None:
        self.conn.sink = None
        self.conn.close()
        self.client.upstream_failed(UpstreamError("read timeout"), timeout=True)

    def abandon(self) -> None:
        """The client went away: the answer can never be delivered, nor the connection reused."""
        self.conn.sink = None
        self.conn.close()
