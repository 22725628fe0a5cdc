"""``curfew demo``: a sample web app behind the enforcement sidecar, with a demo policy.

Heavy imports (aiohttp, redis) happen in :func:`run`, so building the CLI parser stays cheap.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, metavar="N",
                        help="port to serve the demo on (default 8080; 0: any free port)")
    parser.add_argument("--host", metavar="HOST",
                        help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--store", choices=("auto", "redis", "embedded"),
                        help="auto (default): --redis-url, else a Redis on 127.0.0.1:6379, else "
                        "a redis-server started for the demo, else the embedded store")
    parser.add_argument("--redis-url", metavar="URL",
                        help="keep the demo's sessions in this Redis (keys under curfew-demo:)")
    parser.add_argument("--idle", metavar="DURATION", help="idle timeout (default 30s)")
    parser.add_argument("--absolute", metavar="DURATION", help="absolute timeout (default 3m)")
    parser.add_argument("--warning-lead", metavar="DURATION",
                        help="warn this long before expiry (default 15s)")
    parser.add_argument("--for", dest="run_for", type=float, metavar="SECONDS",
                        help="stop by itself after this many seconds (for scripts and CI)")
    parser.add_argument("--app-only", action="store_true",
                        help="serve only the sample app, with no sidecar and no store: what a "
                        "cluster runs behind its own sidecar (the demo-app chart); --idle and "
                        "--absolute then only word its sign-in page")
    parser.add_argument("--log-level", default="WARNING",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="level of the sidecar's operational log on stderr (default "
                        "WARNING); its audit events are printed on stdout")


def _settings_error(err: ValidationError) -> str:
    from curfew.api.policy import describe_errors

    flags = {"port": "--port", "host": "--host", "store": "--store", "redis_url": "--redis-url",
             "idle": "--idle", "absolute": "--absolute", "warning_lead": "--warning-lead",
             "run_for": "--for"}
    lines = []
    for line in describe_errors(err.errors()):
        name, sep, rest = line.partition(": ")
        lines.append(f"{flags.get(name, name)}: {rest}" if sep else line)
    return "; ".join(lines)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from curfew.cli.sidecar import configure_logging
    from curfew.demo.main import DemoError, DemoSettings, run_app_only, run_demo

    given: dict[str, Any] = {
        "port": args.port, "host": args.host, "store": args.store, "redis_url": args.redis_url,
        "idle": args.idle, "absolute": args.absolute, "warning_lead": args.warning_lead,
        "run_for": args.run_for,
    }
    try:
        settings = DemoSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as err:
        print(f"curfew demo: {_settings_error(err)}", file=sys.stderr)
        return 1
    configure_logging(args.log_level)
    try:
        asyncio.run(run_app_only(settings) if args.app_only else run_demo(settings))
    except DemoError as err:
        print(f"curfew demo: {err}", file=sys.stderr)
        return 1
    return 0
