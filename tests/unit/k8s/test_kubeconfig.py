"""The kubeconfig reader (``curfew.k8s.kubeconfig``) against the shapes real kubeconfigs take
(kind's client certificates as data, a token, files beside the kubeconfig, a CA, insecure, the
pod's service account), and its refusals: each names the file and the field, never a secret."""

from __future__ import annotations

import base64
import datetime
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from curfew.k8s.kubeconfig import Connection, CredentialsError, load_connection

TOKEN = "s3cr3t-t0ken-never-shown"


def build_certificate(name: str = "curfew-test") -> tuple[str, str]:
    """A self-signed certificate and its key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


CERT, KEY = build_certificate()
CA, _ = build_certificate("curfew-test-ca")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def build_kubeconfig(cluster: dict[str, Any], user: dict[str, Any] | None = None, *,
                     current: str | None = "ctx", context: str = "ctx") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u",
                                                   "namespace": "default"}}],
    }


def write(path: Path, doc: Any) -> str:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# --- what is read -----------------------------------------------------------------------------

def test_a_token_user_gives_the_server_and_the_token(tmp_path: Path) -> None:
    path = write(tmp_path / "config", build_kubeconfig(
        {"server": "https://api.example.com:6443", "certificate-authority-data": b64(CA)},
        {"token": TOKEN}))
    conn = load_connection(path)
    assert (conn.server, conn.bearer_token(), conn.ca_data) == (
        "https://api.example.com:6443", TOKEN, CA)
    assert not conn.insecure
    assert conn.ca_path is None


def test_client_certificates_as_data_are_decoded_to_pem_and_load_into_an_ssl_context(
        tmp_path: Path) -> None:
    # The shape kind and kubeadm write: everything inline, base64.
    path = write(tmp_path / "config", build_kubeconfig(
        {"server": "https://127.0.0.1:40000", "certificate-authority-data": b64(CA)},
        {"client-certificate-data": b64(CERT), "client-key-data": b64(KEY)}))
    conn = load_connection(path)
    assert (conn.certificate_data, conn.private_key_data, conn.bearer_token()) == (
        CERT, KEY, None)
    context = conn.build_ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "curfew-test-ca"),),)]


def test_text_before_the_pem_block_of_ca_data_is_dropped(tmp_path: Path) -> None:
    conn = load_connection(write(tmp_path / "config", build_kubeconfig(
        {"server": "https://a", "certificate-authority-data": b64("cluster CA\n" + CA)})))
    assert conn.ca_data == CA
    assert isinstance(conn.build_ssl_context(), ssl.SSLContext)


def test_a_key_that_does_not_match_its_certificate_fails_when_the_context_is_built(
        tmp_path: Path) -> None:
    _, other_key = build_certificate("other")
    conn = Connection(server="https://x", certificate_data=CERT, private_key_data=other_key)
    with pytest.raises(ssl.SSLError):
        conn.build_ssl_context()


def test_files_named_relative_to_the_kubeconfig_are_found_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "kube"
    home.mkdir()
    for name, text in (("ca.crt", CA), ("client.crt", CERT), ("client.key", KEY),
                       ("token", TOKEN + "\n")):
        (home / name).write_text(text)
    path = write(home / "config", build_kubeconfig(
        {"server": "https://api:6443", "certificate-authority": "ca.crt"},
        {"client-certificate": "client.crt", "client-key": "client.key",
         "tokenFile": "token"}))
    monkeypatch.chdir(tmp_path)  # not the kubeconfig's folder
    conn = load_connection(path)
    assert (conn.ca_path, conn.certificate_path, conn.private_key_path, conn.token_path) == (
        str(home / "ca.crt"), str(home / "client.crt"), str(home / "client.key"),
        str(home / "token"))
    assert conn.bearer_token() == TOKEN
    assert isinstance(conn.build_ssl_context(), ssl.SSLContext)


def test_a_token_file_is_read_again_for_each_request_as_it_rotates(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first")
    conn = load_connection(write(tmp_path / "config", build_kubeconfig(
        {"server": "https://api:6443"}, {"tokenFile": str(token), "token": "stale"})))
    token.write_text("second")
    assert conn.bearer_token() == "second"


def test_insecure_skip_tls_verify_turns_verification_off(tmp_path: Path) -> None:
    conn = load_connection(write(tmp_path / "config", build_kubeconfig(
        {"server": "https://api:6443", "insecure-skip-tls-verify": True}, {"token": TOKEN})))
    context = conn.build_ssl_context()
    assert conn.insecure
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)


def test_a_plain_http_server_gets_no_tls(tmp_path: Path) -> None:
    conn = load_connection(write(tmp_path / "config", build_kubeconfig(
        {"server": "http://127.0.0.1:8001"})))
    assert conn.build_ssl_context() is False
    assert conn.bearer_token() is None


def test_a_context_given_overrides_the_current_context(tmp_path: Path) -> None:
    doc = build_kubeconfig({"server": "https://one:6443"}, {"token": TOKEN})
    doc["clusters"].append({"name": "c2", "cluster": {"server": "https://two:6443"}})
    doc["contexts"].append({"name": "other", "context": {"cluster": "c2", "user": "u"}})
    path = write(tmp_path / "config", doc)
    assert load_connection(path).server == "https://one:6443"
    assert load_connection(path, context="other").server == "https://two:6443"


def test_kubeconfig_files_listed_in_the_environment_merge_first_wins(
        tmp_path: Path, no_environment: None) -> None:
    first = write(tmp_path / "a", {"clusters": [{"name": "c", "cluster": {
        "server": "https://first:6443"}}], "current-context": "ctx"})
    second = write(tmp_path / "b", build_kubeconfig({"server": "https://second:6443"},
                                                    {"token": TOKEN}, current="nope"))
    missing = str(tmp_path / "absent")  # as kubectl: skipped
    conn = load_connection(environ={"KUBECONFIG": os.pathsep.join([missing, first, second])})
    assert (conn.server, conn.bearer_token()) == ("https://first:6443", TOKEN)


# --- the service account ----------------------------------------------------------------------

def test_in_a_pod_the_service_account_is_used_with_its_rotating_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_text(CA)
    conn = load_connection(
        environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
        service_account_dir=str(tmp_path))
    assert (conn.server, conn.ca_path) == ("https://10.96.0.1:443", str(tmp_path / "ca.crt"))
    (tmp_path / "token").write_text("rotated")
    assert conn.bearer_token() == "rotated"


def test_an_ipv6_service_host_is_bracketed(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("pod-token")
    conn = load_connection(
        environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
        service_account_dir=str(tmp_path))
    assert conn.server == "https://[fd00::1]:443"
    assert conn.ca_path is None


def test_an_explicit_kubeconfig_wins_over_the_service_account(tmp_path: Path) -> None:
    path = write(tmp_path / "config", build_kubeconfig({"server": "https://outside:6443"}))
    conn = load_connection(path, environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                          "KUBERNETES_SERVICE_PORT": "443"},
                           service_account_dir=str(tmp_path / "absent"))
    assert conn.server == "https://outside:6443"


# --- refusals: clear, specific, and never a secret ----------------------------------------------

def refusal(tmp_path: Path, doc: Any, **kwargs: Any) -> str:
    path = write(tmp_path / "config", doc)
    with pytest.raises(CredentialsError) as info:
        load_connection(path, **kwargs)
    message = str(info.value)
    assert TOKEN not in message
    assert "\n" not in message
    assert str(tmp_path / "config") in message or "kubeconfig" in message
    return message


REFUSALS = [
    ("a context that does not exist names the ones that do",
     build_kubeconfig({"server": "https://a"}), {"context": "prod"},
     "context 'prod' not found (contexts: ctx)"),
    ("no current context and none given",
     build_kubeconfig({"server": "https://a"}, current=None), {},
     "no current-context is set"),
    ("a context whose cluster is missing",
     {**build_kubeconfig({"server": "https://a"}), "clusters": []}, {},
     "cluster 'c' of context 'ctx' not found"),
    ("a context whose user is missing",
     {**build_kubeconfig({"server": "https://a"}), "users": []}, {},
     "user 'u' of context 'ctx' not found"),
    ("a cluster without a server",
     build_kubeconfig({"certificate-authority-data": b64(CA)}), {},
     "cluster 'c' has no https:// or http:// server"),
    ("an exec credential plugin, with what to do instead",
     build_kubeconfig({"server": "https://a"}, {"exec": {
         "apiVersion": "client.authentication.k8s.io/v1", "command": "aws",
         "args": ["eks", "get-token", "--cluster-name", "prod"]}}), {},
     "user 'u' uses an exec credential plugin (exec), which is not supported: give the "
     "operator a token"),
    ("an auth-provider plugin",
     build_kubeconfig({"server": "https://a"}, {"auth-provider": {
         "name": "oidc", "config": {"id-token": TOKEN}}}), {},
     "uses an auth-provider plugin (auth-provider)"),
    ("basic authentication",
     build_kubeconfig({"server": "https://a"}, {"username": "admin", "password": TOKEN}), {},
     "uses basic authentication"),
    ("impersonation",
     build_kubeconfig({"server": "https://a"}, {"token": TOKEN, "as": "system:admin"}), {},
     "uses impersonation (as)"),
    ("a proxy",
     build_kubeconfig({"server": "https://a", "proxy-url": "socks5://proxy:1080"}), {},
     "cluster 'c' sets proxy-url, which is not supported"),
    ("a CA together with insecure-skip-tls-verify, as kubectl refuses it",
     build_kubeconfig({"server": "https://a", "certificate-authority-data": b64(CA),
                       "insecure-skip-tls-verify": True}), {},
     "sets both a certificate authority and insecure-skip-tls-verify"),
    ("CA data that is not base64",
     build_kubeconfig({"server": "https://a", "certificate-authority-data": "%%not base64%%"}),
     {}, "cluster 'c': certificate-authority-data is not base64 of PEM text"),
    ("CA data that is base64 of something else than PEM",
     build_kubeconfig({"server": "https://a", "certificate-authority-data": b64("hello")}),
     {}, "certificate-authority-data does not hold PEM"),
    ("a certificate without its key",
     build_kubeconfig({"server": "https://a"}, {"client-certificate-data": b64(CERT)}), {},
     "user 'u' needs both a client certificate and its key, or neither"),
    ("a client certificate given both as a file and as data",
     build_kubeconfig({"server": "https://a"}, {
         "client-certificate": "client.crt", "client-certificate-data": b64(CERT),
         "client-key-data": b64(KEY)}), {},
     "client-certificate and client-certificate-data are both set"),
    ("a token file that cannot be read",
     build_kubeconfig({"server": "https://a"}, {"tokenFile": "absent-token"}), {},
     "user 'u': tokenFile"),
    ("a cluster entry that is not a mapping",
     {**build_kubeconfig({"server": "https://a"}), "clusters": ["c"]}, {},
     "clusters[0] is not a name with a cluster mapping"),
    ("a document that is not a mapping", ["not", "a", "config"], {}, "is not a mapping"),
]


@pytest.mark.parametrize(("doc", "kwargs", "expected"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])
def test_an_unusable_kubeconfig_is_refused_naming_the_field(
        tmp_path: Path, doc: Any, kwargs: dict[str, Any], expected: str) -> None:
    assert expected in refusal(tmp_path, doc, **kwargs)


def test_yaml_that_does_not_parse_is_refused_without_quoting_the_line(tmp_path: Path) -> None:
    message = refusal(tmp_path, f"users:\n- name: u\n  user: {{token: {TOKEN}\n")
    assert "is not YAML" in message
    assert "line" in message


def test_a_missing_kubeconfig_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"absent\.yaml does not exist"):
        load_connection(str(tmp_path / "absent.yaml"))


def test_without_any_credentials_the_places_looked_at_are_named(no_environment: None) -> None:
    with pytest.raises(CredentialsError, match=r"no kubeconfig .* not running in a pod"):
        load_connection()


def test_in_a_pod_without_a_readable_token_the_token_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"service account token .*token is not readable"):
        load_connection(environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                 "KUBERNETES_SERVICE_PORT": "443"},
                        service_account_dir=str(tmp_path))


def test_the_token_and_the_key_never_appear_in_the_connections_repr() -> None:
    text = repr(Connection(server="https://a", token=TOKEN, private_key_data=KEY,
                           certificate_data=CERT))
    assert TOKEN not in text
    assert "PRIVATE KEY" not in text
