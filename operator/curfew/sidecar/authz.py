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
"""

from __future__ import annotations

import time
from typing import Final
from urllib.parse import unquote, urlsplit

from aiohttp import web

from curfew.sidecar.enforce import Enforcer, RequestFacts, session_fields
from curfew.sidecar.reserved import is_reserved_target

NGINX_URI: Final = "X-Original-URI"
NGINX_METHOD: Final = "X-Original-Method"


class AuthzService:
    """Answers authorization checks."""

    def __init__(self, enforcer: Enforcer, path_prefix: str = "") -> None:
        self._enforcer = enforcer
        self._prefix = path_prefix

    def _facts(self, request: web.BaseRequest) -> RequestFacts | None:
        h = request.headers
        nginx_uri = h.get(NGINX_URI)
        if nginx_uri is not None:
            target = nginx_uri
            method = h.get(NGINX_METHOD, request.method).upper()
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

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        facts = self._facts(request)
        if facts is None:
            return web.Response(status=404, text=f"authorization checks live under {self._prefix}")
        if is_reserved_target(facts.target):
            # The sidecar's own endpoints judge their requests themselves, once. Any other
            # spelling of such a path (dot-segments, encodings) is checked as the app's.
            return web.Response(status=200)
        outcome = await self._enforcer.check(facts)
        self._enforcer.metrics.added_latency.observe(time.perf_counter() - started)
        if outcome.allowed:
            return web.Response(status=200, headers=outcome.headers)
        status = 401 if NGINX_URI in request.headers else outcome.status
        return web.Response(status=status, headers=outcome.headers, body=outcome.body)
