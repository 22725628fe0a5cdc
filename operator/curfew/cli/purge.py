"""``curfew purge``: the purge CronJob's entrypoint.

Exit codes: 0 ok (dry runs included), 1 failed (the store was unavailable), 2 usage (bad flags,
config file or settings), 3 aborted by the safety cap (nothing removed).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from curfew.cli.environment import add_environment_help, environment_help
from curfew.purge.settings import PurgeSettings
from curfew.sessions.identity import MIN_KEY_BYTES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, type=Path, metavar="FILE",
        help="purge.json (one policy) or policy.json (one workload) to purge by",
    )
    parser.add_argument(
        "--redis-url", metavar="URL",
        help="session store URL (default: $REDIS_URL): redis://, rediss://, "
        "redis+cluster://, redis+sentinel://",
    )
    parser.add_argument(
        "--dry-run", action="store_true", default=None,
        help="report what would be removed, remove nothing",
    )
    parser.add_argument(
        "--termination-log", type=Path, metavar="PATH",
        help="also write the summary line here (default: /dev/termination-log if it exists)",
    )
    parser.add_argument(
        "--batch-size", type=int, metavar="N", help="sessions per pipeline (default 1000)"
    )
    add_environment_help(parser, environment_help(
        PurgeSettings,
        {
            "redis_url": "the session store: redis://, rediss://, redis+cluster://, "
            "redis+sentinel:// (see docs/store.md)",
            "session_key": f"key of the keyed hash of session ids, at least {MIN_KEY_BYTES} "
            "bytes, the same as the sidecars'; needed when store.format is an app's (not "
            "curfew), whose session ids the job hashes to find Curfew's records",
        },
        flags={"redis_url": "--redis-url", "dry_run": "--dry-run",
               "termination_log": "--termination-log", "batch_size": "--batch-size"},
        skip=("config",),
    ))


class _UsageError(Exception):
    """A bad flag, setting or config file: reported in one line, exit code 2."""


def run(args: argparse.Namespace) -> int:
    import asyncio

    from pydantic import ValidationError

    from curfew.purge.report import EXIT_FAILED, EXIT_USAGE, Summary, emit_summary

    flags: dict[str, Any] = {
        "config": args.config,
        "redis_url": args.redis_url,
        "dry_run": args.dry_run,
        "termination_log": args.termination_log,
        "batch_size": args.batch_size,
    }
    try:
        settings = PurgeSettings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        print(f"curfew purge: error: setting {where}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_purge(settings))
    except _UsageError as error:
        # The summary still goes out, so the policy's status says why the purge cannot run.
        emit_summary(
            Summary(outcome="failed", message=str(error)),
            settings.resolved_termination_log(),
            sys.stdout,
        )
        print(f"curfew purge: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        # A CronJob's only report is its summary: say what broke in it rather than a traceback,
        # without the arguments of a Redis command (they hold session ids).
        from curfew.sessions.errors import redacted

        message = f"internal error: {type(error).__name__}: {redacted(error)}"
        emit_summary(
            Summary(outcome="failed", message=message),
            settings.resolved_termination_log(),
            sys.stdout,
        )
        print(f"curfew purge: {message}", file=sys.stderr)
        return EXIT_FAILED


async def _purge(settings: PurgeSettings) -> int:
    from curfew.purge.engine import Purge
    from curfew.purge.report import Audit, Progress, emit_summary
    from curfew.purge.target import ConfigFileError, load_target
    from curfew.sessions.errors import StoreConfigError
    from curfew.sessions.identity import SessionKeyError, check_session_key
    from curfew.sessions.store import RedisSessionStore

    try:
        target = load_target(settings.config)
    except ConfigFileError as error:
        raise _UsageError(str(error)) from error
    if settings.redis_url is None:
        raise _UsageError("no store URL: pass --redis-url or set REDIS_URL")
    key = None
    if settings.session_key is not None:
        try:
            key = check_session_key(settings.session_key.get_secret_value().encode("utf-8"))
        except SessionKeyError as error:
            raise _UsageError(f"CURFEW_SESSION_KEY: {error}") from error
    try:
        store = RedisSessionStore.from_url(
            settings.redis_url.get_secret_value(),
            key_prefix=target.key_prefix,
            format=target.format,
            socket_timeout=settings.socket_timeout,
            connect_timeout=settings.socket_timeout,
        )
    except StoreConfigError as error:
        raise _UsageError(str(error)) from error
    progress = settings.progress if settings.progress is not None else sys.stderr.isatty()
    audit = Audit(sys.stdout, dry_run=settings.dry_run or target.audit_only,
                  store_format=target.format)
    try:
        purge = Purge(
            store,
            target,
            audit=audit,
            progress=Progress(progress),
            session_key=key,
            dry_run=settings.dry_run,
            batch_size=settings.batch_size,
            shard_batch=settings.shard_batch,
            pipelines=settings.pipelines,
            scan_count=settings.scan_count,
        )
    except ValueError as error:
        await store.aclose()
        raise _UsageError(str(error)) from error
    try:
        summary = await purge.run()
    finally:
        # Closing a dead connection must not mask the summary.
        with contextlib.suppress(Exception):
            await store.aclose()
    sys.stdout.flush()
    emit_summary(summary, settings.resolved_termination_log(), sys.stdout)
    if summary.outcome != "ok":
        print(f"curfew purge: {summary.outcome}: {summary.message}", file=sys.stderr)
    return summary.exit_code
