"""Keeping request bytes (session ids, cookies, tokens) out of what the sidecar prints and answers.

aiohttp's HTTP parser quotes the offending bytes in its errors (``Invalid header value char:
b'Cookie: session=…'``, ``Got more than 8190 bytes when reading: b'…'``), and its server both
logs that error with its traceback and sends its text to the client as the 400 body. Two
boundaries stop that:

- :class:`QuietServer`, the aiohttp low-level server of every sidecar listener, answers a
  request aiohttp could not parse with a fixed body that names the kind of error only;
- :class:`RedactingFormatter`, the formatter of the process's log handlers, prints a logged
  exception's type and stack but not its message, unless the exception is the sidecar's own or
  an ``OSError`` (messages that never quote a request): a third-party message may.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from types import TracebackType
from typing import Any, Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

_log = logging.getLogger(__name__)

_OWN: Final = "curfew."
_WITHHELD: Final = "(message withheld: it may quote request bytes)"


class _QuietRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # aiohttp's 500 body is generic; the traceback goes through the log formatter.
            return super().handle_error(request, status, exc, message)
        kind = type(exc).__name__ if exc is not None else str(status)
        _log.info("bad request from %s: %s", request.remote, kind)
        response = web.Response(status=status, text=f"bad request: {kind}\n")
        response.force_close()
        return response


class QuietServer(web.Server):
    """``aiohttp.web.Server`` (no access log) whose 4xx answers quote nothing of the request."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, access_log=None, **kwargs)

    def __call__(self) -> RequestHandler:
        return _QuietRequestHandler(self, loop=self._loop, **self._kwargs)


def _message_is_safe(error: BaseException) -> bool:
    return isinstance(error, OSError | asyncio.TimeoutError) or (
        type(error).__module__.startswith(_OWN))


def format_exception(
    error: BaseException, tb: TracebackType | None = None
) -> str:
    """A traceback (the chain of causes included) whose exception lines show the message only
    where :func:`_message_is_safe`."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = f"{type(current).__module__}.{type(current).__qualname__}".removeprefix(
            "builtins.")
        line = f"{name}: {current}" if _message_is_safe(current) else f"{name} {_WITHHELD}"
        frames = traceback.format_tb(tb if current is error else current.__traceback__)
        parts.insert(0, "Traceback (most recent call last):\n" + "".join(frames) + line)
        cause = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__)
        if cause is not None and id(cause) not in seen:
            link = ("The above exception was the direct cause of the following exception:"
                    if current.__cause__ is not None else
                    "During handling of the above exception, another exception occurred:")
            parts.insert(0, f"\n{link}\n")
        current = cause
    return "\n".join(p.rstrip("\n") for p in parts)


class RedactingFormatter(logging.Formatter):
    """A log formatter that never prints a third-party exception's message (see the module
    docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        # Another handler may have cached its own rendering of the exception on the record.
        record.exc_text = None
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        _, error, tb = ei
        if error is None:
            return super().formatException(ei)
        return format_exception(error, tb)
