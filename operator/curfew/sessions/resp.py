"""A lean, pipelined Redis connection for the sidecar's one hot command (``EVALSHA``).

redis-py's asyncio client spends about 50 µs of CPU per command (connection pool checkout,
retry wrappers, response callbacks, a socket read per reply). The sidecar sends exactly one
command per request, always the same script, to one server, so this module does only that: one
TCP connection per client, every command written as it comes (writes of one event-loop tick go
out in one ``send``), and replies matched to callers in order as hiredis parses them (Redis
answers a connection's commands in the order it got them).

Only plain single-server URLs (``redis://[user:password@]host[:port][/db]``) take this path
(:func:`lean_address`); TLS, Unix sockets, Sentinel and Cluster stay with redis-py, which knows
failover and slot routing. The store's guarantees are kept: a reply that does not come within
the socket timeout fails every command waiting on that connection and closes it (a late reply
could otherwise be matched to the wrong caller); connecting has its own timeout; connection
failures are retried a bounded number of times with a short backoff; every outage surfaces as
:class:`~curfew.sessions.errors.StoreUnavailable` and a refused command as
:class:`~curfew.sessions.errors.StoreDataError`. A ``NOSCRIPT`` reply is returned to the caller
like any other error reply (the store then sends ``EVAL``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

import hiredis

from curfew.sessions.errors import StoreDataError, StoreUnavailable, outage_at

_log = logging.getLogger(__name__)

_UNAVAILABLE_REPLIES: Final = ("LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY")
_BACKOFF_BASE: Final = 0.02
_BACKOFF_CAP: Final = 0.2


@dataclass(frozen=True, slots=True)
class Address:
    """Where a lean connection goes, and how it logs in."""

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None


def lean_address(url: str) -> Address | None:
    """The server of a plain ``redis://`` URL; None for every form the lean path leaves to
    redis-py (TLS, Unix sockets, Sentinel, Cluster, query options)."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.query or not parts.hostname:
        return None
    try:
        port = parts.port or 6379
        path = parts.path.strip("/")
        db = int(path) if path else 0
    except ValueError:
        return None
    return Address(
        host=parts.hostname,
        port=port,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _pack(command: tuple[str | bytes | int | float, ...]) -> bytes:
    # hiredis's stub types the argument as a one-element tuple; any length is accepted.
    packed: bytes = hiredis.pack_command(command)  # type: ignore[arg-type]
    return packed


def packed_arguments(args: Sequence[str | bytes | int | float]) -> bytes:
    """``args`` packed as a command's arguments, without the line that counts them: a part of
    a command packed once and sent with many (:func:`packed_command`)."""
    packed = _pack(tuple(args))
    return packed[packed.index(b"\r\n") + 2:]


def packed_command(count: int, parts: Sequence[bytes]) -> bytes:
    """One command of ``count`` arguments from ``parts``: each either :func:`packed_arguments`
    or, for the few that change with every call, :func:`bulk_string`."""
    return b"*%d\r\n%b" % (count, b"".join(parts))


def bulk_string(text: str) -> bytes:
    """One argument as RESP writes it (a bulk string: its length in bytes, then its bytes).

    Written here rather than by hiredis for the arguments that change with every request:
    ``hiredis.pack_command`` formats each argument's length with ``sprintf`` and each number
    with ``repr``, which for the ~20 arguments of the sidecar's check was a tenth of a proxied
    request's CPU time. The rest of the command is packed by hiredis once
    (:func:`packed_arguments`); unit tests compare the two byte for byte.
    """
    data = text.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


class ReplyError(Exception):
    """An error reply of Redis (``-ERR ...``, ``-NOSCRIPT ...``) to one command."""


ReplyCallback = Callable[[Any, BaseException | None], None]
"""Called with (reply, None) or (None, error) when a command sent with a callback is answered."""
_Waiter = asyncio.Future[Any] | ReplyCallback


def _deliver(waiter: _Waiter, reply: Any, error: BaseException | None) -> None:
    if isinstance(waiter, asyncio.Future):
        if not waiter.done():
            if error is None:
                waiter.set_result(reply)
            else:
                waiter.set_exception(error)
        return
    try:
        waiter(reply, error)
    except Exception:  # one caller's bug must not stop the replies of the others
        _log.exception("a reply callback failed")


class _Connection(asyncio.Protocol):
    """One TCP connection; pending commands are answered in the order they were sent."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._reader = hiredis.Reader()
        self._pending: collections.deque[tuple[_Waiter, float]] = collections.deque()
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self.closed = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        pending = self._pending
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as error:
                self._fail(StoreUnavailable(f"Redis unavailable: protocol error: {error}"))
                return
            if reply is False:
                return
            if not pending:
                self._fail(StoreUnavailable("Redis unavailable: a reply nobody asked for"))
                return
            if isinstance(reply, hiredis.ReplyError):
                _deliver(pending.popleft()[0], None, ReplyError(str(reply)))
            else:
                _deliver(pending.popleft()[0], reply, None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(StoreUnavailable(
            f"Redis unavailable: connection lost{f': {exc}' if exc else ''}"
        ))

    # commands

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue one packed command; the future gets its reply (or ReplyError)."""
        future = self._loop.create_future()
        self.send_to(packed, future)
        return future

    def send_to(self, packed: bytes, waiter: _Waiter) -> None:
        """Queue one packed command for a future or a :data:`ReplyCallback`."""
        if self.closed:
            raise StoreUnavailable("Redis unavailable: connection closed")
        self._pending.append((waiter, self._loop.time() + self._timeout))
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(packed)
        if self._timer is None:
            self._timer = self._loop.call_later(self._timeout, self._check_deadline)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and not self.closed and out:
            self._transport.write(b"".join(out) if len(out) > 1 else out[0])

    def _check_deadline(self) -> None:
        # One timer per connection, not one per command: it re-arms for the oldest reply due.
        self._timer = None
        if not self._pending or self.closed:
            return
        overdue = self._pending[0][1] - self._loop.time()
        if overdue <= 0:
            self._fail(StoreUnavailable(
                f"Redis unavailable: no reply within {self._timeout:g} s"
            ))
            return
        self._timer = self._loop.call_later(overdue, self._check_deadline)

    def _fail(self, error: StoreUnavailable) -> None:
        """Close the connection and fail every command waiting on it: once one reply is lost
        or late, the order that matches replies to callers cannot be trusted."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.abort()
        pending, self._pending = self._pending, collections.deque()
        for waiter, _ in pending:
            _deliver(waiter, None, error)

    def close(self) -> None:
        self._fail(StoreUnavailable("Redis unavailable: connection closed"))


class LeanRedis:
    """A pipelined connection to one Redis server for :meth:`call` (see the module docstring).

    Connects lazily, on the first command, and again after the connection was lost.
    """

    def __init__(
        self,
        address: Address,
        *,
        socket_timeout: float,
        connect_timeout: float,
        retries: int,
    ) -> None:
        self.address = address
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._retries = retries
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    def send_now(self, callback: ReplyCallback, packed: bytes) -> bool:
        """Send one packed command (:func:`packed_command`) at once on the open connection,
        with no retry; ``callback`` gets its reply, or ReplyError / StoreUnavailable. False (and
        nothing sent) while there is no open connection.

        For callers that chain callbacks instead of awaiting; after a failure they go on with
        :meth:`call` and ``attempt=1``, so the retries stay the same in number and backoff.
        """
        conn = self._conn
        if conn is None or conn.closed:
            return False
        conn.send_to(packed, callback)
        return True

    @property
    def retries(self) -> int:
        """Retries of a command that met an outage."""
        return self._retries

    async def call(self, *args: str | bytes | int | float, attempt: int = 0) -> Any:
        """Send one command; its reply. Raises ReplyError for an error reply, StoreUnavailable
        when the server cannot be reached or does not answer in time (after the retries).
        ``attempt``: attempts of this command that already failed (see :meth:`send_now`)."""
        packed = _pack(args)
        while True:
            if attempt:
                await asyncio.sleep(min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)))
            try:
                conn = self._conn
                if conn is None or conn.closed:
                    conn = await self._connect()
                return await conn.send(packed)
            except ReplyError as error:
                outage = outage_of(error)
                if outage is not None:
                    raise outage from error
                raise
            except StoreUnavailable:
                if attempt >= self._retries:
                    raise
                attempt += 1

    async def _connect(self) -> _Connection:
        # Concurrent callers share one connection attempt.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        a = self.address
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self._socket_timeout), a.host, a.port),
                self._connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            raise outage_at(f"{a.host}:{a.port}", error) from error
        try:
            if a.password is not None:
                login = (a.username, a.password) if a.username else (a.password,)
                await conn.send(_pack(("AUTH", *login)))
            if a.db:
                await conn.send(_pack(("SELECT", a.db)))
        except ReplyError as error:
            conn.close()
            # Wrong credentials or database: an outage to the store's callers, as in redis-py.
            raise StoreUnavailable(f"Redis unavailable: {error}") from error
        self._conn = conn
        return conn

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def outage_of(error: ReplyError) -> StoreUnavailable | None:
    """The outage an error reply stands for (a loading or failing-over server), if any."""
    text = str(error)
    if text.startswith(_UNAVAILABLE_REPLIES):
        return StoreUnavailable(f"Redis unavailable: {text}")
    return None


def reply_error(error: ReplyError) -> StoreDataError:
    """The store's error for a command Redis refused."""
    return StoreDataError(f"Redis refused a command: {error}")
