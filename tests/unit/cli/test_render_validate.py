"""``curfew render`` and ``curfew validate`` through the real entrypoint: exit codes, reports,
and one clear line per user error, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curfew.cli import main

POLICY = """\
apiVersion: curfew.dev/v1alpha1
kind: SessionPolicy
metadata: {name: NAME, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  timeouts: {idle: IDLE, absolute: 8h}
  store: {redisSecretRef: {name: sessions-redis}}
  compliance: {profiles: [pci-dss-4.0]}
"""
WORKLOAD = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}
"""


def policy_doc(name: str = "storefront", idle: str = "15m") -> str:
    return POLICY.replace("NAME", name).replace("IDLE", idle)


def write(tmp_path: Path, name: str, *docs: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(docs))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_render_prints_the_objects_and_a_summary_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "all.yaml", policy_doc(), WORKLOAD)
    code, out, err = run(capsys, "render", "-f", path)
    assert code == 0
    kinds = [o["kind"] for o in yaml.safe_load_all(out)]
    assert kinds == ["ConfigMap", "ConfigMap", "CronJob"]
    assert "policy shop/storefront selects 1 workload: Deployment/web" in err


def test_render_reads_directories_recursively_and_skips_other_kinds_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a/policy.yaml", policy_doc())
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
    write(tmp_path, "b/c/app.yml", WORKLOAD, service)
    write(tmp_path, "notes.txt", "not yaml: [")
    code, out, err = run(capsys, "render", "-f", str(tmp_path))
    assert code == 0
    assert "curfew-deployment-web" in out
    assert "b/c/app.yml: document 2 (web): kind Service is not a SessionPolicy" in err
    assert "selects 1 workload" in err


def test_render_can_read_policies_from_stdin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, "in.yaml", policy_doc(), WORKLOAD)
    with open(source) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        code, out, _ = run(capsys, "render", "-f", "-")
    assert code == 0
    assert "curfew-deployment-web" in out


def test_render_names_file_document_and_field_of_an_invalid_policy_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "p.yaml", WORKLOAD, policy_doc("broken", idle="9h"))
    code, out, err = run(capsys, "render", "-f", path)
    assert code == 1
    assert out == ""
    assert err == (f"curfew render: {path}: document 2 (broken): spec.timeouts.idle: "
                   "9h must not exceed absolute (8h)\n")


def test_render_reports_malformed_yaml_with_its_line_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bad.yaml", "kind: SessionPolicy\nspec: {timeouts: [\n")
    code, _, err = run(capsys, "render", "-f", path)
    assert code == 1
    assert err.startswith(f"curfew render: {path}: invalid YAML at line ")
    assert err.count("\n") == 1


def test_render_reports_a_missing_path_as_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "render", "-f", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert err == f"curfew render: {tmp_path / 'nope.yaml'}: no such file or directory\n"


def test_render_rejects_a_workload_defined_twice_naming_both_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "dup.yaml", WORKLOAD, WORKLOAD)
    code, _, err = run(capsys, "render", "-f", path)
    assert code == 1
    assert "document 2 (web): Deployment shop/web is also defined in" in err
    assert "document 1 (web)" in err


def test_render_rejects_a_document_that_is_not_an_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "list.yaml", "- a\n- b\n")
    code, _, err = run(capsys, "render", "-f", path)
    assert code == 1
    assert err == f"curfew render: {path}: document 1: expected a Kubernetes object, got a list\n"


def test_render_uses_the_image_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "p.yaml", policy_doc())
    code, out, _ = run(capsys, "render", "-f", path, "--image", "registry.local/curfew:dev")
    assert code == 0
    assert "image: registry.local/curfew:dev" in out


def test_validate_exits_0_for_valid_compliant_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "p.yaml", policy_doc(), WORKLOAD)
    code, out, _ = run(capsys, "validate", "-f", path)
    assert code == 0
    assert f"OK {path}: document 1 (storefront): shop/storefront idle 15m, absolute 8h" in out
    assert out.endswith("1 policy: 1 valid and compliant, 0 invalid, 0 non-compliant\n")


def test_validate_reports_every_error_of_an_invalid_policy_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = policy_doc("bad", idle="9h").replace("pci-dss-4.0", "hipaa")
    path = write(tmp_path, "p.yaml", policy_doc(), bad)
    code, out, err = run(capsys, "validate", "-f", path)
    assert code == 1
    assert f"INVALID {path}: document 2 (bad): spec.timeouts.idle: 9h must not exceed" in err
    assert f"INVALID {path}: document 2 (bad): spec.compliance.profiles[0]: Input should be" in err
    assert "2 policies: 1 valid and compliant, 1 invalid, 0 non-compliant" in out


@pytest.mark.parametrize(
    ("purge", "error"),
    [("schedule: '99 * * * *'", "spec.purge.schedule: minute field '99' is not valid"),
     ("schedule: '0 0 * * 7'", "spec.purge.schedule: day of week field '7': above the maximum 6"),
     ("schedule: 'CRON_TZ=UTC 0 * * *'", "spec.purge.schedule: cannot use TZ or CRON_TZ"),
     ("timeZone: Europe/Pariss", "spec.purge.timeZone: unknown time zone Europe/Pariss"),
     ("timeZone: Local", "spec.purge.timeZone: timeZone must be an explicit time zone")],
    ids=["a minute of 99", "a day of week of 7", "a CRON_TZ prefix", "a misspelt time zone",
         "the Local time zone"],
)
def test_validate_rejects_a_schedule_or_zone_the_api_server_would_reject_on_stderr(
    tmp_path: Path, purge: str, error: str
) -> None:
    # Run as a process: exit code, streams and the absence of a traceback as a user sees them.
    doc = policy_doc() + f"  purge: {{{purge}}}\n"
    path = write(tmp_path, "p.yaml", doc)
    proc = subprocess.run([sys.executable, "-m", "curfew", "validate", "-f", path],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert f"INVALID {path}: document 1 (storefront): {error}" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "INVALID" not in proc.stdout


def test_validate_reports_a_valid_but_non_compliant_policy_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "p.yaml", policy_doc(idle="30m"))
    code, out, _ = run(capsys, "validate", "-f", path)
    assert code == 1
    assert (f"NON-COMPLIANT {path}: document 1 (storefront): pci-dss-4.0: timeouts.idle 30m "
            "exceeds 15m") in out


def test_validate_without_any_policy_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "validate", "-f", write(tmp_path, "w.yaml", WORKLOAD))
    assert code == 1
    assert "no SessionPolicy found" in err


def test_validate_without_a_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate")
    assert code == 2
    assert "-f/--filename" in err


def test_the_installed_command_prints_one_line_and_no_traceback_for_a_bad_policy(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "p.yaml", policy_doc(idle="15 minutes"))
    done = subprocess.run([sys.executable, "-m", "curfew", "render", "-f", path],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr == (f"curfew render: {path}: document 1 (storefront): spec.timeouts.idle: "
                           "invalid duration '15 minutes': expected a Go duration such as 90s, "
                           "15m, 1h30m or 500ms (units h, m, s, ms, us, ns)\n")


def test_curfew_without_a_command_prints_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "render" in err
    assert "validate" in err
