"""``curfew sidecar``: run the enforcement sidecar (reverse proxy or authorization service).

Heavy imports (aiohttp, redis) happen in :func:`run`, so building the CLI parser stays cheap.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pydantic import ValidationError

from curfew.cli.environment import add_environment_help, environment_help
from curfew.sidecar.settings import MIN_KEY_BYTES, SidecarSettings

_FLAGS = {"upstream": "--upstream", "redis_url": "--redis-url", "listen": "--listen",
          "ops_listen": "--ops-listen", "config": "--config", "mode": "--mode",
          "authz_path_prefix": "--authz-path-prefix", "insecure_dev_key": "--insecure-dev-key"}
"""Settings that a flag also sets: the flag names them in messages."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="the mounted unified config (policy.json); reloaded when it changes")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="address to serve on (default 0.0.0.0:8080)")
    parser.add_argument("--ops-listen", metavar="HOST:PORT",
                        help="address of /healthz, /readyz and /metrics (default 0.0.0.0:9469; "
                        "empty: none)")
    parser.add_argument("--upstream", metavar="URL",
                        help="the app's base URL (proxy mode), e.g. http://127.0.0.1:8000")
    parser.add_argument("--redis-url", metavar="URL",
                        help="session store URL (default: $REDIS_URL)")
    parser.add_argument("--mode", choices=("proxy", "authz"),
                        help="proxy (default) or authz (Envoy ext_authz / nginx auth_request)")
    parser.add_argument("--authz-path-prefix", metavar="PREFIX",
                        help="authz mode: the path_prefix Envoy puts before the original path")
    parser.add_argument("--insecure-dev-key", action="store_true", default=None,
                        help="run without $CURFEW_SESSION_KEY on a fixed public key "
                        "(development only)")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="level of the operational log on stderr (default INFO)")
    add_environment_help(parser, environment_help(
        SidecarSettings,
        {
            "session_key": f"key of the keyed hash under which session ids are stored and "
            f"logged, at least {MIN_KEY_BYTES} bytes; the same for every sidecar and purge job "
            "of one store (--insecure-dev-key runs without it, for development only)",
            "redis_url": "the session store: redis://, rediss://, redis+cluster://, "
            "redis+sentinel:// (see docs/store.md)",
        },
        flags=_FLAGS, skip=("config",),
    ))


def _settings_error(err: ValidationError) -> str:
    from curfew.api.policy import describe_errors

    lines = []
    for line in describe_errors(err.errors()):
        name, sep, rest = line.partition(": ")
        lines.append(f"{_FLAGS.get(name, name)}: {rest}" if sep else line)
    return "; ".join(lines)


def configure_logging(level: str) -> None:
    """Operational log lines on stderr; audit events as bare JSON lines on stdout."""
    from curfew.sidecar.audit import AUDIT_LOGGER
    from curfew.sidecar.redact import RedactingFormatter

    # Exception messages of third-party code may quote request bytes: the formatter keeps
    # their type and stack only.
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[stderr])
    audit = logging.getLogger(AUDIT_LOGGER)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(RedactingFormatter("%(message)s"))
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False


def run(args: argparse.Namespace) -> int:
    from curfew.sidecar.reload import ConfigError, load_policy

    given: dict[str, Any] = {
        "config": args.config, "listen": args.listen, "ops_listen": args.ops_listen,
        "upstream": args.upstream, "redis_url": args.redis_url, "mode": args.mode,
        "authz_path_prefix": args.authz_path_prefix, "insecure_dev_key": args.insecure_dev_key,
    }
    try:
        settings = SidecarSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as err:
        print(f"curfew sidecar: {_settings_error(err)}", file=sys.stderr)
        return 1
    configure_logging(args.log_level)
    try:
        policy = load_policy(settings.config, app_secrets=settings.app_secrets)
    except ConfigError as err:
        print(f"curfew sidecar: {err}", file=sys.stderr)
        return 1
    if settings.session_key is None:
        logging.getLogger("curfew.sidecar").warning(
            "running on the fixed --insecure-dev-key: session hashes are guessable; "
            "never do this in production"
        )
    from curfew.sessions.errors import StoreError
    from curfew.sidecar.main import open_store, serve

    try:
        store = open_store(settings, policy)
    except StoreError as err:
        print(f"curfew sidecar: --redis-url / REDIS_URL: {err}", file=sys.stderr)
        return 1
    return serve(settings, policy, store)
