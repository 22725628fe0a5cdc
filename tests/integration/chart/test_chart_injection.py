"""The chart's injection webhook (``injection.*``): off by default; when on, a webhook
configuration whose selectors, paths, failure policy and TLS agree with what the operator serves,
and operator settings that the operator's own settings model accepts."""

from __future__ import annotations

import os
from typing import Any

import kubernetes_validate
import pytest
from chart_helpers import NAMESPACE, by_kind, one, template, template_error

from curfew.api import LabelSelector
from curfew.operator.injection import WEBHOOK_NAMESPACE, WEBHOOK_POD
from curfew.operator.settings import InjectionWebhookSettings
from curfew.render import selects

ON = ["injection.enabled=true"]
CERT_MANAGER = [*ON, "injection.tls.certManager.enabled=true"]


def _operator(objects: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"][
        "containers"][0]
    return container


def _settings(objects: list[dict[str, Any]]) -> InjectionWebhookSettings:
    """The operator's injection settings, read from the rendered environment as it reads them."""
    env = {e["name"]: e["value"] for e in _operator(objects)["env"]
           if e["name"].startswith("CURFEW_INJECTION_")}
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("CURFEW_INJECTION_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return InjectionWebhookSettings()


def _hooks(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    config = one(objects, "MutatingWebhookConfiguration")
    return {hook["clientConfig"]["service"]["path"]: hook for hook in config["webhooks"]}


def _selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return selects(LabelSelector.model_validate(selector), labels)


def test_injection_is_off_by_default() -> None:
    objects = template()
    assert by_kind(objects, "MutatingWebhookConfiguration") == []
    assert not any(e["name"].startswith("CURFEW_INJECTION_") for e in _operator(objects)["env"])


def test_the_webhook_paths_are_the_handlers_the_operator_registers() -> None:
    assert set(_hooks(template(sets=ON))) == {f"/{WEBHOOK_POD}", f"/{WEBHOOK_NAMESPACE}"}


def test_the_defaults_are_fail_open_with_a_small_timeout() -> None:
    for hook in _hooks(template(sets=ON)).values():
        assert hook["failurePolicy"] == "Ignore"
        assert hook["timeoutSeconds"] == 5
        assert hook["sideEffects"] == "None"
        assert hook["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"],
                                  "operations": ["CREATE"], "resources": ["pods"],
                                  "scope": "Namespaced"}]


def test_the_failure_policy_and_timeout_are_configurable() -> None:
    objects = template(sets=[*ON, "injection.failurePolicy=Fail", "injection.timeoutSeconds=2"])
    assert {(h["failurePolicy"], h["timeoutSeconds"]) for h in _hooks(objects).values()} == {
        ("Fail", 2)}


@pytest.mark.parametrize(("namespace", "pod", "expected"), [
    ({"kubernetes.io/metadata.name": "shop"}, {"curfew.dev/inject": "true"}, {"/inject-pod"}),
    ({"kubernetes.io/metadata.name": "shop"}, {"app": "web"}, set()),
    ({"kubernetes.io/metadata.name": "shop", "curfew.dev/inject": "true"}, {"app": "web"},
     {"/inject-namespace"}),
    ({"kubernetes.io/metadata.name": "shop", "curfew.dev/inject": "true"},
     {"curfew.dev/inject": "true"}, {"/inject-namespace"}),
    ({"kubernetes.io/metadata.name": "shop", "curfew.dev/inject": "true"},
     {"curfew.dev/inject": "false"}, set()),
    ({"kubernetes.io/metadata.name": "kube-system", "curfew.dev/inject": "true"},
     {"curfew.dev/inject": "true"}, set()),
    ({"kubernetes.io/metadata.name": NAMESPACE}, {"curfew.dev/inject": "true"}, set()),
], ids=["a labelled pod", "an unlabelled pod", "any pod of a labelled namespace",
        "a labelled pod of a labelled namespace is sent once",
        "a pod labelled false in a labelled namespace", "kube-system never",
        "curfew's own namespace never"])
