"""HTTP/1.1 messages as the proxy reads and writes them: llhttp reads, small functions write.

Every message is read by llhttp (through ``httptools``), the parser aiohttp's C extension
uses, so the fast lane (:mod:`curfew.sidecar.fastlane`), the requests it hands off to aiohttp
(:mod:`curfew.sidecar.proxy`), authz mode and the client to the app
(:mod:`curfew.sidecar.upstream`) frame and read every message the same way:

- :class:`RequestParser` reads the requests of one client connection, in order, and says of
  each head whether the fast lane serves it, hands it off (well-formed, but a shape only
  aiohttp handles: websockets, ``Expect``, chunked uploads, HTTP/1.0, other target forms), or
  refuses it (:class:`Malformed`: whatever llhttp refuses in its strict mode, and the checks of
  :func:`request_refusal`).
- :func:`request_refusal` makes the checks llhttp leaves to the server, for requests llhttp
  read here or in aiohttp.
- :class:`ResponseReader` reads one answer of the app, framed by llhttp, and notices any byte
  past its framing (the connection then closes instead of being reused).
- :func:`build_upstream_head` / :func:`build_response_head` write the heads of each leg.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import httptools

from curfew.sidecar.policy import CURFEW_HEADERS

HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
"""Fields of one connection only (RFC 9110 section 7.6.1): never forwarded, either way."""
REQUEST_DROP: Final = HOP_BY_HOP | CURFEW_HEADERS | {"expect"}
"""Fields of a client's request the app never sees (``Curfew-*``: only the sidecar sets them)."""
_REQUEST_DROP_RAW: Final = frozenset(h.encode() for h in REQUEST_DROP)
_HOP_BY_HOP_RAW: Final = frozenset(h.encode() for h in HOP_BY_HOP)
_REWRITTEN_RAW: Final = _REQUEST_DROP_RAW | {
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
_NOT_DROPPABLE: Final = frozenset({b"content-length", b"transfer-encoding", b"host"})
"""Fields a ``Connection`` header may not name: dropping them as hop-by-hop would change how
the app frames the message or which site it is for."""

MAX_FIELDS: Final = 100
"""More fields than this in a request head: handed off (aiohttp applies its own limits)."""
MAX_RESPONSE_HEAD: Final = 64 * 1024
_OWS: Final = b" \t"


class Malformed(ValueError):
    """A message that is not strictly HTTP/1.1; the message says what is wrong."""


def _connection_refusal(value: bytes) -> str | None:
    for token in value.split(b","):
        name = token.strip(_OWS).lower()
        if name in _NOT_DROPPABLE:
            return f"Connection names {name.decode('latin-1')}, which is not hop-by-hop"
        if name.startswith(b"curfew-"):
            # The rest of the name is the client's: not echoed.
            return "Connection names a Curfew-* field, which is not hop-by-hop"
    return None


def request_refusal(fields: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why a request with these (name, value) fields is refused, or None.

    llhttp (strict) already refuses bad names, bytes and line ends, obs-fold, two or invalid
    ``Content-Length``, ``Content-Length`` with ``Transfer-Encoding`` and any coding after
    ``chunked``. It leaves to the server what RFC 9112 section 3.2 requires of it (400 for more
    than one ``Host``), and knows nothing of hop-by-hop fields: a ``Connection`` header naming
    ``Content-Length``, ``Transfer-Encoding``, ``Host`` or a ``Curfew-*`` field would make the
    hop-by-hop step drop that field while the message is still framed by it (request
    smuggling) or let a client hide a field from the decision. Both are refused.
    """
    hosts = 0
    for name, value in fields:
        lname = name.lower()
        if lname == b"host":
            hosts += 1
            if hosts > 1:
                return "more than one Host"
        elif lname == b"connection":
            why = _connection_refusal(value)
            if why is not None:
                return why
    return None


@dataclass(slots=True)
class RequestHead:
    """A request head the fast lane serves."""

    method: bytes
    target: bytes
    block: bytes
    """The field lines as the client sent them (each ending in CRLF)."""
    fields: list[tuple[bytes, bytes, bytes]]
    """(name as sent, lower-cased name, value) in order."""
    first: dict[bytes, bytes]
    """The first value of each lower-cased name; for ``cookie``, every value joined with
    ``"\\n"`` (``SEPARATE_FIELDS``: a second session cookie must be seen, not skipped)."""
    content_length: int
    close: bool
    """The client asked to close the connection after this request."""
    plain: bool
    """No field the proxy drops or rewrites (hop-by-hop, ``Curfew-*``, ``X-Forwarded-*``)."""
    repeated: frozenset[bytes] = frozenset()
    """Lower-cased names that came more than once."""

    def values(self, name: bytes) -> list[bytes]:
        """Every value of the lower-cased field ``name``, in order."""
        if name not in self.repeated:
            value = self.first.get(name)
            return [] if value is None else [value]
        return [value for _, lname, value in self.fields if lname == name]


HAND_OFF: Final = "hand off"
"""The head is well-formed, but of a shape the fast lane leaves to aiohttp."""


class RequestParser:
    """The requests of one client connection, read by one llhttp parser, one at a time.

    The caller feeds a head's bytes as they come (:meth:`feed_head`: llhttp refuses a bad byte
    as soon as it sees it), takes the head once its empty line was fed (:meth:`head`), then
    feeds exactly the body its ``Content-Length`` frames (:meth:`feed_body`), and the parser is
    ready for the next request of the connection. A request the fast lane hands off ends the
    parser's use: aiohttp reads that connection from then on.
    """

    __slots__ = ("_complete", "_fields", "_keep_alive", "_parser", "_upgrade", "_url")

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._fields: list[tuple[bytes, bytes]] = []
        self._complete = False
        self._upgrade = False
        self._keep_alive = True

    # llhttp's callbacks

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        self._complete = True
        # Read now: once the message is complete, llhttp no longer tells.
        self._keep_alive = self._parser.should_keep_alive()

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # llhttp stops after the head of an upgrade; such a request is handed off.
            self._upgrade = True
        except httptools.HttpParserError as error:
            raise Malformed(str(error) or type(error).__name__) from None

    def feed_head(self, data: bytes) -> bool:
        """Feed bytes of the current request's head; whether its head is now complete."""
        self._feed(data)
        return self._complete

    def feed_body(self, body: bytes) -> None:
        """Feed the body the head's ``Content-Length`` announced (llhttp counts it too)."""
        self._feed(body)

    def head(self, raw: bytes) -> RequestHead | str:
        """The complete head just fed, ``raw`` being its bytes up to and including the CRLF of
        its last field line: what the fast lane serves, or :data:`HAND_OFF`. Raises
        :class:`Malformed`."""
        target, raw_fields, upgrade = self._url, self._fields, self._upgrade
        self._url, self._fields, self._complete, self._upgrade = b"", [], False, False
        # llhttp accepted the request line, so it ends in "HTTP/" and a one-digit version.
        line_end = raw.index(b"\r\n")
        version = raw[line_end - 3:line_end]
        if version != b"1.1":
            if version == b"1.0":
                return HAND_OFF
            # llhttp reads any one-digit version; only HTTP/1.x is spoken here.
            raise Malformed(f"HTTP/{version.decode()} is not HTTP/1.1")
        fields: list[tuple[bytes, bytes, bytes]] = []
        first: dict[bytes, bytes] = {}
        plain = True
        repeated: set[bytes] | None = None  # made only for a head that repeats a field
        for name, raw_value in raw_fields:
            lname = name.lower()
            # llhttp drops the whitespace before a value, not after (RFC 9110 section 5.5).
            value = raw_value.rstrip(_OWS)
            fields.append((name, lname, value))
            if lname in first:
                if lname == b"host":
                    raise Malformed("more than one Host")
                if lname == b"cookie":
                    first[lname] += b"\n" + value
                if repeated is None:
                    repeated = set()
                repeated.add(lname)
            else:
                first[lname] = value
            if lname in _REWRITTEN_RAW or lname.startswith(b"curfew-"):
                plain = False
                if lname == b"connection":
                    why = _connection_refusal(value)
                    if why is not None:
                        raise Malformed(why)
        if (upgrade or target[:1] != b"/" or len(fields) > MAX_FIELDS
                or b"host" not in first or b"transfer-encoding" in first
                or b"upgrade" in first or b"expect" in first):
            return HAND_OFF
        # llhttp checked it: one field, digits only, no overflow.
        length = first.get(b"content-length")
        return RequestHead(
            self._parser.get_method(), target, raw[line_end + 2:], fields, first,
            int(length) if length else 0, not self._keep_alive, plain,
            frozenset(repeated) if repeated else frozenset(),
        )


def connection_tokens(values: Iterable[bytes]) -> frozenset[bytes]:
    """The lower-cased option names in ``Connection`` field values."""
    return frozenset(t.strip(_OWS).lower() for v in values for t in v.split(b","))


@dataclass(slots=True)
class ResponseHead:
    """The head of the app's answer and how its body is framed (RFC 9112 section 6.3)."""

    status: int
    reason: bytes
    fields: list[tuple[bytes, bytes, bytes]]
    """(name as sent, lower-cased name, value) in order, hop-by-hop fields included."""
    content_length: int | None
    """None when the body is chunked, or runs until the app closes."""
    chunked: bool
    keep_alive: bool
    """The app keeps the connection open after this answer."""
    tokens: frozenset[bytes]
    """The app's ``Connection`` options (fields it names are hop-by-hop for this leg)."""
    plain: bool
    """No field is hop-by-hop or ``Curfew-*``: every field is relayed to the client."""
    block: bytes | None = None
    """The field lines as the app sent them (llhttp read them), when they came in one piece
    with the status line: a plain head is relayed as these bytes."""


class ResponseReader:
    """One answer of the app, read by llhttp from the bytes of its connection.

    Interim (1xx) answers are skipped. :attr:`head` is set once the final answer's head is
    read; its body collects in :attr:`body` until :attr:`complete`. Bytes past the answer's
    framing set :attr:`leftover`: they never reach a client, and the connection is not reused
    (they could be read as the answer to the next request on it). llhttp reads on past the end
    of a message into what follows, so every callback after :attr:`complete` only notes
    that something came; an answer that ends before the last byte it came with, even on a
    CRLF that llhttp skips silently, has bytes past it too.
    """

    __slots__ = (
        "_fields", "_head_only", "_interim", "_parser", "_reason", "_seen", "body", "complete",
        "head", "leftover",
    )

    def __init__(self, *, head_only: bool) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.reset(head_only=head_only)

    def reset(self, *, head_only: bool) -> None:
        """Read the next answer on the same connection (see :attr:`reusable`)."""
        self._head_only = head_only
        """An answer to HEAD: complete with its head (llhttp cannot know it has no body)."""
        self._fields: list[tuple[bytes, bytes, bytes]] = []
        self._reason = b""
        self._seen = 0
        self._interim = False
        self.head: ResponseHead | None = None
        self.body = bytearray()
        self.complete = False
        self.leftover = False

    @property
    def reusable(self) -> bool:
        """llhttp stands at the start of the next answer: this one ended exactly (and was not
        an answer to HEAD, whose body llhttp still expects)."""
        return self.complete and not self.leftover and not self._head_only

    @property
    def until_close(self) -> bool:
        """The body runs until the app closes the connection (no length, not chunked)."""
        head = self.head
        return head is not None and head.content_length is None and not head.chunked

    # llhttp's callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            self.leftover = True

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, name.lower(), value.rstrip(_OWS)))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        parser = self._parser  # asked now: once the message is complete, llhttp no longer tells
        status = parser.get_status_code()
        fields, self._fields = self._fields, []
        reason, self._reason = self._reason, b""
        if status < 200:
            if status == 101:
                raise Malformed("the app switched protocols on a plain request")
            self._interim = True
            return  # 100 Continue, 103 Early Hints: llhttp reads the final answer next
        content_length: int | None = None
        chunked = False
        plain = True
        connection: list[bytes] = []
        for _, lname, value in fields:
            if lname == b"content-length":
                content_length = int(value)  # llhttp checked it
            elif lname in _HOP_BY_HOP_RAW or lname.startswith(b"curfew-"):
                plain = False
                if lname == b"transfer-encoding":
                    chunked = value.rsplit(b",", 1)[-1].strip(_OWS).lower() == b"chunked"
                elif lname == b"connection":
                    connection.append(value)
        if not plain and b"transfer-encoding" in (lname for _, lname, _ in fields):
            content_length = None  # chunked, or (another final coding) until the app closes
        tokens = connection_tokens(connection) if connection else frozenset()
        self.head = ResponseHead(status, reason, fields, content_length, chunked,
                                 parser.should_keep_alive(), tokens, plain)
        self.complete = self._head_only

    def on_body(self, data: bytes) -> None:
        if self.complete:
            self.leftover = True
        else:
            self.body += data

    def on_message_complete(self) -> None:
        if self.head is not None:
            self.complete = True

    def feed(self, data: bytes) -> None:
        """Feed bytes of the connection. Raises :class:`Malformed`."""
        if self.complete:
            self.leftover = True
            return
        whole = data
        first = self.head is None and not self._seen
        last = len(data) - 1
        if last > 0:
            self._feed(data[:last])
            if not self.complete:
                self._feed(data[last:])
            elif not self.leftover:
                self.leftover = True
        else:
            self._feed(data)
        head = self.head
        if (first and head is not None and head.plain and not self._interim
                and whole.startswith(b"HTTP/")):
            # The head came whole with its status line, and llhttp accepted every line of it.
            head.block = whole[whole.index(b"\r\n") + 2:whole.index(b"\r\n\r\n") + 2]

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, Malformed):
                raise error.__context__ from None
            raise Malformed(f"the app's answer could not be read: {error}") from None
        except httptools.HttpParserError as error:
            if self.complete:
                self.leftover = True  # what followed the answer is not even HTTP
                return
            raise Malformed(f"the app sent a malformed answer: {error}") from None
        if self.head is None:
            self._seen += len(data)
            if self._seen > MAX_RESPONSE_HEAD:
                raise Malformed("the app sent an oversized response head")

    def finish(self) -> None:
        """The app closed the connection: the end of a body that runs until then."""
        if self.until_close:
            self.complete = True


