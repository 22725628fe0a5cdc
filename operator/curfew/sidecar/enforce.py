"""The enforcement decision for one request: extract, decode, hash, one store call, answer.

:class:`Enforcer` is shared by the reverse proxy and the authorization service: both describe
the request as a :class:`RequestFacts` and act on the :class:`RequestOutcome`. The hot path is one
keyed hash and one ``check_and_touch`` (a single EVALSHA); only an expired session costs a
second call, to delete it, a session the app issues (:meth:`Enforcer.issued`, or the ops
port's ``POST /sessions/register``: :meth:`Enforcer.register`) one to register it, and the
first sight of an app format's session one to seal its app id into the new record
(:meth:`Enforcer.seal`), which lets the purge reach it from the due index.

A value outside the store format's id grammar (``curfew.sessions.codec``) is no session: it is
forwarded as a request without one, and never reaches the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from curfew.sessions.codec import AppKey
from curfew.sessions.cookies import SEPARATE_FIELDS, AmbiguousSession
from curfew.sessions.errors import StoreError, StoreUnavailable
from curfew.sessions.identity import AppIdSeal, SessionHasher
from curfew.sessions.keys import CURFEW_FORMAT
from curfew.sessions.lifetime import Decision, Verdict
from curfew.sessions.resp import ReplyCallback
from curfew.sessions.store import RedisSessionStore
from curfew.sidecar import audit
from curfew.sidecar.metrics import SidecarMetrics
from curfew.sidecar.policy import (
    HEADER_AUDIT_EXPIRED,
    HEADER_REASON,
    HEADER_REDIRECT,
    HEADER_SESSION_ISSUED,
    SidecarPolicy,
    build_clear_cookie,
    build_expired_body,
    build_login_redirect,
    build_remaining_headers,
    build_www_authenticate,
    extract_session_id,
    is_activity,
    is_api_client,
    issued_session_id,
    issued_token_id,
)
from curfew.sidecar.reload import ConfigWatcher

_log = logging.getLogger(__name__)

JSON: Final = "application/json"
_UNAVAILABLE_BODY: Final = json.dumps({"error": "session_store_unavailable"}).encode()
_AMBIGUOUS_BODY: Final = json.dumps({"error": "ambiguous_session"}).encode()
_STORE_LOG_INTERVAL: Final = 10.0
_ISSUED_FIELD: Final = HEADER_SESSION_ISSUED.lower()
# Bound once: every attribute read on an Enum class goes through its metaclass's __getattr__.
_NEW: Final = Decision.NEW
_ALLOWED: Final = Decision.ALLOWED
_UNKNOWN: Final = Decision.UNKNOWN


class _Fields(Protocol):
    def getall(self, key: str, default: tuple[()], /) -> list[str] | tuple[()]: ...


def session_fields(headers: _Fields, session_header: str | None) -> tuple[str | None, str | None]:
    """The ``Cookie`` and session header values of a request whose fields may repeat: every
    field joined with :data:`SEPARATE_FIELDS`, so that a second session id is seen, not skipped
    (and a session cookie split over fields, which servers join differently, is refused)."""
    cookies = headers.getall("Cookie", ())
    cookie = SEPARATE_FIELDS.join(cookies) if cookies else None
    if not session_header:
        return cookie, None
    values = headers.getall(session_header, ())
    return cookie, SEPARATE_FIELDS.join(values) if values else None


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
class RequestOutcome:
    """Forward (``allowed``) with ``headers`` added, or answer with status, headers and body."""

    allowed: bool
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    body: bytes = b""
    verdict: Verdict | None = None
    """The store's verdict, when it was asked and answered."""
    decision: str = "none"
    known_session: str | None = None
    """The session hash, when the store holds a live record of the request's session."""


PASS: Final = RequestOutcome(allowed=True)
"""A request without a session: forwarded untouched."""
AMBIGUOUS: Final = RequestOutcome(
    False, {HEADER_REASON: "ambiguous_session", "Content-Type": JSON, "Cache-Control": "no-store"},
    400, _AMBIGUOUS_BODY, decision="ambiguous")
"""The answer to a request whose session id could be read two ways (two different ids, or a
cookie spelling frameworks read differently): never forwarded. ``Curfew-Reason`` lets an nginx
config, which sees every denial as 401, answer 400 too."""


@dataclass(slots=True)
class Ask:
    """A request that carries a session: what to ask the store, and what to decide with."""

    policy: SidecarPolicy
    """The policy in force when the request arrived (it stays the one that judges it)."""
    facts: RequestFacts
    sid: str
    """The keyed hash of the app's session id."""
    app_key: AppKey | None
    activity: bool


