"""Names and label values stay valid and distinct, even for 253-character workload names."""

import re

import pytest
from render_samples import policy

from curfew.api import WorkloadId
from curfew.render import build_config_map_name, build_label_value, build_purge_names

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

LONG = ("a" * 62 + ".") * 4 + "b"  # 253 characters, a valid DNS subdomain
assert len(LONG) == 253


def test_a_short_workload_name_gives_a_readable_config_map_name() -> None:
    name = build_config_map_name(WorkloadId(kind="StatefulSet", namespace="shop", name="db"))
    assert name == "curfew-statefulset-db"


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet"])
def test_a_253_character_workload_name_gives_a_valid_config_map_name(kind: str) -> None:
    name = build_config_map_name(WorkloadId(kind=kind, namespace="shop", name=LONG))
    assert len(name) <= 253
    assert DNS_SUBDOMAIN.match(name)


def test_long_names_differing_only_at_the_end_get_different_config_map_names() -> None:
    one = build_config_map_name(WorkloadId(kind="Deployment", namespace="s", name=LONG))
    two = build_config_map_name(WorkloadId(kind="Deployment", namespace="s", name=LONG[:-1] + "c"))
    assert one != two


def test_a_253_character_policy_name_gives_a_cron_job_name_of_at_most_52_characters() -> None:
    names = build_purge_names(policy(LONG))
    assert len(names.cron_job) <= 52
    assert DNS_LABEL.match(names.cron_job)
    assert DNS_SUBDOMAIN.match(names.config_map)


def test_a_dotted_policy_name_gives_a_dotless_cron_job_name_distinct_from_the_dashed_one() -> None:
    dotted = build_purge_names(policy("web.v2")).cron_job
    dashed = build_purge_names(policy("web-v2")).cron_job
    assert DNS_LABEL.match(dotted)
    assert dashed == "curfew-purge-web-v2"
    assert dotted != dashed


@pytest.mark.parametrize(
    ("value", "kept"),
    [("web", True), ("a" * 63, True), ("a" * 64, False), (LONG, False)],
    ids=["a short name is kept", "63 characters are kept", "64 characters are cut",
         "253 characters are cut"],
)
def test_a_label_value_is_kept_when_valid_and_cut_with_a_hash_otherwise(
    value: str, kept: bool
) -> None:
    label = build_label_value(value)
    assert len(label) <= 63
    assert LABEL_VALUE.match(label)
    assert (label == value) is kept
