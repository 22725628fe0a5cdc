"""The sidecar's log formatter prints a third-party exception's type and stack, never its
message (aiohttp's parser errors quote the request's Cookie line)."""

from __future__ import annotations

import io
import logging

from aiohttp.http_exceptions import BadHttpMessage

from curfew.sessions.errors import StoreUnavailable
from curfew.sidecar.redact import RedactingFormatter

RAW = "session=sid-Qz7Xv-raw"


def _logged(error: BaseException, *, cached_by: logging.Formatter | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test.redact")
    logger.propagate = False
    if cached_by is not None:  # a handler that formats the record first
        other = logging.StreamHandler(io.StringIO())
        other.setFormatter(cached_by)
        logger.addHandler(other)
    logger.addHandler(handler)
    try:
        try:
            raise error
        except BaseException:
            logger.exception("Error handling request from %s", "127.0.0.1")
    finally:
        logger.handlers.clear()
    return stream.getvalue()


def _parse_cookie() -> None:
    raise BadHttpMessage(f"Invalid header value char:\n\n  b'Cookie: {RAW}\\x7f'\n  ^")


def test_a_parser_error_is_logged_with_its_type_and_stack_but_not_the_cookie_line() -> None:
    try:
        _parse_cookie()
    except BadHttpMessage as error:
        text = _logged(error)
    assert "Qz7Xv" not in text
    assert "ERROR test.redact: Error handling request from 127.0.0.1" in text
    assert "aiohttp.http_exceptions.BadHttpMessage (message withheld" in text
    assert "in _parse_cookie" in text, "the stack is kept"


def test_messages_of_every_exception_in_a_chain_are_withheld() -> None:
    try:
        try:
            _parse_cookie()
        except BadHttpMessage as inner:
            raise ValueError(f"could not read {RAW}") from inner
    except ValueError as error:
        text = _logged(error)
    assert "Qz7Xv" not in text
    assert text.index("BadHttpMessage") < text.index("direct cause") < text.index("ValueError")


def test_an_earlier_handlers_cached_rendering_is_not_reused() -> None:
    try:
        _parse_cookie()
    except BadHttpMessage as error:
        text = _logged(error, cached_by=logging.Formatter())
    assert "Qz7Xv" not in text


def test_os_errors_and_the_sidecars_own_errors_keep_their_message() -> None:
    text = _logged(ConnectionRefusedError(111, "Connection refused"))
    assert "ConnectionRefusedError: [Errno 111] Connection refused" in text
    text = _logged(StoreUnavailable("cannot connect to 127.0.0.1:6379"))
    assert "cannot connect to 127.0.0.1:6379" in text
