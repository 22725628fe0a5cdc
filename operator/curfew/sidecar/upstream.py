"""A lean HTTP/1.1 client to the app, on asyncio protocols, with a keep-alive connection pool.

aiohttp's ClientSession costs about 50 µs of CPU per request (URL objects, a cookie jar, tracing
hooks, timers, a response object with parsed headers). The proxy talks to one app over plain
HTTP/1.1 on loopback, so this client does only that: the request head is written as bytes
built from the client's raw headers, and the answer is read by llhttp
(:class:`curfew.sidecar.http1.ResponseReader`), which frames its body as RFC 9112 section 6.3
prescribes. Bodies stream both ways with flow control (reading from the app pauses while the
client is slow).

A connection goes back to the pool only after its answer was read completely by its framing,
with not one byte past it, and the app allowed keep-alive; bytes that arrive on an idle
connection close it. A request without a body that finds a pooled connection closed by the app
before any byte of the answer arrived is sent once more on a fresh connection (the app never
saw it); anything else that goes wrong is an :class:`UpstreamError` (502) or, when the app
stops sending for the read timeout, :class:`UpstreamTimeout` (504). Websockets do not use this
client.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator
from typing import Final, Protocol, cast

from curfew.sidecar.http1 import Malformed, ResponseReader

_HIGH_WATER: Final = 256 * 1024
_MAX_IDLE: Final = 256


class UpstreamError(Exception):
    """The app could not be reached, or answered something that is not HTTP/1.1."""


class UpstreamTimeout(UpstreamError):
    """The app sent nothing for the read timeout."""


class _Closed(UpstreamError):
    """The connection closed before any byte of an answer: safe to resend a bodiless request."""


class Sink(Protocol):
    """Takes a connection's bytes as they arrive, instead of its reader (the fast lane)."""

    def upstream_data(self, data: bytes) -> None: ...

    def upstream_lost(self) -> None: ...


class Connection(asyncio.Protocol):
    """One connection to the app: the reader of the answer in flight, with flow control, and
    write draining."""

    def __init__(self, read_timeout: float) -> None:
        self.loop = self._loop = asyncio.get_running_loop()
        self.sink: Sink | None = None
        """While set, bytes go to it, not to :attr:`reader` (see :class:`Sink`)."""
        self.reader: ResponseReader | None = None
        """The answer being read; None while the connection is idle."""
        self._spare: ResponseReader | None = None
        """The last answer's reader: llhttp reads the next answer with it when it can."""
        self.error: str | None = None
        """Why the answer could not be read (the connection is then closed)."""
        self._read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.received = False
        """Some byte of the answer in flight arrived."""
        self.closed = False
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def expect(self, *, head_only: bool) -> ResponseReader:
        """The reader of the answer to the request about to be written (``head_only``: to
        ``HEAD``)."""
        reader = self._spare
        if reader is not None and reader.reusable and not head_only:
            reader.reset(head_only=False)
        else:
            reader = ResponseReader(head_only=head_only)
        self.reader = self._spare = reader
        self.received = False
        return reader

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink.upstream_data(data)
            return
        self.received = True
        reader = self.reader
        if reader is None or reader.complete:
            # Past the framing of the last answer: never relayed, and the connection could
            # not be trusted to frame the next answer.
            self.close()
            self._wake()
            return
        try:
            reader.feed(data)
        except Malformed as error:
            self.error = str(error)
            self.close()
        if len(reader.body) > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self._eof = True
        if self.reader is not None:
            self.reader.finish()
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self._eof = True
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(UpstreamError(f"connection lost: {exc}"))
        if self.sink is not None:
            self.sink.upstream_lost()

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamError("connection closed")
        self.transport.write(data)

    async def drain(self) -> None:
        if self._drain is not None:
            await self._drain

    def take_body(self) -> bytes:
        """The body bytes read so far (resuming reads that were paused)."""
        reader = self.reader
        assert reader is not None
        data = bytes(reader.body)
        reader.body.clear()
        if self._reading_paused and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    async def more(self) -> bool:
        """Wait for more bytes; False once the app closed (no more will come)."""
        if self._eof:
            return False
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(self._read_timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return True

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout("the app sent nothing within the read timeout"))


