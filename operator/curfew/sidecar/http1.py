"""HTTP/1.1 message heads, strictly (RFC 9112), as the proxy reads and writes them.

Pure functions over bytes, shared by the fast lane (:mod:`curfew.sidecar.fastlane`), the
aiohttp handler of the requests it hands off (:mod:`curfew.sidecar.proxy`) and the client to
the app (:mod:`curfew.sidecar.upstream`):

- :func:`parse_request_head` reads a client's request head and says whether the fast lane
  serves it, hands it off (well-formed, but a shape only aiohttp handles: websockets,
  ``Expect``, chunked uploads, other versions and target forms), or refuses it (a head two
  parsers could read differently: obs-fold, bad names or bytes, bare LF, ``Content-Length``
  with ``Transfer-Encoding``, two ``Content-Length`` or ``Host`` fields).
- :func:`parse_response_head` reads the app's answer head and its framing.
- :func:`build_upstream_head` writes the request head to the app: hop-by-hop fields dropped,
  the client's ``Curfew-*`` fields stripped, ``X-Forwarded-*`` set, the sidecar's fields added.

Names keep their spelling and order; a value is the field's bytes without surrounding
whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from curfew.sidecar.rules import CURFEW_HEADERS

HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
"""Fields of one connection only (RFC 9110 section 7.6.1): never forwarded, either way."""
REQUEST_DROP: Final = HOP_BY_HOP | CURFEW_HEADERS | {"expect"}
"""Fields of a client's request the app never sees (``Curfew-*``: only the sidecar sets them)."""
_REQUEST_DROP_RAW: Final = frozenset(h.encode() for h in REQUEST_DROP)
_RESPONSE_DROP_RAW: Final = frozenset(h.encode() for h in HOP_BY_HOP)
_REWRITTEN_RAW: Final = _REQUEST_DROP_RAW | {
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}

MAX_FIELDS: Final = 100
"""More fields than this in a request head: handed off (aiohttp applies its own limits)."""

_TOKEN: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE: Final = re.compile(rb"(" + _TOKEN + rb") (/[!-~\x80-\xff]*) HTTP/1\.1\r\n")
"""origin-form HTTP/1.1 only: every other request line is handed off."""
_FIELDS: Final = re.compile(rb"(?:" + _TOKEN + rb":[\t -~\x80-\xff]*\r\n)*")
"""field-line = field-name ":" OWS field-value OWS (no obs-fold, no bare CR or LF, no CTLs)."""
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: ([\t -~\x80-\xff]*))?\r\n")
_DIGITS: Final = re.compile(rb"[0-9]{1,18}")


class Malformed(ValueError):
    """A message head that is not strictly HTTP/1.1; the message says what is wrong."""


@dataclass(slots=True)
class RequestHead:
    """A request head the fast lane serves."""

    method: bytes
    target: bytes
    block: bytes
    """The field lines as the client sent them (each ending in CRLF)."""
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
        found = []
        for field in self.block[:-2].split(b"\r\n"):
            key, _, value = field.partition(b":")
            if key.lower() == name:
                found.append(value.strip(b" \t"))
        return found


HAND_OFF: Final = "hand off"
"""The head is well-formed, but of a shape the fast lane leaves to aiohttp."""


def _check_fields(head: bytes, start: int) -> None:
    """Check the field lines of ``head`` (which ends with the CRLF of its last line) from
    ``start``."""
    if _FIELDS.fullmatch(head, start) is None:
        raise Malformed("malformed header line (obs-fold, a bad name, a bare CR or LF, or a "
                        "control character)")


def parse_request_head(head: bytes) -> RequestHead | str:
    """A request head (up to and including the CRLF of its last field line, without the empty
    line): what the fast lane serves, or :data:`HAND_OFF`. Raises :class:`Malformed`."""
    line = _REQUEST_LINE.match(head)
    if line is None:
        if has_bare_lf(head):
            raise Malformed("a line ends in a bare LF")
        return HAND_OFF
    start = line.end()
    _check_fields(head, start)
    block = head[start:]
    if block.count(b"\n") > MAX_FIELDS:
        return HAND_OFF
    first: dict[bytes, bytes] = {}
    connection: list[bytes] = []
    plain = True
    repeated: set[bytes] | None = None  # made only for a head that repeats a field
    for field in block[:-2].split(b"\r\n") if block else ():
        name, _, value = field.partition(b":")
        lname = name.lower()
        if lname in first:
            if lname == b"content-length":
                raise Malformed("more than one Content-Length")
            if lname == b"host":
                raise Malformed("more than one Host")
            if lname == b"cookie":
                first[lname] += b"\n" + value.strip(b" \t")
            if repeated is None:
                repeated = set()
            repeated.add(lname)
        else:
            first[lname] = value.strip(b" \t")
        if lname in _REWRITTEN_RAW:
            plain = False
            if lname == b"connection":
                connection.append(value)
    length = 0
    if b"content-length" in first:
        if b"transfer-encoding" in first:
            raise Malformed("both Content-Length and Transfer-Encoding")
        text = first[b"content-length"]
        if _DIGITS.fullmatch(text) is None:
            raise Malformed("Content-Length is not a number")
        length = int(text)
    if (b"host" not in first or b"transfer-encoding" in first or b"upgrade" in first
            or b"expect" in first):
        return HAND_OFF
    close = bool(connection) and b"close" in connection_tokens(connection)
    return RequestHead(line.group(1), line.group(2), block, first, length, close, plain,
                       frozenset(repeated) if repeated else frozenset())


def has_bare_lf(data: bytes) -> bool:
    """Whether a line of ``data`` ends in LF without CR (which parsers read differently)."""
    return data.count(b"\n") != data.count(b"\r\n")


