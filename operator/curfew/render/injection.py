"""Sidecar injection, decided and built without I/O: an admitted pod and the policies of its
namespace in, a :class:`Decision` (inject with a JSONPatch, leave alone, or refuse) out.

The mutating webhook (``curfew.operator.injection``) is the only caller; it gathers the inputs
and sends the patch back. The rules, in order (docs/injection.md tells users the same):

1. the annotation ``curfew.dev/inject: "false"`` leaves the pod alone;
2. the pod opts in by the label ``curfew.dev/inject: "true"``, or its namespace does (the
   webhook configuration's namespaceSelector decides that before the request is sent);
3. a pod that already carries the sidecar or its volume is left alone (idempotency);
4. the workload is resolved from the pod's controller: ReplicaSet -> Deployment by the
   ``pod-template-hash`` naming convention, or a StatefulSet / DaemonSet directly; a pod of
   anything else, or of a workload no policy selects, is left alone;
5. the sidecar takes over the app's declared port (the port named by ``curfew.dev/port``, else
   the app container's first TCP port), and the app is reached on the port of the annotation
   ``curfew.dev/upstream-port``, on loopback; the app's probes on the taken-over port are moved
   to the upstream port. An opted-in pod whose ports cannot be worked out is refused with one
   line naming the annotation to fix, rather than started without enforcement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from curfew.api.config import POLICY_FILE, UnifiedConfig, WorkloadId
from curfew.api.policy import SessionPolicy
from curfew.defaults import IMAGE
from curfew.render.naming import build_config_map_name
from curfew.render.objects import CONFIG_DIR, build_app_secret_env, build_store_env
from curfew.render.resolve import build_unified_config
from curfew.render.selectors import selects

LABEL_INJECT: Final = "curfew.dev/inject"
"""Pod or namespace label: ``"true"`` opts in."""
ANNOTATION_INJECT: Final = "curfew.dev/inject"
"""Pod annotation: ``"false"`` opts out, whatever the labels say."""
ANNOTATION_UPSTREAM_PORT: Final = "curfew.dev/upstream-port"
"""Pod annotation: the port the app really listens on, behind the sidecar."""
ANNOTATION_PORT: Final = "curfew.dev/port"
"""Pod annotation: which of the app's declared ports the sidecar takes over (name or number)."""
ANNOTATION_CONTAINER: Final = "curfew.dev/container"
"""Pod annotation: the app container (default: the first container)."""
ANNOTATION_INJECTED: Final = "curfew.dev/injected"
"""Set on injected pods: the ConfigMap the sidecar reads."""

SIDECAR_NAME: Final = "curfew-sidecar"
VOLUME_NAME: Final = "curfew-config"
OPS_PORT_NAME: Final = "curfew-ops"
DEFAULT_PORT_NAME: Final = "curfew"

CONTROLLER_LABELS: Final = frozenset({
    "pod-template-hash", "controller-revision-hash", "pod-template-generation",
    "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index",
})
"""Labels controllers add to pods that are not in the workload's pod template."""

_DIRECT_OWNERS: Final = {"StatefulSet", "DaemonSet"}
_PROBES: Final = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE_HANDLERS: Final = ("httpGet", "tcpSocket", "grpc")


class InjectionRefused(ValueError):
    """An opted-in pod the sidecar cannot be put in front of: the message names what to fix."""


class Outcome(Enum):
    INJECTED = "Injected"
    SKIPPED = "Skipped"


