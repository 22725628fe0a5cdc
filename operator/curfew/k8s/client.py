"""A small asynchronous Kubernetes API client: the only door through which Curfew writes objects.

kopf watches; this client does every other request of the operator process (the reconciler, its
Events, the injection webhook's policy lists, TLS Secret and caBundle), with one connection pool
and one kubeconfig load (:mod:`curfew.k8s.kubeconfig`). Each user gets its own bound on
concurrent requests and its own timeout through :meth:`KubeClient.share`, so a burst of writes
never starves an admission review.

Every failure is classified here, once, by :func:`error_class` (the one table of which answers
are worth retrying), so callers only ever choose between retrying with backoff and reporting the
refusal.

Exception tree::

    ApiError                 an API request failed (status 0: no response at all)
     ├── TransientApiError   worth retrying with backoff: no answer (timeout, connection),
     │                       408, 409 Conflict, 410 Gone (an expired list page token),
     │                       429 Too Many Requests, 5xx, and 404 to a request
     │                       on an object listed a moment ago (it vanished: the next list knows)
     └── RejectedApiError    the API server refused the request itself (400, 401, 403, 404 on a
                             create, 405, 413, 422, ...): the same request fails again until
                             what it was built from changes
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from curfew import __version__

# Re-exported: where the client connects is decided by the kubeconfig reader.
from curfew.k8s.kubeconfig import Connection as Connection
from curfew.k8s.kubeconfig import CredentialsError as CredentialsError
from curfew.k8s.kubeconfig import load_connection as load_connection

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
USER_AGENT: Final = f"curfew-operator/{__version__}"
LIST_PAGE_SIZE: Final = 500
"""Objects per list request (the API server's ``limit``; client-go's informers use 500)."""


@dataclass(frozen=True)
class Resource:
    """One API resource: ``group`` is ``""`` for the core group."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource is not None:
                base += f"/{subresource}"
        return base


CONFIG_MAPS: Final = Resource("", "v1", "configmaps", "ConfigMap")
PODS: Final = Resource("", "v1", "pods", "Pod")
CRON_JOBS: Final = Resource("batch", "v1", "cronjobs", "CronJob")
JOBS: Final = Resource("batch", "v1", "jobs", "Job")
DEPLOYMENTS: Final = Resource("apps", "v1", "deployments", "Deployment")
STATEFUL_SETS: Final = Resource("apps", "v1", "statefulsets", "StatefulSet")
DAEMON_SETS: Final = Resource("apps", "v1", "daemonsets", "DaemonSet")
SESSION_POLICIES: Final = Resource("curfew.dev", "v1alpha1", "sessionpolicies", "SessionPolicy")
SECRETS: Final = Resource("", "v1", "secrets", "Secret")
MUTATING_WEBHOOK_CONFIGURATIONS: Final = Resource(
    "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration")


class ApiError(Exception):
    """A Kubernetes API request that failed; ``status`` 0 means no HTTP response arrived.

    ``message`` is the API server's own explanation (its ``Status.message``).
    """

    def __init__(self, status: int, reason: str, message: str, request: str) -> None:
        super().__init__(f"{request}: {status} {reason}: {message}".strip())
        self.status = status
        self.reason = reason
        self.message = message
        self.request = request

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class TransientApiError(ApiError):
    """Worth retrying with backoff: the same request may well succeed later."""


class RejectedApiError(ApiError):
    """Refused by the API server for what the request says: retrying it unchanged is useless."""


RETRIED_STATUSES: Final = frozenset({0, 408, 409, 410, 429})
"""Answers retried besides every 5xx: no answer at all, request timeout, conflict, a paged
list's expired ``continue`` token (410 Gone: listing again starts afresh), throttling."""


def error_class(status: int, method: str) -> type[ApiError]:
    """Which :class:`ApiError` an answer of ``status`` to a ``method`` request is.

    The one place that decides what is retried. A 404 to a create means the namespace is gone or
    the resource is not served (no retry helps); to any other request it means the object was
    deleted since it was listed, which the next pass's list sees.
    """
    if status in RETRIED_STATUSES or status >= 500:
        return TransientApiError
    if status == 404 and method != "POST":
        return TransientApiError
    return RejectedApiError


@contextlib.contextmanager
def map_exceptions(what: str) -> Iterator[None]:
    """Turn the transport's exceptions (no HTTP answer at all) into :class:`TransientApiError`."""
    try:
        yield
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise TransientApiError(0, type(exc).__name__, str(exc), what) from exc


