"""The sidecar-injection webhook served by the operator: kopf's ``@kopf.on.mutate`` handlers for
pod CREATE, their HTTPS server, and its TLS set-up.

The handlers are adapters: they hand the pod and the policies of its namespace to the pure
:func:`curfew.render.injection.build_injection`. The config is computed from the policies at
admission time rather than read from the workload's ConfigMap, because a new Deployment's first
pods are admitted before the operator has written it. The policies are listed from the API
(cached for ``policy_cache_seconds``) rather than taken from kopf's watches, because with peering
only the active replica watches, while the webhook Service reaches every replica. When they
cannot be listed, the webhook answers 503, so the API server applies the configured
``failurePolicy`` exactly as when Curfew is down.

Two webhooks share the handler and differ by how the pod opted in: ``/inject-pod`` is called
for pods labelled ``curfew.dev/inject: "true"``, ``/inject-namespace`` for any pod of a namespace
so labelled (the MutatingWebhookConfiguration's selectors decide which is called).

Nothing here is registered unless injection is enabled (:func:`register_injection`): kopf
refuses to start with admission handlers and no server.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import jsonpatch
import kopf
from aiohttp import web
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from curfew.api import SessionPolicy, parse_policy
from curfew.api.errors import InvalidPolicy
from curfew.defaults import IMAGE
from curfew.k8s.client import SESSION_POLICIES, ApiError, KubeClient, load_connection
from curfew.operator.certificates import (
    TlsBundle,
    build_renewed_bundle,
    build_service_names,
    build_tls_bundle,
    renewal_due,
)
from curfew.render.injection import (
    Decision,
    InjectionRefused,
    InjectionSettings,
    Outcome,
    build_injection,
)

log = logging.getLogger("curfew.injection")

WEBHOOK_POD = "inject-pod"
WEBHOOK_NAMESPACE = "inject-namespace"


def _default_resources() -> dict[str, dict[str, str | int | float]]:
    return {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}


class InjectionWebhookSettings(BaseSettings):
    """The injection webhook's part of ``curfew operator``, from ``CURFEW_INJECTION_*``."""

    model_config = SettingsConfigDict(env_prefix="CURFEW_INJECTION_", extra="forbid")

    enabled: bool = Field(default=False, description="Serve the sidecar-injection webhook.")
    host: str = Field(default="0.0.0.0", description="Address the webhook server listens on.")
    port: int = Field(default=9443, ge=1, le=65535,
                      description="HTTPS port of the webhook server (the Service targets it).")
    service: str = Field(
        default="curfew-webhook",
        description="Name of the webhook's Service: the serving certificate is made for its "
        "DNS names.")
    namespace: str = Field(
        default="curfew",
        description="The operator's namespace: where the Service and the TLS Secret live.")
    extra_names: list[str] = Field(
        default_factory=list,
        description="More DNS names or IP addresses for the self-signed serving certificate.")
    tls_dir: str = Field(
        default="",
        description="Directory holding tls.crt and tls.key (and ca.crt) issued by cert-manager; "
        "files are re-read when they change. Empty: the operator makes its own CA.")
    tls_secret: str = Field(
        default="",
        description="Secret (in `namespace`) where the self-made CA and serving certificate are "
        "kept, so every replica and restart serves the same CA. Empty: kept in memory only.")
    webhook_configuration: str = Field(
        default="",
        description="MutatingWebhookConfiguration whose caBundle is set to the self-made CA at "
        "startup. Empty: none is patched (cert-manager's CA injector does it, or tests).")
    kubeconfig: str | None = Field(
        default=None,
        description="Kubeconfig for the TLS Secret and caBundle calls outside a cluster "
        "(default: the in-cluster service account, else $KUBECONFIG).")
    policy_cache_seconds: float = Field(
        default=2.0, ge=0,
        description="How long the policies of a namespace, once listed, are reused: a rollout "
        "of many pods costs one list. A policy created this recently may not be seen yet.")
    api_timeout_seconds: float = Field(
        default=2.0, gt=0,
        description="Timeout of the policy list; keep it under the webhook's timeoutSeconds.")
    image: str = Field(default=IMAGE, description="Image of the injected sidecar.")
    image_pull_policy: str = Field(
        default="IfNotPresent", pattern="^(Always|IfNotPresent|Never)$",
        description="imagePullPolicy of the injected sidecar.")
    ops_port: int = Field(default=9469, ge=1, le=65535,
                          description="Port of the sidecar's /healthz, /readyz and /metrics.")
    run_as_user: int = Field(default=65532, ge=1,
                             description="Non-root uid (and gid) of the injected sidecar.")
    resources: dict[str, dict[str, str | int | float]] = Field(
        default_factory=_default_resources,
        description="Resources of the injected sidecar (JSON: requests and limits).")

    def sidecar(self) -> InjectionSettings:
        return InjectionSettings(image=self.image, image_pull_policy=self.image_pull_policy,
                                 ops_port=self.ops_port, run_as_user=self.run_as_user,
                                 resources=self.resources)