class UpstreamResponse:
    """The head of the app's answer, and its body to read once."""

    __slots__ = (
        "_conn",
        "_done",
        "_pool",
        "_reader",
        "connection_tokens",
        "content_length",
        "headers",
        "reason",
        "status",
    )

    def __init__(self, pool: UpstreamPool, conn: Connection, reader: ResponseReader) -> None:
        head = reader.head
        assert head is not None
        self.status = head.status
        self.reason = head.reason.decode("latin-1")
        self.headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, _, v in head.fields]
        """(name, value) pairs in the app's order and spelling, hop-by-hop ones included."""
        self.content_length = head.content_length
        self.connection_tokens = frozenset(t.decode("latin-1") for t in head.tokens)
        """Header names the app's ``Connection`` header lists (hop-by-hop for this leg)."""
        self._conn = conn
        self._pool = pool
        self._reader = reader
        self._done = reader.complete and not reader.body
        if self._done:
            self.release()

    async def read(self) -> bytes:
        """The whole body (for responses of known, small length)."""
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection is released once it was read to its end."""
        if self._done:
            return
        conn = self._conn
        reader = self._reader
        try:
            while True:
                if reader.body:
                    yield conn.take_body()
                elif reader.complete:
                    break
                elif conn.error is not None:
                    raise UpstreamError(conn.error)
                elif not await conn.more():
                    reader.finish()
                    if not reader.complete:
                        raise UpstreamError("the app closed the connection mid-body")
        except BaseException:
            self.release()
            raise
        self._done = True
        self.release()

    def release(self) -> None:
        """Return the connection to the pool when its answer was read to the end of its
        framing and nothing came past it, else close it."""
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is None:
            return
        reader = self._reader
        head = reader.head
        assert head is not None
        if (self._done and reader.complete and not reader.leftover and head.keep_alive
                and not conn.closed):
            conn.reader = None
            self._pool.put(conn)
        else:
            conn.close()


class UpstreamPool:
    """Keep-alive connections to one app (``host:port``), most recently used first."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        read_timeout: float,
        tls: ssl.SSLContext | None = None,
        idle_seconds: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self._tls = tls
        self._idle_seconds = idle_seconds
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: collections.deque[tuple[Connection, float]] = collections.deque()
        self.opened = 0
        """Connections opened so far (reuse shows as requests outnumbering them)."""

    def put(self, conn: Connection) -> None:
        """Keep a connection for reuse; close those idle longer than ``idle_seconds`` (the
        least recently used, at the far end), so a quiet sidecar holds no sockets forever."""
        idle = self._idle
        now = conn.loop.time()
        while idle and (idle[0][1] < now - self._idle_seconds or len(idle) >= _MAX_IDLE):
            idle.popleft()[0].close()
        idle.append((conn, now))

    def take(self) -> Connection | None:
        """An idle connection to reuse now, or None (then :meth:`open` one)."""
        idle = self._idle
        while idle:
            conn, since = idle.pop()
            if conn.closed:
                continue
            if since < conn.loop.time() - self._idle_seconds:
                conn.close()
                continue
            return conn
        return None

    async def open(self) -> Connection:
        """A new connection to the app."""
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: Connection(self._read_timeout), self.host, self.port,
                    ssl=self._tls, server_hostname=self.host if self._tls else None,
                ),
                self._connect_timeout,
            )
        except TimeoutError:
            raise UpstreamError(f"no connection to {self.host}:{self.port} within "
                                f"{self._connect_timeout:g} s") from None
        except OSError as error:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {error}") from None
        self.opened += 1
        return conn

    async def request(
        self,
        method: str,
        head: bytes,
        body: AsyncIterator[bytes] | None = None,
        *,
        chunked: bool = False,
    ) -> UpstreamResponse:
        """Send one request (``head``: request line and headers, blank line included) and read
        the head of its answer. ``body`` is streamed after the head, chunk-encoded if
        ``chunked``."""
        while (conn := self.take()) is not None:
            try:
                return await self._exchange(conn, method, head, body, chunked)
            except _Closed:
                if body is not None:
                    raise UpstreamError("the app closed a kept-alive connection") from None
                # The app closed an idle connection as we reused it: it never saw the request.
        conn = await self.open()
        try:
            return await self._exchange(conn, method, head, body, chunked)
        except _Closed as error:
            raise UpstreamError(str(error)) from None

    async def _exchange(
        self,
        conn: Connection,
        method: str,
        head: bytes,
        body: AsyncIterator[bytes] | None,
        chunked: bool,
    ) -> UpstreamResponse:
        reader = conn.expect(head_only=method == "HEAD")
        try:
            conn.write(head)
            if body is not None:
                await _send_body(conn, body, chunked)
            while reader.head is None:
                if conn.error is not None:
                    raise UpstreamError(conn.error)
                if not await conn.more():
                    if not conn.received:
                        raise _Closed("the app closed the connection without answering")
                    raise UpstreamError("the app closed the connection mid-head")
        except BaseException:
            conn.close()
            raise
        return self.response(conn, reader)

    def response(self, conn: Connection, reader: ResponseReader) -> UpstreamResponse:
        """The answer whose head ``reader`` read on ``conn``; its body is read from there on."""
        conn.sink = None
        conn.reader = reader
        return UpstreamResponse(self, conn, reader)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


async def _send_body(conn: Connection, body: AsyncIterator[bytes], chunked: bool) -> None:
    try:
        async for chunk in body:
            if not chunk:
                continue
            conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.drain()
        if chunked:
            conn.write(b"0\r\n\r\n")
    except UpstreamError:
        # The app stopped reading the body (it may have answered already, e.g. 413): read on.
        if conn.closed and not conn.received:
            raise