def header_block(headers: Mapping[str, str]) -> bytes:
    """Fields the sidecar adds, as lines; a value that could end its line is refused."""
    text = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    if text.count("\n") != len(headers) or text.count("\r") != len(headers) or "\0" in text:
        raise ValueError(f"refusing to send a header value with a line break: {headers!r}")
    return text.encode("latin-1")


def build_upstream_head(
    method: bytes,
    target: bytes,
    fields: Iterable[tuple[bytes, bytes, bytes]],
    *,
    block: bytes = b"",
    plain: bool,
    peer: str | None,
    secure: bool,
    forwarded_host: bytes | None,
    default_host: bytes,
    added: bytes,
    chunked: bool = False,
) -> bytes:
    """The request head to send the app for a client's request with ``fields`` ((name,
    lower-cased name, value) in order); ``plain``: as :attr:`RequestHead.plain`, with a
    ``Host``, and then its field lines ``block`` are sent as they are.

    Dropped: hop-by-hop fields and those ``Connection`` names (never a framing field or
    ``Host``: :func:`request_refusal`), ``Expect``, every ``Curfew-*`` field of the client
    (those the sidecar sets today and any it may set later).
    Set: ``X-Forwarded-For`` (the client's ``peer`` appended to what a proxy in front sent),
    ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` unless already there; ``Host``
    (``default_host``) when the client sent none. ``added``: the sidecar's own fields
    (:func:`header_block`). ``chunked``: the body is re-chunked to the app.
    """
    prior: list[bytes] = []
    host, proto, forwarded = plain, False, False
    if not plain:
        kept: list[tuple[bytes, bytes]] = []
        tokens: frozenset[bytes] = frozenset()
        for name, lname, value in fields:
            if lname in _REQUEST_DROP_RAW or lname.startswith(b"curfew-"):
                if lname == b"connection":
                    tokens = tokens | connection_tokens((value,))
                continue
            if lname == b"x-forwarded-for":
                prior.append(value)
                if peer:
                    continue
            elif lname == b"host":
                host = True
            elif lname == b"x-forwarded-proto":
                proto = True
            elif lname == b"x-forwarded-host":
                forwarded = True
            kept.append((lname, b"%b: %b\r\n" % (name, value)))
        block = b"".join([line for lname, line in kept if lname not in tokens])
    out = [b"%b %b HTTP/1.1\r\n%b" % (method, target, block)]
    if not host:
        out.append(b"Host: %b\r\n" % default_host)
    if peer:
        xff = peer.encode("latin-1")
        out.append(b"X-Forwarded-For: %b, %b\r\n" % (b", ".join(prior), xff) if prior
                   else b"X-Forwarded-For: %b\r\n" % xff)
    if not proto:
        out.append(b"X-Forwarded-Proto: https\r\n" if secure else b"X-Forwarded-Proto: http\r\n")
    if not forwarded and forwarded_host:
        out.append(b"X-Forwarded-Host: %b\r\n" % forwarded_host)
    out.append(added)
    if chunked:
        out.append(b"Transfer-Encoding: chunked\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def build_response_head(
    head: ResponseHead, added: bytes, added_names: frozenset[bytes], framing: bytes
) -> bytes:
    """The client's answer head for the app's ``head``: hop-by-hop fields (and those its
    ``Connection`` names) dropped, the app's values of ``added_names`` replaced by ``added``,
    then ``framing`` (``Transfer-Encoding`` / ``Connection`` lines of the client's leg)."""
    if head.plain:
        block = head.block
        if block is None:
            block = b"".join([b"%b: %b\r\n" % (name, value) for name, _, value in head.fields])
    else:
        drop = _HOP_BY_HOP_RAW | head.tokens | added_names
        block = b"".join([b"%b: %b\r\n" % (name, value) for name, lname, value in head.fields
                          if lname not in drop])
    return b"HTTP/1.1 %d %b\r\n%b%b%b\r\n" % (head.status, head.reason, block, added, framing)
