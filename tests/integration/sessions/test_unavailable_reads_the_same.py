"""A store nobody listens on reads the same in every process: ``curfew purge``, ``curfew
sidecar`` and ``curfew demo`` each started against a closed port say it in one stderr line, in
the same words, without a traceback."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from curfew.api.config import UnifiedConfig
from fixtures.policy_docs import policy_doc
from fixtures.purge import curfew_purge, purge_config, write_config
from fixtures.redis_servers import free_port

KEY = "unavailable-test-session-key-0123456789"
_MESSAGE = re.compile(r"(Redis unavailable[^;\n]*)")


def _closed_url() -> tuple[str, int]:
    port = free_port()  # bound and released: nothing listens on it
    return f"redis://127.0.0.1:{port}/0", port


def _message(line: str) -> str:
    match = _MESSAGE.search(line)
    assert match, line
    return match.group(1)


def _sidecar_line(url: str, tmp_path: Path) -> str:
    """The warning a real sidecar logs at start; it keeps running (Redis may come up later) and
    stops cleanly on SIGTERM."""
    config = tmp_path / "policy.json"
    config.write_text(UnifiedConfig.model_validate(policy_doc()).sealed().to_json())
    env = {**os.environ, "REDIS_URL": url, "CURFEW_SESSION_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "curfew", "sidecar", "--config", str(config),
         "--upstream", "http://127.0.0.1:9", "--listen", f"127.0.0.1:{free_port()}",
         "--ops-listen", ""],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], 0.5)
            if not ready:
                continue
            line = process.stderr.readline()
            assert line, "the sidecar exited"
            assert "Traceback" not in line
            if "Redis" in line:
                assert " WARNING " in line, line
                return line
        raise AssertionError("the sidecar said nothing about the store in 20 s")
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=20)
        assert process.returncode == 0, rest
        assert "Traceback" not in rest


def test_purge_sidecar_and_demo_report_a_closed_port_in_the_same_words(tmp_path: Path) -> None:
    url, port = _closed_url()
    expected = f"Redis unavailable at 127.0.0.1:{port}: connection refused"

    purge = curfew_purge(write_config(tmp_path, purge_config()), url)
    assert purge.code == 1
    assert "Traceback" not in purge.stderr
    [purge_line] = purge.stderr.splitlines()
    assert purge_line.startswith("curfew purge: failed: ")
    assert purge.summary["message"] == purge_line.removeprefix("curfew purge: failed: ")

    sidecar_line = _sidecar_line(url, tmp_path)

    demo = subprocess.run([sys.executable, "-m", "curfew", "demo", "--redis-url", url],
                          capture_output=True, text=True, timeout=30)
    assert demo.returncode == 1
    assert demo.stderr == f"curfew demo: --redis-url: {expected}\n"

    assert _message(purge_line) == _message(sidecar_line) == expected


def test_an_unresolvable_host_reads_the_same_in_the_purge_and_the_demo(tmp_path: Path) -> None:
    url = "redis://:hunter2-password@no-such-host.invalid:6379/0"
    purge = curfew_purge(write_config(tmp_path, purge_config()), url)
    demo = subprocess.run([sys.executable, "-m", "curfew", "demo", "--redis-url", url],
                          capture_output=True, text=True, timeout=30)
    assert purge.code == demo.returncode == 1
    assert _message(purge.stderr) == _message(demo.stderr)
    assert _message(purge.stderr).startswith("Redis unavailable at no-such-host.invalid:6379: ")
    assert "hunter2" not in purge.stdout + purge.stderr + demo.stderr


def test_a_dry_run_that_meets_a_closed_port_removed_nothing_and_says_so(tmp_path: Path) -> None:
    url, port = _closed_url()
    run = curfew_purge(write_config(tmp_path, purge_config()), url, "--dry-run")
    assert run.code == 1
    assert run.summary["message"] == (
        f"Redis unavailable at 127.0.0.1:{port}: connection refused; dry run: removed nothing")
    assert "removing" not in run.stdout + run.stderr