def connection_tokens(values: Iterable[bytes]) -> frozenset[bytes]:
    """The lower-cased option names in ``Connection`` field values."""
    return frozenset(t.strip().lower() for v in values for t in v.split(b","))


@dataclass(slots=True)
class ResponseHead:
    """The head of the app's answer and how its body is framed (RFC 9112 section 6.3)."""

    status: int
    reason: bytes
    block: bytes
    """The field lines as the app sent them (each ending in CRLF)."""
    content_length: int | None
    """None when the body is chunked, or runs until the app closes."""
    chunked: bool
    keep_alive: bool
    """HTTP/1.1 without ``Connection: close``."""
    tokens: frozenset[bytes]
    """The app's ``Connection`` options (fields it names are hop-by-hop for this leg)."""
    plain: bool
    """No field is hop-by-hop or ``Curfew-*``: the block is relayed to the client as it is."""

    @property
    def fields(self) -> list[tuple[bytes, bytes, bytes]]:
        """(name as sent, lower-cased name, value) in order, hop-by-hop fields included."""
        return _split(self.block[:-2])


def _split(block: bytes) -> list[tuple[bytes, bytes, bytes]]:
    fields = []
    for field in block.split(b"\r\n") if block else ():
        name, _, value = field.partition(b":")
        fields.append((name, name.lower(), value.strip(b" \t")))
    return fields


_RESPONSE_SPECIAL: Final = re.compile(
    rb"^(content-length|transfer-encoding|connection|keep-alive|proxy-authenticate"
    rb"|proxy-authorization|proxy-connection|te|trailers?|upgrade|curfew-" + _TOKEN.lower()
    + rb"?):[\t ]*(.*?)[\t ]*\r$", re.IGNORECASE | re.MULTILINE)
"""The answer fields the proxy reads or drops; most answers have only Content-Length."""


def parse_response_head(head: bytes) -> ResponseHead:
    """The app's answer head (up to and including the CRLF of its last field line). Raises
    :class:`Malformed`."""
    line = _STATUS_LINE.match(head)
    if line is None:
        raise Malformed(f"the app did not answer HTTP/1.1: {head[:40]!r}")
    start = line.end()
    _check_fields(head, start)
    block = head[start:]
    status, reason, keep_alive = int(line.group(2)), line.group(3) or b"", line.group(1) == b"1"
    special = _RESPONSE_SPECIAL.findall(block)
    if not special or (len(special) == 1 and special[0][0].lower() == b"content-length"):
        content_length = None
        if special:
            value = special[0][1]
            if _DIGITS.fullmatch(value) is None:
                raise Malformed("the app sent an invalid Content-Length")
            content_length = int(value)
        return ResponseHead(status, reason, block, content_length, False, keep_alive,
                            frozenset(), True)
    content_length = None
    chunked = False
    connection: list[bytes] = []
    for _, lname, value in _split(block[:-2]):
        if lname == b"content-length":
            if _DIGITS.fullmatch(value) is None or (content_length is not None
                                                    and content_length != int(value)):
                raise Malformed("the app sent an invalid Content-Length")
            content_length = int(value)
        elif lname == b"transfer-encoding":
            chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
            if not chunked:
                # Another final coding: the body runs until the app closes.
                content_length = None
        elif lname == b"connection":
            connection.append(value)
    if chunked:
        content_length = None  # Transfer-Encoding overrides Content-Length (RFC 9112 6.3)
    tokens = connection_tokens(connection) if connection else frozenset()
    return ResponseHead(status, reason, block, content_length, chunked,
                        keep_alive and b"close" not in tokens, tokens, False)


def header_block(headers: Mapping[str, str]) -> bytes:
    """Fields the sidecar adds, as lines; a value that could end its line is refused."""
    text = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    if text.count("\n") != len(headers) or text.count("\r") != len(headers) or "\0" in text:
        raise ValueError(f"refusing to send a header value with a line break: {headers!r}")
    return text.encode("latin-1")


def fields_block(raw: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Fields parsed elsewhere (aiohttp's raw headers) as field lines."""
    return b"".join([b"%b: %b\r\n" % (name, value) for name, value in raw])


def build_upstream_head(
    method: bytes,
    target: bytes,
    block: bytes,
    *,
    plain: bool,
    peer: str | None,
    secure: bool,
    forwarded_host: bytes | None,
    default_host: bytes,
    added: bytes,
    chunked: bool = False,
) -> bytes:
    """The request head to send the app for a client's request with field lines ``block``
    (``plain``: as :attr:`RequestHead.plain`, and with a ``Host``).

    Dropped: hop-by-hop fields and those ``Connection`` names, ``Expect``, every ``Curfew-*``
    field of the client. Set: ``X-Forwarded-For`` (the client's ``peer`` appended to what a
    proxy in front sent), ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` unless already
    there; ``Host`` (``default_host``) when the client sent none. ``added``: the sidecar's
    own fields (:func:`header_block`). ``chunked``: the body is re-chunked to the app.
    """
    prior: list[bytes] = []
    host, proto, forwarded = plain, False, False
    if not plain:
        kept: list[tuple[bytes, bytes]] = []
        tokens: frozenset[bytes] = frozenset()
        for name, lname, value in _split(block[:-2]):
            if lname in _REQUEST_DROP_RAW:
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
    else:
        drop = _RESPONSE_DROP_RAW | head.tokens | added_names
        block = b"".join([b"%b: %b\r\n" % (name, value) for name, lname, value in head.fields
                          if lname not in drop])
    return b"HTTP/1.1 %d %b\r\n%b%b%b\r\n" % (head.status, head.reason, block, added, framing)
