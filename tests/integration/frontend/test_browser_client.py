"""The browser client in real headless Chromium, against ``curfew demo`` and real Redis: the
warning comes on time, "Stay signed in" extends the session in the store, inaction leads to the
login page and back to the same place with the draft kept, polling alone keeps nothing alive,
and a second tab follows the first."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from browser_harness import (
    IDLE,
    LEAD,
    Demo,
    Shoot,
    dialog_open,
    record_of,
    requests_to,
    sign_in,
    start_demo,
    wait_until,
)
from selenium import webdriver
from selenium.webdriver.common.by import By

from fixtures.redis_servers import RedisServer

NOTE = "notes/7?view=edit"
TAB_LEAD = 30.0
"""The warning lead of the two-tab test: the time it has to act once the warning is shown."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_the_warning_dialog_appears_warning_lead_before_idle_expiry(
    demo: Demo, browser: webdriver.Chrome, redis_server: RedisServer, shoot: Shoot
) -> None:
    cookie = sign_in(browser, demo.url + NOTE)
    record = record_of(redis_server, cookie)
    assert record is not None
    last = record.last_activity_ms
    browser.execute_script(
        "document.addEventListener('curfew:expiring', function () {"
        " window.expiringAt = Date.now(); });")
    assert not dialog_open(browser)
    wait_until(lambda: dialog_open(browser), IDLE, "the warning dialog")
    # The page's own clock (the same as Redis's: one machine) says when the warning came.
    shown_after = (browser.execute_script("return window.expiringAt;") - last) / 1000
    # Due at idle - lead; the server reports whole seconds (rounded down), so up to 1s early,
    # and a loaded machine may run the page's timer a little late.
    assert IDLE - LEAD - 1.2 <= shown_after <= IDLE - LEAD + 1.0, shown_after
    dialog = browser.find_element(By.CSS_SELECTOR, "dialog.curfew-dialog")
    assert dialog.get_attribute("role") == "alertdialog"
    assert dialog.get_attribute("aria-modal") == "true"
    assert "You will be signed out in 0:0" in dialog.text
    assert browser.find_element(By.CSS_SELECTOR, ".curfew-live").get_attribute(
        "aria-live") == "polite"
    # Focus moves to the safe action, so Enter or Space keeps the user signed in.
    assert browser.switch_to.active_element.text == "Stay signed in"
    # The app heard curfew:expiring and kept the draft.
    assert browser.find_element(By.ID, "draft-status").text == "Draft kept on this device."
    shot = shoot(browser, "warning-dialog.png")
    assert shot.stat().st_size > 10_000


def test_stay_signed_in_extends_the_session_in_the_store(
    demo: Demo, browser: webdriver.Chrome, redis_server: RedisServer
) -> None:
    cookie = sign_in(browser, demo.url + NOTE)
    wait_until(lambda: dialog_open(browser), IDLE, "the warning dialog")
    before = record_of(redis_server, cookie)
    assert before is not None
    browser.find_element(By.CSS_SELECTOR, ".curfew-stay").click()
    wait_until(lambda: not dialog_open(browser), 3, "the dialog closing")
    after = record_of(redis_server, cookie)
    assert after is not None
    assert after.last_activity_ms > before.last_activity_ms
    assert _now_ms() - after.last_activity_ms < 2000
    assert requests_to(browser, "/.curfew/keepalive") == 1
    # Past the deadline the session had before: still signed in, still on the page.
    time.sleep(max(0.0, (before.idle_deadline_ms - _now_ms()) / 1000) + 0.5)
    assert urlsplit(browser.current_url).path == "/notes/7"
    still = record_of(redis_server, cookie)
    assert still is not None
    assert still.expired is None


def test_inaction_leads_to_the_login_page_and_signing_in_returns_to_the_same_place(
    demo: Demo, browser: webdriver.Chrome, redis_server: RedisServer, shoot: Shoot
) -> None:
    cookie = sign_in(browser, demo.url + NOTE)
    box = browser.find_element(By.ID, "draft")
    box.clear()
    box.send_keys("Half a thought that must not be lost")
    wait_until(lambda: "/login" in browser.current_url, IDLE + 3, "the login page")
    query = parse_qs(urlsplit(browser.current_url).query)
    assert query["return_to"] == ["/notes/7?view=edit"]
    assert browser.find_element(By.ID, "return-to").text == "/notes/7?view=edit"
    expired = record_of(redis_server, cookie)
    assert expired is not None
    assert expired.expired is not None
    assert expired.expired.value == "idle"
    assert browser.get_cookie("demo_session") is None
    shoot(browser, "login-return.png")
    browser.find_element(By.ID, "sign-in").click()
    wait_until(lambda: "/login" not in browser.current_url, 10, "back from the login page")
    assert browser.current_url == demo.url + NOTE
    assert browser.find_element(By.ID, "draft").get_attribute("value") == (
        "Half a thought that must not be lost")
    assert browser.find_element(By.ID, "draft-status").text == "Restored your unsaved draft."
    shoot(browser, "returned-with-draft.png")


def test_background_polling_alone_does_not_keep_the_session_alive(
    demo: Demo, browser: webdriver.Chrome, redis_server: RedisServer
) -> None:
    cookie = sign_in(browser, demo.url)
    record = record_of(redis_server, cookie)
    assert record is not None
    wait_until(lambda: requests_to(browser, "/.curfew/session") >= 2, IDLE, "two polls")
    polled = record_of(redis_server, cookie)
    assert polled is not None
    assert polled.last_activity_ms == record.last_activity_ms
    wait_until(lambda: "/login" in browser.current_url, IDLE + 3, "the login page")
    left_at = _now_ms()
    assert IDLE - 0.2 <= (left_at - record.last_activity_ms) / 1000 <= IDLE + 2.5
    ended = record_of(redis_server, cookie)
    assert ended is not None
    assert ended.expired is not None
    assert ended.last_activity_ms == record.last_activity_ms