MAX_REVIEW_DEPTH = 64
"""Nesting deeper than this is no Pod (whose deepest fields are some 15 levels down): refused
before kopf or the handlers walk it recursively and run out of stack."""


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects or arrays deeper than ``limit`` (walked without
    recursion, so a deep value cannot exhaust the stack here either)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def find_review_problem(review: Any) -> str | None:
    """Why ``review`` is not an AdmissionReview kopf can serve, or None when it is."""
    if not isinstance(review, Mapping):
        return "the body is not a JSON object"
    if _deeper_than(review, MAX_REVIEW_DEPTH):
        return f"the review nests deeper than {MAX_REVIEW_DEPTH} levels"
    if review.get("kind") != "AdmissionReview" or review.get("apiVersion") not in (
            "admission.k8s.io/v1", "admission.k8s.io/v1beta1"):
        return "the body is not an admission.k8s.io/v1 AdmissionReview"
    request = review.get("request")
    if not isinstance(request, Mapping):
        return "request: required"
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        return "request.uid: required"
    resource = request.get("resource")
    if not isinstance(resource, Mapping) or not all(
            isinstance(resource.get(k), str) for k in ("group", "version", "resource")):
        return "request.resource: group, version and resource are required"
    if not isinstance(request.get("userInfo"), Mapping):
        return "request.userInfo: required"
    if not isinstance(request.get("object"), Mapping):
        return "request.object: required, a Pod"
    if not isinstance(request["object"].get("metadata", {}), Mapping):
        return "request.object.metadata: expected an object"
    return None


def _refusal(review: Any, message: str) -> dict[str, Any]:
    request = review.get("request") if isinstance(review, Mapping) else None
    uid = request.get("uid") if isinstance(request, Mapping) else None
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": uid if isinstance(uid, str) else "", "allowed": False,
                         "status": {"code": 400, "message": f"curfew: {message}"}}}


async def _nothing_to_prepare(request: Any) -> None:
    return None


