"""Overlapping policies: each timeout the shortest, every other field from the winner."""

from render_samples import policy, workload

from curfew.api import WorkloadId
from curfew.render import render

WEB = WorkloadId(kind="Deployment", namespace="shop", name="web")


def test_each_timeout_takes_the_shortest_value_among_the_selecting_policies() -> None:
    loose = policy("loose", idle="30m", absolute="4h", timeouts={"renewal": "1h"})
    strict = policy("strict", idle="10m", absolute="12h", timeouts={"renewal": "2h"})
    config = render([loose, strict], [workload()]).configs[WEB]
    assert config.timeouts.idle_seconds == 600
    assert config.timeouts.absolute_seconds == 4 * 3600
    assert config.timeouts.renewal_seconds == 3600


def test_sources_list_every_contributing_policy_sorted() -> None:
    config = render([policy("b"), policy("a")], [workload()]).configs[WEB]
    assert config.sources == ("shop/a", "shop/b")


def test_the_higher_priority_policy_wins_the_other_fields() -> None:
    low = policy("a-low", enforcement="Enforce", session={"cookieName": "low"})
    high = policy("z-high", priority=10, enforcement="Audit", session={"cookieName": "high"})
    config = render([low, high], [workload()]).configs[WEB]
    assert config.enforcement == "Audit"
    assert config.session.cookie_name == "high"


def test_on_equal_priority_the_oldest_policy_wins() -> None:
    old = policy("z-old", created="2024-01-01T00:00:00Z", session={"cookieName": "old"})
    new = policy("a-new", created="2025-01-01T00:00:00Z", session={"cookieName": "new"})
    assert render([new, old], [workload()]).configs[WEB].session.cookie_name == "old"


def test_on_equal_priority_and_age_the_first_name_wins() -> None:
    stamp = "2024-01-01T00:00:00Z"
    a = policy("a", created=stamp, session={"cookieName": "from-a"})
    b = policy("b", created=stamp, session={"cookieName": "from-b"})
    assert render([b, a], [workload()]).configs[WEB].session.cookie_name == "from-a"


def test_a_policy_with_a_creation_time_beats_one_read_from_a_file_without_one() -> None:
    stamped = policy("z", created="2024-01-01T00:00:00Z", session={"cookieName": "stamped"})
    unstamped = policy("a", session={"cookieName": "unstamped"})
    config = render([unstamped, stamped], [workload()]).configs[WEB]
    assert config.session.cookie_name == "stamped"


def test_a_renewal_longer_than_the_effective_absolute_timeout_is_dropped() -> None:
    long_renewal = policy("a", idle="15m", absolute="8h", timeouts={"renewal": "6h"})
    short_absolute = policy("b", idle="15m", absolute="2h")
    config = render([long_renewal, short_absolute], [workload()]).configs[WEB]
    assert config.timeouts.absolute_seconds == 7200
    assert config.timeouts.renewal_seconds is None


def test_a_warning_lead_not_shorter_than_the_effective_idle_is_cut_to_half_of_it() -> None:
    warns = policy("a", idle="30m", timeouts={"warningLead": "10m"})
    short_idle = policy("b", idle="5m")
    config = render([warns, short_idle], [workload()]).configs[WEB]
    assert config.timeouts.idle_seconds == 300
    assert config.timeouts.warning_lead_seconds == 150


def test_overlaps_name_the_other_policies_sharing_a_workload_and_only_those() -> None:
    a = policy("a")
    b = policy("b", selector={})
    c = policy("c", selector={"matchLabels": {"app": "admin"}})
    rendered = render([a, b, c], [workload(), workload("admin", labels={"app": "admin"})])
    assert rendered.overlaps == {
        "shop/a": ("shop/b",),
        "shop/b": ("shop/a", "shop/c"),
        "shop/c": ("shop/b",),
    }


def test_a_policy_never_selects_workloads_of_another_namespace() -> None:
    rendered = render([policy(selector={})], [workload(namespace="other")])
    assert rendered.selections == {"shop/storefront": ()}
    assert rendered.configs == {}
    assert rendered.config_maps == []


def test_a_policy_selects_deployments_statefulsets_and_daemonsets_by_pod_template_labels() -> None:
    workloads = [workload("web", kind=k) for k in ("Deployment", "StatefulSet", "DaemonSet")]
    workloads.append(workload("api", labels={"app": "api"}))
    rendered = render([policy()], workloads)
    assert [str(w) for w in rendered.selections["shop/storefront"]] == [
        "DaemonSet/shop/web", "Deployment/shop/web", "StatefulSet/shop/web",
    ]


def test_the_purge_config_holds_each_workloads_limits_tightened_by_other_policies() -> None:
    own = policy("own", idle="30m", absolute="8h")
    tighter = policy("tighter", idle="5m", absolute="1h")
    purge = render([own, tighter], [workload()]).purge_configs["shop/own"]
    assert purge.timeouts.idle_seconds == 1800
    assert [(w.name, w.idle_seconds, w.absolute_seconds) for w in purge.workloads] == [
        ("web", 300, 3600)
    ]
