"""A Kubernetes API for tests: kmock's emulator with the gaps filled, plus the real operator.

kmock 0.8 never sets ``uid``, ``resourceVersion``, ``generation`` or ``creationTimestamp``, needs
``metadata.namespace`` in the body for watches to see changes, ignores ``generateName``, lists
without ``kind``/``apiVersion``, serves no pages (``limit``/``continue``) and reports core
discovery as ``groupVersion: "/v1"``.
:class:`KubeEmulator` fixes each of those, can fail requests on purpose (:meth:`fail`), and keeps
a simple log of every API request (:attr:`KubeEmulator.calls`).

:func:`observed_rbac` runs a representative scenario (policies created, edited and deleted,
workloads relabelled, a purge Job finished, a policy tightened) against the real operator and
returns the ``(apiGroup, resource, verb)`` triples the operator used, e.g.
``("", "configmaps", "create")``, ``("batch", "cronjobs", "patch")``,
``("curfew.dev", "sessionpolicies/status", "patch")`` — the least privilege it needs::

    from tests.integration.operator.harness import observed_rbac
    triples = observed_rbac()   # a frozenset, computed once per process

What the fake cannot prove (garbage collection through ownerReferences, server-side label
selectors, admission) is left to the opt-in e2e suite in ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime
import functools
import itertools
import os
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
import yaml
from kmock._internal import dicts as kmock_dicts
from kmock._internal import enums as kmock_enums

from curfew.k8s import Connection, KubeClient, Resource
from curfew.k8s.client import (
    CONFIG_MAPS,
    CRON_JOBS,
    DAEMON_SETS,
    DEPLOYMENTS,
    JOBS,
    PODS,
    SESSION_POLICIES,
    STATEFUL_SETS,
)
from curfew.k8s.events import EVENTS
from curfew.operator import OperatorSettings

NAMESPACES = Resource("", "v1", "namespaces", "Namespace")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition")
CLUSTER_PEERINGS = Resource("kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering")
RESOURCES: tuple[tuple[Resource, bool, tuple[str, ...]], ...] = (
    (CLUSTER_PEERINGS, False, ()),
    (NAMESPACES, False, ()),  # kopf waits for both in discovery before it watches anything
    (CRDS, False, ()),
    (SESSION_POLICIES, True, ("status",)),
    (DEPLOYMENTS, True, ()),
    (STATEFUL_SETS, True, ()),
    (DAEMON_SETS, True, ()),
    (CONFIG_MAPS, True, ()),
    (PODS, True, ()),
    (EVENTS, True, ()),
    (CRON_JOBS, True, ()),
    (JOBS, True, ()),
)
DRIVER_AGENT = "curfew-test-driver"
"""User-Agent of the test's own client, so its requests are told apart from the operator's."""
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


@dataclass(frozen=True)
class Call:
    """One API request as RBAC sees it."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None
    subresource: str | None
    status: int = 0
    by_test: bool = False
    """Made by the test driving the cluster (as kubectl would), not by the operator."""
    at: float = 0.0
    """When the request arrived (``time.monotonic()``)."""

    @property
    def write(self) -> bool:
        return self.verb in ("create", "update", "patch", "delete")

    @property
    def discovery(self) -> bool:
        """API discovery (``/api``, ``/apis/...``): allowed to every authenticated user."""
        return not self.resource

    @property
    def rbac(self) -> tuple[str, str, str]:
        plural = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return (self.group, plural, self.verb)


@dataclass
class Fault:
    """Answer matching requests with ``status`` (up to ``times`` times; None: until cleared)."""

    status: int
    match: Callable[[Call], bool]
    times: int | None = None
    hits: int = 0
    message: str = "injected by the test"
    """The API server's explanation in the answer (``Status.message``)."""