class GuardedWebhookServer(kopf.WebhookServer):
    """kopf's HTTPS server, answering malformed reviews with a clean refusal instead of an
    internal error, giving the pod the request's namespace when it has none yet, and awaiting
    :attr:`prepare` on each well-formed review before kopf runs the handlers."""

    prepare: Callable[[Any], Awaitable[None]] = staticmethod(_nothing_to_prepare)
    renewer: CertificateRenewer | None = None
    """Keeps a self-made serving certificate fresh while the server runs (None with
    cert-manager's files, which kopf re-reads itself when they change)."""

    @staticmethod
    async def _serve(fn: Any, request: web.Request) -> web.Response:
        """kopf's request handling, but a body too deeply nested to decode (the JSON decoder
        runs out of stack) is a bad request, as any other undecodable body, not a 500."""
        try:
            response: web.Response = await kopf.WebhookServer._serve(fn, request)
        except RecursionError:
            raise web.HTTPBadRequest(reason="the body nests too deeply to decode") from None
        return response

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        renewing = asyncio.create_task(self.renewer.run()) if self.renewer else None
        try:
            async for client_config in self._serve_guarded(fn):
                yield client_config
        finally:
            if renewing is not None:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing

    async def _serve_guarded(self, fn: Any) -> AsyncIterator[Any]:
        async def guarded(request: Any, *, webhook: str | None = None,
                          headers: dict[str, str] | None = None,
                          sslpeer: dict[str, Any] | None = None) -> Any:
            problem = find_review_problem(request)
            if problem is not None:
                log.warning("malformed admission review", extra={"problem": problem})
                return _refusal(request, problem)
            payload = request["request"]
            metadata = payload["object"].setdefault("metadata", {})
            if not metadata.get("namespace") and isinstance(payload.get("namespace"), str):
                metadata["namespace"] = payload["namespace"]
            await self.prepare(request)
            return await fn(request, webhook=webhook, headers=headers, sslpeer=sslpeer)

        async for client_config in super().__call__(guarded):
            yield client_config


