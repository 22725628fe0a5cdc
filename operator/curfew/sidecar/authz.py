"""Authz mode: an HTTP authorization service for Envoy's ext_authz and nginx's auth_request.

Both proxies send the sidecar a bodiless copy of each request's headers and act on the status:
2xx lets the request through (with the ``Curfew-*`` headers added), anything else turns it away.

- Envoy (``http_service``) keeps the original method and sends ``path_prefix`` + the original
  path; Envoy relays a denial's status, headers and body to the client as they are (401 JSON,
  or 302 to the login page).
- nginx sends the original request in ``X-Original-URI`` / ``X-Original-Method`` (set in the
  auth location) and only understands 2xx, 401 and 403, so every denial is a 401 there; the
  ``Curfew-Reason``, ``Curfew-Redirect`` and ``Set-Cookie`` headers tell the nginx config what
  to answer (see docs/sidecar.md).

The checks are served by the fast lane (:mod:`curfew.sidecar.fastlane`), as proxied requests
are, through :meth:`AuthzService.prepare` and :meth:`AuthzService.reply`; the rarer shapes it
hands off to aiohttp come to :meth:`AuthzService.handle`, which decides the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final, Protocol
from urllib.parse import unquote, urlsplit

from aiohttp import web

from curfew.sidecar.enforce import Enforcer, RequestFacts, RequestOutcome, session_fields
from curfew.sidecar.reserved import is_reserved_target

NGINX_URI: Final = "X-Original-URI"
NGINX_METHOD: Final = "X-Original-Method"


class Headers(Protocol):
    """The request fields a check is read from (aiohttp's, or the fast lane's view of them)."""

    def get(self, key: str, /) -> str | None: ...

    def getall(self, key: str, default: tuple[()], /) -> list[str] | tuple[()]: ...


class Check(Protocol):
    """An authorization check as the proxy sent it."""

    @property
    def method(self) -> str: ...

    @property
    def raw_path(self) -> str: ...

    @property
    def secure(self) -> bool: ...

    @property
    def headers(self) -> Headers: ...


@dataclass(slots=True)
class Reply:
    """The answer to a check."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


_ALLOWED: Final = Reply(200)


class AuthzService:
    """Answers authorization checks."""

    def __init__(self, enforcer: Enforcer, path_prefix: str = "") -> None:
        self._enforcer = enforcer
        self._prefix = path_prefix

    def _facts(self, request: Check) -> RequestFacts | None:
        h = request.headers
        nginx_uri = h.get(NGINX_URI)
        if nginx_uri is not None:
            target = nginx_uri
            method = (h.get(NGINX_METHOD) or request.method).upper()
        else:
            target = request.raw_path
            if self._prefix:
                if not target.startswith(self._prefix):
                    return None
                target = target[len(self._prefix):] or "/"
            method = request.method
        proto = h.get("X-Forwarded-Proto")
        cookie, session = session_fields(h, self._enforcer.session_header)
        return RequestFacts(
            method=method,
            path=unquote(urlsplit(target).path),
            target=target,
            cookie=cookie,
            session_header=session,
            accept=h.get("Accept"),
            requested_with=h.get("X-Requested-With"),
            fetch_mode=h.get("Sec-Fetch-Mode"),
            secure=(proto.split(",")[0].strip() == "https") if proto else request.secure,
        )

    def prepare(self, request: Check) -> RequestFacts | Reply:
        """The facts of the request to decide on, or the answer of a check that needs no
        decision."""
        facts = self._facts(request)
        if facts is None:
            return Reply(404, {"Content-Type": "text/plain; charset=utf-8"},
                         f"authorization checks live under {self._prefix}".encode())
        if is_reserved_target(facts.target):
            # The sidecar's own endpoints judge their requests themselves, once. Any other
            # spelling of such a path (dot-segments, encodings) is checked as the app's.
            return _ALLOWED
        return facts

    @staticmethod
    def reply(outcome: RequestOutcome, nginx: bool) -> Reply:
        """The answer to a check decided ``outcome`` (``nginx``: an ``auth_request``)."""
        if outcome.allowed:
            return Reply(200, outcome.headers)
        return Reply(401 if nginx else outcome.status, outcome.headers, outcome.body)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        prepared = self.prepare(request)
        if isinstance(prepared, Reply):
            return web.Response(status=prepared.status, headers=prepared.headers,
                                body=prepared.body)
        outcome = await self._enforcer.check(prepared)
        self._enforcer.metrics.added_latency.observe(time.perf_counter() - started)
        reply = self.reply(outcome, NGINX_URI in request.headers)
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)