class _Pool:
    """The connection pool shared by a client and the clients made by :meth:`KubeClient.share`."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.session: aiohttp.ClientSession | None = None
        self.closed = False

    def ensure_session(self) -> aiohttp.ClientSession:
        if self.closed:
            raise aiohttp.ClientConnectionError("the client is closed")
        if self.session is None:
            connector = aiohttp.TCPConnector(ssl=self.connection.build_ssl_context(), limit=64)
            self.session = aiohttp.ClientSession(
                base_url=self.connection.server.rstrip("/") + "/", connector=connector)
        return self.session

    async def close(self) -> None:
        self.closed = True
        if self.session is not None:
            await self.session.close()
            self.session = None


class KubeClient:
    """List, get, create, patch and delete objects; at most ``concurrency`` requests at once."""

    def __init__(self, connection: Connection, *, concurrency: int = 16,
                 timeout: float = 30.0, user_agent: str = USER_AGENT,
                 _pool: _Pool | None = None) -> None:
        self._pool = _pool or _Pool(connection)
        self._owner = _pool is None
        self._user_agent = user_agent
        self._limit = asyncio.Semaphore(concurrency)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.requests = 0
        """Requests issued so far (a cheap counter for metrics and benchmarks)."""

    @property
    def connection(self) -> Connection:
        return self._pool.connection

    def share(self, *, concurrency: int, timeout: float) -> KubeClient:
        """A client on this one's connection pool with its own bound on concurrent requests and
        its own timeout; closing it leaves the pool to this client."""
        return KubeClient(self._pool.connection, concurrency=concurrency, timeout=timeout,
                          user_agent=self._user_agent, _pool=self._pool)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owner:
            await self._pool.close()

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: Mapping[str, str] | None = None,
                      content_type: str = "application/json") -> Any:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        token = self._pool.connection.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        what = f"{method} {path}"
        async with self._limit:
            self.requests += 1
            with map_exceptions(what):
                session = self._pool.ensure_session()
                async with session.request(method, path.lstrip("/"), data=data, headers=headers,
                                           params=params, timeout=self._timeout) as response:
                    # Bytes from the stream, decoded once (the API speaks UTF-8 JSON):
                    # response.text() keeps the bytes alive beside the text, which for a list
                    # of thousands of objects adds their whole size to the peak of the parse.
                    text = (await response.content.read()).decode("utf-8", "replace")
            if response.status >= 400:
                reason, message = _status_details(text, response.reason or "")
                raise error_class(response.status, method)(response.status, reason, message,
                                                           what)
            return json.loads(text) if text else None

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object, fetched in pages of :data:`LIST_PAGE_SIZE` (the API server's
        ``limit``/``continue``): a list of thousands of ConfigMaps is never one body of megabytes
        held as text beside its parse."""
        params = {"limit": str(LIST_PAGE_SIZE)}
        if label_selector:
            params["labelSelector"] = label_selector
        items: list[dict[str, Any]] = []
        while True:
            result = await self.request("GET", resource.path(namespace), params=params)
            items += (result or {}).get("items") or []
            token = ((result or {}).get("metadata") or {}).get("continue")
            if not token:
                return items
            params["continue"] = token

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await self.request("GET", resource.path(namespace, name))
        return obj

    async def create(self, resource: Resource, namespace: str | None,
                     body: Mapping[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = await self.request("POST", resource.path(namespace), body=body)
        return obj

    async def patch(self, resource: Resource, namespace: str | None, name: str,
                    patch: Mapping[str, Any], *, subresource: str | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = await self.request(
            "PATCH", resource.path(namespace, name, subresource), body=patch,
            content_type=MERGE_PATCH,
        )
        return obj

    async def patch_json(self, resource: Resource, namespace: str | None, name: str,
                         operations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A JSON patch (RFC 6902): for changes inside lists, which a merge patch replaces."""
        obj: dict[str, Any] = await self.request(
            "PATCH", resource.path(namespace, name), body=operations, content_type=JSON_PATCH)
        return obj

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> None:
        """Delete, with dependents removed in the background; an absent object is not an error."""
        try:
            await self.request("DELETE", resource.path(namespace, name),
                               body={"propagationPolicy": "Background"})
        except ApiError as exc:
            if not exc.not_found:
                raise


def _status_details(text: str, fallback: str) -> tuple[str, str]:
    try:
        status = json.loads(text)
        return str(status.get("reason", fallback)), str(status.get("message", ""))[:300]
    except (ValueError, AttributeError):
        return fallback, text[:300]
