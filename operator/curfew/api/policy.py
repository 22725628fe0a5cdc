"""The ``SessionPolicy`` custom resource (``curfew.dev/v1alpha1``): spec and status models.

The CRD in ``crds/`` mirrors these models; a test keeps the two in agreement. Field names are
camelCase on the wire (``loginURL``, ``warningLead``) and snake_case in Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from curfew.api.durations import SECOND, Duration
from curfew.api.errors import InvalidPolicy
from curfew.api.schedule import check_schedule, check_time_zone
from curfew.sessions.codec import (
    DEFAULT_ID_PATTERNS,
    MAX_PATTERN_LENGTH,
    SIGNED_FORMATS,
    InvalidIdPattern,
    check_id_pattern,
)

GROUP: Final = "curfew.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "curfew.dev/v1alpha1"
KIND: Final = "SessionPolicy"
PLURAL: Final = "sessionpolicies"

Enforcement = Literal["Enforce", "Audit"]
FailurePolicy = Literal["Fail", "Ignore"]
StoreFormat = Literal[
    "curfew", "spring-session", "connect-redis", "generic", "django", "flask-session",
    "php-redis",
]
ComplianceProfileName = Literal[
    "pci-dss-4.0", "nist-800-63b-aal2", "nist-800-63b-aal3", "owasp-high-value"
]
SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
IdEncoding = Literal["base64", "raw"]
AppWalk = Literal["Scan", "IndexOnly"]
"""``purge.appWalk``: whether the purge job walks the app's keyspace by SCAN."""

DEFAULT_KEY_PREFIX: dict[str, str] = {
    "curfew": "curfew:",
    "spring-session": "spring:session:",
    "connect-redis": "sess:",
    "generic": "session:",
    "django": ":1:django.contrib.sessions.cache",
    "flask-session": "session:",
    "php-redis": "PHPREDIS_SESSION:",
}
"""The key prefix each store format's own library uses unless configured otherwise."""
APP_TTL_FORMATS: Final = ("connect-redis", "django", "flask-session", "php-redis")
"""The formats whose session key's TTL is the app's clock (``store.appTTL``)."""
DEFAULT_APP_TTL_SECONDS: Final[dict[str, int]] = {"php-redis": 1440}
"""``store.appTTL`` when unset, for the formats whose app has a default: PHP's
``session.gc_maxlifetime``."""
_MAX_APP_TTL: Final = 8784 * 3600 * SECOND

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_COOKIE_NAME = _HEADER_NAME
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                         r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HTTP_METHOD = re.compile(r"^[A-Z]+$")


class Model(BaseModel):
    """Base of every API model: camelCase aliases, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if not _LABEL_NAME.fullmatch(key) or len(name) > 63 or len(prefix) > 253:
        raise ValueError(f"invalid label key {key!r}")
    return key


def _label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(f"invalid label value {value!r}")
    return value


LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]


class LabelSelectorRequirement(Model):
    """One ``matchExpressions`` term, as in Kubernetes' ``metav1.LabelSelectorRequirement``."""

    key: LabelKey = Field(description="The label key the requirement applies to.")
    operator: SelectorOperator = Field(description="How the key's value is compared with values.")
    values: list[LabelValue] = Field(
        default_factory=list, max_length=64,
        description="Values for In and NotIn; empty for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values: operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values: operator {self.operator} takes no values")
        return self


class LabelSelector(Model):
    """A standard label selector over pod-template labels. ``{}`` selects every workload."""

    # Bounded so the CRD's CEL rules over them stay within the API server's cost budget.
    match_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, max_length=64,
        description="Labels that must all be present with these values. (Keys are checked by the "
        "operator, which reports an invalid key on the policy: a CEL rule over map keys would "
        "exceed the API server's cost budget.)",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="Requirements that must all hold."
    )


