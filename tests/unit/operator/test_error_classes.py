"""The one table of which API answers are retried (``curfew.k8s.client.error_class``), the
transport failures mapped at the client's boundary, and the status a refusal builds."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from curfew.k8s.client import (
    CONFIG_MAPS,
    ApiError,
    Connection,
    KubeClient,
    RejectedApiError,
    TransientApiError,
    error_class,
)
from curfew.operator import messages as m
from curfew.operator.status import PassOutcome, build_status, build_status_body

CLASSES = [
    ("no answer at all is retried", 0, "GET", TransientApiError),
    ("a request timeout is retried", 408, "PATCH", TransientApiError),
    ("a conflict is retried (the list was stale, or a peer raced)", 409, "POST", TransientApiError),
    ("a paged list whose continue token expired is retried (it lists afresh)", 410, "GET",
     TransientApiError),
    ("throttling is retried", 429, "POST", TransientApiError),
    ("an internal error is retried", 500, "PATCH", TransientApiError),
    ("an unavailable API server is retried", 503, "GET", TransientApiError),
    ("a gateway timeout is retried", 504, "DELETE", TransientApiError),
    ("a patched object that vanished is retried (the next list knows)", 404, "PATCH",
     TransientApiError),
    ("a listed resource not found is retried", 404, "GET", TransientApiError),
    ("a create into a missing namespace is refused", 404, "POST", RejectedApiError),
    ("a malformed request is refused", 400, "POST", RejectedApiError),
    ("an unauthenticated request is refused", 401, "GET", RejectedApiError),
    ("a forbidden request is refused", 403, "POST", RejectedApiError),
    ("a method not allowed is refused", 405, "PATCH", RejectedApiError),
    ("a body too large is refused", 413, "POST", RejectedApiError),
    ("an unsupported patch type is refused", 415, "PATCH", RejectedApiError),
    ("an invalid object is refused", 422, "POST", RejectedApiError),
]


def built(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The status patch body a pass would send."""
    return build_status_body(build_status(*args, **kwargs))


@pytest.mark.parametrize(("case", "status", "method", "expected"), CLASSES,
                         ids=[c[0] for c in CLASSES])
def test_each_answer_is_classified_once_as_retried_or_refused(
        case: str, status: int, method: str, expected: type[ApiError]) -> None:
    assert error_class(status, method) is expected, case


async def test_a_connection_refused_is_a_transient_error_with_status_0() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with KubeClient(Connection(server=f"http://127.0.0.1:{port}"), timeout=2) as client:
        with pytest.raises(TransientApiError) as caught:
            await client.list(CONFIG_MAPS, "shop")
    assert caught.value.status == 0
    assert caught.value.request == "GET /api/v1/namespaces/shop/configmaps"


def test_a_refused_spec_is_ready_false_apply_rejected_and_keeps_the_other_conditions() -> None:
    current = {"conditions": [
        {"type": "Overlapping", "status": "True", "reason": "PoliciesOverlap",
         "message": "shares workloads with shop/other", "lastTransitionTime": "t0"}],
        "selectedWorkloads": 3, "workloads": [{"kind": "Deployment", "name": "web",
                                              "configMap": "curfew-deployment-web",
                                              "configHash": "sha256:x"}]}
    message = m.MSG_APPLY_REJECTED.format(request="POST /apis/batch/v1/namespaces/shop/cronjobs",
                                          status=422, reason="Invalid", message="bad")
    status = built(current, PassOutcome(generation=4, rejected=message), now="t1",
                          purge_failure_threshold=3)
    by_type = {c["type"]: c for c in status["conditions"]}
    assert (by_type["Ready"]["status"], by_type["Ready"]["reason"]) == ("False", "ApplyRejected")
    assert by_type["Ready"]["message"] == message
    assert by_type["Ready"]["observedGeneration"] == 4
    assert by_type["Overlapping"] == current["conditions"][0]
    assert "Compliant" not in by_type
    assert status["selectedWorkloads"] == 3
    assert status["workloads"] == current["workloads"]
