"""The first minutes of the demo in real headless Chromium: the countdowns never skip a second,
the sign-in page says why the user is there, and ``return_to`` is one encoding: the login URL
the browser client builds and the sidecar's own redirect for the same page are the same bytes,
and signing in there returns to the same place."""

from __future__ import annotations

import http.client
import itertools
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_harness import (
    DEMO_NAMESPACE,
    IDLE,
    LEAD,
    Demo,
    dialog_open,
    sign_in,
    wait_until,
)
from selenium import webdriver
from selenium.webdriver.common.by import By

from curfew.sessions.identity import session_hash
from curfew.sessions.keys import RecordField, record_key
from curfew.sidecar.settings import INSECURE_DEV_KEY
from fixtures.redis_servers import RedisServer

NOTE = "notes/7?view=edit"

_RECORD_CHANGES = """
window.shown = {idle: [], dialog: []};
function look() {
  var idle = document.getElementById('idle-left');
  var dialog = document.querySelector('.curfew-time');
  [['idle', idle], ['dialog', dialog]].forEach(function (pair) {
    var seen = window.shown[pair[0]];
    if (!pair[1] || pair[1].closest('[hidden]')) return;
    var text = pair[1].textContent;
    if (!seen.length || seen[seen.length - 1][1] !== text) seen.push([Date.now(), text]);
  });
}
new MutationObserver(look).observe(document.body,
  {subtree: true, childList: true, characterData: true});
look();
"""


def _seconds(clock: str) -> int:
    minutes, _, seconds = clock.partition(":")
    return int(minutes) * 60 + int(seconds)