def test_the_selectors_send_each_pod_to_at_most_one_webhook(
    namespace: dict[str, str], pod: dict[str, str], expected: set[str]
) -> None:
    hooks = _hooks(template(sets=ON))
    called = {path for path, hook in hooks.items()
              if _selected(hook["namespaceSelector"], namespace)
              and _selected(hook["objectSelector"], pod)}
    assert called == expected


def test_watched_namespaces_limit_where_pods_are_injected() -> None:
    hooks = _hooks(template(sets=[*ON, "watchNamespaces={shop}"]))
    pod_hook = hooks["/inject-pod"]
    assert _selected(pod_hook["namespaceSelector"], {"kubernetes.io/metadata.name": "shop"})
    assert not _selected(pod_hook["namespaceSelector"], {"kubernetes.io/metadata.name": "blog"})


def test_the_operator_settings_agree_with_the_service_secret_and_configuration() -> None:
    objects = template(sets=[*ON, "injection.port=8443", "injection.sidecar.opsPort=9555"])
    settings = _settings(objects)
    assert settings.enabled is True
    assert settings.namespace == NAMESPACE
    config = one(objects, "MutatingWebhookConfiguration")
    assert settings.webhook_configuration == config["metadata"]["name"]
    service = next(s for s in by_kind(objects, "Service")
                   if s["metadata"]["name"] == settings.service)
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    assert {"name": "webhook", "containerPort": 8443, "protocol": "TCP"} in \
        _operator(objects)["ports"]
    assert settings.port == 8443
    assert settings.ops_port == 9555
    role = next(r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith(
        "-injection"))
    assert [settings.tls_secret] in [rule.get("resourceNames") for rule in role["rules"]]
    cluster_role = next(r for r in by_kind(objects, "ClusterRole")
                        if r["metadata"]["name"] == config["metadata"]["name"])
    assert cluster_role["rules"] == [{
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["mutatingwebhookconfigurations"],
        "resourceNames": [config["metadata"]["name"]], "verbs": ["get", "patch"]}]


def test_the_sidecar_image_defaults_to_the_operators_image() -> None:
    objects = template(sets=ON)
    assert _settings(objects).image == _operator(objects)["image"]


def test_with_cert_manager_the_ca_is_injected_and_the_certificate_mounted() -> None:
    objects = template(sets=CERT_MANAGER)
    settings = _settings(objects)
    config = one(objects, "MutatingWebhookConfiguration")
    serving = next(c for c in by_kind(objects, "Certificate") if not c["spec"].get("isCA"))
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
        f"{NAMESPACE}/{serving['metadata']['name']}"
    assert f"{settings.service}.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    assert settings.tls_dir == "/etc/curfew/webhook-tls"
    assert settings.webhook_configuration == ""
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert {"name": "webhook-tls", "secret": {"secretName": serving["spec"]["secretName"]}} \
        in pod["volumes"]
    assert not [r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith(
        "-injection")]
    for obj in objects:
        if obj["apiVersion"] != "cert-manager.io/v1" and obj["kind"] != "ClusterKopfPeering":
            kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_with_cert_manager_an_existing_issuer_can_be_named() -> None:
    objects = template(sets=[*CERT_MANAGER, "injection.tls.certManager.issuerRef.name=corp-ca",
                             "injection.tls.certManager.issuerRef.kind=ClusterIssuer"])
    assert by_kind(objects, "Issuer") == []
    [certificate] = by_kind(objects, "Certificate")
    assert certificate["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer",
                                                "group": "cert-manager.io"}


@pytest.mark.parametrize(("sets", "message"), [
    (["injection.failurePolicy=Sometimes"], "injection.failurePolicy"),
    (["injection.timeoutSeconds=60"], "injection.timeoutSeconds"),
    (["injection.sidecar.opsPort=0"], "injection.sidecar.opsPort"),
    (["injection.enabeld=true"], "Additional property enabeld is not allowed"),
], ids=["an unknown failure policy", "a timeout above the API server's 30s",
        "a port out of range", "a misspelt value"])
def test_the_schema_rejects_a_mistaken_injection_value(sets: list[str], message: str) -> None:
    assert message in template_error(sets=sets)