def _write_private(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` readable by this user only, replacing ``name`` in one rename: a reader
    sees the old file or the new one, never half of one."""
    path = directory / name
    partial = directory / f".{name}.new"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, path)
    return path


_SERVING_FILE = "tls.pem"
"""The serving key and certificate in ONE file: kopf reloads its server when the file changes,
and one rename changes both at once (two files could be read as a mismatched pair)."""


class CertificateRenewer:
    """Renews the self-made serving certificate while the operator runs.

    It wakes when the certificate comes within ``RENEW_BEFORE`` of expiry (and at least every
    ``check_seconds``, to pick up a certificate another replica renewed in the TLS Secret),
    renews it from the same CA — through the Secret when one is set, so replicas share it — and
    rewrites the serving file, which kopf notices and reloads without a restart. A new CA (only
    when the CA itself nears expiry) is patched into the webhook configuration's caBundle.
    """

    def __init__(self, settings: InjectionWebhookSettings, names: list[str], bundle: TlsBundle,
                 directory: Path, *, check_seconds: float = 3600.0,
                 retry_seconds: float = 60.0) -> None:
        self.settings = settings
        self.names = names
        self.bundle = bundle
        self.directory = directory
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds

    def write_serving_file(self) -> Path:
        return _write_private(self.directory, _SERVING_FILE, self.bundle.key + self.bundle.cert)

    def delay(self, now: datetime.datetime | None = None) -> float:
        """Seconds to sleep before the next check."""
        now = now or datetime.datetime.now(datetime.UTC)
        due = (renewal_due(self.bundle, now) - now).total_seconds()
        return min(max(due, 0.0), self.check_seconds)

    async def renew_once(self, now: datetime.datetime | None = None) -> bool:
        """Renew what is due at ``now``; whether the served certificate changed."""
        if self.settings.tls_secret:
            bundle = await asyncio.to_thread(_shared_bundle, self.settings, self.names, now)
        else:
            bundle = build_renewed_bundle(self.bundle, self.names, now)
        if bundle == self.bundle:
            return False
        new_ca = bundle.ca_cert != self.bundle.ca_cert
        if new_ca and self.settings.webhook_configuration:
            await asyncio.to_thread(_patch_ca_bundle, self.settings, bundle.ca_cert)
        self.bundle = bundle
        self.write_serving_file()
        log.info("webhook serving certificate renewed", extra={"new_ca": new_ca})
        return True

    async def run(self) -> None:
        delay = self.delay()
        while True:
            await asyncio.sleep(delay)
            try:
                await self.renew_once()
                delay = self.delay()
            except Exception as exc:  # the API or the files: log, and try again soon
                log.warning("webhook certificate renewal failed; retrying",
                            extra={"error": str(exc), "retry_seconds": self.retry_seconds})
                delay = self.retry_seconds


def _shared_bundle(settings: InjectionWebhookSettings, names: list[str],
                   now: datetime.datetime | None = None) -> TlsBundle:
    """The self-made CA and serving certificate, kept in (and read from) the TLS Secret."""
    from curfew.k8s.webhook import apply_tls_secret, build_api_client, read_tls_secret

    api = build_api_client(settings.kubeconfig)
    try:
        stored = read_tls_secret(api, settings.namespace, settings.tls_secret)
        if stored is None:
            bundle = build_tls_bundle(names)
            stored = apply_tls_secret(api, settings.namespace, settings.tls_secret,
                                      _files(bundle), replace=False)
        current = TlsBundle(stored["ca.crt"], stored["ca.key"], stored["tls.crt"],
                            stored["tls.key"])
        renewed = build_renewed_bundle(current, names, now)
        if renewed != current:
            apply_tls_secret(api, settings.namespace, settings.tls_secret, _files(renewed),
                             replace=True)
        return renewed
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _files(bundle: TlsBundle) -> dict[str, bytes]:
    return {"ca.crt": bundle.ca_cert, "ca.key": bundle.ca_key, "tls.crt": bundle.cert,
            "tls.key": bundle.key}


def _patch_ca_bundle(settings: InjectionWebhookSettings, ca_pem: bytes) -> int:
    from curfew.k8s.webhook import apply_ca_bundle, build_api_client

    api = build_api_client(settings.kubeconfig)
    try:
        return apply_ca_bundle(api, settings.webhook_configuration, ca_pem)
    finally:
        api.close()  # type: ignore[no-untyped-call]


async def build_webhook_server(settings: InjectionWebhookSettings) -> GuardedWebhookServer:
    """The HTTPS server: cert-manager's files when ``tls_dir`` is set, else a self-made CA (kept
    in ``tls_secret`` when set) whose certificate is patched into the webhook configuration."""
    if settings.tls_dir:
        directory = Path(settings.tls_dir)
        ca_file = directory / "ca.crt"
        return GuardedWebhookServer(
            addr=settings.host, port=settings.port, certfile=directory / "tls.crt",
            pkeyfile=directory / "tls.key", cafile=ca_file if ca_file.exists() else None)
    names = [*build_service_names(settings.service, settings.namespace), *settings.extra_names]
    if settings.tls_secret:
        bundle = await asyncio.to_thread(_shared_bundle, settings, names)
    else:
        bundle = build_tls_bundle(names)
    renewer = CertificateRenewer(settings, names, bundle,
                                 Path(tempfile.mkdtemp(prefix="curfew-webhook-")))
    serving = renewer.write_serving_file()
    if settings.webhook_configuration:
        changed = await asyncio.to_thread(_patch_ca_bundle, settings, bundle.ca_cert)
        log.info("webhook caBundle checked", extra={
            "configuration": settings.webhook_configuration, "patched": changed})
    server = GuardedWebhookServer(addr=settings.host, port=settings.port, certfile=serving,
                                  pkeyfile=serving, cadata=bundle.ca_cert)
    server.renewer = renewer
    return server


def build_policies(items: list[dict[str, Any]]) -> list[SessionPolicy]:
    """The valid policies among listed objects; an invalid one is skipped here, as the operator
    reports it on the policy itself."""
    policies = []
    for item in items:
        try:
            policies.append(parse_policy(item))
        except InvalidPolicy:
            continue
    return policies


class PolicySource:
    """The SessionPolicies of a namespace, listed from the API and reused for a moment."""

    def __init__(self, client: KubeClient, ttl: float) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: dict[str, tuple[float, list[SessionPolicy]]] = {}

    async def list_policies(self, namespace: str) -> list[SessionPolicy]:
        now = time.monotonic()
        cached = self._cache.get(namespace)
        if cached is not None and cached[0] > now:
            return cached[1]
        policies = build_policies(await self._client.list(SESSION_POLICIES, namespace))
        self._cache[namespace] = (now + self._ttl, policies)
        return policies


_POLICIES: contextvars.ContextVar[list[SessionPolicy]] = contextvars.ContextVar("policies")
"""The admitted pod's namespace policies, listed before kopf runs the handler (same task)."""


def _with_policies(server: GuardedWebhookServer, source: PolicySource) -> None:
    async def prepare(request: Any) -> None:
        namespace = request["request"]["object"]["metadata"].get("namespace") or "default"
        try:
            _POLICIES.set(await source.list_policies(str(namespace)))
        except ApiError as exc:
            log.warning("policies unavailable: the API server's failurePolicy applies",
                        extra={"error": str(exc)})
            raise web.HTTPServiceUnavailable(
                reason="curfew: the SessionPolicies could not be listed") from None

    server.prepare = prepare


def decide(
    body: Mapping[str, Any], policies: list[SessionPolicy], settings: InjectionSettings, *,
    namespace_opted_in: bool,
) -> Decision:
    """The injection decision for an admitted pod and the policies of its namespace."""
    namespace = str((body.get("metadata") or {}).get("namespace") or "default")
    return build_injection(body, namespace, policies, settings,
                           namespace_opted_in=namespace_opted_in)


def _mutate(settings: InjectionSettings, *, namespace_opted_in: bool) -> Any:
    async def inject(*, body: kopf.Body, patch: kopf.Patch, warnings: list[str],
                     dryrun: bool, **_: Any) -> None:
        try:
            decision = decide(dict(body), _POLICIES.get([]), settings,
                              namespace_opted_in=namespace_opted_in)
        except InjectionRefused as exc:
            log.warning("pod refused", extra={"reason": str(exc)})
            raise kopf.AdmissionError(f"curfew injection: {exc}", code=400) from None
        if decision.outcome is Outcome.INJECTED:
            ops = decision.patch
            patch.fns.append(lambda target: jsonpatch.apply_patch(target, ops, in_place=True))
        elif decision.warn:
            warnings.append(f"curfew: sidecar not injected: {decision.reason}")
        if not dryrun:
            log.info("injection decided", extra={
                "outcome": decision.outcome.value, "reason": decision.reason,
                "workload": str(decision.workload or "")})

    return inject


def register_injection(
    registry: kopf.OperatorRegistry, settings: InjectionWebhookSettings | None = None
) -> InjectionWebhookSettings:
    """Add the webhook's startup, cleanup and mutate handlers to ``registry`` when injection is
    enabled (``settings``, default read from the environment); returns the settings."""
    webhook_settings = settings if settings is not None else InjectionWebhookSettings()
    if not webhook_settings.enabled:
        return webhook_settings
    clients: list[KubeClient] = []

    async def start_webhook(*, settings: kopf.OperatorSettings, **_: Any) -> None:
        connection = await asyncio.to_thread(load_connection, webhook_settings.kubeconfig)
        client = KubeClient(connection, timeout=webhook_settings.api_timeout_seconds)
        clients.append(client)
        server = await build_webhook_server(webhook_settings)
        _with_policies(server, PolicySource(client, webhook_settings.policy_cache_seconds))
        settings.admission.server = server
        settings.admission.managed = None

    async def stop_webhook(**_: Any) -> None:
        for client in clients:
            await client.close()

    kopf.on.startup(id="injection-webhook", registry=registry)(start_webhook)
    kopf.on.cleanup(id="injection-webhook", registry=registry)(stop_webhook)
    sidecar = webhook_settings.sidecar()
    for webhook_id, by_namespace in ((WEBHOOK_POD, False), (WEBHOOK_NAMESPACE, True)):
        kopf.on.mutate(group="", version="v1", plural="pods", id=webhook_id, operations=["CREATE"],
                       registry=registry)(_mutate(sidecar, namespace_opted_in=by_namespace))
    return webhook_settings
