"""The purge summary line, audit lines and config targets (no servers)."""

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from curfew.purge.report import Audit, Progress, Summary, emit_summary
from curfew.purge.target import ConfigFileError, build_target, load_target
from curfew.sessions.lifetime import Reason
from fixtures.purge import purge_config


def test_the_summary_line_has_exactly_the_fields_of_the_contract(tmp_path: Path) -> None:
    summary = Summary(scanned=10, expired=Counter({Reason.IDLE: 2}), repaired=1,
                      duration_seconds=0.12345, message="removed 2 sessions")
    out, log = io.StringIO(), tmp_path / "termination-log"
    emit_summary(summary, log, out)
    doc = json.loads(out.getvalue())
    assert doc == {
        "outcome": "ok", "scanned": 10, "expired": {"idle": 2, "absolute": 0, "tightened": 0},
        "repaired": 1, "malformed": 0, "durationSeconds": 0.123,
        "message": "removed 2 sessions",
    }
    assert log.read_text() == out.getvalue()


@pytest.mark.parametrize(("outcome", "code"), [("ok", 0), ("failed", 1), ("aborted", 3)])
def test_each_outcome_has_its_exit_code(outcome: str, code: int) -> None:
    assert Summary(outcome=outcome).exit_code == code  # type: ignore[arg-type]


def test_an_audit_line_is_json_with_the_keyed_hash_and_escaped_names() -> None:
    out = io.StringIO()
    Audit(out, dry_run=False, store_format="curfew").expired(
        session="ab" * 32, reason=Reason.TIGHTENED, policy='shop/"odd"', workload="Deployment/a/b"
    )
    event = json.loads(out.getvalue())
    assert event["session"] == "ab" * 32
    assert event["reason"] == "tightened"
    assert event["policy"] == 'shop/"odd"'
    assert event["event"] == "session.expired"
    assert event["time"].endswith("Z")


def test_a_batch_of_sessions_gives_one_audit_line_per_session_in_order() -> None:
    out = io.StringIO()
    sids = ["ab" * 32, "cd" * 32, "ef" * 32]
    Audit(out, dry_run=True, store_format="curfew").expired_many(
        sids, reason=Reason.IDLE, policy="shop/storefront", workload="Deployment/shop/web"
    )
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["session"] for e in events] == sids
    assert {e["event"] for e in events} == {"session.wouldExpire"}
    assert {(e["reason"], e["policy"], e["workload"], e["store"]) for e in events} == {
        ("idle", "shop/storefront", "Deployment/shop/web", "curfew")
    }


def test_a_batch_with_a_session_that_needs_escaping_still_gives_valid_json_lines() -> None:
    out = io.StringIO()
    sids = ["ab" * 32, 'x"\\n', "cd" * 32]
    Audit(out, dry_run=False, store_format="curfew").expired_many(
        sids, reason=Reason.ABSOLUTE, policy="p/q", workload="w"
    )
    assert [json.loads(line)["session"] for line in out.getvalue().splitlines()] == sids


@pytest.mark.parametrize(
    ("case", "sids"),
    [
        ("keyed hashes", ["ab" * 32, "cd" * 32, "ef" * 32]),
        ("one that needs escaping", ["ab" * 32, 'x"\\n', "cd" * 32]),
        ("one session", ["ab" * 32]),
    ],
)
def test_sessions_joined_by_spaces_give_the_same_lines_as_a_list_of_them(
    case: str, sids: list[str]
) -> None:
    joined, listed = io.StringIO(), io.StringIO()
    audit = Audit(joined, dry_run=False, store_format="curfew")
    audit.expired_joined(" ".join(sids), reason=Reason.IDLE, policy="p/q", workload="w")
    Audit(listed, dry_run=False, store_format="curfew").expired_many(
        sids, reason=Reason.IDLE, policy="p/q", workload="w"
    )
    lines = [json.loads(line) for line in joined.getvalue().splitlines()]
    assert [e["session"] for e in lines] == sids, case
    assert [{k: v for k, v in e.items() if k != "time"} for e in lines] == [
        {k: v for k, v in json.loads(line).items() if k != "time"}
        for line in listed.getvalue().splitlines()
    ], case


def test_an_empty_batch_writes_nothing() -> None:
    out = io.StringIO()
    audit = Audit(out, dry_run=False, store_format="curfew")
    audit.expired_many([], reason=Reason.IDLE, policy="p/q", workload="w")
    audit.expired_joined("", reason=Reason.IDLE, policy="p/q", workload="w")
    assert out.getvalue() == ""


def test_the_progress_line_is_silent_when_disabled() -> None:
    out = io.StringIO()
    Progress(False, out).show("judged", 1, 1, force=True)
    assert out.getvalue() == ""
    Progress(True, out).show("judged", 1, 1, force=True)
    assert "purge: judged: scanned 1, expired 1" in out.getvalue()


def test_a_purge_config_lists_each_workloads_current_limits() -> None:
    target = build_target(purge_config(workloads=(("web", 300, 3600),), max_fraction=0.25))
    assert target.policy == "shop/storefront"
    assert set(target.workloads) == {"Deployment/shop/web"}
    assert target.max_purge_fraction == 0.25


def test_a_hand_edited_config_is_refused_naming_the_file(tmp_path: Path) -> None:
    doc = json.loads(purge_config().to_json())
    doc["timeouts"]["idleSeconds"] = 1
    path = tmp_path / "purge.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigFileError, match=r"purge\.json: .*hash does not match"):
        load_target(path)


def test_a_config_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "purge.json"
    path.write_text("idle: 15m")
    with pytest.raises(ConfigFileError, match="not JSON"):
        load_target(path)
