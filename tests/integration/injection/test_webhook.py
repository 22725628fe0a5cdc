"""Real HTTPS admission.k8s.io/v1 AdmissionReviews posted to the running injection webhook:
injection, idempotency, opt-out, namespace opt-in, a pod no policy selects, refusals, malformed
reviews, and the TLS set-up (caBundle patched, Secret kept, Service DNS names served)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from typing import Any

import aiohttp
import kmock
import pytest
from webhook_harness import CACHE_SECONDS, CONFIGURATION, NAMESPACE, SECRET, Webhook

from fixtures.pods import applied, assert_valid_pod, pod, policy, review


def _post(webhook: Webhook, body: Any, path: str = "/inject-pod", *,
          server_hostname: str | None = None) -> tuple[int, Any]:
    context = ssl.create_default_context(cadata=webhook.ca.decode())

    async def send() -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with aiohttp.ClientSession() as session, session.post(
                f"{webhook.url}{path}", data=data, ssl=context,
                server_hostname=server_hostname,
                headers={"Content-Type": "application/json"}) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except json.JSONDecodeError:
                return response.status, text

    return asyncio.run(send())


def _patch_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    encoded = answer["response"].get("patch")
    if encoded is None:
        return []
    assert answer["response"]["patchType"] == "JSONPatch"
    return json.loads(base64.b64decode(encoded))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def with_policy(webhook: Webhook) -> Webhook:
    """The webhook once the ``storefront`` policy (selecting ``app: web``) exists and its
    namespace's cached list has expired."""
    webhook.post_to_api("/apis/curfew.dev/v1alpha1/namespaces/shop/sessionpolicies",
                        policy(redisSecretRef={"name": "sessions-redis", "key": "url"}))
    time.sleep(CACHE_SECONDS)
    return webhook


def test_a_labelled_deployment_pod_is_answered_with_a_patch_that_adds_the_sidecar(
    with_policy: Webhook,
) -> None:
    request = review(pod())
    status, answer = _post(with_policy, request)
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == request["request"]["uid"]
    assert answer["response"]["allowed"] is True
    result = applied(pod(), _patch_of(answer))
    assert_valid_pod(result)
    names = [c["name"] for c in result["spec"]["containers"]]
    assert names == ["app", "curfew-sidecar"]
    sidecar = result["spec"]["containers"][1]
    assert sidecar["image"] == "registry.example.com/curfew:0.1.0"
    assert {"name": "curfew-config", "configMap": {"name": "curfew-deployment-web"}} \
        in result["spec"]["volumes"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in sidecar["env"]}
    assert env == {"REDIS_URL": "sessions-redis", "CURFEW_SESSION_KEY": "sessions-redis"}


def test_reinjecting_an_injected_pod_changes_nothing(with_policy: Webhook) -> None:
    _, first = _post(with_policy, review(pod()))
    injected = applied(pod(), _patch_of(first))
    status, again = _post(with_policy, review(injected))
    assert status == 200
    assert again["response"]["allowed"] is True
    assert _patch_of(again) == []


def test_the_opt_out_annotation_leaves_the_pod_unchanged(with_policy: Webhook) -> None:
    status, answer = _post(with_policy, review(pod(annotations={"curfew.dev/inject": "false"})),
                           "/inject-namespace")
    assert status == 200
    assert answer["response"]["allowed"] is True
    assert _patch_of(answer) == []


def test_an_unlabelled_pod_is_injected_only_through_the_namespace_webhook(
    with_policy: Webhook,
) -> None:
    unlabelled = pod(labels={"curfew.dev/inject": "unset"})
    _, by_pod = _post(with_policy, review(unlabelled), "/inject-pod")
    assert _patch_of(by_pod) == []
    _, by_namespace = _post(with_policy, review(unlabelled), "/inject-namespace")
    assert_valid_pod(applied(unlabelled, _patch_of(by_namespace)))
    assert _patch_of(by_namespace)


def test_a_pod_of_a_workload_no_policy_selects_is_admitted_unchanged_with_a_warning(
    with_policy: Webhook,
) -> None:
    status, answer = _post(with_policy, review(pod(labels={"app": "api"})))
    assert status == 200
    assert answer["response"]["allowed"] is True
    assert _patch_of(answer) == []
    assert answer["response"]["warnings"] == [
        "curfew: sidecar not injected: no SessionPolicy selects Deployment/shop/web"]


def test_an_opted_in_pod_without_an_upstream_port_is_refused_with_the_annotation_to_set(
    with_policy: Webhook,
) -> None:
    status, answer = _post(with_policy, review(pod(upstream=None)))
    assert status == 200
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 400
    assert "curfew.dev/upstream-port" in answer["response"]["status"]["message"]


def test_the_pods_namespace_comes_from_the_request_when_the_pod_has_none(
    with_policy: Webhook,
) -> None:
    bare = pod()
    del bare["metadata"]["namespace"]
    _, answer = _post(with_policy, review(bare, namespace="shop"))
    assert _patch_of(answer)
    _, elsewhere = _post(with_policy, review(bare, namespace="admin"))
    assert _patch_of(elsewhere) == []