@dataclass(frozen=True)
class InjectionSettings:
    """How the injected sidecar container is built (the chart's ``injection.sidecar`` values)."""

    image: str = IMAGE
    image_pull_policy: str = "IfNotPresent"
    ops_port: int = 9469
    """Port of the sidecar's /healthz, /readyz and /metrics."""
    run_as_user: int = 65532
    resources: Mapping[str, Any] = field(default_factory=lambda: {
        "requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}})


@dataclass(frozen=True)
class Decision:
    """What to do with one pod: ``patch`` is empty unless the outcome is INJECTED."""

    outcome: Outcome
    reason: str
    """One line for logs and admission warnings."""
    warn: bool = False
    """The pod opted in but is left alone: the reason is worth an admission warning."""
    workload: WorkloadId | None = None
    config_map: str | None = None
    patch: list[dict[str, Any]] = field(default_factory=list)


def _skip(reason: str, workload: WorkloadId | None = None, *, warn: bool = False) -> Decision:
    return Decision(Outcome.SKIPPED, reason, warn, workload)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InjectionRefused(f"{where}: expected an object")
    return value


def _list(value: Any, where: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InjectionRefused(f"{where}: expected a list")
    return value


def _pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901): ``~`` and ``/`` inside keys are escaped."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def build_pod_workload(pod: Mapping[str, Any], namespace: str) -> WorkloadId | None:
    """The Deployment, StatefulSet or DaemonSet a pod belongs to, from its controller reference.

    A ReplicaSet named ``<deployment>-<pod-template-hash>`` belongs to that Deployment (the
    Deployment controller's naming convention, so no API read is needed); a ReplicaSet of any
    other name, a Job, or a pod without a controller belongs to no workload.
    """
    metadata = _mapping(pod.get("metadata"), "metadata")
    owners = _list(metadata.get("ownerReferences"), "metadata.ownerReferences")
    controller = next((o for o in owners if isinstance(o, Mapping) and o.get("controller")),
                      None)
    if controller is None:
        return None
    kind, name = controller.get("kind"), controller.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind in _DIRECT_OWNERS:
        return WorkloadId(kind=kind, namespace=namespace, name=name)
    if kind == "ReplicaSet":
        template_hash = _mapping(metadata.get("labels"), "metadata.labels").get(
            "pod-template-hash")
        suffix = f"-{template_hash}"
        if template_hash and name.endswith(suffix) and len(name) > len(suffix):
            return WorkloadId(kind="Deployment", namespace=namespace, name=name[: -len(suffix)])
    return None


def build_template_labels(pod: Mapping[str, Any]) -> dict[str, str]:
    """The pod's labels without those its controller added: its workload's pod-template labels,
    which is what a policy's selector is evaluated against."""
    labels = _mapping(_mapping(pod.get("metadata"), "metadata").get("labels"), "metadata.labels")
    return {str(k): str(v) for k, v in labels.items() if k not in CONTROLLER_LABELS}


def build_pod_config(
    workload: WorkloadId, labels: Mapping[str, str], policies: Iterable[SessionPolicy]
) -> UnifiedConfig | None:
    """The effective config the operator renders for ``workload``; None when no policy of its
    namespace selects it."""
    chosen = [p for p in policies
              if p.metadata.namespace == workload.namespace and selects(p.spec.selector, labels)]
    return build_unified_config(workload, chosen) if chosen else None


def _has_sidecar(spec: Mapping[str, Any]) -> bool:
    containers = [*_list(spec.get("containers"), "spec.containers"),
                  *_list(spec.get("initContainers"), "spec.initContainers")]
    volumes = _list(spec.get("volumes"), "spec.volumes")
    return (any(isinstance(c, Mapping) and c.get("name") == SIDECAR_NAME for c in containers)
            or any(isinstance(v, Mapping) and v.get("name") == VOLUME_NAME for v in volumes))


def _port_number(text: str, annotation: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise InjectionRefused(
            f"annotation {annotation}: {text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise InjectionRefused(f"annotation {annotation}: {port} is not between 1 and 65535")
    return port


def _app_container(
    containers: Sequence[Any], annotations: Mapping[str, str]
) -> tuple[int, Mapping[str, Any]]:
    if not containers:
        raise InjectionRefused("spec.containers: the pod has no container")
    wanted = annotations.get(ANNOTATION_CONTAINER)
    for index, container in enumerate(containers):
        if not isinstance(container, Mapping):
            raise InjectionRefused(f"spec.containers[{index}]: expected an object")
        if wanted is None or container.get("name") == wanted:
            return index, container
    raise InjectionRefused(f"annotation {ANNOTATION_CONTAINER}: the pod has no container "
                           f"named {wanted!r}")


def _taken_port(
    container: Mapping[str, Any], index: int, annotations: Mapping[str, str]
) -> tuple[int, Mapping[str, Any]]:
    ports = _list(container.get("ports"), f"spec.containers[{index}].ports")
    wanted = annotations.get(ANNOTATION_PORT)
    for number, port in enumerate(ports):
        if not isinstance(port, Mapping):
            raise InjectionRefused(f"spec.containers[{index}].ports[{number}]: expected an object")
        protocol = port.get("protocol", "TCP")
        if wanted is None and protocol == "TCP":
            return number, port
        if wanted is not None and wanted in (port.get("name"), str(port.get("containerPort"))):
            if protocol != "TCP":
                raise InjectionRefused(f"annotation {ANNOTATION_PORT}: port {wanted} is "
                                       f"{protocol}; the sidecar serves TCP (HTTP) only")
            return number, port
    name = container.get("name")
    if wanted is not None:
        raise InjectionRefused(f"annotation {ANNOTATION_PORT}: container {name!r} declares no "
                               f"port {wanted!r}")
    raise InjectionRefused(f"spec.containers[{index}].ports: container {name!r} declares no TCP "
                           "port for the sidecar to take over")


def _declared_ports(containers: Iterable[Any]) -> set[int]:
    return {int(p["containerPort"]) for c in containers if isinstance(c, Mapping)
            for p in (c.get("ports") or []) if isinstance(p, Mapping)
            and isinstance(p.get("containerPort"), int)}


def _probe_moves(
    container: Mapping[str, Any], index: int, taken: Mapping[str, Any], upstream: int
) -> list[dict[str, Any]]:
    """Probes of the app on the taken-over port, moved to the upstream port: they keep
    checking the app itself, not the sidecar (whose health depends on Redis)."""
    refs = {taken.get("containerPort"), taken.get("name")} - {None}
    ops = []
    for probe_name in _PROBES:
        probe = container.get(probe_name)
        if not isinstance(probe, Mapping):
            continue
        for handler in _PROBE_HANDLERS:
            action = probe.get(handler)
            if isinstance(action, Mapping) and action.get("port") in refs:
                ops.append({"op": "replace",
                            "path": _pointer("spec", "containers", index, probe_name, handler,
                                             "port"),
                            "value": upstream})
    return ops


def build_sidecar_container(
    config: UnifiedConfig, port: Mapping[str, Any], upstream: int, settings: InjectionSettings
) -> dict[str, Any]:
    """The sidecar in proxy mode, serving on the app's former port and forwarding to the app on
    loopback; the same container the ``curfew-sidecar`` library chart writes by hand."""
    served = {k: port[k] for k in ("name", "containerPort", "hostPort", "hostIP") if k in port}
    served.setdefault("name", DEFAULT_PORT_NAME)
    served["protocol"] = "TCP"
    listen = int(port["containerPort"])
    return {
        "name": SIDECAR_NAME,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": [
            "sidecar",
            f"--config={CONFIG_DIR}/{POLICY_FILE}",
            f"--listen=0.0.0.0:{listen}",
            f"--ops-listen=0.0.0.0:{settings.ops_port}",
            "--mode=proxy",
            f"--upstream=http://127.0.0.1:{upstream}",
        ],
        "env": build_store_env(config.store) + build_app_secret_env(config.store),
        "ports": [
            served,
            {"name": OPS_PORT_NAME, "containerPort": settings.ops_port, "protocol": "TCP"},
        ],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": OPS_PORT_NAME},
                          "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": OPS_PORT_NAME},
                           "periodSeconds": 5},
        "resources": {k: dict(v) for k, v in settings.resources.items()},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": VOLUME_NAME, "mountPath": CONFIG_DIR, "readOnly": True}],
    }


def build_injection(
    pod: Mapping[str, Any],
    namespace: str,
    policies: Iterable[SessionPolicy],
    settings: InjectionSettings,
    *,
    namespace_opted_in: bool = False,
) -> Decision:
    """Whether and how to inject the sidecar into ``pod`` (being created in ``namespace``).

    Raises :class:`InjectionRefused` for an opted-in pod the sidecar cannot be put in front of.
    """
    if not isinstance(pod, Mapping):
        raise InjectionRefused("object: expected a Pod object")
    metadata = _mapping(pod.get("metadata"), "metadata")
    annotations = {str(k): str(v) for k, v in
                   _mapping(metadata.get("annotations"), "metadata.annotations").items()}
    labels = _mapping(metadata.get("labels"), "metadata.labels")
    if annotations.get(ANNOTATION_INJECT) == "false":
        return _skip(f"opted out by the annotation {ANNOTATION_INJECT}: \"false\"")
    if labels.get(LABEL_INJECT) != "true" and not namespace_opted_in:
        return _skip(f"not opted in (no label {LABEL_INJECT}: \"true\" on the pod or namespace)")
    spec = _mapping(pod.get("spec"), "spec")
    if _has_sidecar(spec) or ANNOTATION_INJECTED in annotations:
        return _skip("the pod already carries the Curfew sidecar")
    workload = build_pod_workload(pod, namespace)
    if workload is None:
        return _skip("the pod belongs to no Deployment, StatefulSet or DaemonSet, so no "
                     "SessionPolicy can select it", warn=True)
    config = build_pod_config(workload, build_template_labels(pod), policies)
    if config is None:
        return _skip(f"no SessionPolicy selects {workload}", workload, warn=True)

    containers = _list(spec.get("containers"), "spec.containers")
    index, app = _app_container(containers, annotations)
    port_index, taken = _taken_port(app, index, annotations)
    if not isinstance(taken.get("containerPort"), int):
        raise InjectionRefused(f"spec.containers[{index}].ports[{port_index}].containerPort: "
                               "expected a number")
    if ANNOTATION_UPSTREAM_PORT not in annotations:
        raise InjectionRefused(
            f"annotation {ANNOTATION_UPSTREAM_PORT}: required on opted-in pods: the port the "
            f"app listens on once the sidecar takes over port {taken['containerPort']}")
    upstream = _port_number(annotations[ANNOTATION_UPSTREAM_PORT], ANNOTATION_UPSTREAM_PORT)
    listen = int(taken["containerPort"])
    if upstream == listen:
        raise InjectionRefused(f"annotation {ANNOTATION_UPSTREAM_PORT}: {upstream} is the port "
                               "the sidecar takes over; the app must move to another port")
    others = _declared_ports(containers) - {listen}
    if settings.ops_port in {*others, listen, upstream}:
        raise InjectionRefused(f"the sidecar's ops port {settings.ops_port} is already used in "
                               "the pod: change injection.sidecar.opsPort in the chart values")
    if upstream in _declared_ports(c for i, c in enumerate(containers) if i != index):
        raise InjectionRefused(f"annotation {ANNOTATION_UPSTREAM_PORT}: port {upstream} is "
                               "declared by another container")

    config_map = build_config_map_name(workload)
    patch: list[dict[str, Any]] = [
        {"op": "remove", "path": _pointer("spec", "containers", index, "ports", port_index)},
        *_probe_moves(app, index, taken, upstream),
        {"op": "add", "path": _pointer("spec", "containers", "-"),
         "value": build_sidecar_container(config, taken, upstream, settings)},
    ]
    volume = {"name": VOLUME_NAME, "configMap": {"name": config_map}}
    if "volumes" in spec and spec["volumes"] is not None:
        patch.append({"op": "add", "path": _pointer("spec", "volumes", "-"), "value": volume})
    else:
        patch.append({"op": "add", "path": _pointer("spec", "volumes"), "value": [volume]})
    # The upstream-port annotation is required above, so the annotations map exists.
    patch.append({"op": "add", "path": _pointer("metadata", "annotations", ANNOTATION_INJECTED),
                  "value": config_map})
    return Decision(Outcome.INJECTED, f"injected the sidecar for {workload} on port {listen}, "
                    f"app on port {upstream}", False, workload, config_map, patch)
