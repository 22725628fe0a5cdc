"""The operator's credentials over real TLS: a kubeconfig with a CA and a client certificate as
base64 data (the shape kind writes) and a token reaches an HTTPS server on loopback that demands
the client certificate, and one without the CA is refused by verification, not let through."""

from __future__ import annotations

import base64
import datetime
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from curfew.k8s.client import CONFIG_MAPS, KubeClient, TransientApiError
from curfew.k8s.kubeconfig import load_connection
from curfew.operator.certificates import TlsBundle, build_tls_bundle

TOKEN = "kind-admin-token"


def build_client_certificate(bundle: TlsBundle, name: str) -> tuple[bytes, bytes]:
    """A client certificate for ``name`` signed by ``bundle``'s CA, as the API server's CA
    signs kind's admin certificate."""
    ca_cert = x509.load_pem_x509_certificate(bundle.ca_cert)
    ca_key = serialization.load_pem_private_key(bundle.ca_key, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TlsApi:
    """An HTTPS server that, like the API server, requires a client certificate from its CA."""

    def __init__(self, tmp: Path) -> None:
        self.bundle = build_tls_bundle(["127.0.0.1"])
        self.seen: list[dict[str, Any]] = []
        for name, data in (("ca.crt", self.bundle.ca_cert), ("tls.crt", self.bundle.cert),
                           ("tls.key", self.bundle.key)):
            (tmp / name).write_bytes(data)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                                  cafile=str(tmp / "ca.crt"))
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_cert_chain(str(tmp / "tls.crt"), str(tmp / "tls.key"))
        self.url = f"https://127.0.0.1:{_free_port()}"

    async def list_config_maps(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item[0] for item in (peer or {}).get("subject", ()))
        self.seen.append({"client": subject.get("commonName"),
                          "authorization": request.headers.get("Authorization")})
        return web.json_response({"kind": "ConfigMapList", "apiVersion": "v1", "items": []})


@pytest_asyncio.fixture()
async def tls_api(tmp_path: Path) -> AsyncIterator[TlsApi]:
    api = TlsApi(tmp_path)
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps", api.list_config_maps)
    runner = web.AppRunner(app)
    await runner.setup()
    port = int(api.url.rsplit(":", 1)[1])
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=api.context).start()
    try:
        yield api
    finally:
        await runner.cleanup()


def _kubeconfig(tmp_path: Path, api: TlsApi, *, with_ca: bool = True) -> str:
    cert, key = build_client_certificate(api.bundle, "kind-admin")
    cluster: dict[str, Any] = {"server": api.url}
    if with_ca:
        cluster["certificate-authority-data"] = base64.b64encode(api.bundle.ca_cert).decode()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-curfew",
        "clusters": [{"name": "kind-curfew", "cluster": cluster}],
        "users": [{"name": "kind-curfew", "user": {
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode(), "token": TOKEN}}],
        "contexts": [{"name": "kind-curfew",
                      "context": {"cluster": "kind-curfew", "user": "kind-curfew"}}],
    }))
    return str(path)


async def test_a_kubeconfig_with_inline_certificates_authenticates_over_tls(
        tls_api: TlsApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    async with KubeClient(load_connection(_kubeconfig(tmp_path, tls_api)), timeout=10) as client:
        assert await client.list(CONFIG_MAPS, "shop") == []
        # The key went to a private temporary file only while the TLS context was built.
        assert list(temp.iterdir()) == []
    assert tls_api.seen == [{"client": "kind-admin", "authorization": f"Bearer {TOKEN}"}]


async def test_without_the_clusters_ca_the_server_is_not_trusted(
        tls_api: TlsApi, tmp_path: Path) -> None:
    async with KubeClient(load_connection(_kubeconfig(tmp_path, tls_api, with_ca=False)),
                          timeout=10) as client:
        with pytest.raises(TransientApiError) as info:
            await client.list(CONFIG_MAPS, "shop")
    assert info.value.status == 0
    assert "certificate" in str(info.value).lower()
    assert tls_api.seen == []