def _verb(request: kmock.Request) -> str:
    method = str(request.method.value if hasattr(request.method, "value") else request.method)
    method = method.upper()
    if method == "GET":
        if request.params.get("watch") in ("true", "1", "True"):
            return "watch"
        return "get" if request.name else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete"}.get(method, method.lower())


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator, completed where the operator relies on the real API server."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self._rv = itertools.count(1)
        for res, namespaced, subresources in RESOURCES:
            self.resources[f"{res.group}/{res.version}/{res.plural}" if res.group
                           else f"{res.version}/{res.plural}"] = kmock.ResourceInfo(
                kind=res.kind, namespaced=namespaced, verbs=set(VERBS),
                subresources=set(subresources))

    # --- test controls ---------------------------------------------------------------------

    def fail(self, status: int, match: Callable[[Call], bool] = lambda c: c.write, *,
             times: int | None = None, message: str = "injected by the test") -> Fault:
        fault = Fault(status, match, times, message=message)
        self.faults.append(fault)
        return fault

    def writes(self, since: int = 0, *, events: bool = False) -> list[Call]:
        """Successful writes by the operator since call number ``since``."""
        return [c for c in self.calls[since:]
                if c.write and c.status < 400 and not c.by_test
                and (events or c.resource != "events")]

    def operator_calls(self, since: int = 0) -> list[Call]:
        return [c for c in self.calls[since:] if not c.by_test]

    def object(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (kmock.resource(group=res.group, version=res.version, plural=res.plural),
               namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(dict(self.objects[key].raw))

    def list_objects(self, res: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        out = []
        for (r, ns, _name), obj in self.objects.items():
            if (r.group, r.version, r.plural) == (res.group, res.version, res.plural) \
                    and (namespace is None or ns == namespace) and not obj.deleted:
                out.append(copy.deepcopy(dict(obj.raw)))
        return out

    # --- the gaps ---------------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> Any:
        # kmock matches each request against views over its whole request log (quadratic in
        # the number of requests); this harness keeps its own log, so kmock keeps only the last.
        del self._requests[:-1]
        if request.resource is None:
            return await super()._handle(request)
        call = Call(_verb(request), request.resource.group or "", request.resource.plural or "",
                    request.namespace, request.name, request.subresource,
                    by_test=request.headers.get("User-Agent") == DRIVER_AGENT,
                    at=time.monotonic())
        for fault in self.faults:
            if fault.match(call) and (fault.times is None or fault.hits < fault.times):
                fault.hits += 1
                self.calls.append(dataclasses.replace(call, status=fault.status))
                return await self._render_error(kmock.KubernetesError(
                    status=fault.status, reason="Injected", message=fault.message))
        if request.action == kmock_enums.action.CREATE and isinstance(request.data, dict):
            self._fill_create(request)
        elif request.action == kmock_enums.action.UPDATE and request.name:
            self._fill_update(request)
        # Recorded before handling: watch streams never finish while the operator runs.
        index = len(self.calls)
        self.calls.append(call)
        status = 200
        try:
            response = await super()._handle(request)
            status = response.status
            return response
        except kmock.KubernetesError as exc:
            status = exc.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            self.calls[index] = dataclasses.replace(call, status=status)

    def _fill_create(self, request: kmock.Request) -> None:
        meta = request.data.setdefault("metadata", {})
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("creationTimestamp", _now())
        meta.setdefault("generation", 1)

    def _fill_update(self, request: kmock.Request) -> None:
        res = request.resource
        key = (kmock.resource(group=res.group, version=res.version, plural=res.plural),
               request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return
        old = dict(self.objects[key].raw)
        rv = str(next(self._rv))
        generation = int(old.get("metadata", {}).get("generation", 1))
        if isinstance(request.data, list):
            new = kmock_dicts.patch_dict(old, request.data)
            if new.get("spec") != old.get("spec") and request.subresource != "status":
                generation += 1
            request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": rv})
            request.data.append({"op": "add", "path": "/metadata/generation",
                                 "value": generation})
        elif isinstance(request.data, dict):
            new = kmock_dicts.patch_dict(old, request.data)
            if new.get("spec") != old.get("spec") and request.subresource != "status":
                generation += 1
            meta = request.data.setdefault("metadata", {}) or {}
            request.data["metadata"] = meta
            meta["resourceVersion"] = rv
            meta["generation"] = generation

    # kmock finds the object of a request by scanning every stored object; at thousands of
    # objects that dominates the benchmark, so look it up by its key instead.
    def _stored(self, request: kmock.Request) -> Any:
        data = request.data if isinstance(request.data, dict) else {}
        meta = data.get("metadata") or {}
        key = (request.resource, request.namespace or meta.get("namespace"),
               request.name or meta.get("name"))
        return self.objects._objects.get(key)

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        obj = self._stored(request)
        if obj is None or obj.deleted:
            raise kmock.KubernetesObjectNotFoundError()
        return obj.raw

    async def _serve_create(self, request: kmock.Request) -> Any:
        return self._stored(request).raw

    async def _serve_update(self, request: kmock.Request) -> Any:
        return self._stored(request).last.raw

    async def _serve_delete(self, request: kmock.Request) -> Any:
        return self._stored(request).last.raw

    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        res = request.resource
        info = self.resources[f"{res.group}/{res.version}/{res.plural}" if res.group
                              else f"{res.version}/{res.plural}"]
        result["kind"] = f"{info.kind}List"
        result["apiVersion"] = f"{res.group}/{res.version}" if res.group else res.version
        selector = request.params.get("labelSelector")
        if selector:
            result["items"] = [o for o in result["items"] if _matches(selector, o)]
        limit = int(request.params.get("limit") or 0)
        if limit > 0:
            # Pages as the API server serves them; the continue token here is an offset.
            start = int(request.params.get("continue") or 0)
            items = sorted(result["items"], key=lambda o: (
                o.get("metadata", {}).get("namespace") or "", o["metadata"]["name"]))
            result["items"] = items[start:start + limit]
            if start + limit < len(items):
                result.setdefault("metadata", {})["continue"] = str(start + limit)
        return result

    async def _serve_version(self, request: kmock.Request) -> Any:
        result = await super()._serve_version(request)
        if request.resource is not None and request.resource.group == "":
            result["groupVersion"] = request.resource.version
        return result


_EQ = re.compile(r"^([^=!]+)(==|=|!=)(.*)$")


def _matches(selector: str, obj: Mapping[str, Any]) -> bool:
    """Equality-based label selectors (what the operator sends), as the API server applies them."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        match = _EQ.match(term.strip())
        if match is None:
            if term.strip() and term.strip() not in labels:
                return False
            continue
        key, op, value = match.groups()
        if (labels.get(key.strip()) == value.strip()) != (op != "!="):
            return False
    return True


# --- the API server and the operator ------------------------------------------------------------

@dataclass
class Cluster:
    """A running emulator, a kubeconfig for it, and a client to drive it as kubectl would."""

    api: KubeEmulator
    url: str
    kubeconfig: str
    client: KubeClient
    operators: list[OperatorThread] = field(default_factory=list)

    def start_operator(self, **overrides: Any) -> OperatorThread:
        settings = build_test_settings(self.kubeconfig, **overrides)
        thread = OperatorThread(settings)
        thread.start()
        self.operators.append(thread)
        return thread


def build_test_settings(kubeconfig: str, **overrides: Any) -> OperatorSettings:
    """Operator settings for tests: standalone, no listeners, short delays, no cluster scan."""
    values: dict[str, Any] = {
        "kubeconfig": kubeconfig, "standalone": True, "liveness_port": 0, "metrics_port": 0,
        "batch_delay_seconds": 0.05, "retry_min_seconds": 0.2, "retry_max_seconds": 1.0,
        "resync_seconds": 3600, "scan_cluster": False, "log_format": "text",
        "watch_timeout_seconds": None,
    }
    values.update(overrides)
    return OperatorSettings(**values)


class OperatorThread:
    """The real operator (``run_operator``) in a thread with its own event loop."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="curfew-operator", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        from curfew.operator import run_operator

        try:
            asyncio.run(run_operator(self.settings, stop_flag=self._stop,
                                     ready_flag=self._ready))
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    async def wait_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.is_set():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the operator did not start: {self.error!r}")
            await asyncio.sleep(0.02)

    async def stop(self, timeout: float = 15) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._thread.is_alive():
            raise RuntimeError("the operator did not stop")


def write_kubeconfig(url: str) -> str:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": url}}],
        "users": [{"name": "kmock", "user": {"token": "kmock-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock",
                                                    "namespace": "default"}}],
    }
    fd, path = tempfile.mkstemp(prefix="kubeconfig-", suffix=".yaml")
    with os.fdopen(fd, "w") as file:
        yaml.safe_dump(config, file)
    return path


@contextlib.asynccontextmanager
async def running_cluster() -> AsyncIterator[Cluster]:
    """The emulator on a free loopback port; operators started on it are stopped on exit."""
    async with KubeEmulator() as api, kmock.Server(api) as server:
        url = str(server.url).rstrip("/")
        kubeconfig = write_kubeconfig(url)
        client = KubeClient(Connection(server=url), concurrency=32, user_agent=DRIVER_AGENT)
        cluster = Cluster(api, url, kubeconfig, client)
        try:
            yield cluster
        finally:
            for op in cluster.operators:
                with contextlib.suppress(RuntimeError):
                    await op.stop()
            await client.close()
            os.unlink(kubeconfig)


@contextlib.asynccontextmanager
async def running_operator(
    cluster: Cluster, tmp_path: Path, *, settings: Mapping[str, str] | None = None,
    metrics_port: int = 0, python: Sequence[str] = ("-m", "curfew"), stop_timeout: float = 20,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``curfew operator --standalone`` as a process of its own against the emulator, with
    ``settings`` (``CURFEW_*`` variables) on top of an environment that names no other cluster
    or setting; ``python``: what runs before the command's words. Its stderr goes to
    ``operator.log`` in ``tmp_path`` (read it when a test fails); stopped with SIGINT on exit,
    killed after ``stop_timeout`` seconds."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CURFEW_", "KUBERNETES_SERVICE", "KUBECONFIG"))}
    env["CURFEW_OPERATOR_SCAN_CLUSTER"] = "false"
    env.update(settings or {})
    log = (tmp_path / "operator.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, *python, "operator", "--standalone",
        "--kubeconfig", cluster.kubeconfig, "--liveness-port", "0",
        "--metrics-port", str(metrics_port), env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=log)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), stop_timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.close()


