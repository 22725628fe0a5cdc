"""``curfew report --format html`` opened in real headless Chromium: what an auditor sees, that
a hostile name stays text (no script runs), that nothing is fetched, and that it prints one
namespace per page. The screenshot in the docs is taken here
(``CURFEW_UPDATE_SCREENSHOTS=1`` refreshes ``docs/images/report.png``)."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser_harness import ROOT, Shoot
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.print_page_options import PrintOptions

HOSTILE = '<script>window.pwned = 1; alert(1)</script><img src=x onerror="window.pwned = 2">'


def make_report(tmp_path: Path, *args: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "curfew", "report", "--format", "html", "-o", str(out), *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "operator"), "SOURCE_DATE_EPOCH": "1767323045",
             "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return out


def cells(driver: webdriver.Chrome, table: str) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"table.{table} tbody tr")
    return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def test_the_report_of_the_examples_shows_each_namespace_its_workloads_and_verdicts(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(make_report(tmp_path, "-f", "examples/").as_uri())
    titles = [h.text for h in browser.find_elements(By.TAG_NAME, "h1")]
    assert titles == ["Session timeout compliance report: namespace internal",
                      "Session timeout compliance report: namespace shop"]
    shop = browser.find_element(By.ID, "ns-shop")
    rows = {row[0]: row for row in [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in shop.find_elements(By.CSS_SELECTOR, "table.workloads tbody tr")]}
    assert rows["Deployment/checkout"][1:7] == [
        "shop/checkout-strict, shop/storefront", "Enforce", "5m", "1h", "1h", "1m"]
    assert rows["Deployment/recommendations"][1] == "no policy selects it"
    verdicts = shop.find_elements(By.CSS_SELECTOR, "table.profiles td.meets")
    assert len(verdicts) == 7  # checkout 3 profiles, web 2, cart 2
    # Verdicts read in colour as well as in words.
    assert verdicts[0].value_of_css_property("color") == "rgba(11, 107, 43, 1)"
    purge = [td.text for td in shop.find_elements(By.CSS_SELECTOR, "table.purge td")]
    assert any(text.startswith("not available: this report was made from files")
               for text in purge)
    # Nothing but the page itself was loaded, and no script exists to run.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.execute_script("return document.scripts.length") == 0


def test_the_screenshot_in_the_docs_shows_the_overlapping_policies_of_the_shop(
    browser: webdriver.Chrome, tmp_path: Path, shoot: Shoot
) -> None:
    browser.set_window_size(1200, 1100)
    browser.get(make_report(tmp_path, "-f", "examples/", "-n", "shop").as_uri())
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "the shortest of shop/checkout-strict 5m, shop/storefront 15m" in body
    assert shoot(browser, "report.png").stat().st_size > 10_000


def test_a_hostile_workload_name_is_shown_as_text_and_never_runs(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(
        "apiVersion: curfew.dev/v1alpha1\nkind: SessionPolicy\n"
        "metadata: {name: storefront, namespace: shop}\n"
        "spec: {selector: {}, timeouts: {idle: 5m, absolute: 1h},\n"
        "       store: {redisSecretRef: {name: redis}}, compliance: {profiles: [pci-dss-4.0]}}\n"
        "---\napiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: '{HOSTILE}', namespace: shop}}\n"
        "spec: {template: {metadata: {labels: {app: x}}}}\n")
    browser.get(make_report(tmp_path, "-f", str(inputs)).as_uri())
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.execute_script("return document.scripts.length") == 0
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert cells(browser, "workloads")[0][0] == f"Deployment/{HOSTILE}"
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h3")]
    assert headings == [f"Deployment/{HOSTILE}"]


def pdf_pages(browser: webdriver.Chrome, report: Path) -> int:
    browser.get(report.as_uri())
    options = PrintOptions()
    options.shrink_to_fit = False  # the same scale for every document, whatever its widest table
    pdf = base64.b64decode(browser.print_page(options))
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


def test_the_report_prints_each_namespace_from_a_new_page(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    inputs = tmp_path / "two-namespaces.yaml"
    inputs.write_text("---\n".join(
        "apiVersion: curfew.dev/v1alpha1\nkind: SessionPolicy\n"
        f"metadata: {{name: p, namespace: {ns}}}\n"
        "spec: {selector: {}, timeouts: {idle: 5m, absolute: 1h},\n"
        "       store: {redisSecretRef: {name: redis}}}\n"
        for ns in ("one", "two")))
    browser.get(make_report(tmp_path, "-f", str(inputs)).as_uri())
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert browser.find_element(By.ID, "ns-two").value_of_css_property(
        "break-before") == "page"
    assert browser.find_element(By.ID, "ns-one").value_of_css_property(
        "break-before") == "auto"
    # Each namespace alone fits on one page; printed together they take two, not one.
    assert [pdf_pages(browser, make_report(tmp_path / ns, "-f", str(inputs), "-n", ns))
            for ns in ("one", "two")] == [1, 1]
    assert pdf_pages(browser, make_report(tmp_path, "-f", str(inputs))) == 2