def _end_in_store(server: RedisServer, cookie: str, field: RecordField) -> None:
    """Move one of the session's times an hour back, as if that limit had passed."""
    key = record_key(DEMO_NAMESPACE, session_hash(INSECURE_DEV_KEY, cookie))
    client = server.client()
    assert client.exists(key)
    client.hset(key, field.value, str(time.time_ns() // 1_000_000 - 3_600_000))


def _redirect(demo: Demo, target: str, cookie: str | None) -> str:
    """The ``Location`` of the answer to a browser navigation to ``target``, sent byte for byte:
    the sidecar's, for an expired session; the demo app's own, without one."""
    host, port = urlsplit(demo.url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Accept": "text/html"}
    if cookie is not None:
        headers["Cookie"] = f"demo_session={cookie}"
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 302, response.status
        return str(response.getheader("Location"))
    finally:
        connection.close()


def test_the_countdowns_never_skip_a_second(demo: Demo, browser: webdriver.Chrome) -> None:
    sign_in(browser, demo.url + NOTE)
    browser.execute_script(_RECORD_CHANGES)
    # From the first status to the expiry: the page's banner and, from LEAD seconds before the
    # end, the dialog; polls (at the warning, every second while it shows) land in between.
    wait_until(lambda: dialog_open(browser), IDLE, "the warning dialog")
    time.sleep(LEAD - 0.8)
    shown = browser.execute_script("return window.shown;")
    for name, changes in shown.items():
        values = [_seconds(text) for _, text in changes]
        assert len(values) >= (4 if name == "idle" else 2), (name, changes)
        steps = [a - b for a, b in itertools.pairwise(values)]
        # One second at a time: never two at once, and never back up (nobody was active).
        assert set(steps) == {1}, f"the {name} countdown skipped or went back: {changes}"
    # Both count down to the same deadline: they change together and show the same second.
    assert shown["dialog"][-1][1] == shown["idle"][-1][1]
    assert abs(shown["dialog"][-1][0] - shown["idle"][-1][0]) < 100


def test_after_an_idle_expiry_the_sign_in_page_says_why(
    demo: Demo, browser: webdriver.Chrome
) -> None:
    sign_in(browser, demo.url + NOTE)
    wait_until(lambda: "/login" in browser.current_url, IDLE + 3, "the login page")
    assert parse_qs(urlsplit(browser.current_url).query)["curfew_reason"] == ["idle"]
    notice = browser.find_element(By.ID, "signed-out")
    assert notice.text == f"You were signed out after {IDLE:g} s without activity."
    assert notice.get_attribute("role") == "status"


def test_after_the_absolute_limit_the_sign_in_page_says_so_on_the_servers_redirect_too(
    demo: Demo, browser: webdriver.Chrome, redis_server: RedisServer
) -> None:
    cookie = sign_in(browser, demo.url + NOTE)
    _end_in_store(redis_server, cookie, RecordField.CREATED)
    # A navigation, not the script: the sidecar's own 302 carries the reason.
    browser.get(demo.url + "notes/12?view=edit")
    wait_until(lambda: "/login" in browser.current_url, 5, "the login page")
    assert browser.find_element(By.ID, "signed-out").text == (
        "You were signed out because sessions last at most 2 min, however active.")


def test_a_reason_the_page_does_not_know_is_never_echoed(
    demo: Demo, browser: webdriver.Chrome
) -> None:
    browser.get(demo.url + "login?return_to=%2F&curfew_reason=%3Cb%3Epwned%3C%2Fb%3E")
    assert browser.find_element(By.ID, "signed-out").text == "Your session ended."
    assert "pwned" not in browser.page_source
    browser.get(demo.url + "login?return_to=%2F")
    assert browser.find_elements(By.ID, "signed-out") == []


# The pages, as typed into the address bar (the browser encodes them as it does): a query full
# of separators and escapes, spaces and non-ASCII in path and query, a fragment (never sent to
# a server, so never part of the way back), the characters Python's and the URL Standard's form
# encodings disagree on, and a path that reads as another host.
PAGES = [
    ("notes/7?view=edit&q=a b&amp=x%26y&pct=100%25&hash=%23top&plus=1+2", None),
    ("notes/caf\u00e9 na\u00efve/\u2713?q=\u00fcber cool&&z=%2F%2F", None),
    ("notes/7?view=edit#section-2", "/notes/7?view=edit"),
    ("notes/~user*(x)!'?a=~*'()!&b=%7E", None),
    ("/evil.example/x?y=1", "/"),
]


@pytest.mark.parametrize(("page", "back_to"), PAGES)
def test_the_script_and_the_sidecar_send_the_user_to_the_same_login_url_and_back_to_the_page(
    demo: Demo, browser: webdriver.Chrome, redis_server: RedisServer, page: str,
    back_to: str | None,
) -> None:
    cookie = sign_in(browser, demo.url)
    browser.get(demo.url + page)
    # What this page sends as its request target (path and query, as the browser encoded them).
    target = browser.execute_script("return location.pathname + location.search;")
    wait_until(lambda: browser.find_element(By.ID, "countdown").is_displayed(), 5,
               "the client's first status")
    browser.execute_script(
        "document.addEventListener('curfew:expired', function (e) {"
        " sessionStorage.setItem('curfew-login-url', e.detail.url); });")
    _end_in_store(redis_server, cookie, RecordField.LAST_ACTIVITY)
    browser.execute_script("window.curfew.refresh();")
    wait_until(lambda: "/login" in browser.current_url, 5, "the login page")
    by_script = browser.execute_script("return sessionStorage.getItem('curfew-login-url');")
    by_sidecar = _redirect(demo, target, cookie)
    assert by_script == by_sidecar
    # The app's own redirect of a visitor without a session encodes the page the same way.
    assert _redirect(demo, target, None) + "&curfew_reason=idle" == by_sidecar
    expected = back_to or target
    assert parse_qs(urlsplit(by_sidecar).query) == {
        "return_to": [expected], "curfew_reason": ["idle"]}
    assert browser.find_element(By.NAME, "return_to").get_attribute("value") == expected
    browser.find_element(By.ID, "sign-in").click()
    wait_until(lambda: "/login" not in browser.current_url, 10, "back from the login page")
    assert browser.execute_script("return location.pathname + location.search;") == expected
