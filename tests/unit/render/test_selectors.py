"""Label selectors behave exactly as Kubernetes' metav1.LabelSelector."""

from typing import Any

import pytest

from curfew.api.policy import LabelSelector
from curfew.render import selects

LABELS = {"app": "web", "tier": "frontend", "team": "shop"}


CASES = [
    ("an empty selector selects every workload", {}, LABELS, True),
    ("an empty selector selects a workload without labels", {}, {}, True),
    ("matchLabels selects when every pair is present",
     {"matchLabels": {"app": "web", "tier": "frontend"}}, LABELS, True),
    ("matchLabels rejects when one pair differs",
     {"matchLabels": {"app": "web", "tier": "backend"}}, LABELS, False),
    ("matchLabels rejects when a key is missing",
     {"matchLabels": {"zone": "a"}}, LABELS, False),
    ("In selects a listed value",
     {"matchExpressions": [{"key": "tier", "operator": "In",
                            "values": ["backend", "frontend"]}]}, LABELS, True),
    ("In rejects an unlisted value",
     {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend"]}]},
     LABELS, False),
    ("In rejects a missing key",
     {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
     LABELS, False),
    ("NotIn selects an unlisted value",
     {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["backend"]}]},
     LABELS, True),
    ("NotIn rejects a listed value",
     {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["frontend"]}]},
     LABELS, False),
    ("NotIn selects a workload that lacks the key",
     {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]},
     LABELS, True),
    ("Exists selects when the key is present with any value",
     {"matchExpressions": [{"key": "team", "operator": "Exists"}]}, LABELS, True),
    ("Exists rejects when the key is missing",
     {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, LABELS, False),
    ("DoesNotExist selects when the key is missing",
     {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, LABELS, True),
    ("DoesNotExist rejects when the key is present",
     {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, LABELS, False),
    ("matchLabels and matchExpressions must both hold",
     {"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend"]}]},
     LABELS, False),
    ("every expression must hold, not just one",
     {"matchExpressions": [{"key": "team", "operator": "Exists"},
                           {"key": "zone", "operator": "Exists"}]}, LABELS, False),
    ("a label value is compared exactly, case included",
     {"matchLabels": {"app": "Web"}}, LABELS, False),
]


@pytest.mark.parametrize(("case", "selector", "labels", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_a_selector_selects_exactly_as_kubernetes_does(
    case: str, selector: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert selects(LabelSelector.model_validate(selector), labels) is expected, case
