"""The few private internals of dependencies that Curfew relies on, pinned by what they must be.

Each is used because no public API does the job; each case names the code that relies on it, so a
lock upgrade that changes one fails here, saying what to review, instead of breaking silently.
"""

from __future__ import annotations

import asyncio
import inspect

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
