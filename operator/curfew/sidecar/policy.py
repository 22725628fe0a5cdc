"""Pure request rules of the sidecar: the effective policy of one config, and what a request is.

:class:`SidecarPolicy` is the unified config compiled once per (re)load into what the hot path
needs (exclusion globs as one regex, header names lower-cased). The ``build_*`` functions turn a
verdict into the headers, bodies and redirects the sidecar answers with. No I/O here: both the
reverse proxy and the authorization endpoint use these rules, and unit tests cover them directly.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from curfew.api.config import UnifiedConfig
from curfew.sessions.codec import SessionCodec, build_codec
from curfew.sessions.cookies import SEPARATE_FIELDS, AmbiguousSession, session_cookie
from curfew.sessions.lifetime import Limits

HEADER_IDLE_REMAINING: Final = "Curfew-Idle-Remaining"
HEADER_ABSOLUTE_REMAINING: Final = "Curfew-Absolute-Remaining"
HEADER_WARNING: Final = "Curfew-Warning"
HEADER_AUDIT_EXPIRED: Final = "Curfew-Audit-Expired"
HEADER_RENEWAL_DUE: Final = "Curfew-Renewal-Due"
HEADER_REASON: Final = "Curfew-Reason"
HEADER_REDIRECT: Final = "Curfew-Redirect"
CURFEW_HEADERS: Final = frozenset(
    h.lower()
    for h in (HEADER_IDLE_REMAINING, HEADER_ABSOLUTE_REMAINING, HEADER_WARNING,
              HEADER_AUDIT_EXPIRED, HEADER_RENEWAL_DUE, HEADER_REASON, HEADER_REDIRECT)
)
"""Headers only the sidecar may set: stripped from client requests so none can be forged."""
HEADER_SESSION_ISSUED: Final = "Curfew-Session-Issued"
"""On an app's answer: the session token it just issued (for example in a JSON body), exactly
as the client will send it in the session cookie's value or the session header."""
APP_ANSWER_HEADERS: Final = frozenset({HEADER_SESSION_ISSUED.lower()})
"""Headers the app answers the sidecar with: read by the sidecar and removed before the answer
leaves the pod, whatever the store format. A new one is added here, and nowhere else."""

RESERVED_PREFIX: Final = "/.curfew/"
"""Paths the sidecar answers itself and never forwards (status, keepalive, static assets)."""
STATUS_PATH: Final = "/.curfew/session"
KEEPALIVE_PATH: Final = "/.curfew/keepalive"
HEALTHZ_PATH: Final = "/.curfew/healthz"
READYZ_PATH: Final = "/.curfew/readyz"
REGISTER_PATH: Final = "/sessions/register"
"""On the ops port only: the app registers a ``curfew``-format session it issued."""

REASON_PARAMETER: Final = "curfew_reason"
"""Query parameter of the login URL that says why the session ended (``idle``, ``absolute``,
or the browser client's ``signout``), so the login page can tell the user."""

_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_NAVIGATION_MODES: Final = frozenset({"navigate", "nested-navigate"})


@dataclass(frozen=True, slots=True)
class SidecarPolicy:
    """One unified config, compiled for the request path."""

    config: UnifiedConfig
    limits: Limits
    enforce: bool
    fail_closed: bool
    cookie_name: str | None
    header: str | None
    header_prefix: str | None
    warning_lead: float | None
    excluded_paths: re.Pattern[str] | None
    excluded_methods: frozenset[str]
    login_url: str | None
    return_to_parameter: str
    login_prefix: str | None
    """``loginURL`` up to the value of ``returnToParameter`` (:func:`build_login_prefix`)."""
    store_format: str
    key_prefix: str
    codec: SessionCodec
    """Cookie or header value -> the app's session id -> the app's key (the id grammar)."""
    policy: str
    workload: str

    @property
    def hash(self) -> str:
        return self.config.hash or self.config.compute_hash()