def _nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep, built without recursion."""
    node: dict[str, Any] = {}
    for _ in range(depth):
        node = {"a": node}
    return node


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", None),
    ([1, 2], "the body is not a JSON object"),
    ({"apiVersion": "v1", "kind": "Pod"}, "not an admission.k8s.io/v1 AdmissionReview"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request: required"),
    ({**review(pod()), "request": {**review(pod())["request"], "uid": ""}}, "request.uid"),
    ({**review(pod()), "request": {**review(pod())["request"], "object": "x"}},
     "request.object"),
    ({**review(pod()), "request": {**review(pod())["request"], "userInfo": None}},
     "request.userInfo"),
    (review({"metadata": "x", "spec": {}}), "request.object.metadata"),
    (b"[" * 100_000 + b"]" * 100_000, None),
    (b'{"request": ' * 50_000 + b"{}" + b"}" * 50_000, None),
    (review({"metadata": {}, "spec": _nested(200)}), "nests deeper than 64 levels"),
    (review({"metadata": {}, "spec": {"containers": [_nested(900)]}}), "nests deeper"),
], ids=["not json", "a json list", "not an admission review", "no request", "no uid",
        "object not a pod", "no user info", "metadata not an object",
        "arrays nested past the decoder's stack", "objects nested past the decoder's stack",
        "a pod nested 200 levels deep", "a container nested 900 levels deep"])
def test_a_malformed_review_gets_a_clean_refusal_and_the_server_keeps_serving(
    with_policy: Webhook, body: Any, message: str | None
) -> None:
    status, answer = _post(with_policy, body)
    if message is None:
        assert status == 400
    else:
        assert status == 200
        assert answer["response"]["allowed"] is False
        assert message in answer["response"]["status"]["message"]
    status, healthy = _post(with_policy, review(pod()))
    assert status == 200
    assert _patch_of(healthy)


def test_a_pod_with_a_malformed_spec_is_refused_not_crashed_on(with_policy: Webhook) -> None:
    broken = pod()
    broken["spec"]["containers"] = "app"
    status, answer = _post(with_policy, review(broken))
    assert status == 200
    assert answer["response"]["allowed"] is False
    assert "spec.containers: expected a list" in answer["response"]["status"]["message"]


def test_the_ca_is_patched_into_every_webhook_and_kept_in_the_secret(webhook: Webhook) -> None:
    objects = webhook.emulator.objects
    config = objects[(kmock.resource(group="admissionregistration.k8s.io", version="v1",
                                     plural="mutatingwebhookconfigurations"),
                      None, CONFIGURATION)].raw
    bundles = {h["clientConfig"]["caBundle"] for h in config["webhooks"]}
    assert bundles == {base64.b64encode(webhook.ca).decode()}
    secret = objects[(kmock.resource(group="", version="v1", plural="secrets"),
                      NAMESPACE, SECRET)].raw
    assert base64.b64decode(secret["data"]["ca.crt"]) == webhook.ca
    assert set(secret["data"]) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}


def test_the_server_certificate_is_valid_for_the_service_name_the_api_server_dials(
    with_policy: Webhook,
) -> None:
    status, _ = _post(with_policy, review(pod()),
                      server_hostname="curfew-webhook.curfew.svc")
    assert status == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        _post(with_policy, review(pod()), server_hostname="elsewhere.example.com")


def test_when_the_policies_cannot_be_listed_the_answer_is_503_so_the_failure_policy_applies(
    with_policy: Webhook,
) -> None:
    time.sleep(CACHE_SECONDS)
    fault = with_policy.emulator.fail(
        503, lambda call: call.resource == "sessionpolicies" and call.verb == "list")
    try:
        status, _ = _post(with_policy, review(pod()))
        assert status == 503
        assert fault.hits >= 1
    finally:
        with_policy.emulator.faults.remove(fault)
    time.sleep(CACHE_SECONDS)
    status, answer = _post(with_policy, review(pod()))
    assert status == 200
    assert _patch_of(answer)


def test_a_rollout_lists_the_policies_once_per_cache_period(with_policy: Webhook) -> None:
    time.sleep(CACHE_SECONDS)
    before = len([c for c in with_policy.emulator.calls
                  if c.resource == "sessionpolicies" and c.verb == "list"])
    started = time.monotonic()
    for _ in range(10):
        assert _patch_of(_post(with_policy, review(pod()))[1])
    elapsed = time.monotonic() - started
    after = len([c for c in with_policy.emulator.calls
                 if c.resource == "sessionpolicies" and c.verb == "list"])
    # One list per started cache period (a slow machine may cross a period boundary).
    assert 1 <= after - before <= 1 + int(elapsed / CACHE_SECONDS)
    assert after - before < 10


def test_a_bare_opted_in_pod_is_admitted_unchanged_with_a_warning(with_policy: Webhook) -> None:
    status, answer = _post(with_policy, review(pod(owner=None)))
    assert status == 200
    assert answer["response"]["allowed"] is True
    assert _patch_of(answer) == []
    assert "belongs to no Deployment, StatefulSet or DaemonSet" in \
        answer["response"]["warnings"][0]


def test_an_unlabelled_pod_sent_to_the_pod_webhook_gets_no_warning(with_policy: Webhook) -> None:
    _, answer = _post(with_policy, review(pod(labels={"curfew.dev/inject": "unset"})))
    assert "warnings" not in answer["response"]
