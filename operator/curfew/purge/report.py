"""What a purge run says: an audit event per removed session, a progress line on a terminal,
and the summary line of the purge summary contract."""

from __future__ import annotations

import json
import string
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from curfew.sessions.lifetime import Reason

Outcome = Literal["ok", "aborted", "failed"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3


@dataclass
class Summary:
    """The run's result: printed last on stdout and written to the termination message file."""

    outcome: Outcome = "ok"
    scanned: int = 0
    expired: Counter[Reason] = field(default_factory=Counter)
    repaired: int = 0
    malformed: int = 0
    """App sessions whose times cannot be read (counted and skipped, never judged)."""
    duration_seconds: float = 0.0
    message: str = ""

    @property
    def exit_code(self) -> int:
        return {"ok": EXIT_OK, "aborted": EXIT_ABORTED, "failed": EXIT_FAILED}[self.outcome]

    def to_json(self) -> str:
        return json.dumps(
            {
                "outcome": self.outcome,
                "scanned": self.scanned,
                "expired": {r.value: self.expired[r] for r in Reason},
                "repaired": self.repaired,
                "malformed": self.malformed,
                "durationSeconds": round(self.duration_seconds, 3),
                "message": self.message,
            },
            separators=(", ", ": "),
        )


def emit_summary(summary: Summary, termination_log: Path | None, out: TextIO) -> None:
    line = summary.to_json()
    print(line, file=out, flush=True)
    if termination_log is not None:
        try:
            termination_log.write_text(line + "\n", "utf-8")
        except OSError as error:
            print(
                f"curfew purge: cannot write the termination log {termination_log}: "
                f"{error.strerror}",
                file=sys.stderr,
            )


_ALNUM = (string.ascii_letters + string.digits).encode()


def _plain(text: str, also: bytes = b"") -> bool:
    """Whether ``text`` is only ASCII letters, digits and ``also``, so needs no JSON escaping
    (keyed hashes are hex). Deleting those bytes is C-speed; ``str.isalnum`` is not."""
    return text.isascii() and not text.encode("ascii").translate(None, _ALNUM + also)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Audit:
    """Audit events as JSON lines: keyed session hashes only, never a session id.

    Lines are built from pre-encoded parts: a purge may write hundreds of thousands of them.
    """

    def __init__(self, out: TextIO, *, dry_run: bool, store_format: str) -> None:
        self.out = out
        self.event = "session.wouldExpire" if dry_run else "session.expired"
        self.store_format = json.dumps(store_format)
        self._encoded: dict[str, str] = {}

    def _json(self, text: str) -> str:
        encoded = self._encoded.get(text)
        if encoded is None:
            encoded = self._encoded[text] = json.dumps(text)
        return encoded

    def expired(self, *, session: str, reason: Reason, policy: str, workload: str) -> None:
        self.expired_many([session], reason=reason, policy=policy, workload=workload)

    def expired_many(
        self, sessions: Sequence[str], *, reason: Reason, policy: str, workload: str
    ) -> None:
        """One line per session of a batch that share reason, policy and workload, written at
        once: the per-session work is one string join, as a purge may write millions."""
        if not sessions:
            return
        head, tail = self._parts(reason, policy, workload)
        if _plain("".join(sessions)):
            self.out.write(head + '"' + f'"{tail}{head}"'.join(sessions) + '"' + tail)
        else:
            self.out.write("".join(head + json.dumps(s) + tail for s in sessions))

    def expired_joined(self, sessions: str, *, reason: Reason, policy: str, workload: str) -> None:
        """``expired_many`` for sessions joined by single spaces, as the index walk returns
        them: one replace for the whole batch, no string per session."""
        if not sessions:
            return
        if not _plain(sessions, also=b" "):
            self.expired_many(sessions.split(" "), reason=reason, policy=policy,
                              workload=workload)
            return
        head, tail = self._parts(reason, policy, workload)
        self.out.write(head + '"' + sessions.replace(" ", f'"{tail}{head}"') + '"' + tail)

    def _parts(self, reason: Reason, policy: str, workload: str) -> tuple[str, str]:
        """What comes before and after the session hash of each line of one batch."""
        head = (
            f'{{"time":"{_now()}","event":"{self.event}","reason":"{reason.value}",'
            f'"policy":{self._json(policy)},"workload":{self._json(workload)},"session":'
        )
        return head, f',"store":{self.store_format}}}\n'


class Progress:
    """A one-line progress display on stderr, redrawn at most ten times a second."""

    def __init__(self, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.enabled = enabled
        self.stream = stream
        self._last = 0.0

    def show(self, stage: str, scanned: int, expired: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        self.stream.write(f"\r\x1b[Kpurge: {stage}: scanned {scanned}, expired {expired}")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