def build_policy(config: UnifiedConfig, app_secrets: tuple[bytes, ...] = ()) -> SidecarPolicy:
    """Compile a validated unified config for the request path. ``app_secrets``: the app's
    cookie secrets (``CURFEW_APP_SECRET``), which a config with ``store.appSecretRef`` needs;
    raises ValueError without them."""
    if config.store.app_secret_ref is not None and not app_secrets:
        raise ValueError(
            "store.appSecretRef is set but CURFEW_APP_SECRET is not: the sidecar needs the "
            "app's cookie secret(s) from that Secret to verify cookie signatures")
    verify = app_secrets if config.store.app_secret_ref is not None else ()
    globs = config.activity.exclude_paths
    excluded = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None
    t = config.timeouts
    return SidecarPolicy(
        config=config,
        limits=Limits(
            idle_seconds=t.idle_seconds,
            absolute_seconds=t.absolute_seconds,
            renewal_seconds=t.renewal_seconds,
        ),
        enforce=config.enforcement == "Enforce",
        fail_closed=config.failure_policy == "Fail",
        cookie_name=config.session.cookie_name,
        header=config.session.header.lower() if config.session.header else None,
        header_prefix=config.session.header_prefix,
        warning_lead=t.warning_lead_seconds,
        excluded_paths=excluded,
        excluded_methods=frozenset(m.upper() for m in config.activity.exclude_methods),
        login_url=config.reauthentication.login_url,
        return_to_parameter=config.reauthentication.return_to_parameter,
        login_prefix=build_login_prefix(config.reauthentication.login_url,
                                        config.reauthentication.return_to_parameter),
        store_format=config.store.format,
        key_prefix=config.store.key_prefix,
        codec=build_codec(config.store.format, config.store.key_prefix, config.store.id_pattern,
                          verify, config.session.id_encoding),
        policy=",".join(config.sources),
        workload=str(config.workload),
    )


def extract_session_id(
    policy: SidecarPolicy, cookie_header: str | None, header_value: str | None
) -> str | None:
    """The raw session id a request carries, per the policy's session source; None if none.

    ``header_value`` is the value of the policy's session header (when it reads a header), its
    values joined with :data:`SEPARATE_FIELDS` when the field came more than once. A header
    without the configured prefix (``Bearer ``, compared case-insensitively) carries no session
    of ours, so the request passes untouched like one without a session. ``cookie_header`` is
    every ``Cookie`` field joined with :data:`SEPARATE_FIELDS`, read by the one cookie reading
    (:func:`curfew.sessions.cookies.session_cookie`). Raises :class:`AmbiguousSession` for two
    different session ids, or a session cookie frameworks could read differently.
    """
    if policy.cookie_name is not None:
        return session_cookie(cookie_header, policy.cookie_name) if cookie_header else None
    if not header_value:
        return None
    if SEPARATE_FIELDS in header_value:
        values = {v.strip() for v in header_value.split(SEPARATE_FIELDS)}
        if len(values) > 1:
            raise AmbiguousSession(f"the session header came {len(values)} times, differing")
        header_value = values.pop()
    value = header_value.strip()
    prefix = policy.header_prefix
    if prefix:
        if value[: len(prefix)].lower() != prefix.lower():
            return None
        value = value[len(prefix):].strip()
    return value or None


def issued_session_id(policy: SidecarPolicy, set_cookies: Sequence[str]) -> str | None:
    """The app's session id in the ``Set-Cookie`` values of one answer: the last one that sets
    the policy's session cookie (as a browser keeps the last), when it sets a value of the
    format's grammar rather than deleting the cookie (``Max-Age`` <= 0, or an ``Expires``
    already past: the app logging the session out); else None."""
    name = policy.cookie_name
    if name is None:
        return None
    found: str | None = None
    for line in set_cookies:
        pair, _, attributes = line.partition(";")
        key, sep, value = pair.partition("=")
        if not sep or key.strip() != name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        found = None if not value or _deletes(attributes) else value
    if found is None:
        return None
    return policy.codec.app_id(found, cookie=True)


