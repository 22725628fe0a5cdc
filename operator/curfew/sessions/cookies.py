"""The one reading of a session cookie, shared by every path that judges a request.

The reading is RFC 6265 §5.4's (``name=value`` pairs separated by ``"; "``), made strict: a
request is judged only on a session value every common framework reads the same way. Servers
parse ``Cookie`` differently: ``http.cookies`` and aiohttp also split on commas and spaces and
unquote ``"\\141bc"`` to ``abc``; Werkzeug and Django unquote too; express's ``cookie`` module
percent-decodes values and keeps the first of two; others keep the last; some compare names
case-insensitively, strip any Unicode space or percent-decode names (PHP also reads ``.`` in a
name as ``_``). Where the app could read a session value other than the one judged, or a session
cookie that was not judged at all, :func:`session_cookie` raises :class:`AmbiguousSession` and
the request is refused, never forwarded.

The rule (docs/sidecar.md, "How the session cookie is read"):

- A *mention* of the session cookie is any name in the header that some framework could take
  for it: the header is cut at ``;``, ``,``, any space or control character (Unicode's too), and
  each candidate name is percent-decoded, backslash-unescaped, stripped of quotes, ``$`` and
  spaces, case-folded, and ``.``/``[``/space read as ``_``.
- Every mention must be a plain pair: exactly the configured name, ``=``, then RFC 6265
  cookie-octets only (no quotes, backslashes, commas, spaces or controls), with nothing but
  spaces or tabs around it up to the neighbouring ``;``.
- All such pairs must carry the same value (an empty one counts as a value); one empty value
  alone is no session.
- A value with ``%`` is judged by what it percent-decodes to, as express reads it, so that
  ``s%3Aabc`` and ``s:abc`` are one session to the sidecar as they are to express; a ``%`` not
  followed by two hex digits, or escapes that are not UTF-8, are refused (express would keep the
  value as sent while others decode it).
- A request whose ``Cookie`` came in several fields (joined with :data:`SEPARATE_FIELDS`) may
  not mention the session at all: servers join such fields with ``"; "`` or ``","`` or read the
  first only.

Cookies that do not mention the session are never looked at, however odd. Pure, no I/O.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

SEPARATE_FIELDS: Final = "\n"
"""Joins the values of a header field sent more than once (a byte no field value holds)."""


class AmbiguousSession(ValueError):
    """A request whose session id frameworks could read differently (two different values, or a
    spelling some read and others do not): the sidecar could judge one while the app reads
    another, so none is trusted. The message names the rule, never a value."""


_COOKIE_OCTETS: Final = r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
"""RFC 6265 §4.1.1 cookie-octets: printable ASCII but DQUOTE, comma, semicolon, backslash."""

_PLAIN_HEADER: Final = re.compile(
    r"[!#&'*+\-.^_`|~0-9A-Za-z]+=" + _COOKIE_OCTETS
    + r"(?:; [!#&'*+\-.^_`|~0-9A-Za-z]+=" + _COOKIE_OCTETS + r")*"
)
"""A header as browsers send it: token names (without ``$`` and ``%``, which some frameworks
treat specially), cookie-octet values, ``"; "`` between pairs. Every framework splits such a
header the same way, so only names that fold to the session's need a look."""

_PAIR: Final = re.compile(r"[ \t]*([^=]*)=(" + _COOKIE_OCTETS + r")[ \t]*")
_SEPARATORS: Final = re.compile("[,;\x00-\x20\x7f\ufeff\udc80-\udcff]|\\s")
"""Where some framework ends a name: commas and semicolons, every space (Unicode's, JavaScript's
and what a stray byte may be in latin-1) and control character."""
_ESCAPE: Final = re.compile(r"\\(?:([0-3][0-7]{2})|(.))", re.DOTALL)
_STRIP: Final = "".join(map(chr, range(0x21))) + '\x7f"$\\\x85\xa0\u1680\u2028\u2029\u3000\ufeff'
"""Stripped from a name's ends by some framework: spaces and controls (``str.strip``, JavaScript's
``trim``), DQUOTE and backslash (unquoting), ``$`` (RFC 2109 attributes)."""
_FOLD_ROUNDS: Final = 4
"""No framework decodes a name more than once or twice; the bound keeps hostile headers linear."""
_PERCENT_ESCAPES: Final = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")