def test_a_keepalive_in_one_tab_closes_the_warning_in_the_other(
    browser: webdriver.Chrome, redis_server: RedisServer
) -> None:
    # The warning comes as in the other tests, IDLE - LEAD after the last activity, but the
    # session then lasts TAB_LEAD seconds more: the switches between tabs and the click must all
    # land before the expiry, and on a loaded machine the tests' usual LEAD is too short for it.
    demo = start_demo("--redis-url", redis_server.url,
                      "--idle", f"{IDLE - LEAD + TAB_LEAD:g}s", "--warning-lead", f"{TAB_LEAD:g}s",
                      "--absolute", "2m")
    try:
        cookie = sign_in(browser, demo.url + NOTE)
        first = browser.current_window_handle
        browser.switch_to.new_window("tab")
        second = browser.current_window_handle
        browser.get(demo.url)
        # The second tab's page load was activity: both tabs now count down to the same deadline.
        wait_until(lambda: dialog_open(browser), IDLE, "the warning in the second tab")
        browser.switch_to.window(first)
        wait_until(lambda: dialog_open(browser), TAB_LEAD, "the warning in the first tab")
        before = record_of(redis_server, cookie)
        assert before is not None
        browser.find_element(By.CSS_SELECTOR, ".curfew-stay").click()
        wait_until(lambda: not dialog_open(browser), TAB_LEAD,
                   "the dialog closing in the first tab")
        browser.switch_to.window(second)
        wait_until(lambda: not dialog_open(browser), TAB_LEAD,
                   "the dialog closing in the second tab")
        assert requests_to(browser, "/.curfew/keepalive") == 0
        after = record_of(redis_server, cookie)
        assert after is not None
        assert after.last_activity_ms > before.last_activity_ms
        assert "/login" not in browser.current_url
    finally:
        demo.stop()


def test_the_embedded_store_warns_expires_and_returns_the_same_way(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    demo = start_demo("--store", "embedded", "--idle", f"{IDLE:g}s",
                      "--warning-lead", f"{LEAD:g}s", "--absolute", "2m")
    try:
        assert "embedded in-process store" in demo.banner
        sign_in(browser, demo.url + NOTE)
        wait_until(lambda: dialog_open(browser), IDLE, "the warning dialog")
        wait_until(lambda: "/login" in browser.current_url, IDLE, "the login page")
        assert parse_qs(urlsplit(browser.current_url).query)["return_to"] == [
            "/notes/7?view=edit"]
        browser.find_element(By.ID, "sign-in").click()
        wait_until(lambda: browser.current_url == demo.url + NOTE, 10, "back on the note")
    finally:
        demo.stop()


def test_before_an_absolute_expiry_the_dialog_says_it_cannot_be_extended(
    browser: webdriver.Chrome,
) -> None:
    # Absolute as short as idle: with no activity after the first request, both limits fall
    # due together, and the absolute one, which nothing can extend, is the one to warn of.
    demo = start_demo("--store", "embedded", "--idle", f"{IDLE:g}s",
                      "--warning-lead", f"{LEAD:g}s", "--absolute", f"{IDLE:g}s")
    try:
        sign_in(browser, demo.url + NOTE)
        wait_until(lambda: dialog_open(browser), IDLE, "the warning dialog")
        dialog = browser.find_element(By.CSS_SELECTOR, "dialog.curfew-dialog")
        assert "It cannot be extended" in dialog.text
        assert "Stay signed in" not in dialog.text
        ok = browser.find_element(By.CSS_SELECTOR, ".curfew-stay")
        assert ok.text == "OK"
        ok.click()
        wait_until(lambda: not dialog_open(browser), 2, "the dialog closing")
        assert requests_to(browser, "/.curfew/keepalive") == 0
        # Acknowledged, it stays closed; at the absolute limit the session ends all the same.
        def gone_to_login() -> bool:
            if "/login" in browser.current_url:
                return True
            assert not dialog_open(browser), "the acknowledged warning opened again"
            return False

        wait_until(gone_to_login, IDLE, "the login page")
        assert parse_qs(urlsplit(browser.current_url).query)["return_to"] == [
            "/notes/7?view=edit"]
    finally:
        demo.stop()


def test_sign_out_in_the_dialog_signs_out_and_the_other_tab_follows(
    demo: Demo, browser: webdriver.Chrome
) -> None:
    sign_in(browser, demo.url + NOTE)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    second = browser.current_window_handle
    browser.get(demo.url)
    browser.switch_to.window(first)
    wait_until(lambda: dialog_open(browser), IDLE, "the warning in the first tab")
    browser.find_element(By.CSS_SELECTOR, ".curfew-signout").click()
    # data-sign-out-url="/logout": the app's own sign-out, which ends its session.
    wait_until(lambda: "/login" in browser.current_url, 5, "the login page")
    assert browser.get_cookie("demo_session") is None
    browser.switch_to.window(second)
    wait_until(lambda: "/login" in browser.current_url, 5, "the second tab on the login page")
    assert parse_qs(urlsplit(browser.current_url).query) == {
        "return_to": ["/"], "curfew_reason": ["signout"]}
    assert browser.find_element(By.ID, "signed-out").text == (
        "You signed out, here or in another tab.")