class Timeouts(Model):
    """Session lifetimes. Idle is measured from the last activity, absolute from creation."""

    idle: Duration = Field(
        description="Expire a session after this long without activity (at least 1s)."
    )
    absolute: Duration = Field(
        description="Expire a session this long after it began, active or not (at most 8784h)."
    )
    renewal: Duration | None = Field(
        default=None, description="Re-issue the session id after this long (unset, never)."
    )
    warning_lead: Duration | None = Field(
        default=None,
        description="How long before idle expiry clients are warned (unset, no warning).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Timeouts:
        if self.idle.nanoseconds < SECOND:
            raise ValueError(f"idle: must be at least 1s, got {self.idle}")
        if self.idle > self.absolute:
            raise ValueError(f"idle: {self.idle} must not exceed absolute ({self.absolute})")
        if self.renewal is not None and self.renewal > self.absolute:
            raise ValueError(f"renewal: {self.renewal} must not exceed absolute ({self.absolute})")
        if self.warning_lead is not None and self.warning_lead >= self.idle:
            raise ValueError(
                f"warningLead: {self.warning_lead} must be shorter than idle ({self.idle})"
            )
        return self


class SessionSource(Model):
    """Where the session id is read from: a cookie, or a request header."""

    cookie_name: str | None = Field(default=None, description="Cookie that carries the session id.")
    header: str | None = Field(
        default=None, description="Header that carries the session token, e.g. Authorization."
    )
    header_prefix: str | None = Field(
        default=None, description='Scheme stripped from the header value, e.g. "Bearer ".'
    )
    id_encoding: IdEncoding | None = Field(
        default=None,
        description="How the cookie or header carries the session id: base64 (Spring "
        "Session's DefaultCookieSerializer) or raw. Unset, base64 for a spring-session cookie "
        "and raw otherwise (Spring's X-Auth-Token header, every other format); base64 needs "
        "store.format spring-session.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SessionSource:
        if (self.cookie_name is None) == (self.header is None):
            raise ValueError("set exactly one of cookieName or header")
        if self.cookie_name is not None and not _COOKIE_NAME.fullmatch(self.cookie_name):
            raise ValueError(f"cookieName: invalid cookie name {self.cookie_name!r}")
        if self.header is not None and not _HEADER_NAME.fullmatch(self.header):
            raise ValueError(f"header: invalid header name {self.header!r}")
        if self.header_prefix is not None and self.header is None:
            raise ValueError("headerPrefix: needs header to be set")
        return self


def _default_session() -> SessionSource:
    return SessionSource(cookie_name="session")


def _method(value: str) -> str:
    if not _HTTP_METHOD.fullmatch(value):
        raise ValueError(f"invalid HTTP method {value!r}: use upper case, e.g. OPTIONS")
    return value


def _path_glob(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must start with /")
    return value


class Activity(Model):
    """Requests that do NOT count as user activity (they never extend the idle timer)."""

    exclude_paths: list[Annotated[str, AfterValidator(_path_glob)]] = Field(
        default_factory=list,
        description="Path globs (fnmatch *, ?, [..]) that are not activity, e.g. /healthz.",
    )
    exclude_methods: list[Annotated[str, AfterValidator(_method)]] = Field(
        default_factory=lambda: ["OPTIONS", "HEAD"],
        description="HTTP methods (upper case) that are not activity.",
    )


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*|/[^\s]*", value):
        raise ValueError(f"loginURL {value!r} must be an absolute http(s) URL or a path")
    return value


class Reauthentication(Model):
    """Where an expired browser session is sent, carrying its original URL back."""

    login_url: Annotated[str, AfterValidator(_url)] | None = Field(
        default=None,
        alias="loginURL",
        description="Login page for browsers, an absolute http(s) URL or a path (unset, "
        "browsers get 401 like API clients).",
    )
    return_to_parameter: str = Field(
        default="return_to", pattern=r"^[A-Za-z0-9_.\-]+$",
        description="Query parameter that carries the original URL.",
    )


class SecretKeyRef(Model):
    """A key of a Secret in the policy's namespace."""

    name: str = Field(description="Secret name.")
    key: str = Field(default="url", description="Key within the Secret.")

    @model_validator(mode="after")
    def _names(self) -> SecretKeyRef:
        if len(self.name) > 253 or not _DNS_SUBDOMAIN.fullmatch(self.name):
            raise ValueError(f"name: invalid Secret name {self.name!r}")
        if not re.fullmatch(r"[-._a-zA-Z0-9]+", self.key):
            raise ValueError(f"key: invalid Secret key {self.key!r}")
        return self


class SessionKeySecretRef(SecretKeyRef):
    """A key of a Secret holding the HMAC key for session ids."""

    key: str = Field(default="session-key", description="Key within the Secret.")


class AppSecretRef(SecretKeyRef):
    """A key of a Secret holding the app's own cookie secret(s) (express-session's ``secret``)."""

    key: str = Field(default="cookie-secret", description="Key within the Secret.")


def _id_pattern(value: str) -> str:
    try:
        return check_id_pattern(value)
    except InvalidIdPattern as error:
        raise ValueError(f"idPattern: {error}") from None


class Store(Model):
    """The shared Redis session store."""

    redis_secret_ref: SecretKeyRef = Field(
        description="Key of a Secret in this namespace that holds the Redis URL."
    )
    session_key_secret_ref: SessionKeySecretRef | None = Field(
        default=None,
        description="Key of a Secret holding the HMAC key for session ids (unset, the Redis "
        "Secret's key session-key).",
    )
    format: StoreFormat = Field(
        default="curfew", description="Session format of the application."
    )
    key_prefix: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="Key prefix of the application's sessions (unset, the format's own).",
    )
    id_pattern: Annotated[str, AfterValidator(_id_pattern)] | None = Field(
        default=None, min_length=1, max_length=MAX_PATTERN_LENGTH,
        description="Regular expression (Python syntax) every session id must match in full; "
        "a cookie or header value outside it is no session (nothing is created or deleted for "
        "it). Unset, the format's own grammar: a lower-case UUID for spring-session, 32 "
        "base64url characters for connect-redis, [A-Za-z0-9_-]{16,128} for generic, 32 "
        "characters of [a-z0-9] for django, 43 base64url characters for flask-session, "
        "[0-9A-Za-z,-]{22,256} for php-redis, 1 to 4096 cookie characters for curfew.",
    )
    app_secret_ref: AppSecretRef | None = Field(
        default=None,
        description="connect-redis and flask-session only: key of a Secret holding the app's "
        "express-session secret or Flask SECRET_KEY (with SESSION_USE_SIGNER), or several (a "
        "rotation) one a line or as a JSON list of strings. Set, a cookie's signature is "
        "verified as the app's library does and a cookie no secret signed is no session; "
        "unset, the signature is stripped unread. Only the sidecar receives it.",
    )
    app_ttl: Duration | None = Field(
        default=None,
        alias="appTTL",
        description="The lifetime the application gives its session key, so the purge can read "
        "a session's last activity from the key's remaining TTL (connect-redis, django, "
        "flask-session and php-redis only; 1s to 8784h). connect-redis: the store's ttl option "
        "(its default is 86400s), for sessions whose cookie has no maxAge (sessions with one "
        "need no setting). django: SESSION_COOKIE_AGE; flask-session: "
        "PERMANENT_SESSION_LIFETIME; php-redis: session.gc_maxlifetime (unset, 1440s, PHP's "
        "default). Unset (but for php-redis), such a session is judged by its Curfew record "
        "alone. State it exactly: a longer value than the app's would judge sessions older "
        "than they are.",
    )

    @model_validator(mode="after")
    def _app_options(self) -> Store:
        if self.format not in SIGNED_FORMATS and self.app_secret_ref is not None:
            raise ValueError(f"appSecretRef: only for formats {' and '.join(SIGNED_FORMATS)}, "
                             f"not {self.format}")
        if self.app_ttl is None:
            return self
        if self.format not in APP_TTL_FORMATS:
            raise ValueError(f"appTTL: only for formats {', '.join(APP_TTL_FORMATS)}, "
                             f"not {self.format}")
        if not SECOND <= self.app_ttl.nanoseconds <= _MAX_APP_TTL:
            raise ValueError(f"appTTL: must be between 1s and 8784h, got {self.app_ttl}")
        return self

    @property
    def effective_key_prefix(self) -> str:
        return self.key_prefix if self.key_prefix is not None else DEFAULT_KEY_PREFIX[self.format]

    @property
    def effective_app_ttl_seconds(self) -> float | None:
        """The app keys' lifetime the purge judges by: ``appTTL``, else the format's default
        (None: no default, or the format has no TTL clock)."""
        if self.app_ttl is not None:
            return self.app_ttl.seconds
        return DEFAULT_APP_TTL_SECONDS.get(self.format)

    @property
    def effective_id_pattern(self) -> str:
        return self.id_pattern if self.id_pattern is not None else DEFAULT_ID_PATTERNS[self.format]

    @property
    def effective_session_key_ref(self) -> SecretKeyRef:
        if self.session_key_secret_ref is not None:
            return self.session_key_secret_ref
        return SessionKeySecretRef(name=self.redis_secret_ref.name)


class Purge(Model):
    """The purge CronJob that removes sessions past their limits from the store."""

    schedule: Annotated[str, AfterValidator(check_schedule)] = Field(
        default="*/5 * * * *",
        description="Cron schedule of the purge job, as a CronJob reads it: five fields "
        "(minute hour day-of-month month day-of-week) or @yearly, @annually, @monthly, @weekly, "
        "@daily, @midnight, @hourly.",
    )
    time_zone: Annotated[str, AfterValidator(check_time_zone)] | None = Field(
        default=None,
        description="IANA time zone the schedule is read in, e.g. Europe/Paris (unset: the "
        "time zone of the kube-controller-manager, usually UTC).",
    )
    suspend: bool = Field(default=False, description="Pause scheduled purges.")
    max_purge_percent: int = Field(
        default=50, ge=1, le=100,
        description="Abort a run that would remove more than this share of the scanned "
        "sessions.",
    )
    app_walk: AppWalk = Field(
        default="Scan",
        description="App formats only: how the purge finds the app's sessions. Scan walks "
        "the app's whole keyspace with SCAN, so sessions Curfew has no record of (issued "
        "before the sidecar, or used only straight at the app) are judged by the app's own "
        "clock too: the run's cost grows with the store. IndexOnly reads only Curfew's due index: "
        "the sessions whose record names the app's session are removed whole at a cost that "
        "grows with the number expired, and every other app session is left to the app's "
        "own expiry (its key's TTL). Ignored for the curfew format.",
    )


class Compliance(Model):
    """Compliance profiles the policy is checked against (reported, never enforced)."""

    profiles: list[ComplianceProfileName] = Field(
        default_factory=list, description="Profiles whose limits the timeouts are checked against."
    )


class Client(Model):
    """The browser client script the sidecar serves at ``/.curfew/client.js``."""

    enabled: bool = Field(
        default=False, description="Serve the countdown and warning client script."
    )


class SessionPolicySpec(Model):
    """What a platform team writes: one session-timeout policy for the selected workloads."""

    selector: LabelSelector = Field(
        description="Label selector over the pod-template labels of the Deployments, "
        "StatefulSets and DaemonSets of this namespace. An empty selector {} selects them all."
    )
    priority: int = Field(
        default=0, ge=-1000, le=1000,
        description="Breaks ties between overlapping policies for non-timeout fields (higher "
        "wins).",
    )
    enforcement: Enforcement = Field(
        default="Enforce",
        description="Enforce expires sessions; Audit only logs and reports what would be "
        "expired, and the purge job removes nothing.",
    )
    failure_policy: FailurePolicy = Field(
        default="Fail",
        description="When the session store is unreachable: Fail denies requests that carry a "
        "session (fail-closed), Ignore lets them through and logs it (fail-open).",
    )
    timeouts: Timeouts = Field(
        description="Session lifetimes, as Go durations (90s, 15m, 1h30m). Idle is measured "
        "from the last activity, absolute from the start of the session."
    )
    session: SessionSource = Field(
        default_factory=_default_session,
        description="Where the session id is read from; exactly one of cookieName or header.",
    )
    activity: Activity = Field(
        default_factory=Activity,
        description="Requests that do NOT count as user activity (they never extend the idle "
        "timer).",
    )
    reauthentication: Reauthentication = Field(
        default_factory=Reauthentication,
        description="Where an expired browser session is sent, carrying its original URL back.",
    )
    store: Store = Field(
        description="The shared Redis session store, referenced through Secrets only."
    )
    purge: Purge = Field(
        default_factory=Purge,
        description="The purge CronJob that removes sessions past their limits from the store.",
    )
    compliance: Compliance = Field(
        default_factory=Compliance,
        description="Compliance profiles the policy is checked against (reported, never "
        "enforced).",
    )
    client: Client = Field(
        default_factory=Client,
        description="The browser client script the sidecar serves at /.curfew/client.js.",
    )

    @model_validator(mode="after")
    def _id_encoding_fits_format(self) -> SessionPolicySpec:
        if self.session.id_encoding == "base64" and self.store.format != "spring-session":
            raise ValueError(
                "session.idEncoding: base64 is Spring Session's cookie encoding; store.format "
                f"{self.store.format} carries raw ids"
            )
        return self

    @property
    def effective_id_encoding(self) -> IdEncoding:
        """How the sidecar reads the id from the cookie or header (``session.idEncoding``)."""
        if self.session.id_encoding is not None:
            return self.session.id_encoding
        spring_cookie = self.store.format == "spring-session" and self.session.cookie_name
        return "base64" if spring_cookie else "raw"


class ObjectMeta(BaseModel):
    """The parts of ``metadata`` Curfew reads; everything else is kept but ignored."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    name: str
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class SessionPolicy(BaseModel):
    """A whole ``SessionPolicy`` object as read from YAML or the API server."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel)

    api_version: Literal["curfew.dev/v1alpha1"] = API_VERSION
    kind: Literal["SessionPolicy"] = KIND
    metadata: ObjectMeta
    spec: SessionPolicySpec

    @property
    def key(self) -> str:
        """``namespace/name``, the policy's identity in sources and logs."""
        return f"{self.metadata.namespace}/{self.metadata.name}"


# --- status -------------------------------------------------------------------------------


class Condition(Model):
    """A ``metav1.Condition``."""

    type: str = Field(description="Condition type, an adjective such as Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word saying why.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, description="The generation the condition was computed from."
    )


class WorkloadStatus(Model):
    """One selected workload and the config Curfew rendered for it."""

    kind: str = Field(description="Deployment, StatefulSet or DaemonSet.")
    name: str = Field(description="Workload name.")
    config_map: str = Field(description="ConfigMap holding the workload's policy.json.")
    config_hash: str = Field(description="Hash of the workload's effective config.")


class PurgeExpired(Model):
    """Sessions a purge run removed, by reason."""

    idle: int = Field(default=0, description="Removed for idleness.")
    absolute: int = Field(default=0, description="Removed for exceeding the absolute timeout.")
    tightened: int = Field(
        default=0, description="Removed because a tightened policy now expires them."
    )


class LastPurge(Model):
    """The summary of the latest finished purge run."""

    time: str = Field(description="When the run finished.")
    outcome: Literal["ok", "aborted", "failed"] = Field(
        description="ok, aborted (safety limit hit) or failed."
    )
    scanned: int = Field(default=0, description="Sessions examined.")
    expired: PurgeExpired = Field(
        default_factory=PurgeExpired, description="Sessions removed, by reason."
    )
    repaired: int = Field(default=0, description="Index entries repaired.")
    malformed: int = Field(
        default=0, description="App sessions skipped because their times cannot be read."
    )
    duration_seconds: float = Field(default=0.0, description="How long the run took.")
    message: str = Field(default="", description="Details, such as why a run was aborted.")
    job: str | None = Field(default=None, description="Name of the Job that ran.")


class SessionPolicyStatus(Model):
    """What the operator observed and did."""

    observed_generation: int | None = Field(
        default=None, description="The generation of the spec this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Overlapping, Compliant, PurgeHealthy (metav1.Condition shape).",
    )
    selected_workloads: int = Field(
        default=0, description="Number of workloads the policy selects."
    )
    workloads: list[WorkloadStatus] = Field(
        default_factory=list, description="Each selected workload and the config rendered for it."
    )
    last_purge: LastPurge | None = Field(
        default=None, description="Summary of the latest finished purge run."
    )
    purge_failures: int = Field(default=0, description="Consecutive failed purge runs.")


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted field path: ``spec.timeouts.idle``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_FIELD_PREFIX = re.compile(r"^([a-z][A-Za-z]*): (.*)$", re.DOTALL)


def describe_errors(errors: list[Any]) -> list[str]:
    """One ``path: message`` line per pydantic error, without pydantic's boilerplate.

    A cross-field validator names the field it blames as ``field: message``; that field joins
    the path, so the line reads ``spec.timeouts.idle: must be at least 1s``.
    """
    lines = []
    for err in errors:
        msg = str(err.get("msg", ""))
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        loc = tuple(err.get("loc", ()))
        if loc[-1:] == ("[key]",):  # a bad map key: the message names it, the path is the map
            loc = loc[:-2]
        named = _FIELD_PREFIX.match(msg)
        if named:
            loc, msg = (*loc, named.group(1)), named.group(2)
        path = field_path(loc)
        lines.append(f"{path}: {msg}" if path else msg)
    return lines


def parse_policy(obj: Mapping[str, Any]) -> SessionPolicy:
    """Validate a SessionPolicy object (from YAML or the API server).

    Raises :class:`InvalidPolicy` whose lines each name a field path (``spec.timeouts.idle: ...``).
    """
    if not isinstance(obj, Mapping):
        raise InvalidPolicy(f"expected a mapping, got {type(obj).__name__}")
    try:
        return SessionPolicy.model_validate(dict(obj))
    except ValidationError as exc:
        raise InvalidPolicy(describe_errors(exc.errors())) from None
