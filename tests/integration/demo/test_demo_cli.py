"""``curfew demo`` as a person runs it: a real process that prints its URL and store, serves the
sample app behind the sidecar (sign-in, return, status, client files), and stops by itself
after ``--for`` seconds, leaving no Redis it started behind."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from curfew.sessions.keys import curfew_namespace
from fixtures.redis_servers import RedisServer


def _run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "curfew", "demo", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM, as Ctrl-C or a CI runner would; the rest of stdout and stderr."""
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=30)


def _banner(process: subprocess.Popen[str]) -> tuple[str, str]:
    """(URL, the whole banner) from the first lines the demo prints."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.strip().startswith("stop"):
            break
    banner = "".join(lines)
    match = re.search(r"open\s+(http://\S+)", banner)
    assert match, banner
    return match.group(1), banner


def _browser() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )


def _sign_in_and_browse(url: str) -> None:
    browser = _browser()
    with browser.open(url + "notes/12?view=edit") as r:
        # The app sends us to its login page, keeping where we were going.
        parts = urlsplit(r.url)
        assert parts.path == "/login"
        assert parse_qs(parts.query)["return_to"] == ["/notes/12?view=edit"]
        page = r.read().decode()
        assert 'name="return_to" value="/notes/12?view=edit"' in page
    form = urlencode({"username": "grace", "password": "x", "return_to": "/notes/12?view=edit"})
    with browser.open(url + "login", data=form.encode()) as r:
        assert r.url == url + "notes/12?view=edit"
        page = r.read().decode()
        assert "Trip checklist" in page
        assert '<script src="/.curfew/client.js" defer' in page
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    with browser.open(url + ".curfew/session") as r:
        status = json.load(r)
        assert status["idleSeconds"] == 30
        assert status["warningLeadSeconds"] == 15
        assert r.headers["Curfew-Idle-Remaining"]
    with browser.open(url + ".curfew/client.json") as r:
        client = json.load(r)
        assert client["loginURL"] == "/login"
        assert client["loginPrefix"] == "/login?return_to="
    with browser.open(url + ".curfew/client.js") as r:
        assert r.status == 200


def test_the_embedded_demo_serves_the_app_behind_the_sidecar_until_stopped() -> None:
    process = _run("--store", "embedded", "--for", "120")
    url, banner = _banner(process)
    assert "store   embedded in-process store" in banner
    assert "idle 30s, absolute 3m, warning 15s" in banner
    assert "the warning 15s before the end, the sign-in page saying why" in banner
    assert "audit events follow, one JSON line each" in banner
    _sign_in_and_browse(url)
    out, err = _stop(process)
    assert process.returncode == 0, err
    assert "Curfew demo: stopping" in out
    # The sidecar's audit log saw the new session, by its keyed hash only.
    first_seen = [json.loads(line) for line in out.splitlines() if '"session_first_seen"' in line]
    assert first_seen
    assert all(len(event["session"]) == 64 for event in first_seen)


def test_the_demo_stops_by_itself_after_for_seconds() -> None:
    process = _run("--store", "embedded", "--for", "1")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stops by itself after 1s" in out
    assert out.rstrip().endswith("Curfew demo: stopping")


def test_given_a_redis_url_the_demo_keeps_its_sessions_there(redis_server: RedisServer) -> None:
    process = _run("--redis-url", redis_server.url, "--for", "120")
    url, banner = _banner(process)
    assert f"Redis at 127.0.0.1:{redis_server.port} (keys under curfew-demo:)" in banner
    pattern = curfew_namespace("curfew", "curfew-demo:") + "*"
    before = set(redis_server.client().scan_iter(match=pattern))
    _sign_in_and_browse(url)
    after = set(redis_server.client().scan_iter(match=pattern))
    assert after - before
    _stop(process)
    assert process.returncode == 0


def test_with_no_redis_running_the_demo_starts_redis_server_and_stops_it_on_exit() -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 6379)) == 0:
            pytest.skip("a Redis listens on 127.0.0.1:6379, which the demo would use instead")
    process = _run("--store", "redis", "--for", "120")
    url, banner = _banner(process)
    match = re.search(r"redis-server started for the demo on port (\d+)", banner)
    assert match, banner
    port = int(match.group(1))
    with urllib.request.urlopen(url + "login") as r:
        assert r.status == 200
    _stop(process)
    assert process.returncode == 0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "curfew", "demo", "--store", "embedded", "--port", str(port)],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"curfew demo: --port: cannot listen on 127.0.0.1:{port}")
    assert result.stderr.count("\n") == 1


def test_an_unreachable_redis_url_is_one_line_and_exit_1() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "curfew", "demo", "--redis-url", f"redis://127.0.0.1:{port}/0"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"curfew demo: --redis-url: Redis unavailable at 127.0.0.1:{port}: connection refused\n")


def _get(url: str, path: str, cookie: str) -> tuple[int, str, bytes]:
    """One request, redirects not followed: (status, Location, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request("GET", path, headers={"Cookie": cookie})
    response = connection.getresponse()
    answer = response.status, response.getheader("Location", ""), response.read()
    connection.close()
    return answer


def test_a_respelled_expired_demo_session_never_reaches_the_app() -> None:
    # The demo app reads cookies as aiohttp does: "x=1, demo_session=<id>" and a quoted,
    # backslash-escaped id are its session; the sidecar in front must not let them by.
    process = _run("--store", "embedded", "--idle", "2s", "--warning-lead", "1s", "--for", "120")
    url, _ = _banner(process)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request("POST", "/login", body=urlencode({"username": "mallory", "return_to": "/"}),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    token = SimpleCookie(response.getheader("Set-Cookie"))["demo_session"].value
    connection.close()
    status, _, page = _get(url, "/", f"demo_session={token}")
    assert (status, b"mallory" in page) == (200, True)
    time.sleep(2.5)  # past the idle timeout
    status, location, _ = _get(url, "/", f"demo_session={token}")
    assert (status, urlsplit(location).path) == (302, "/login")
    escaped = '"\\' + format(ord(token[0]), "03o") + token[1:] + '"'
    for cookie in (f"x=1, demo_session={token}", f"demo_session={escaped}"):
        status, _, body = _get(url, "/", cookie)
        assert b"mallory" not in body, f"the app served the expired session for {cookie}"
        assert (status, json.loads(body)) == (400, {"error": "ambiguous_session"}), cookie
    _stop(process)
    assert process.returncode == 0
