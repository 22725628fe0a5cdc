"""Run the operator: logging, kopf's registry of :mod:`curfew.operator.handlers`, and the liveness
endpoint, in the current event loop until ``stop_flag`` is raised."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import kopf

from curfew.k8s.client import Connection, KubeClient, load_connection
from curfew.operator.settings import InjectionWebhookSettings, OperatorSettings

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items()
                    if k not in _RESERVED and not k.startswith("_")
                    and isinstance(v, str | int | float | bool)})
        if record.exc_info and record.levelno >= logging.ERROR:
            doc["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(doc, default=str)


def configure_logging(settings: OperatorSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # kopf narrates every handler call at INFO; keep its warnings and errors only.
    logging.getLogger("kopf").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def run_operator(settings: OperatorSettings, *, stop_flag: Any = None,
                       ready_flag: Any = None,
                       injection: InjectionWebhookSettings | None = None,
                       connection: Connection | None = None) -> None:
    """Run until ``stop_flag`` (an asyncio/threading Event or Future) is raised; with
    ``injection`` enabled, the sidecar-injection webhook is served too.

    The kubeconfig (or service account) is read once, here unless ``connection`` is given, into
    the one :class:`KubeClient` that the reconciler, its Events and the webhook share; kopf's
    own watches log in with the same connection.
    """
    from curfew.operator import handlers  # registers the handlers with kopf

    registry = kopf.get_default_registry()
    assert handlers.POLICY  # the import above is for its side effect
    if connection is None:
        connection = await asyncio.to_thread(load_connection, settings.kubeconfig)
    client = KubeClient(connection, concurrency=settings.api_concurrency,
                        timeout=settings.api_timeout_seconds)
    try:
        if injection is not None and injection.enabled:
            from curfew.operator.injection import register_injection

            register_injection(registry, injection, client)
        await _run_kopf(settings, registry, client, stop_flag=stop_flag, ready_flag=ready_flag)
    finally:
        await client.close()


async def _run_kopf(settings: OperatorSettings, registry: kopf.OperatorRegistry,
                    client: KubeClient, *, stop_flag: Any, ready_flag: Any) -> None:
    liveness = None
    if settings.liveness_port:
        liveness = f"http://{settings.liveness_host}:{settings.liveness_port}/healthz"
    await kopf.operator(
        registry=registry,
        standalone=settings.standalone,
        priority=settings.priority,
        # Naming the peering makes it mandatory (kopf pauses until the peering CRD exists).
        peering_name=None if settings.standalone else settings.peering_name,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(settings=settings, client=client),
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