def session_cookie(header: str, name: str) -> str | None:
    """The session id in the cookie ``name`` of ``header`` (every ``Cookie`` field of a
    request, joined with :data:`SEPARATE_FIELDS`), percent-decoded; None when the request
    carries none.

    Raises :class:`AmbiguousSession` when frameworks could read the session differently (see
    the module's rule).
    """
    if _PLAIN_HEADER.fullmatch(header) is not None:
        values = _plain_values(header, name)
    else:
        values = _strict_values(header, name)
    if not values:
        return None
    value = values[0]
    if len(values) > 1 and values.count(value) != len(values):
        raise AmbiguousSession(f"cookie {name} has different values")
    if not value:
        return None
    if "%" in value:
        return _percent_decoded(value, name)
    return value


def _plain_values(header: str, name: str) -> list[str]:
    """The session values of a header as browsers send it (``_PLAIN_HEADER``: ASCII, so
    lower-casing keeps every offset). Plain string searches, not a regex: this runs on every
    request."""
    text = header.lower()
    key = name.lower() + "="
    if "." in key or "_" in key:
        key = key.replace(".", "_")
        text = text.replace(".", "_")
    start = text.find(key)
    if start == -1:
        return []
    values = []
    while start != -1:
        if start == 0 or text[start - 2:start] == "; ":
            end = start + len(key)
            if header[start:end - 1] != name:
                raise AmbiguousSession(f"a cookie named like {name} but spelled differently")
            stop = header.find(";", end)
            values.append(header[end:] if stop == -1 else header[end:stop])
        start = text.find(key, start + 1)
    return values


def _strict_values(header: str, name: str) -> list[str]:
    """The session values of any other header, every mention checked (the module's rule)."""
    folded = _fold(name)
    fields = header.split(SEPARATE_FIELDS)
    values = []
    for field in fields:
        for part in field.split(";"):
            if not any(_fold(piece.partition("=")[0]) in (folded, None)
                       for piece in _SEPARATORS.split(part)):
                continue
            pair = _PAIR.fullmatch(part)
            if pair is None or pair.group(1) != name:
                raise AmbiguousSession(f"cookie {name} in a form frameworks read differently")
            values.append(pair.group(2))
    if values and len(fields) > 1:
        raise AmbiguousSession(f"cookie {name} in a request with several Cookie fields")
    return values


def _fold(text: str) -> str | None:
    """What a name may stand for in some framework: percent-decoded and backslash-unescaped
    (until neither changes it), stripped of spaces, controls, quotes and ``$``, case-folded
    (the long s and the Kelvin sign included), and ``.``, ``[`` and space read as ``_`` (PHP).
    None for a name still decoding after ``_FOLD_ROUNDS`` rounds: it may stand for anything."""
    for _ in range(_FOLD_ROUNDS):
        before = text
        text = unquote(text, errors="replace")
        text = _ESCAPE.sub(_unescape, text)
        text = text.strip(_STRIP).strip()
        if text == before:
            return text.casefold().replace(".", "_").replace("[", "_").replace(" ", "_")
    return None


def _unescape(match: re.Match[str]) -> str:
    octal, char = match.groups()
    return chr(int(octal, 8)) if octal else char


def _percent_decoded(value: str, name: str) -> str:
    """What express's ``cookie`` module reads for a value with ``%``, when every other decoder
    reads the same; raises :class:`AmbiguousSession` for an escape they read differently."""
    if _PERCENT_ESCAPES.fullmatch(value) is None:
        raise AmbiguousSession(f"cookie {name} has a % that is not an escape")
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise AmbiguousSession(f"cookie {name} has escapes that are not UTF-8") from None
