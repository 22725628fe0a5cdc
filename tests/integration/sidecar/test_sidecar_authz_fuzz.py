"""Differential fuzzing of authz mode: hypothesis writes streams of authorization checks, shaped
as nginx's ``auth_request`` sends them (``X-Original-URI`` / ``X-Original-Method``) and as
Envoy's ``ext_authz`` does (the original method, ``path_prefix`` + the original path), with the
framing tricks, bodies, split writes and pipelining of ``fuzz_kit`` (shared with the proxy's
fuzz test), hostile targets (dot-segments, encoded dots and slashes, ``;`` parameters, the
sidecar's own paths) and re-spelled session cookies. They go to a real sidecar in authz mode on
a real Redis, which knows one live session (registered as an app would) and one expired one.

Checked after every example, against the pure rules (``curfew.sidecar.reserved``,
``curfew.sidecar.policy``, ``curfew.sessions.lifetime.decide``) applied to the check alone:

- every answer belongs to its own check, in order: its status, ``Curfew-Reason``, remaining
  time and login redirect (which carries the check's own target) are what the rules say for
  that check: a reserved target allowed unjudged only when the normalised rule says it is
  reserved, an ambiguous cookie 400 (nginx: 401 with ``Curfew-Reason``), an expired session
  401 or a redirect, a stranger's session allowed and nothing written;
- each check was judged once, as its own method, target and cookie (never a check hidden in a
  body or past a refusal); a refused check is answered 400 and its connection closed, and the
  connection never desynchronises.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuzz_kit import (
    LONG,
    METHODS,
    PLACEHOLDER,
    Answer,
    Rig,
    Sent,
    Stream,
    answered_in_step,
    check_answers,
    exchange_all,
    framed,
    fuzz_profile,
    streams,
)
from hypothesis import given
from hypothesis import strategies as st
from sidecar_harness import sid_of

from curfew.sessions.cookies import AmbiguousSession
from curfew.sessions.lifetime import Decision, SessionRecord, decide
from curfew.sidecar.policy import (
    SidecarPolicy,
    build_login_redirect,
    extract_session_id,
    is_api_client,
)
from curfew.sidecar.reserved import is_reserved_target
from fixtures.redis_servers import RedisServer
from fixtures.sessions import plant

MIN = 60_000
PREFIX = "/authz"
LIVE, EXPIRED = "raw-fuzz-live", "raw-expired"
# Not the proxy's 10,000: CI time is limited, and the framing is the proxy test's too.
PROFILE = fuzz_profile("sidecar-authz-fuzz", 2_000)


class AuthzRig(Rig):
    """Redis and a sidecar in authz mode (Envoy's checks under ``/authz``)."""

    def __init__(self) -> None:
        super().__init__()
        self.policy: SidecarPolicy | None = None

    async def start(self, tmp: Path, redis_url: str) -> None:
        sidecar = await self.start_sidecar(tmp, redis_url, mode="authz",
                                           authz_path_prefix=PREFIX)
        self.policy = policy = sidecar.watcher.policy
        assert self.inspector is not None
        await sidecar.enforcer.register(policy, LIVE)  # as the app does on the ops port
        await plant(self.inspector, sid_of(EXPIRED), created_ago_ms=20 * MIN,
                    last_ago_ms=16 * MIN)

    async def records(self) -> tuple[dict[str, SessionRecord | None], int]:
        """The known sessions' records as they are now, and the store's clock."""
        assert self.inspector is not None
        got = await self.inspector.read_records([sid_of(LIVE), sid_of(EXPIRED)])
        return dict(zip((LIVE, EXPIRED), got, strict=True)), await self.inspector.server_time_ms()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
        ) -> Iterator[AuthzRig]:
    redis_server.client().flushall()
    rig = AuthzRig()
    rig.run(rig.start(tmp_path_factory.mktemp("authz-fuzz") / "config", redis_server.url))
    yield rig
    rig.close()


# --- what the proxy in front sends ------------------------------------------------------------

P = PLACEHOLDER
TARGETS = [
    f"/f/{P}", f"/f/{P}?q=1", f"/f/{P}?a=%2F&b=..%2F",
    f"/.curfew/session?{P}", f"/.curfew/client.js?{P}", f"/.curfew/keepalive?{P}",
    f"/.curfew/../admin/{P}", f"/%2Ecurfew/../admin/{P}", f"/.curfew/%2E%2E/admin/{P}",
    f"/.curfew/..;/admin/{P}", f"/.curfew//x/{P}", f"/.curfew/se%73sion?{P}",
    f"/.curfew/./session?{P}", f"/a/./b/../{P}", f"/x%2F{P}", f"/%2e%2e/{P}",
    f"/.curfew%2Fsession?{P}", f"/.curfew/session;{P}",
]
"""The original targets: plain, the sidecar's own paths, and other spellings of them."""
COOKIES = [
    None, f"session={LIVE}", f"session={EXPIRED}", "theme=dark", "session=raw-stranger",
    f"session={LIVE}; session=raw-other", f"session={EXPIRED}; session={EXPIRED}",
    f"x=1, session={EXPIRED}", f'session="{EXPIRED}"', 'session="\\162aw-expired"',
    f"Session={EXPIRED}", f" session = {EXPIRED} ", f"theme=dark;session={LIVE}",
    f"session={EXPIRED};", "session=%72aw-expired",
]
"""Session cookies and their re-spellings (commas, quotes, escapes, case, whitespace)."""


