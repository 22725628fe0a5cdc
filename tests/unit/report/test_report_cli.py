"""``curfew report`` through the real entrypoint: the golden Markdown of the examples, the
escaping of hostile names in both formats, one file per namespace, and one clear line per
error, never a traceback.

After an intended change, regenerate the golden file with ``CURFEW_REGENERATE_GOLDEN=1 pytest
tests/unit/report/test_report_cli.py`` and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from curfew.cli import main

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("CURFEW_REGENERATE_GOLDEN") == "1"
EPOCH = "1767323045"  # 2026-01-02 03:04 UTC
HOSTILE = "<script>alert(1)</script>"

POLICY = """\
apiVersion: curfew.dev/v1alpha1
kind: SessionPolicy
metadata: {name: storefront, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  timeouts: {idle: 30m, absolute: 8h}
  store: {redisSecretRef: {name: sessions-redis}}
  compliance: {profiles: [pci-dss-4.0]}
"""


def workload_doc(name: str, labels: str = "{app: web}") -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: '{name}', "
            f"namespace: shop}}\nspec:\n  template:\n    metadata: {{labels: {labels}}}\n")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["report", *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


def test_the_report_of_the_examples_matches_its_golden_markdown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the report names the files as the docs' command does
    code, out, err = run(capsys, "-f", "examples/")
    assert code == 0
    # Documents that are neither policies nor workloads are named, as curfew render does.
    assert err == ("skipped examples/shop/workloads.yaml: document 5 (web): kind Service is not "
                   "a SessionPolicy or a workload\n")
    path = GOLDEN / "examples.md"
    if REGENERATE:
        path.write_text(out)
    assert out == path.read_text(), "examples.md differs (regenerate: CURFEW_REGENERATE_GOLDEN=1)"


def test_the_examples_report_shows_the_overlap_and_where_each_value_came_from(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    out = run(capsys, "-f", "examples/")[1]
    assert ("| Deployment/checkout | shop/checkout-strict, shop/storefront | Enforce | 5m | 1h "
            "| 1h | 1m | meets pci-dss-4.0, meets nist-800-63b-aal2, meets owasp-high-value |"
            ) in out
    assert ("| idle | 5m | the shortest of shop/checkout-strict 5m, shop/storefront 15m: "
            "from shop/checkout-strict |") in out
    assert "| Deployment/recommendations | no policy selects it |" in out
    assert "PCI DSS v4.0 requirement 8.2.8" in out
    assert "Generated 2026-01-02 03:04 UTC" in out


def test_a_missed_profile_is_reported_with_the_limit_it_exceeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "all.yaml").write_text(POLICY + "---\n" + workload_doc("web"))
    code, out, _ = run(capsys, "-f", str(tmp_path))
    assert code == 0  # a report is made whatever it finds: validate is the gate
    assert ("| pci-dss-4.0 | PCI DSS v4.0 requirement 8.2.8 | Misses | idle 30m exceeds the "
            "limit of 15m; the standard sets no absolute limit | shop/storefront |") in out
    assert "1 meeting every profile" not in out
    assert "0 meeting every profile" in out


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_a_hostile_workload_name_stays_text_in_the_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "all.yaml").write_text(
        POLICY + "---\n" + workload_doc(HOSTILE) + "---\n"
        + workload_doc('x" onmouseover="alert(1)', "{app: other}"))
    code, out, _ = run(capsys, "-f", str(tmp_path), "--format", "html")
    assert code == 0
    parser = _Elements()
    parser.feed(out)
    assert "script" not in parser.tags
    assert not any("onmouseover" in attr for attr in parser.tags)
    text = "".join(parser.text)
    assert f"Deployment/{HOSTILE}" in text  # shown, as text
    assert "&lt;script&gt;" in out
    assert HOSTILE not in out


def test_a_hostile_workload_name_stays_text_in_the_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "all.yaml").write_text(
        POLICY + "---\n" + workload_doc(f"{HOSTILE} | [x](http://evil) *b*"))
    code, out, _ = run(capsys, "-f", str(tmp_path))
    assert code == 0
    assert HOSTILE not in out
    assert "<script>" not in out
    assert r"\<script\>alert(1)\</script\> \| \[x\](http://evil) \*b\*" in out
    row = next(line for line in out.splitlines() if line.startswith("| Deployment/"))
    assert row.count(" | ") == 7  # the name's pipe did not add a column


def test_the_html_is_self_contained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "-f", str(ROOT / "examples"), "--format", "html")[1]
    parser = _Elements()
    parser.feed(out)
    assert not {"script", "link", "img", "iframe"} & set(parser.tags)
    assert "http-equiv=\"Content-Security-Policy\" content=\"default-src &#x27;none&#x27;" in out
    assert "@media print" in out


def test_an_output_directory_gets_one_document_per_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for fmt, suffix in (("markdown", "md"), ("html", "html")):
        out_dir = tmp_path / fmt
        out_dir.mkdir()
        code, out, _ = run(capsys, "-f", str(ROOT / "examples"), "--format", fmt,
                           "-o", str(out_dir))
        assert (code, out) == (0, "")
        assert sorted(p.name for p in out_dir.iterdir()) == [f"internal.{suffix}",
                                                             f"shop.{suffix}"]
        shop = (out_dir / f"shop.{suffix}").read_text()
        assert "namespace shop" in shop
        assert "namespace internal" not in shop


def test_an_output_file_gets_the_whole_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.md"
    assert run(capsys, "-f", str(ROOT / "examples"), "-o", str(target))[:2] == (0, "")
    text = target.read_text()
    assert "namespace internal" in text
    assert "namespace shop" in text


def test_a_namespace_filter_reports_only_that_namespace(
    capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "-f", str(ROOT / "examples"), "-n", "internal")[1]
    assert "namespace internal" in out
    assert "namespace shop" not in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["-f", "/nonexistent/policies"], 2, "/nonexistent/policies: no such file or directory"),
        (["-f", "examples/", "-o", "/nonexistent/dir/report.md"], 1,
         "cannot write /nonexistent/dir/report.md: No such file or directory"),
        (["-f", "examples/", "--format", "pdf"], 2, "invalid choice: 'pdf'"),
    ],
    ids=["a missing input is a usage error", "an unwritable output says where and why",
         "an unknown format is refused by the parser"],
)
def test_errors_are_one_line_and_a_nonzero_exit(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], code: int, message: str,
) -> None:
    monkeypatch.chdir(ROOT)
    got, out, err = run(capsys, *argv)
    assert got == code
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_an_invalid_policy_file_names_the_document_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text(POLICY.replace("idle: 30m", "idle: forever"))
    code, out, err = run(capsys, "-f", str(tmp_path))
    assert code == 1
    assert out == ""
    assert err.startswith(f"curfew report: {tmp_path / 'bad.yaml'}: document 1 (storefront): "
                          "spec.timeouts.idle")


def test_an_unusable_source_date_epoch_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    code, _, err = run(capsys, "-f", str(ROOT / "examples"))
    assert code == 2
    assert "SOURCE_DATE_EPOCH='yesterday' is not a Unix time" in err


def test_without_files_and_without_credentials_the_command_says_so_without_a_traceback(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env.update(KUBECONFIG=str(tmp_path / "missing-kubeconfig"), HOME=str(tmp_path),
               PYTHONPATH=str(ROOT / "operator"))
    done = subprocess.run([sys.executable, "-m", "curfew", "report"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("curfew report: no Kubernetes credentials: ")
    assert "Traceback" not in done.stderr
