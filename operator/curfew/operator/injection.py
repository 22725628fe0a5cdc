"""The sidecar-injection webhook served by the operator, its admission side: kopf's
``@kopf.on.mutate`` handlers for pod CREATE, the checks of a review before kopf reads it, and the
HTTPS server that carries them (its TLS is :mod:`curfew.operator.webhook_tls`).

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
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import jsonpatch
import kopf
from aiohttp import web

from curfew.api import SessionPolicy, parse_policy
from curfew.api.errors import InvalidPolicy
from curfew.k8s.client import SESSION_POLICIES, ApiError, KubeClient
from curfew.operator.settings import InjectionWebhookSettings
from curfew.operator.webhook_tls import CertificateRenewer, prepare_serving_tls
from curfew.render.injection import (
    InjectionDecision,
    InjectionOutcome,
    InjectionRefused,
    InjectionSettings,
    build_injection,
)

log = logging.getLogger("curfew.injection")

WEBHOOK_POD = "inject-pod"
WEBHOOK_NAMESPACE = "inject-namespace"
POLICY_LIST_CONCURRENCY = 8
"""Concurrent policy lists of the webhook: its own bound on the operator's client, so a burst
of reconciler writes never holds back an admission review."""


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


def _count_nothing(outcome: str) -> None:
    return None


def _count_admission(memo: Any, outcome: str) -> None:
    """Count an admission on the run's metrics; a webhook registered without the reconciler's
    runtime (as its own tests run it) has none to count on."""
    runtime = getattr(memo, "runtime", None)
    if runtime is not None:
        runtime.metrics.admissions.labels(outcome).inc()


class GuardedWebhookServer(kopf.WebhookServer):
    """kopf's HTTPS server, answering malformed reviews with a clean refusal instead of an
    internal error, giving the pod the request's namespace when it has none yet, and awaiting
    :attr:`prepare` on each well-formed review before kopf runs the handlers."""

    prepare: Callable[[Any], Awaitable[None]] = staticmethod(_nothing_to_prepare)
    count: Callable[[str], None] = staticmethod(_count_nothing)
    """Counts an admission's outcome (``curfew_operator_webhook_admissions_total``)."""
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
                self.count("malformed")
                return _refusal(request, problem)
            payload = request["request"]
            metadata = payload["object"].setdefault("metadata", {})
            if not metadata.get("namespace") and isinstance(payload.get("namespace"), str):
                metadata["namespace"] = payload["namespace"]
            try:
                await self.prepare(request)
            except web.HTTPException:
                self.count("unavailable")
                raise
            return await fn(request, webhook=webhook, headers=headers, sslpeer=sslpeer)

        async for client_config in super().__call__(guarded):
            yield client_config


async def build_webhook_server(settings: InjectionWebhookSettings,
                               client: KubeClient) -> GuardedWebhookServer:
    """The HTTPS server, with the TLS :func:`~curfew.operator.webhook_tls.prepare_serving_tls`
    prepares."""
    tls = await prepare_serving_tls(settings, client)
    server = GuardedWebhookServer(addr=settings.host, port=settings.port, certfile=tls.certfile,
                                  pkeyfile=tls.pkeyfile, cadata=tls.cadata, cafile=tls.cafile)
    server.renewer = tls.renewer
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
) -> InjectionDecision:
    """The injection decision for an admitted pod and the policies of its namespace."""
    namespace = str((body.get("metadata") or {}).get("namespace") or "default")
    return build_injection(body, namespace, policies, settings,
                           namespace_opted_in=namespace_opted_in)


def _mutate(settings: InjectionSettings, *, namespace_opted_in: bool) -> Any:
    async def inject(*, body: kopf.Body, patch: kopf.Patch, warnings: list[str],
                     dryrun: bool, memo: Any, **_: Any) -> None:
        try:
            decision = decide(dict(body), _POLICIES.get([]), settings,
                              namespace_opted_in=namespace_opted_in)
        except InjectionRefused as exc:
            log.warning("pod refused", extra={"reason": str(exc)})
            _count_admission(memo, "refused")
            raise kopf.AdmissionError(f"curfew injection: {exc}", code=400) from None
        if decision.outcome is InjectionOutcome.INJECTED:
            ops = decision.patch
            patch.fns.append(lambda target: jsonpatch.apply_patch(target, ops, in_place=True))
        elif decision.warn:
            warnings.append(f"curfew: sidecar not injected: {decision.reason}")
        _count_admission(memo, decision.outcome.value.lower())
        if not dryrun:
            log.info("injection decided", extra={
                "outcome": decision.outcome.value, "reason": decision.reason,
                "workload": str(decision.workload or "")})

    return inject


def register_injection(registry: kopf.OperatorRegistry, settings: InjectionWebhookSettings,
                       client: KubeClient) -> None:
    """Add the webhook's startup and mutate handlers to ``registry`` when injection is enabled.

    Every API call of the webhook goes through ``client``, the operator's one client (owned,
    and closed, by the caller): the TLS Secret and caBundle as it is, the policy lists through
    a share with their own timeout and bound on concurrency.
    """
    if not settings.enabled:
        return
    webhook_settings = settings  # kopf passes its own ``settings`` to the startup handler
    lists = client.share(concurrency=POLICY_LIST_CONCURRENCY,
                         timeout=settings.api_timeout_seconds)

    async def start_webhook(*, settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        server = await build_webhook_server(webhook_settings, client)
        server.count = lambda outcome: _count_admission(memo, outcome)
        _with_policies(server, PolicySource(lists, webhook_settings.policy_cache_seconds))
        settings.admission.server = server
        settings.admission.managed = None

    kopf.on.startup(id="injection-webhook", registry=registry)(start_webhook)
    sidecar = settings.sidecar()
    for webhook_id, by_namespace in ((WEBHOOK_POD, False), (WEBHOOK_NAMESPACE, True)):
        kopf.on.mutate(group="", version="v1", plural="pods", id=webhook_id, operations=["CREATE"],
                       registry=registry)(_mutate(sidecar, namespace_opted_in=by_namespace))