class Enforcer:
    """Judges requests against the policy in force and the shared session store."""

    def __init__(
        self,
        watcher: ConfigWatcher,
        store: RedisSessionStore,
        key: bytes,
        metrics: SidecarMetrics,
        *,
        sees_responses: bool = False,
    ) -> None:
        self.watcher = watcher
        self.store = store
        self._hash = SessionHasher(key)
        self._seal = AppIdSeal(key)
        self.metrics = metrics
        self.sees_responses = sees_responses
        """Proxy mode: the app's answers reach :meth:`issued`, which registers the sessions it
        issues (with the ops port's :meth:`register`, the ``curfew`` format's only ways to a
        record)."""
        self._issuing: tuple[SidecarPolicy | None, frozenset[bytes]] = (None, frozenset())
        self._store_log = audit.RateLimited(_STORE_LOG_INTERVAL)
        self._registering: set[asyncio.Task[None]] = set()

    @property
    def session_header(self) -> str | None:
        """The lower-cased header the policy in force reads the session from, if any."""
        return self.watcher.policy.header

    async def check(
        self, facts: RequestFacts, *, activity: bool | None = None, api: bool | None = None
    ) -> RequestOutcome:
        """Decide one request. ``activity`` / ``api`` override what the request looks like."""
        ask = self.begin(facts, activity)
        if isinstance(ask, RequestOutcome):
            return ask
        return await self.finish(ask, api=api)

    def begin(self, facts: RequestFacts, activity: bool | None = None) -> RequestOutcome | Ask:
        """The first step of :meth:`check`: the outcome of a request without a session, or the
        store question of one with a session (send it with :meth:`ask_now` or :meth:`finish`)."""
        policy = self.watcher.policy
        try:
            raw = extract_session_id(policy, facts.cookie, facts.session_header)
        except AmbiguousSession:
            self.metrics.count("ambiguous", "rejected")
            return AMBIGUOUS
        if raw is None:
            self.metrics.count("none", "forwarded")
            return PASS
        codec = policy.codec
        app_id = codec.app_id(raw, cookie=policy.cookie_name is not None)
        if app_id is None:
            # Not a session id of this format: no key is built from it, nothing is stored.
            # Not audited either (a client could fill the log); the metric counts it.
            self.metrics.count("invalid", "forwarded")
            return PASS
        if activity is None:
            activity = is_activity(policy, facts.method, facts.path)
        return Ask(policy, facts, self._hash(app_id), codec.app_key(app_id), activity)

    def ask_now(self, ask: Ask, callback: ReplyCallback) -> bool:
        """Send the store question at once (see ``RedisSessionStore.check_and_touch_now``):
        ``callback`` gets the raw reply, for :meth:`settle`; False when only :meth:`finish`
        can ask."""
        policy = ask.policy
        return self.store.check_and_touch_now(
            callback, ask.sid, policy.limits, activity=ask.activity, policy=policy.policy,
            workload=policy.workload, app_key=ask.app_key,
        )

    async def finish(
        self, ask: Ask, *, api: bool | None = None, after: BaseException | None = None
    ) -> RequestOutcome:
        """Ask the store (going on ``after`` a failed :meth:`ask_now`) and decide."""
        policy = ask.policy
        try:
            verdict = await self.store.check_and_touch(
                ask.sid, policy.limits, activity=ask.activity, policy=policy.policy,
                workload=policy.workload, app_key=ask.app_key, after=after,
            )
        except StoreUnavailable as err:
            return self.unavailable(ask, err)
        return self.settle(ask, verdict) or await self.expire(ask, verdict, api)

    def settle(self, ask: Ask, verdict: Verdict) -> RequestOutcome | None:
        """The outcome of a verdict, unless the session must be expired (then :meth:`expire`,
        which needs the store again)."""
        policy = ask.policy
        decision = verdict.decision
        if decision is _NEW or decision is _ALLOWED:
            if decision is _NEW:
                audit.emit(audit.SESSION_FIRST_SEEN, session=ask.sid, workload=policy.workload,
                           policy=policy.policy)
                if ask.app_key is not None:
                    self.seal(ask.sid, ask.app_key)
            # A Decision is its own name (a StrEnum): no .value lookup on the hot path.
            self.metrics.count(decision, "forwarded")
            headers = build_remaining_headers(
                policy, verdict.idle_remaining, verdict.absolute_remaining, verdict.renewal_due
            )
            # Positional: keywords would cost the hot path a dict per request.
            return RequestOutcome(True, headers, 200, b"", verdict, decision, ask.sid)
        if decision is _UNKNOWN:
            # The app does not know this session: a request without one, nothing stored.
            self.metrics.count(decision, "forwarded")
            return PASS
        if policy.enforce:
            return None
        reason = decision.value
        facts = ask.facts
        audit.emit(audit.SESSION_EXPIRED, session=ask.sid, reason=reason, enforced=False,
                   method=facts.method, path=facts.path, workload=policy.workload,
                   policy=policy.policy)
        self.metrics.count(reason, "audited")
        headers = build_remaining_headers(
            policy, verdict.idle_remaining, verdict.absolute_remaining
        )
        headers[HEADER_AUDIT_EXPIRED] = reason
        return RequestOutcome(True, headers, verdict=verdict, decision=reason)

    async def expire(self, ask: Ask, verdict: Verdict, api: bool | None) -> RequestOutcome:
        """End an expired session (Enforce mode) and turn its request away."""
        policy, facts, sid, app_key = ask.policy, ask.facts, ask.sid, ask.app_key
        reason = verdict.decision.value
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
        location = None if api else build_login_redirect(policy, facts.target, reason)
        if location is None:
            headers["WWW-Authenticate"] = build_www_authenticate(policy, reason)
            headers["Content-Type"] = JSON
            headers["Cache-Control"] = "no-store"
            self.metrics.count(reason, "rejected")
            return RequestOutcome(False, headers, 401, build_expired_body(reason), verdict, reason)
        audit.emit(audit.REAUTHENTICATION_REDIRECT, session=sid, reason=reason,
                   path=facts.path, login=policy.login_url)
        headers["Location"] = location
        headers[HEADER_REDIRECT] = location
        headers["Cache-Control"] = "no-store"
        self.metrics.count(reason, "redirected")
        return RequestOutcome(False, headers, 302, b"", verdict, reason)

    @property
    def issuing(self) -> frozenset[bytes]:
        """The lower-cased names of the answer fields that may carry a session the app issued,
        for :meth:`issued`: in proxy mode with the ``curfew`` format, the ``Set-Cookie`` of a
        cookie session or the session header, and :data:`HEADER_SESSION_ISSUED`; empty
        otherwise (the answer path then reads none)."""
        policy = self.watcher.policy
        cached, names = self._issuing
        if policy is not cached:
            names = frozenset()
            if self.sees_responses and policy.store_format == CURFEW_FORMAT:
                carrier = "set-cookie" if policy.cookie_name is not None else policy.header
                assert carrier is not None
                names = frozenset({carrier.encode(), _ISSUED_FIELD.encode()})
            self._issuing = (policy, names)
        return names

    def issued(self, known_session: str | None, fields: Sequence[tuple[str, str]]) -> None:
        """The app's answer carried ``fields`` (lower-cased name, value) named by
        :attr:`issuing`: each session it issues there is registered (in the background, as the
        answer is relayed), which is how a ``curfew``-format session gets its record.
        ``known_session``: the session the request carried, when the store already holds it
        (an app re-sending its cookie or token then costs nothing)."""
        policy = self.watcher.policy
        if policy.store_format != CURFEW_FORMAT:
            return
        cookies = [v for n, v in fields if n == "set-cookie"]
        found = {issued_session_id(policy, cookies) if cookies else None}
        for carrier in (policy.header if policy.cookie_name is None else None, _ISSUED_FIELD):
            values = [v for n, v in fields if n == carrier]
            if values:
                found.add(issued_token_id(policy, values))
        for app_id in found:
            if app_id is None:
                continue
            sid = self._hash(app_id)
            if sid == known_session:
                continue
            task = asyncio.get_running_loop().create_task(self._register(policy, sid))
            self._registering.add(task)
            task.add_done_callback(self._registering.discard)

    def seal(self, sid: str, app_key: AppKey) -> None:
        """Write the app's id, sealed, into the record the store has just created for it: a
        follow-up call on first sight only, so the steady state stays one call per request. In
        the background: the request does not wait, and a failed write leaves a record the purge
        still handles, by its walk of the app's keys."""
        sealed = self._seal.seal(sid, app_key.app_id)
        task = asyncio.get_running_loop().create_task(self._write_seal(sid, sealed))
        self._registering.add(task)
        task.add_done_callback(self._registering.discard)

    async def _write_seal(self, sid: str, sealed: str) -> None:
        try:
            await self.store.seal_app_id(sid, sealed)
        except StoreError as err:
            self.metrics.redis_errors.inc()
            _log.warning("could not seal the app id of session %s: %s", sid, err)

    async def register(self, policy: SidecarPolicy, app_id: str) -> Verdict:
        """Register a session the app issued (an id of the format's grammar), now: its record
        is created if missing, touched if live; a tombstone stays one. Raises
        :class:`StoreUnavailable`."""
        return await self._record(policy, self._hash(app_id))

    async def _record(self, policy: SidecarPolicy, sid: str) -> Verdict:
        verdict = await self.store.register(
            sid, policy.limits, policy=policy.policy, workload=policy.workload
        )
        if verdict.decision is _NEW:
            audit.emit(audit.SESSION_FIRST_SEEN, session=sid, workload=policy.workload,
                       policy=policy.policy)
        self.metrics.count("issued", "registered")
        return verdict

    async def _register(self, policy: SidecarPolicy, sid: str) -> None:
        try:
            await self._record(policy, sid)
        except StoreUnavailable as err:
            self.metrics.redis_errors.inc()
            _log.warning("could not register an issued session %s: %s", sid, err)

    def unavailable(self, ask: Ask, err: StoreUnavailable) -> RequestOutcome:
        """The outcome when the store could not be asked: per the failure policy."""
        policy, sid = ask.policy, ask.sid
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
        return RequestOutcome(False, headers, 503, _UNAVAILABLE_BODY, decision="unavailable")