async def eventually(check: Callable[[], Any], *, timeout: float = 30.0,
                     interval: float = 0.05) -> Any:
    """Poll ``check`` (sync or async) until it returns a truthy value without raising."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if isinstance(value, Awaitable):
                value = await value
            if value:
                return value
            last = None
        except (AssertionError, KeyError, TypeError, IndexError) as exc:
            last = exc
        if time.monotonic() > deadline:
            if last is not None:
                raise last
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def quiet(api: KubeEmulator, *, settle: float = 0.5, timeout: float = 15.0) -> int:
    """Wait until the operator has written nothing for ``settle`` seconds; the call count."""
    deadline = time.monotonic() + timeout
    seen = len(api.writes(events=True))
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = len(api.writes(events=True))
        if now != seen:
            seen, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return len(api.calls)
    raise AssertionError("the operator kept writing")


# --- objects, as a user would write them ---------------------------------------------------------

def build_policy(name: str, namespace: str = "shop", *, selector: Mapping[str, str] | None = None,
                 idle: str = "15m", absolute: str = "8h", priority: int = 0,
                 **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "selector": {"matchLabels": dict(selector if selector is not None
                                         else {"app.kubernetes.io/part-of": name})},
        "priority": priority,
        "timeouts": {"idle": idle, "absolute": absolute},
        "store": {"redisSecretRef": {"name": "sessions-redis", "key": "url"}},
    }
    body.update(spec)
    return {"apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def build_workload(name: str, namespace: str = "shop", *, labels: Mapping[str, str],
                   kind: str = "Deployment") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name, **labels}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}}},
    }


WORKLOAD_RESOURCES = {"Deployment": DEPLOYMENTS, "StatefulSet": STATEFUL_SETS,
                      "DaemonSet": DAEMON_SETS}


def condition(policy: Mapping[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in ((policy or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    raise AssertionError(f"no {type_} condition yet")


def events_for(api: KubeEmulator, name: str, namespace: str = "shop") -> list[tuple[str, str]]:
    """``(reason, message)`` of the Events posted on policy ``name``, in posting order."""
    return [(e["reason"], e.get("message", "")) for e in api.list_objects(EVENTS, namespace)
            if e.get("involvedObject", {}).get("name") == name
            and e.get("involvedObject", {}).get("kind") == "SessionPolicy"]


# --- the representative scenario for least-privilege RBAC ----------------------------------------

async def run_representative_scenario() -> list[Call]:
    """Drive the operator through the life of two policies; return every API request it made."""
    from tests.integration.operator import scenarios

    async with running_cluster() as cluster:
        await scenarios.full_lifecycle(cluster)
        return cluster.api.operator_calls()


@functools.cache
def observed_rbac() -> frozenset[tuple[str, str, str]]:
    """The ``(apiGroup, resource, verb)`` triples the operator used in the representative
    scenario (requests the test itself made are excluded by the scenario's own bookkeeping)."""
    return rbac_triples(asyncio.run(run_representative_scenario()))


def rbac_triples(calls: Iterable[Call]) -> frozenset[tuple[str, str, str]]:
    """The RBAC rules ``calls`` need (discovery excluded: every user may do it)."""
    return frozenset(c.rbac for c in calls if not c.discovery)


__all__ = [
    "Call",
    "Cluster",
    "Fault",
    "KubeEmulator",
    "OperatorThread",
    "build_policy",
    "build_test_settings",
    "build_workload",
    "condition",
    "events_for",
    "eventually",
    "observed_rbac",
    "quiet",
    "rbac_triples",
    "run_representative_scenario",
    "running_cluster",
]
