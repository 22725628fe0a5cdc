"""Properties of render over generated policies and workloads: order never matters, and each
workload's timeouts are the shortest of exactly the policies whose selectors match it."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from render_samples import policy, workload

from curfew.api import SessionPolicy
from curfew.render import render, selects

LABELS = st.dictionaries(st.sampled_from(["app", "tier", "team"]), st.sampled_from(["a", "b"]),
                         max_size=3)
MINUTES = st.integers(min_value=1, max_value=120)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[SessionPolicy], list[dict[str, Any]]]:
    policies = [
        policy(f"p{i}", selector={"matchLabels": draw(LABELS)}, idle=f"{draw(MINUTES)}m",
               absolute="8h", priority=draw(st.integers(-2, 2)))
        for i in range(draw(st.integers(0, 4)))
    ]
    workloads = [
        workload(f"w{i}", kind=draw(st.sampled_from(["Deployment", "StatefulSet"])),
                 labels=draw(LABELS))
        for i in range(draw(st.integers(0, 5)))
    ]
    return policies, workloads


@settings(max_examples=60, deadline=None)
@given(scenario(), st.randoms(use_true_random=False))
def test_render_output_does_not_depend_on_input_order(
    case: tuple[list[SessionPolicy], list[dict[str, Any]]], rng: Any
) -> None:
    policies, workloads = case
    expected = yaml.safe_dump_all(render(policies, workloads).objects)
    rng.shuffle(policies)
    rng.shuffle(workloads)
    assert yaml.safe_dump_all(render(policies, workloads).objects) == expected


@settings(max_examples=60, deadline=None)
@given(scenario())
def test_each_workload_gets_the_shortest_idle_of_the_policies_selecting_it(
    case: tuple[list[SessionPolicy], list[dict[str, Any]]],
) -> None:
    policies, workloads = case
    rendered = render(policies, workloads)
    for w in workloads:
        labels = w["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in policies if selects(p.spec.selector, labels)]
        config = next((c for wid, c in rendered.configs.items()
                       if (wid.kind, wid.name) == (w["kind"], w["metadata"]["name"])), None)
        if not matching:
            assert config is None
            continue
        assert config is not None
        assert config.timeouts.idle_seconds == min(p.spec.timeouts.idle.seconds for p in matching)
        assert config.sources == tuple(sorted(p.key for p in matching))
