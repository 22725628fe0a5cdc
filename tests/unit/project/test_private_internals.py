"""The few private internals of dependencies that Curfew relies on, pinned by what they must be.

Each is used because no public API does the job; each case names the code that relies on it, so a
lock upgrade that changes one fails here, saying what to review, instead of breaking silently.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import struct

import kopf
from aiohttp import web
from aiohttp.web_protocol import RequestHandler


def test_aiohttp_request_handlers_answer_parse_errors_through_handle_error() -> None:
    # curfew.sidecar.redact.QuietServer subclasses RequestHandler and overrides handle_error so
    # that a 4xx answer and its log line quote nothing of the request (aiohttp quotes the raw
    # header line, Cookie values included). Review QuietServer if this changes.
    parameters = list(inspect.signature(RequestHandler.handle_error).parameters)
    assert parameters == ["self", "request", "status", "exc", "message"]
    assert "loop" in inspect.signature(RequestHandler.__init__).parameters


def test_aiohttp_servers_keep_their_loop_and_handler_options_where_quiet_server_reads_them(
) -> None:
    # QuietServer.__call__ builds its handler like web.Server.__call__ does, from the server's
    # ``_loop`` and ``_kwargs``. Review QuietServer if this changes.
    async def build() -> web.Server:
        return web.Server(lambda request: web.Response(), max_line_size=123)

    server = asyncio.run(build())
    assert server._kwargs["max_line_size"] == 123
    assert isinstance(server._loop, asyncio.AbstractEventLoop)
    source = inspect.getsource(web.Server.__call__)
    assert "RequestHandler(self, loop=self._loop, **self._kwargs)" in source


def test_kopf_webhook_servers_serve_each_review_through_a_static_serve() -> None:
    # curfew.operator's GuardedWebhookServer wraps kopf.WebhookServer._serve to answer malformed
    # or too deeply nested AdmissionReviews with 400 instead of kopf's 500. Review it if this
    # changes.
    serve = inspect.getattr_static(kopf.WebhookServer, "_serve")
    assert isinstance(serve, staticmethod)
    assert list(inspect.signature(kopf.WebhookServer._serve).parameters) == ["fn", "request"]


def test_javaobj_readers_read_strings_through_read_string_and_read_struct() -> None:
    # curfew.sessions.jdk._Unmarshaller overrides javaobj's _readString (javaobj-py3 0.6.1's own
    # modified-UTF-8 decoder refuses Hangul after a NUL or an emoji) and reads the length with
    # _readStruct from object_stream. Review it if this changes.
    from javaobj.v1.unmarshaller import JavaObjectUnmarshaller

    read_string = inspect.signature(JavaObjectUnmarshaller._readString)
    assert list(read_string.parameters) == ["self", "length_fmt"]
    assert read_string.parameters["length_fmt"].default == "H"
    reader = JavaObjectUnmarshaller.__new__(JavaObjectUnmarshaller)
    reader.object_stream = io.BytesIO(struct.pack(">H", 7))
    assert reader._readStruct(">H") == (7,)
