"""The enforcement decision for one request: extract, hash, one store call, then answer.

:class:`Enforcer` is shared by the reverse proxy and the authorization service: both describe
the request as a :class:`RequestFacts` and act on the :class:`Outcome`. The hot path is one
keyed hash and one ``check_and_touch`` (a single EVALSHA); only an expired session costs a
second call, to delete it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Final

from curfew.sessions.errors import StoreUnavailable
from curfew.sessions.identity import session_hash
from curfew.sessions.keys import app_session_key
from curfew.sessions.rules import Decision, Verdict
from curfew.sessions.store import SessionStore
from curfew.sidecar import audit
from curfew.sidecar.metrics import SidecarMetrics
from curfew.sidecar.reload import ConfigWatcher
from curfew.sidecar.rules import (
    HEADER_AUDIT_EXPIRED,
    HEADER_REASON,
    HEADER_REDIRECT,
    SidecarPolicy,
    build_clear_cookie,
    build_expired_body,
    build_login_redirect,
    build_remaining_headers,
    build_www_authenticate,
    extract_session_id,
    is_activity,
    is_api_client,
)

_log = logging.getLogger(__name__)

JSON: Final = "application/json"
_UNAVAILABLE_BODY: Final = json.dumps({"error": "session_store_unavailable"}).encode()
_STORE_LOG_INTERVAL: Final = 10.0


@dataclass(slots=True)
class RequestFacts:
    """What the decision needs to know about a request (from the proxy or an authz check)."""

    method: str
    path: str
    """The path alone, matched against excluded-path globs."""
    target: str
    """Path and query as the client sent them: where a re-authenticated browser returns to."""
    cookie: str | None = None
    session_header: str | None = None
    accept: str | None = None
    requested_with: str | None = None
    fetch_mode: str | None = None
    secure: bool = False
    """Whether the client reached us over HTTPS (cookie clearing then says Secure)."""


@dataclass(slots=True)
class Outcome:
    """Forward (``allowed``) with ``headers`` added, or answer with status, headers and body."""

    allowed: bool
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    body: bytes = b""
    verdict: Verdict | None = None
    """The store's verdict, when it was asked and answered."""
    decision: str = "none"


PASS: Final = Outcome(allowed=True)
"""A request without a session: forwarded untouched."""


class Enforcer:
    """Judges requests against the policy in force and the shared session store."""

    def __init__(
        self,
        watcher: ConfigWatcher,
        store: SessionStore,
        key: bytes,
        metrics: SidecarMetrics,
    ) -> None:
        self.watcher = watcher
        self.store = store
        self._key = key
        self.metrics = metrics
        self._store_log = audit.RateLimited(_STORE_LOG_INTERVAL)

    @property
    def session_header(self) -> str | None:
        """The lower-cased header the policy in force reads the session from, if any."""
        return self.watcher.policy.header

    async def check(
        self, facts: RequestFacts, *, activity: bool | None = None, api: bool | None = None
    ) -> Outcome:
        """Decide one request. ``activity`` / ``api`` override what the request looks like."""
        policy = self.watcher.policy
        raw = extract_session_id(policy, facts.cookie, facts.session_header)
        if raw is None:
            self.metrics.count("none", "forwarded")
            return PASS
        sid = session_hash(self._key, raw)
        app_key = app_session_key(policy.store_format, policy.key_prefix, raw)
        if activity is None:
            activity = is_activity(policy, facts.method, facts.path)
        try:
            verdict = await self.store.check_and_touch(
                sid, policy.limits, activity=activity, policy=policy.policy,
                workload=policy.workload, app_key=app_key,
            )
        except StoreUnavailable as err:
            return self._unavailable(policy, sid, err)
        decision = verdict.decision
        if decision is Decision.NEW or decision is Decision.ALLOWED:
            if decision is Decision.NEW:
                audit.emit(audit.SESSION_FIRST_SEEN, session=sid, workload=policy.workload,
                           policy=policy.policy)
            self.metrics.count(decision.value, "forwarded")
            headers = build_remaining_headers(
                policy, verdict.idle_remaining, verdict.absolute_remaining, verdict.renewal_due
            )
            return Outcome(True, headers, verdict=verdict, decision=decision.value)
        return await self._expired(policy, facts, sid, app_key, verdict, api)

    async def _expired(
        self,
        policy: SidecarPolicy,
        facts: RequestFacts,
        sid: str,
        app_key: str | None,
        verdict: Verdict,
        api: bool | None,
    ) -> Outcome:
        reason = verdict.decision.value
        if not policy.enforce:
            audit.emit(audit.SESSION_EXPIRED, session=sid, reason=reason, enforced=False,
                       method=facts.method, path=facts.path, workload=policy.workload,
                       policy=policy.policy)
            self.metrics.count(reason, "audited")
            headers = build_remaining_headers(
                policy, verdict.idle_remaining, verdict.absolute_remaining
            )
            headers[HEADER_AUDIT_EXPIRED] = reason
            return Outcome(True, headers, verdict=verdict, decision=reason)
        try:
            await self.store.expire(sid, app_key=app_key)
        except StoreUnavailable as err:
            # The record still lapses at its deadline; the client is turned away either way.
            self.metrics.redis_errors.inc()
            _log.warning("could not delete expired session %s: %s", sid, err)
        audit.emit(audit.SESSION_EXPIRED, session=sid, reason=reason, enforced=True,
                   method=facts.method, path=facts.path, workload=policy.workload,
                   policy=policy.policy)
        headers = {HEADER_REASON: reason}
        clear = build_clear_cookie(policy, facts.secure)
        if clear is not None:
            headers["Set-Cookie"] = clear
        if api is None:
            # Browsers navigate with cookies; a header-borne token is always an API client's.
            api = policy.header is not None or is_api_client(
                facts.method, facts.accept, facts.requested_with, facts.fetch_mode
            )
        location = None if api else build_login_redirect(policy, facts.target)
        if location is None:
            headers["WWW-Authenticate"] = build_www_authenticate(policy, reason)
            headers["Content-Type"] = JSON
            headers["Cache-Control"] = "no-store"
            self.metrics.count(reason, "rejected")
            return Outcome(False, headers, 401, build_expired_body(reason), verdict, reason)
        audit.emit(audit.REAUTHENTICATION_REDIRECT, session=sid, reason=reason,
                   path=facts.path, login=policy.login_url)
        headers["Location"] = location
        headers[HEADER_REDIRECT] = location
        headers["Cache-Control"] = "no-store"
        self.metrics.count(reason, "redirected")
        return Outcome(False, headers, 302, b"", verdict, reason)

    def _unavailable(self, policy: SidecarPolicy, sid: str, err: StoreUnavailable) -> Outcome:
        self.metrics.redis_errors.inc()
        held = self._store_log.take()
        if held is not None:
            audit.emit(audit.STORE_UNAVAILABLE, session=sid, error=str(err),
                       failure_policy=policy.config.failure_policy, suppressed=held or None,
                       workload=policy.workload)
        if not policy.fail_closed:
            self.metrics.count("unavailable", "forwarded")
            return PASS
        self.metrics.count("unavailable", "rejected")
        headers = {HEADER_REASON: "store_unavailable", "Content-Type": JSON, "Retry-After": "1",
                   "Cache-Control": "no-store"}
        return Outcome(False, headers, 503, _UNAVAILABLE_BODY, decision="unavailable")
