"""Harness of the browser tests: ``curfew demo`` as a real process, real headless Chromium.

- ``Demo``: ``curfew demo`` started with a policy of seconds on a free port, against the suite's
  real Redis (``redis_server``) or its embedded store; stopped with SIGTERM.
- ``browser``: Debian's ``chromium`` driven through Debian's ``chromedriver`` by selenium (never a
  downloaded browser), with a fresh profile. Skips, saying why, when either is not installed.
- ``shoot``: screenshots go to the test's tmp dir, and to ``docs/images/`` when
  ``CURFEW_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from curfew.sessions.identity import session_hash
from curfew.sessions.keys import curfew_namespace, record_key
from curfew.sessions.lifetime import SessionRecord
from curfew.sidecar.settings import INSECURE_DEV_KEY
from fixtures.redis_servers import RedisServer

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "docs" / "images"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
DEMO_NAMESPACE = curfew_namespace("curfew", "curfew-demo:")
COOKIE = "demo_session"

IDLE = 6.0
LEAD = 3.0
"""The tests' policy: idle 6s, warning 3s before expiry (absolute 2m never interferes)."""


@dataclass
class Demo:
    """A running ``curfew demo``."""

    process: subprocess.Popen[str]
    url: str
    banner: str

    def stop(self) -> None:
        """SIGTERM; it must stop cleanly, as on Ctrl-C."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=15)
        assert self.process.returncode == 0, err
        assert "Traceback" not in err, err
        assert out.rstrip().endswith("Curfew demo: stopping")


def start_demo(*args: str) -> Demo:
    """``curfew demo --port 0 ARGS...``; waits for the line that gives its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "curfew", "demo", "--port", "0", "--for", "120", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            errors = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"curfew demo exited: {errors}")
        lines.append(line)
        if line.strip().startswith("store"):
            url = next(x.split()[-1] for x in lines if x.strip().startswith("open"))
            return Demo(process, url, "".join(lines))
    process.kill()
    raise AssertionError("curfew demo printed no URL in 30s")


@pytest.fixture
def demo(redis_server: RedisServer) -> Iterator[Demo]:
    """The demo on the suite's Redis, with the tests' policy of seconds."""
    running = start_demo("--redis-url", redis_server.url, "--idle", f"{IDLE:g}s",
                         "--warning-lead", f"{LEAD:g}s", "--absolute", "2m")
    yield running
    running.stop()


def record_of(server: RedisServer, cookie: str) -> SessionRecord | None:
    """The session record the sidecar keeps in Redis for a raw cookie value."""
    key = record_key(DEMO_NAMESPACE, session_hash(INSECURE_DEV_KEY, cookie))
    fields = server.client().hgetall(key)
    return SessionRecord.from_fields({k.decode(): v.decode() for k, v in fields.items()})


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromium-driver are not installed (make system-deps installs "
                    "them)")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--disable-domain-reliability", "--disable-client-side-phishing-detection",
                 "--no-pings", "--disable-default-apps", "--metrics-recording-only",
                 # Loopback always bypasses a proxy: anything else would meet a closed port,
                 # so the browser can reach nothing but the servers these tests start.
                 "--proxy-server=http://127.0.0.1:9",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1000,720"):
        options.add_argument(flag)
    # Given a driver path, selenium never downloads a browser or a driver of its own.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


Shoot = Callable[[webdriver.Chrome, str], Path]


@pytest.fixture
def shoot(tmp_path: Path) -> Shoot:
    def take(driver: webdriver.Chrome, name: str) -> Path:
        path = tmp_path / name
        assert driver.save_screenshot(str(path))
        if os.environ.get("CURFEW_UPDATE_SCREENSHOTS") == "1":
            IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, IMAGES / name)
        return path

    return take


def wait_until(check: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(step)


def dialog_open(driver: webdriver.Chrome) -> bool:
    return bool(driver.execute_script(
        "var d = document.querySelector('dialog.curfew-dialog'); return !!(d && d.open);"))


def sign_in(driver: webdriver.Chrome, url: str) -> str:
    """Open ``url`` (the app sends us to sign in first), sign in; the session cookie's value."""
    driver.get(url)
    driver.find_element(By.ID, "sign-in").click()
    wait_until(lambda: "/login" not in driver.current_url, 10, "back from the login page")
    cookie = driver.get_cookie(COOKIE)
    assert cookie is not None
    return str(cookie["value"])


def requests_to(driver: webdriver.Chrome, path: str) -> int:
    """How many requests this page made to ``path`` (Resource Timing)."""
    return int(driver.execute_script(
        "var path = arguments[0]; return performance.getEntriesByType('resource')"
        ".filter(function (e) { return new URL(e.name).pathname === path; }).length;",
        path))
