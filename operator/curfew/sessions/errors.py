"""Errors of the session store. Callers catch one type per outcome, never a redis-py exception::

    StoreError                  anything the store layer raises
    ├── StoreUnavailable        the store cannot answer now: connection refused or reset, timeout,
    │                           Cluster down or resharding, replica read-only after failover,
    │                           loading its dataset, Sentinel has no master. Retrying later helps.
    ├── StoreConfigError        the store URL or its options are invalid. Retrying never helps.
    └── StoreDataError          Redis answered something the schema does not allow (a foreign
                                key of the wrong type under Curfew's prefix, for one).

An outage reads the same in every process (sidecar, purge job, demo) whichever client met it
(:func:`outage_at`): ``Redis unavailable at 127.0.0.1:6379: connection refused`` when the socket
failed, in the operating system's words; ``Redis unavailable: <what Redis said>`` otherwise.
"""

from __future__ import annotations

import os
import re
import ssl
from typing import Final

UNAVAILABLE: Final = "Redis unavailable"
"""How every outage message starts."""


class StoreError(Exception):
    """Base of every error the session store raises."""


class StoreUnavailable(StoreError):
    """The store cannot answer now; the message says why, without credentials."""


class StoreConfigError(StoreError, ValueError):
    """The store URL or options are invalid."""


class StoreDataError(StoreError):
    """Redis returned data the key schema does not allow."""


_PIPELINE_ERROR: Final = re.compile(
    r"Command # (\d+) \((\S+).*\) of pipeline caused error: (.*?)", re.DOTALL)
_WITH_ARGS: Final = ", with args beginning with:"


def redacted(error: BaseException) -> str:
    """An error's text without the command's arguments: redis-py quotes a failed pipeline
    command whole, and arguments hold session ids (Spring's set members, app keys)."""
    text = str(error) or type(error).__name__
    match = _PIPELINE_ERROR.fullmatch(text)
    if match is not None:
        number, command, reason = match.groups()
        text = f"command #{number} ({command}) of a pipeline: {reason}"
    return text.split(_WITH_ARGS, 1)[0]


def unavailable(detail: str) -> StoreUnavailable:
    """An outage other than a refused connection (a timeout, LOADING, CLUSTERDOWN, ...)."""
    return StoreUnavailable(f"{UNAVAILABLE}: {detail}")


def outage_at(address: str | None, error: BaseException) -> StoreUnavailable:
    """The outage ``error`` stands for. ``address`` is the ``host:port`` (or socket path) the
    client was talking to, from the URL and never with its credentials; None where the caller
    does not know it."""
    reason = socket_failure(error)
    if reason is None:
        return unavailable(redacted(error))
    return StoreUnavailable(f"{UNAVAILABLE}{f' at {address}' if address else ''}: {reason}")


def socket_failure(error: BaseException) -> str | None:
    """Why the socket failed, in the operating system's words (``connection refused``,
    ``name or service not known``, ``timed out``) or TLS's, from the chain of exceptions a
    client wraps the socket's error in; None when no socket error is in it."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, TimeoutError):
            return "timed out"
        if isinstance(link, ssl.SSLError):
            # An OSError too, but its errno is OpenSSL's code, not the operating system's.
            detail = getattr(link, "verify_message", None) or link.strerror or str(link)
            return f"TLS: {detail}"
        if isinstance(link, OSError):
            # asyncio's ConnectionRefusedError has errno 111 but the text "Connect call failed
            # (...)"; getaddrinfo's errors have negative codes and a text of their own.
            text = os.strerror(link.errno) if link.errno and link.errno > 0 else link.strerror
            return text[0].lower() + text[1:] if text else str(link) or type(link).__name__
        link = link.__cause__ or link.__context__
    return None
