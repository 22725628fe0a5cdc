"""``curfew operator``: run the operator (kopf) until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

HIDDEN_PACKAGES = ("kubernetes",)
"""Packages the operator process never imports, even when installed: kopf imports the official
client whenever it can (only to recognise its model classes and to offer a login through it,
neither of which Curfew uses), which alone costs the process some 12 MB."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", action="append", dest="namespaces", default=None,
                        metavar="NS", help="watch this namespace (repeatable; default: all)")
    parser.add_argument("--standalone", action="store_true", default=None,
                        help="run without peering (a single replica)")
    parser.add_argument("--peering-name", default=None, help="kopf peering object name")
    parser.add_argument("--priority", type=int, default=None, help="peering priority")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file outside a cluster")
    parser.add_argument("--purge-image", default=None, help="image of the purge CronJobs")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="Prometheus metrics port (0 disables)")
    parser.add_argument("--liveness-port", type=int, default=None,
                        help="liveness endpoint port (0 disables)")
    parser.add_argument("--log-format", choices=("json", "text"), default=None)
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        default=None)


@contextlib.contextmanager
def hidden_packages(names: tuple[str, ...] = HIDDEN_PACKAGES) -> Iterator[None]:
    """While inside, importing ``names`` fails as if they were not installed (``None`` in
    ``sys.modules`` makes the import system raise ``ModuleNotFoundError``); one already
    imported stays as it is."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


def run(args: argparse.Namespace) -> int:
    with hidden_packages():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from curfew.api.policy import describe_errors
    from curfew.operator.runner import configure_logging, run_operator
    from curfew.operator.settings import InjectionWebhookSettings, OperatorSettings

    overrides = {k: v for k, v in vars(args).items()
                 if k in OperatorSettings.model_fields and v is not None}
    try:
        injection = InjectionWebhookSettings()
    except ValidationError as exc:
        fields = "; ".join(
            f"CURFEW_INJECTION_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors())
        print(f"curfew operator: invalid settings: {fields}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # a value that is not the JSON its field needs
        print(f"curfew operator: invalid settings: CURFEW_INJECTION_*: {exc}", file=sys.stderr)
        return 2
    try:
        settings = OperatorSettings(**overrides)
    except ValidationError as exc:
        print(f"curfew operator: invalid settings: {'; '.join(describe_errors(exc.errors()))}",
              file=sys.stderr)
        return 2
    from curfew.k8s.kubeconfig import CredentialsError, load_connection

    try:
        connection = load_connection(settings.kubeconfig)
    except CredentialsError as exc:
        print(f"curfew operator: no Kubernetes credentials: {exc}", file=sys.stderr)
        return 1
    configure_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_operator(settings, injection=injection, connection=connection))
    return 0