def issued_token_id(policy: SidecarPolicy, values: Sequence[str]) -> str | None:
    """The app's session id in the values of one answer field that carries a token the app
    issued (the session header, as Spring's ``HeaderHttpSessionIdResolver`` sends
    ``X-Auth-Token``, or :data:`HEADER_SESSION_ISSUED`): the token as the client will send it,
    the header prefix (``Bearer ``) optional. None when the field is empty (a sign-out), says
    two different tokens, or holds none of the format's grammar."""
    tokens = {v.strip() for v in values}
    if len(tokens) != 1:
        return None
    token = tokens.pop()
    # The prefix as it ends a stripped value too ("Bearer" alone is no token).
    prefix = (policy.header_prefix or "").strip()
    n = len(prefix)
    if n and token[:n].lower() == prefix.lower() and (len(token) == n or token[n].isspace()):
        token = token[n:].strip()
    if not token:
        return None
    return policy.codec.app_id(token, cookie=policy.cookie_name is not None)


def _deletes(attributes: str) -> bool:
    """Whether ``Set-Cookie`` attributes delete the cookie: ``Max-Age`` <= 0, or, without a
    ``Max-Age`` (which takes precedence, RFC 6265 section 5.3), an ``Expires`` already past."""
    expired = False
    for attribute in attributes.split(";"):
        key, _, value = attribute.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key == "max-age" and re.fullmatch(r"-?[0-9]{1,18}", value):
            return int(value) <= 0
        if key == "expires":
            try:
                expires = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            expired = expires <= datetime.now(UTC)
    return expired


def is_activity(policy: SidecarPolicy, method: str, path: str) -> bool:
    """Whether a request counts as user activity (extends the idle timer)."""
    if method in policy.excluded_methods:
        return False
    return policy.excluded_paths is None or policy.excluded_paths.match(path) is None


def is_api_client(
    method: str, accept: str | None, requested_with: str | None, fetch_mode: str | None
) -> bool:
    """Whether an expired request gets 401 rather than a login redirect.

    API clients: anything but GET/HEAD, ``Accept`` naming JSON, ``X-Requested-With``, or a
    ``Sec-Fetch-Mode`` other than a navigation (``fetch()``/XHR from a page: a redirect to a
    login page on another origin would only fail there as a CORS error).
    """
    if method not in _SAFE_METHODS or requested_with:
        return True
    if accept and "json" in accept.lower():
        return True
    if fetch_mode:
        return fetch_mode.lower() not in _NAVIGATION_MODES
    return False


def safe_return_path(target: str) -> str:
    """The original request target as a same-origin relative URL, or ``/`` if it is not one.

    Only ``/path?query`` forms survive: scheme- or host-relative targets (``//evil``, ``/\\evil``),
    absolute URLs and control characters could turn the login page's redirect back into an open
    redirect.
    """
    if (
        not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(ord(c) < 0x20 or c == "\x7f" for c in target)
    ):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return urlunsplit(("", "", parts.path, parts.query, ""))


_FORM_SAFE: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._"
)


def form_encode(text: str) -> str:
    """``text`` as a name or value of an ``application/x-www-form-urlencoded`` query, byte for
    byte as the URL Standard serializes it: what a browser's ``URLSearchParams`` writes, so the
    login URL the sidecar redirects to and the one the browser client builds are the same bytes.

    Hand-written because Python has no such serializer: ``quote_plus`` keeps ``~`` and escapes
    ``*``, the standard does the opposite.
    """
    if not text.isascii():
        # A lone surrogate becomes U+FFFD, as the standard's UTF-8 encoder makes it.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return "".join(
        chr(b) if b in _FORM_SAFE else "+" if b == 0x20 else f"%{b:02X}"
        for b in text.encode("utf-8")
    )


