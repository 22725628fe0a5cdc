"""Label selectors, evaluated exactly as Kubernetes evaluates ``metav1.LabelSelector``.

``matchLabels`` and every ``matchExpressions`` term must all hold; an empty selector ``{}``
selects everything. ``NotIn`` and ``DoesNotExist`` hold for objects that lack the key.
"""

from __future__ import annotations

from collections.abc import Mapping

from curfew.api.policy import LabelSelector, LabelSelectorRequirement


def selects(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether ``selector`` selects an object carrying ``labels``."""
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    return all(_holds(term, labels) for term in selector.match_expressions)


def _holds(term: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    present = term.key in labels
    match term.operator:
        case "In":
            return present and labels[term.key] in term.values
        case "NotIn":
            return not present or labels[term.key] not in term.values
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