@dataclass
class Check(Sent):
    """A check; ``method`` and ``target`` are the original request's."""

    nginx: bool = False
    accept: str | None = None


@st.composite
def checks(draw: st.DrawFn) -> Check:
    method = draw(st.sampled_from(METHODS))
    target = draw(st.sampled_from(TARGETS))
    cookie = draw(st.sampled_from(COOKIES))
    accept = draw(st.sampled_from([None, "text/html", "application/json"]))
    nginx = draw(st.booleans())
    fields = [b"Host: shop"]
    if nginx:
        fields += [b"X-Original-URI: " + target.encode(),
                   b"X-Original-Method: " + method.encode()]
    else:
        fields += [b"x-envoy-internal: true", b"x-request-id: " + PLACEHOLDER.encode()]
    if accept is not None:
        fields.append(b"Accept: " + accept.encode())
    if cookie is not None:
        fields.append(b"Cookie: " + cookie.encode())
    # The cookie as a server reads the field: without the whitespace around it.
    read = None if cookie is None else cookie.strip(" ")
    sent = draw(framed("GET" if nginx else method, "/auth" if nginx else PREFIX + target,
                       fields, read))
    return Check(**{**vars(sent), "method": method, "target": target}, nginx=nginx,
                 accept=accept)


# --- the pure rules -----------------------------------------------------------------------------

Signature = tuple[int, bytes | None, bool, bytes | None]
"""An answer's status, ``Curfew-Reason``, whether it carries the remaining time, and its
``Location``."""


def signature(answer: Answer) -> Signature:
    h = answer.headers
    return (answer.status, h.get(b"curfew-reason"), b"curfew-idle-remaining" in h,
            h.get(b"location"))


def judged_by_rules(check: Check) -> bool:
    """Whether the rules judge the check's session: every target but a reserved one."""
    return not is_reserved_target(check.target)


def expected(policy: SidecarPolicy, check: Check, records: dict[str, SessionRecord | None],
             now: int) -> Signature:
    """What the rules answer to ``check`` alone."""
    if not judged_by_rules(check):
        return (200, None, False, None)
    try:
        raw = extract_session_id(policy, check.cookie, None)
    except AmbiguousSession:
        return (401 if check.nginx else 400, b"ambiguous_session", False, None)
    app_id = None if raw is None else policy.codec.app_id(raw, cookie=True)
    if app_id is None:
        return (200, None, False, None)
    verdict, _ = decide(records.get(app_id), policy.limits, now_ms=now, activity=True,
                        known=False)
    if verdict.decision in (Decision.NEW, Decision.ALLOWED):
        return (200, None, True, None)
    if verdict.decision is Decision.UNKNOWN:
        return (200, None, False, None)
    reason = verdict.decision.value
    api = is_api_client(check.method, check.accept, None, None)
    location = None if api else build_login_redirect(policy, check.target, reason)
    status = 401 if check.nginx or location is None else 302
    return (status, reason.encode(), False, None if location is None else location.encode())


def _check_verdicts(rig: AuthzRig, stream: Stream, answers: list[Answer],
                    records: dict[str, SessionRecord | None], now: int) -> None:
    assert rig.policy is not None
    sent = stream.requests
    in_step = answered_in_step(stream)
    for i, check in enumerate(sent):
        assert isinstance(check, Check)
        judged = rig.judged.pop((check.method, check.target, check.cookie), 0)
        once = 1 if judged_by_rules(check) else 0
        if check.refused or i >= len(answers):
            # Never read as a check: refused, or past a refusal.
            assert judged == 0 or (not in_step and judged <= once), (check.target, judged)
            continue
        if not in_step:
            assert judged <= once
            continue
        assert judged == once, f"check {i} ({check.target}) judged {judged} times, not {once}"
        want = expected(rig.policy, check, records, now)
        got = signature(answers[i])
        assert got == want, (i, "nginx" if check.nginx else "envoy", check.method,
                             check.target, check.cookie, check.accept, answers[i].body)


@pytest.mark.timeout(86_400 if LONG else 1_800)
def test_every_check_gets_its_own_verdict_by_the_pure_rules(
    rig: AuthzRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)  # thousands of examples: keep no log records
    seen = Counter[str]()

    @PROFILE
    @given(st.lists(streams(checks()), min_size=1, max_size=2))
    def example(drawn: list[Stream]) -> None:
        batch = [s.numbered() for s in drawn]
        records, now = rig.run(rig.records())
        results = rig.run(exchange_all(rig.port, batch))
        for stream, (answers, closed) in zip(batch, results, strict=True):
            check_answers(stream, answers, closed)
            _check_verdicts(rig, stream, answers, records, now)
            for answer in answers:
                seen[str(answer.status)] += 1
        seen["examples"] += 1

    example()
    # The generation reached every kind of verdict.
    assert {"200", "302", "400", "401"} <= set(seen), seen