def build_login_prefix(login_url: str | None, parameter: str) -> str | None:
    """``loginURL`` with its query kept byte for byte but for any ``parameter`` or
    ``curfew_reason`` already in it, followed by ``parameter=``: what the sidecar and the
    browser client (``client.json``'s ``loginPrefix``) complete with the return path."""
    if login_url is None:
        return None
    parts = urlsplit(login_url)
    kept = [
        pair for pair in parts.query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) not in (parameter, REASON_PARAMETER)
    ]
    query = "&".join([*kept, f"{form_encode(parameter)}="])
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def build_login_redirect(policy: SidecarPolicy, target: str, reason: str) -> str | None:
    """The login URL carrying the original target (:func:`safe_return_path`) and why the
    session ended; None without a ``loginURL``. The browser client builds the same bytes."""
    if policy.login_prefix is None:
        return None
    return (f"{policy.login_prefix}{form_encode(safe_return_path(target))}"
            f"&{REASON_PARAMETER}={form_encode(reason)}")


def build_clear_cookie(policy: SidecarPolicy, secure: bool) -> str | None:
    """A ``Set-Cookie`` value that deletes the session cookie; None for header sessions."""
    name = policy.cookie_name
    if name is None:
        return None
    value = f"{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly"
    # Browsers ignore a Set-Cookie for a prefixed name unless it carries Secure.
    if secure or name.startswith(("__Secure-", "__Host-")):
        value += "; Secure"
    return value


def warning_reason(
    policy: SidecarPolicy, idle_remaining: float, absolute_remaining: float
) -> str | None:
    """``absolute`` or ``idle`` once the warning window before that expiry has started."""
    lead = policy.warning_lead
    if lead is None:
        return None
    if absolute_remaining <= lead:
        return "absolute"
    if idle_remaining <= lead:
        return "idle"
    return None


def build_remaining_headers(
    policy: SidecarPolicy,
    idle_remaining: float,
    absolute_remaining: float,
    renewal_due: bool = False,
) -> dict[str, str]:
    """The headers of an allowed request: whole seconds left, rounded down (never promise more);
    the warning window; and, past ``renewalSeconds``, that the app should re-issue the id."""
    headers = {
        HEADER_IDLE_REMAINING: str(math.floor(idle_remaining)),
        HEADER_ABSOLUTE_REMAINING: str(math.floor(absolute_remaining)),
    }
    warning = warning_reason(policy, idle_remaining, absolute_remaining)
    if warning is not None:
        headers[HEADER_WARNING] = warning
    if renewal_due:
        headers[HEADER_RENEWAL_DUE] = "true"
    return headers


def build_www_authenticate(policy: SidecarPolicy, reason: str) -> str:
    """The ``WWW-Authenticate`` challenge of a 401 for an expired session."""
    if policy.header_prefix and policy.header_prefix.strip().lower() == "bearer":
        return (f'Bearer realm="curfew", error="invalid_token", '
                f'error_description="session expired ({reason})"')
    return f'Session realm="curfew", error="session_expired", reason="{reason}"'


def build_expired_body(reason: str) -> bytes:
    """The JSON body of a 401 for an expired session."""
    return json.dumps({"error": "session_expired", "reason": reason}).encode()


def build_status_body(
    policy: SidecarPolicy, idle_remaining: float, absolute_remaining: float
) -> bytes:
    """The JSON body of ``GET /.curfew/session`` and ``POST /.curfew/keepalive``."""
    warning = warning_reason(policy, idle_remaining, absolute_remaining)
    return json.dumps({
        "idleRemainingSeconds": math.floor(idle_remaining),
        "absoluteRemainingSeconds": math.floor(absolute_remaining),
        # To the millisecond, so a countdown can tick on the real second boundaries.
        "idleRemainingMilliseconds": math.floor(idle_remaining * 1000),
        "absoluteRemainingMilliseconds": math.floor(absolute_remaining * 1000),
        "warning": warning is not None,
        "warningReason": warning,
        "warningLeadSeconds": policy.warning_lead,
        "idleSeconds": policy.limits.idle_seconds,
        "absoluteSeconds": policy.limits.absolute_seconds,
        "enforcement": policy.config.enforcement,
    }).encode()
