"""The mounted config and its hot reload.

Kubelet updates a ConfigMap volume by writing a new timestamped directory and swapping the
``..data`` symlink to it, so the file's path never changes while what it resolves to does.
:class:`ConfigWatcher` polls cheaply (the resolved path and its stat), reads and validates only
when those move, and swaps the compiled policy in one assignment: a request in flight keeps the
policy it started with. A new config that does not validate is logged, counted and shown by
readiness, and the last good one stays in force.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from curfew.api.config import UnifiedConfig
from curfew.api.policy import describe_errors
from curfew.sidecar import audit
from curfew.sidecar.policy import SidecarPolicy, build_policy

_log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A config file that cannot be used; the message is one line naming the file and field."""


def load_policy(
    path: Path, text: bytes | None = None, *, app_secrets: tuple[bytes, ...] = ()
) -> SidecarPolicy:
    """Read (unless ``text`` is given), validate and compile a ``policy.json`` (``app_secrets``:
    the app's cookie secrets, see :func:`build_policy`)."""
    try:
        raw = path.read_bytes() if text is None else text
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        config = UnifiedConfig.model_validate_json(raw)
    except ValidationError as err:
        raise ConfigError(f"{path}: {'; '.join(describe_errors(err.errors()))}") from None
    try:
        return build_policy(config, app_secrets)
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None


@dataclass(frozen=True, slots=True)
class _FileState:
    resolved: str
    inode: int
    size: int
    mtime_ns: int


def _state(path: Path) -> _FileState | None:
    try:
        resolved = os.path.realpath(path)
        st = os.stat(resolved)
    except OSError:
        return None
    return _FileState(resolved, st.st_ino, st.st_size, st.st_mtime_ns)


class ConfigWatcher:
    """Holds the policy in force and reloads it when the mounted file changes."""

    def __init__(
        self,
        path: Path,
        policy: SidecarPolicy,
        *,
        on_change: Callable[[SidecarPolicy, str | None], None] = lambda p, e: None,
        app_secrets: tuple[bytes, ...] = (),
    ) -> None:
        self.path = path
        self._app_secrets = app_secrets
        self.policy = policy
        self.error: str | None = None
        """Why the newest file on disk was rejected; None while it is the one in force."""
        self._on_change = on_change
        self._state = _state(path)
        self._digest = hashlib.sha256(path.read_bytes()).hexdigest() if self._state else ""

    def poll(self) -> bool:
        """Check the file once; True when the policy in force changed."""
        state = _state(self.path)
        if state is None:
            # Mid-swap, or the volume went away: keep what we have and look again next time.
            return False
        if state == self._state:
            return False
        self._state = state
        try:
            text = self.path.read_bytes()
        except OSError:
            self._state = None
            return False
        digest = hashlib.sha256(text).hexdigest()
        if digest == self._digest:
            return False
        self._digest = digest
        old = self.policy.hash
        try:
            policy = load_policy(self.path, text, app_secrets=self._app_secrets)
        except ConfigError as err:
            self.error = str(err)
            _log.error("rejected the new config, keeping %s: %s", old, err)
            audit.emit(audit.CONFIG_REJECTED, kept=old, error=self.error)
            self._on_change(self.policy, self.error)
            return False
        if policy.hash == old:
            # Back to the config in force after a rejected one: nothing to reload, but the
            # rejection no longer stands.
            if self.error is not None:
                self.error = None
                self._on_change(self.policy, None)
            return False
        self.policy, self.error = policy, None
        audit.emit(audit.CONFIG_RELOADED, previous=old, hash=policy.hash,
                   enforcement=policy.config.enforcement, workload=policy.workload)
        self._on_change(policy, None)
        return True

    async def run(self, interval: float) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.poll()
            except Exception:  # a watcher that dies would silently freeze the config
                _log.exception("config poll failed; will retry")
