"""The sidecar process: listeners, the sidecar's own endpoints, readiness, graceful shutdown.

The main port is the fast lane (:mod:`curfew.sidecar.fastlane`), in proxy mode and in authz
mode, which hands what it does not serve itself to a low-level aiohttp server; every other
listener is such a server (no router: a single dispatch on the path). Paths under
``/.curfew/`` belong to the sidecar and are never forwarded: the session status, keepalive,
and its static assets, registered in :attr:`Sidecar.reserved`. Which targets are reserved is
decided by :func:`curfew.sidecar.reserved.is_reserved_target` alone.

The ops listener (pod-internal, never the Service's port) serves the probes, the metrics and
``POST /sessions/register``: the app registers a ``curfew``-format session it issued, which is
how such a session gets its record where the sidecar cannot see the app's answer (authz mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from curfew.sessions.cookies import AmbiguousSession
from curfew.sessions.errors import StoreUnavailable
from curfew.sessions.keys import CURFEW_FORMAT, curfew_namespace
from curfew.sessions.lifetime import Decision
from curfew.sessions.store import RedisSessionStore
from curfew.sidecar.authz import AuthzService
from curfew.sidecar.client import ClientEndpoints
from curfew.sidecar.enforce import JSON, Enforcer, session_fields
from curfew.sidecar.fastlane import FastLane
from curfew.sidecar.http1 import request_refusal
from curfew.sidecar.metrics import CONTENT_TYPE, SidecarMetrics
from curfew.sidecar.policy import (
    HEALTHZ_PATH,
    KEEPALIVE_PATH,
    READYZ_PATH,
    REGISTER_PATH,
    STATUS_PATH,
    SidecarPolicy,
    build_status_body,
    extract_session_id,
)
from curfew.sidecar.proxy import ReverseProxy, answer, facts_of
from curfew.sidecar.redact import QuietServer
from curfew.sidecar.reload import ConfigWatcher
from curfew.sidecar.reserved import KEEPALIVE_HEADER, is_reserved_target, keepalive_allowed
from curfew.sidecar.settings import SidecarSettings, parse_host_port

_log = logging.getLogger(__name__)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Sidecar:
    """One running sidecar: its config watcher, store, enforcer and listeners."""

    def __init__(
        self, settings: SidecarSettings, policy: SidecarPolicy, store: RedisSessionStore
    ) -> None:
        self.settings = settings
        self.metrics = SidecarMetrics()
        self.watcher = ConfigWatcher(settings.config, policy, on_change=self._config_changed,
                                     app_secrets=settings.app_secrets)
        self.store = store
        self.enforcer = Enforcer(self.watcher, store, settings.key_bytes, self.metrics,
                                 sees_responses=settings.mode == "proxy")
        self.proxy: ReverseProxy | None = None
        self.authz: AuthzService | None = None
        if settings.mode == "proxy":
            assert settings.upstream is not None
            self.proxy = ReverseProxy(
                settings.upstream, self.enforcer,
                connect_timeout=settings.upstream_connect_timeout_seconds,
                read_timeout=settings.upstream_read_timeout_seconds,
                websocket_interval=settings.websocket_activity_interval_seconds,
            )
            self._forward: Handler = self.proxy.handle
        else:
            self.authz = AuthzService(self.enforcer, settings.authz_path_prefix)
            self._forward = self.authz.handle
        self.reserved: dict[tuple[str, str], Handler] = {
            ("GET", STATUS_PATH): self._status,
            ("POST", KEEPALIVE_PATH): self._keepalive,
            ("GET", HEALTHZ_PATH): self._healthz,
            ("GET", READYZ_PATH): self._readyz_public,
        }
        """The sidecar's own endpoints: (method, path) -> handler."""
        self.reserved.update(ClientEndpoints(self.watcher).routes())
        self._ops: dict[str, Handler] = {
            "/healthz": self._healthz, "/readyz": self._readyz, "/metrics": self._metrics,
        }
        self._ops_private: dict[str, Handler] = {REGISTER_PATH: self._register}
        """Served on the ops port only, never on the main port (where the same path is the
        app's)."""
        self._runners: list[web.BaseRunner] = []
        self.fast_lane: FastLane | None = None
        """The main listener (the other listeners are aiohttp's)."""
        self._watch: asyncio.Task[None] | None = None
        self.stopping = False
        self.metrics.set_config(policy.hash, policy.workload, policy.policy, valid=True)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> list[tuple[str, int]]:
        """Start listening; returns the bound (host, port) of the main and ops listeners."""
        if self.proxy is not None:
            await self.proxy.start()
            self.fast_lane = FastLane(self.enforcer, self._main,
                                      self.settings.shutdown_grace_seconds, proxy=self.proxy)
        else:
            # Authz checks are served like proxied requests; the probes of the main port are
            # aiohttp's.
            self.fast_lane = FastLane(self.enforcer, self._main,
                                      self.settings.shutdown_grace_seconds, authz=self.authz,
                                      hand_off=frozenset(self._ops))
        bound = [await self.fast_lane.start(*parse_host_port(self.settings.listen))]
        if self.settings.ops_listen:
            bound.append(await self._listen(self.settings.ops_listen, self._ops_only))
        self._watch = asyncio.create_task(self.watcher.run(self.settings.config_poll_seconds))
        _log.info("curfew sidecar (%s mode) listening on %s, config %s", self.settings.mode,
                  ", ".join(f"{h}:{p}" for h, p in bound), self.watcher.policy.hash)
        return bound

    async def _listen(self, address: str, handler: Handler) -> tuple[str, int]:
        host, port = parse_host_port(address)
        runner = web.ServerRunner(
            QuietServer(handler),
            shutdown_timeout=self.settings.shutdown_grace_seconds,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        sockname = runner.addresses[-1]
        return str(sockname[0]), int(sockname[1])

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period), then close."""
        self.stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.fast_lane is not None:
            await self.fast_lane.stop()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self.proxy is not None:
            await self.proxy.aclose()
        await self.store.aclose()

    def _config_changed(self, policy: SidecarPolicy, error: str | None) -> None:
        self.metrics.set_config(policy.hash, policy.workload, policy.policy, error is None)
        self.metrics.config_reloads.labels("rejected" if error else "ok").inc()
        namespace = curfew_namespace(policy.store_format, policy.key_prefix)
        if error is None and namespace != self.store.namespace:
            # Same connections, new key namespace: no reconnect, nothing in flight is dropped.
            old = self.store
            self.store = self.enforcer.store = RedisSessionStore(
                old.client, namespace=namespace, cluster=old.cluster,
                retain_seconds=old.retain_ms / 1000, lean=old.lean, where=old.where,
            )

    # --- dispatch ---------------------------------------------------------------------------

    async def _main(self, request: web.BaseRequest) -> web.StreamResponse:
        # aiohttp read this request with llhttp too (handed off by the fast lane, or in authz
        # mode); the checks llhttp leaves to the server are the fast lane's.
        why = request_refusal(request.raw_headers)
        if why is not None:
            refused = web.Response(status=400, text=f"bad request: {why}\n")
            refused.force_close()
            return refused
        path = request.path
        if is_reserved_target(request.raw_path):
            # Reserved targets are spelled canonically: the decoded path is the raw one.
            handler = self.reserved.get((request.method, path))
            if handler is None:
                return web.Response(status=404, text="no such curfew endpoint")
            return await handler(request)
        if self.authz is not None and path in self._ops:
            return await self._ops[path](request)
        return await self._forward(request)

    async def _ops_only(self, request: web.BaseRequest) -> web.StreamResponse:
        handler = self._ops.get(request.path) or self._ops_private.get(request.path)
        if handler is None:
            return web.Response(status=404)
        return await handler(request)

    # --- the sidecar's own endpoints --------------------------------------------------------

    async def _status(self, request: web.BaseRequest) -> web.StreamResponse:
        return await self._session_endpoint(request, activity=False)

    async def _keepalive(self, request: web.BaseRequest) -> web.StreamResponse:
        h = request.headers
        if not keepalive_allowed(h.get(KEEPALIVE_HEADER), h.get("Origin"),
                                 h.get("Sec-Fetch-Site"), h.get("Host")):
            # A page on another origin could otherwise keep a SameSite=None session alive.
            return web.Response(status=403, body=b'{"error": "keepalive_forbidden"}',
                                content_type=JSON, headers={"Cache-Control": "no-store"})
        return await self._session_endpoint(request, activity=True)

    async def _session_endpoint(
        self, request: web.BaseRequest, *, activity: bool
    ) -> web.StreamResponse:
        facts = facts_of(request, self.enforcer.session_header)
        outcome = await self.enforcer.check(facts, activity=activity, api=True)
        if not outcome.allowed:
            return answer(outcome)
        if outcome.verdict is None:
            body = b'{"error": "no_session"}' if outcome.decision == "none" else (
                b'{"error": "session_store_unavailable"}')
            status = 401 if outcome.decision == "none" else 503
            return web.Response(status=status, body=body, content_type=JSON)
        verdict = outcome.verdict
        body = build_status_body(
            self.watcher.policy, verdict.idle_remaining, verdict.absolute_remaining
        )
        return web.Response(
            body=body, content_type=JSON, headers={**outcome.headers, "Cache-Control": "no-store"}
        )

    async def _register(self, request: web.BaseRequest) -> web.StreamResponse:
        """``POST /sessions/register``: the app issued the session whose token the request
        carries in the policy's session cookie or header, as a client would send it. 201 when
        its record was created, 200 when it was already registered, 400 for a request that
        registers nothing (saying why), 403 from outside the pod, 409 for a session the
        sidecar already expired, 503 without the store. Nothing of the token is echoed or
        logged."""
        if not _from_the_pod(request.remote):
            # The ops port also listens for the kubelet and Prometheus: only the app, in the
            # pod's network namespace, reaches it over loopback.
            return _refusal(403, "register_forbidden",
                            "only the app in the pod registers: call 127.0.0.1 or ::1")
        if request.method != "POST":
            return _refusal(405, "method_not_allowed", "register with POST",
                            headers={"Allow": "POST"})
        policy = self.watcher.policy
        if policy.store_format != CURFEW_FORMAT:
            return _refusal(400, "not_registered", f"the {policy.store_format} format's sessions "
                            "are known by the app's own key in the store: nothing to register")
        field = (f"the {policy.cookie_name} cookie" if policy.cookie_name is not None
                 else f"the {policy.header} header")
        if request.body_exists:
            # Never read: a token goes where the client sends it, so it is read the same way.
            return _refusal(400, "body_not_read", f"send the token in {field}, with no body",
                            close=True)
        cookie, header = session_fields(request.headers, policy.header)
        try:
            raw = extract_session_id(policy, cookie, header)
        except AmbiguousSession:
            return _refusal(400, "ambiguous_session", f"{field} is given more than one way")
        if raw is None:
            return _refusal(400, "no_session", f"no session token in {field}")
        app_id = policy.codec.app_id(raw, cookie=policy.cookie_name is not None)
        if app_id is None:
            return _refusal(400, "invalid_session",
                            f"the token in {field} is outside the format's id grammar")
        try:
            verdict = await self.enforcer.register(policy, app_id)
        except StoreUnavailable:
            self.metrics.redis_errors.inc()
            return _refusal(503, "session_store_unavailable", "try again",
                            headers={"Retry-After": "1"})
        decision = verdict.decision
        if decision is Decision.NEW or decision is Decision.ALLOWED:
            return web.Response(status=201 if decision is Decision.NEW else 200,
                                body=json.dumps({"registered": decision.value}).encode(),
                                content_type=JSON, headers={"Cache-Control": "no-store"})
        return _refusal(409, "session_expired",
                        f"the sidecar already ended this session ({decision.value})")

    async def _healthz(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def _readyz_public(self, request: web.BaseRequest) -> web.StreamResponse:
        # On the app's port: the verdict only; the details (store address, config) stay on the
        # ops port.
        ready, _ = await self.readiness()
        return web.Response(status=200 if ready else 503, text="ready\n" if ready else
                            "not ready\n")

    async def _readyz(self, request: web.BaseRequest) -> web.StreamResponse:
        ready, report = await self.readiness()
        return web.Response(
            status=200 if ready else 503,
            body=json.dumps(report).encode(), content_type=JSON,
        )

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready with a valid config, not stopping, and (when it would turn sessions away
        without it) a reachable store; and the report that says why."""
        policy = self.watcher.policy
        report: dict[str, object] = {
            "config": policy.hash,
            "enforcement": policy.config.enforcement,
            "failurePolicy": policy.config.failure_policy,
        }
        if self.watcher.error is not None:
            report["configRejected"] = self.watcher.error
        ready = not self.stopping
        try:
            await self.store.ping()
            report["store"] = "ok"
        except StoreUnavailable as err:
            self.metrics.redis_errors.inc()
            report["store"] = f"unreachable: {err}"
            # Without the store only a fail-closed, enforcing sidecar would turn sessions away.
            if policy.enforce and policy.fail_closed:
                ready = False
        if self.stopping:
            report["stopping"] = True
        report["ready"] = ready
        return ready, report

    async def _metrics(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def _refusal(
    status: int, error: str, detail: str, *, close: bool = False,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON answer of the register endpoint that registers nothing."""
    response = web.Response(status=status, body=json.dumps({"error": error, "detail": detail})
                            .encode(), content_type=JSON,
                            headers={"Cache-Control": "no-store", **(headers or {})})
    if close:
        response.force_close()
    return response


def _from_the_pod(peer: str | None) -> bool:
    """Whether a peer address is loopback (IPv4-mapped IPv6 included)."""
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
